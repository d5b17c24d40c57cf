"""The kit on a real device: one real training step of every algorithm, every notebook in quick
mode, and the benchmarks' short versions, with ``METAKIT_DEVICE`` set, timed.

    python benchmarks/gpu_check.py                   # on cuda (make gpu-check)
    python benchmarks/gpu_check.py --device cpu      # the same on the CPU, for the reference column
    python benchmarks/gpu_check.py --notebooks 03,04 --benchmarks metric
    python benchmarks/gpu_check.py --only device_check,nb01,glyphs    # any parts, by name

Prints one table: each part's seconds here, the same part's seconds in the CPU runs recorded in
``benchmarks/RESULTS.md`` (the ``RESULT device=cpu ...`` lines of its "gpu-check" section, the
first line that has a part winning), and whether it passed. A notebook passes when it runs without
an error and its setup cell printed the device asked for. A benchmark's row shows the device it
printed. The last line is ``RESULT device=... <part>_s=... failed=...``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
BENCHMARKS = {"glyphs": [], "metric": [], "maml_family": ["--only", "maml,anil", "--episodes", "4"],
              "maml_speed": [], "continual": [], "transfer": [], "gan_augmentation": [], "meta_augmentation": [],
              "metadata": []}


def run_notebook(path: Path, device: str, timeout: int) -> tuple[bool, str]:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
                       ).execute()
    except Exception as e:  # the failing cell's first line and the error's last lines
        lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
        return False, " | ".join(lines[1:2] + lines[-3:])[:600]
    setup = "".join(o.get("text", "") for c in nb.cells[:4] if c.cell_type == "code" for o in c.outputs)
    if f"device: {device}" not in setup:
        return False, f"ran, but its setup cell did not print 'device: {device}'"
    return True, ""


def run_benchmark(name: str, args: list[str], timeout: int) -> tuple[bool, str]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick", "--no-progress", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return False, f"over {timeout} s"
    last = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0 or not last.startswith("RESULT"):
        return False, (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    device = next((ln for ln in proc.stdout.splitlines() if ln.startswith("device:")), "no device line")
    return True, f"[{device}] {last[:200]}"


def reference(device: str) -> dict[str, float]:
    """The recorded CPU runs' seconds per part, the latest line first (empty when this is a CPU run)."""
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    seconds = {}
    for line in re.findall(r"^RESULT device=cpu .*$", text, re.M) if device != "cpu" else []:
        for k, v in (kv.split("=") for kv in line.split()[2:] if "_s=" in kv):
            seconds.setdefault(k[:-2], float(v))
    return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--notebooks", default="all", help="comma-separated numbers (01,03), all, or none")
    p.add_argument("--benchmarks", default="all", help="comma-separated names, all, or none")
    p.add_argument("--timeout", type=int, default=600, help="seconds per notebook or benchmark")
    p.add_argument("--no-train", dest="train", action="store_false", help="skip python -m metakit.train")
    p.add_argument("--only", default="all", help="comma-separated part names to run (device_check, train_cli, "
                   "determinism, nb03, metric, ...), all by default; for splitting a run across processes")
    args = p.parse_args()
    os.environ.update(METAKIT_DEVICE=args.device, METAKIT_QUICK="1", MPLBACKEND="agg")
    parts = [("device_check", lambda: run_benchmark_tests(args.timeout))]
    if args.train:
        parts.append(("train_cli", lambda: train_cli(args.timeout)))
    parts.append(("determinism", lambda: determinism(args.device)))
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        if args.notebooks == "all" or path.name[:2] in args.notebooks.split(","):
            parts.append((f"nb{path.name[:2]}", lambda path=path: run_notebook(path, args.device, args.timeout)))
    for name, extra in BENCHMARKS.items():
        if args.benchmarks == "all" or name in args.benchmarks.split(","):
            parts.append((name, lambda name=name, extra=extra: run_benchmark(name, extra, args.timeout)))
    if args.only != "all":
        only, names = args.only.split(","), [name for name, _ in parts]
        if unknown := [name for name in only if name not in names]:
            p.error(f"--only: {', '.join(unknown)} not among this run's parts ({', '.join(names)})")
        parts = [(name, run) for name, run in parts if name in only]
    ref, seconds, failed = reference(args.device), {}, []
    print(f"{'part':<20} {args.device + ' s':>9} {'cpu s':>8}  result", flush=True)
    for name, run in parts:
        start = time.perf_counter()
        ok, note = run()
        seconds[name] = time.perf_counter() - start
        failed += [] if ok else [name]
        cpu = f"{ref[name]:.1f}" if name in ref else "-"
        print(f"{name:<20} {seconds[name]:9.1f} {cpu:>8}  {'ok' if ok else 'FAILED'} {note}", flush=True)
    print(f"RESULT device={args.device} " + " ".join(f"{k}_s={v:.1f}" for k, v in seconds.items())
          + f" failed={','.join(failed) or 'none'}")


def determinism(device: str) -> tuple[bool, str]:
    """A Conv-4 MAML run of 10 meta-steps, twice per mode: does it repeat bit for bit, and at what speed."""
    import torch

    import metakit
    from metakit.gradient import family
    background, out = metakit.load_glyphs("background"), []
    for deterministic in (False, True):
        runs = []
        for _ in range(2):
            metakit.seed_everything(0, deterministic=deterministic)
            alg = family.make_algorithm("maml").to(device)
            start = time.perf_counter()
            family.train(alg, background, steps=10, progress=False)
            runs.append((time.perf_counter() - start, torch.cat([p.detach().flatten() for p in alg.parameters()])))
        out.append(f"deterministic={deterministic}: {runs[1][0] / 10 * 1000:.1f} ms/step, repeats "
                   f"{torch.equal(runs[0][1], runs[1][1])} (max diff {(runs[0][1] - runs[1][1]).abs().max():.1e})")
    torch.use_deterministic_algorithms(False)
    return "repeats True" in out[1], "; ".join(out)


def train_cli(timeout: int) -> tuple[bool, str]:
    """``python -m metakit.train`` under torchrun (one process on the device): 40 MAML steps, then
    20 more resumed from the checkpoint."""
    out, notes = Path("/tmp/gpu-check-maml.pt"), []
    for steps, extra in ((40, []), (60, ["--resume"])):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "-m",
               "metakit.train", "family", "--algorithm", "maml", "--steps", str(steps), "--eval-episodes", "50",
               "--out", str(out), "--no-progress", *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        if proc.returncode != 0:
            return False, " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])[:400]
        notes.append(" / ".join(ln for ln in proc.stdout.strip().splitlines()[-2:])[:200])  # the test line, the steps
    return True, " | ".join(notes)


def run_benchmark_tests(timeout: int) -> tuple[bool, str]:
    """One real step of every training loop on the device (tests/test_device_check.py)."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider",
                           "tests/test_device_check.py"], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    lines = proc.stdout.strip().splitlines() or [""]
    return proc.returncode == 0, " | ".join([ln[:300] for ln in lines if ln.startswith("FAILED")] + lines[-1:])


if __name__ == "__main__":
    main()
