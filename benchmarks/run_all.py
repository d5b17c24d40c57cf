"""Run every benchmark in this folder and print one table of their results.

    python benchmarks/run_all.py            # the full benchmarks (minutes)
    python benchmarks/run_all.py --quick    # every benchmark in its smoke-test mode

Each ``benchmarks/*.py`` runs as a subprocess with this Python; its output is shown as it comes,
and its last line starting with ``RESULT`` (``RESULT key=value key=value ...``) goes in the table.
Exits non-zero if any benchmark fails or prints no RESULT line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(script: Path, extra: list[str]) -> tuple[int, dict[str, str], float]:
    """Run one benchmark, echoing its stdout; return its exit code, parsed RESULT and seconds taken."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), *extra], stdout=subprocess.PIPE, text=True,
                            cwd=HERE.parent)
    result = None
    for line in proc.stdout:  # streamed, so a long benchmark shows its progress
        print(line, end="", flush=True)
        if line.startswith("RESULT"):
            result = line
    code = proc.wait()
    parsed = dict(item.split("=", 1) for item in result.split()[1:]) if result else {}
    return code, parsed, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    args = parser.parse_args(argv)
    scripts = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    rows, failed = [], []
    for script in scripts:
        print(f"=== {script.name}", flush=True)
        code, result, seconds = run(script, ["--quick"] if args.quick else [])
        if code != 0 or not result:
            failed.append(f"{script.name} ({f'exit code {code}' if code else 'no RESULT line'})")
        rows += [(script.stem, key, value) for key, value in result.items()]
        rows.append((script.stem, "wall_s", f"{seconds:.1f}"))

    width = max([len(r[0]) for r in rows] + [9]), max([len(r[1]) for r in rows] + [3])
    print(f"\n{'benchmark':<{width[0]}}  {'key':<{width[1]}}  value")
    for bench, key, value in rows:
        print(f"{bench:<{width[0]}}  {key:<{width[1]}}  {value}")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
