"""Benchmark: how long each notebook takes to open in the app (`make app`, Voila), in full mode, in
a real browser, and whether it shows the same printed results as the committed notebook.

    python benchmarks/app_open.py              # every notebook
    python benchmarks/app_open.py 02 05        # some of them
    python benchmarks/app_open.py --limit 300  # give up on a notebook after 300 s
    python benchmarks/app_open.py --quick      # notebook 02 alone (a smoke test)

Voila runs the whole notebook while the page shows "Executing k of n", so the time is from asking
for the page (headless Chromium, driven by Playwright, as in tests/browser) to the page showing
every cell's output with every widget drawn. The app is started as `make app` starts it, without
quick mode, with an empty user cache, so what makes a notebook quick is only what ships with the
kit: the checkpoints and the stored results (metakit.results). "same lines" counts the committed
notebook's printed lines (its code cells' text output) that appear in the page; a line can differ
honestly where it prints a time measured as the page opened, and the count of those is given.
Target: every notebook under 60 s on the 2-core CPU.
The last line printed is ``RESULT nb01_s=... ... max_s=... under_60s=K/N``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

import drive  # noqa: E402

NOTEBOOKS = drive.ROOT / "notebooks"
TARGET_S = 60.0


def printed_lines(notebook: Path) -> list[str]:
    """The committed notebook's printed lines (stream outputs of code cells), whitespace collapsed."""
    lines = []
    for cell in json.loads(notebook.read_text())["cells"]:
        for out in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                for line in "".join(out["text"]).splitlines():
                    line = normal(line)
                    if line and "\r" not in line and "it/s" not in line:   # not a progress bar's line
                        lines.append(line)
    return lines


# a printed line that holds a time measured as the page opened (a redraw, a training step) may differ
TIMED = re.compile(r"(\btimes?\b|\btook\b|\bredraw|\d ?m?s\b|\(s\))")


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def open_one(browser, base: str, token: str, notebook: Path, limit: float) -> dict:
    page = drive.new_page(browser)
    start = time.perf_counter()
    try:
        page.goto(f"{base}/voila/render/{notebook.name}?token={token}", timeout=limit * 1000, wait_until="load")
        # Voila shows "Executing k of n" until the last cell has run, then removes #loading and shows the cells
        left = max(limit - (time.perf_counter() - start), 1)
        page.wait_for_function("() => !document.getElementById('loading') && "
                               "[...document.querySelectorAll('.jp-OutputArea-output')].every("
                               "o => !o.innerText.includes('Loading widget'))", timeout=left * 1000)
        seconds = time.perf_counter() - start
    except Exception as e:  # playwright's TimeoutError, or the server gone
        page.close()
        return {"seconds": math.nan, "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
    text = normal(page.locator("body").inner_text())
    expected = printed_lines(notebook)
    missing = [line for line in expected if line not in text]
    result = {"seconds": seconds, "lines": len(expected), "missing": missing,
              "timed": [line for line in missing if TIMED.search(line)],
              "stored": text.count("Stored result: computed"), "errors": drive.errors_shown(page)}
    page.close()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="two-digit numbers (default: all)")
    parser.add_argument("--limit", type=float, default=600, help="seconds before giving up on one notebook")
    parser.add_argument("--show-missing", type=int, default=5, help="how many differing lines to print per notebook")
    parser.add_argument("--quick", action="store_true", help="notebook 02 alone, unless notebooks are named")
    args = parser.parse_args(argv)
    if args.quick and not args.notebooks:
        args.notebooks = ["02"]
    notebooks = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
                       if not args.notebooks or p.name[:2] in args.notebooks)
    chromium = drive.find_chromium()
    if chromium is None or not notebooks:
        print(drive.INSTALL_HINT if chromium is None else f"No notebook matches {args.notebooks}.")
        print("RESULT max_s=nan")
        return 0
    from playwright.sync_api import sync_playwright

    from metakit import results

    for name, stale in results.check_shipped():
        print(f"stored result {name:<24} {'STALE: ' + stale if stale else 'current'}")
    figures = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        home = Path(tmp)
        # an empty user cache: only the shipped checkpoints and results count
        server, app = drive.start_app(home / "app", quick=False,
                                      extra_env={"XDG_CACHE_HOME": str(home / "cache"),
                                                 results.RESULTS_ENV: str(home / "cache" / "results"),
                                                 results.RECOMPUTE_ENV: ""})
        browser = drive.launch_browser(p, chromium)
        try:
            base, token = app.split("|")
            for nb in notebooks:
                r = open_one(browser, base, token, nb, args.limit)
                key = f"nb{nb.name[:2]}_s"
                figures[key] = r["seconds"]
                if "error" in r:
                    print(f"{nb.name:32s} not open after {args.limit:.0f} s ({r['error']})", flush=True)
                    continue
                verdict = "met" if r["seconds"] < TARGET_S else "MISSED"
                print(f"{nb.name:32s} {r['seconds']:6.1f} s  target < {TARGET_S:g} s: {verdict:6s}  same lines "
                      f"{r['lines'] - len(r['missing'])}/{r['lines']} ({len(r['timed'])} of the others hold a time "
                      f"measured now)  stored results used {r['stored']}"
                      + (f"  ERRORS SHOWN {len(r['errors'])}" if r["errors"] else ""), flush=True)
                for line in r["missing"][:args.show_missing]:
                    print(f"      not in the page: {line[:150]}")
        finally:
            browser.close()
            server.stop()
    seconds = list(figures.values())
    under = sum(s < TARGET_S for s in seconds if not math.isnan(s))
    fmt = lambda x: "nan" if math.isnan(x) else f"{x:.1f}"  # noqa: E731
    worst = math.nan if any(math.isnan(s) for s in seconds) else max(seconds)
    print("RESULT " + " ".join(f"{k}={fmt(v)}" for k, v in figures.items())
          + f" max_s={fmt(worst)} under_60s={under}/{len(seconds)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
