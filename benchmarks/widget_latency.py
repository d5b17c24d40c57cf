"""Benchmark: how long a learner waits between moving a slider and seeing the redrawn plot, in a
real browser, for notebook 02's adaptation widget (two sine regressors fine-tuned step by step).

    python benchmarks/widget_latency.py            # 20 slider changes in JupyterLab, 20 in the Voila app
    python benchmarks/widget_latency.py --quick    # 4 and 4 (a smoke test)

Uses the browser suite's helpers (tests/browser/drive.py): JupyterLab on a temporary copy of the
notebook and `make app` (Voila), each on 127.0.0.1 with a fresh token, and headless Chromium driven
by Playwright. The notebook runs in quick mode (its models train for seconds instead of loading
the checkpoints; the widget's work is the same: the same two 1-40-40-1 MLPs, k_shot points,
inner_steps SGD steps, one PNG). A change is one key press on the k_shot slider's handle
(alternately right and left, 5 <-> 6); it is timed from the key press to the moment the <img>
shows a new src and has loaded it: the kernel's callback, the PNG over the websocket, the redraw.
Target: a median under 1 s on CPU. Without Chromium it prints how to install it and NaN figures.
The last line printed is ``RESULT nb02_slider_to_plot_s=... app_slider_to_plot_s=...`` (medians).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "browser"))

import drive  # noqa: E402

NOTEBOOK = "02_maml_derivation.ipynb"
TARGET_S = 1.0


def time_k_shot(explorer, changes: int) -> list[float]:
    """One warm-up change of k_shot, then ``changes`` timed ones (right and left alternately)."""
    explorer.scroll_into_view_if_needed()
    drive.slider_latency(explorer, "k_shot", repeats=1)
    return drive.slider_latency(explorer, "k_shot", repeats=changes // 2)


def in_lab(browser, home: Path, changes: int) -> list[float]:
    notebooks = home / "notebooks"
    notebooks.mkdir(parents=True)
    shutil.copy(drive.ROOT / "notebooks" / NOTEBOOK, notebooks / NOTEBOOK)
    server, lab = drive.start_lab(notebooks, home)
    try:
        page = drive.new_page(browser, timeout_ms=60_000)
        drive.open_notebook(page, lab, NOTEBOOK)
        drive.run_all(page, lab)
        assert not drive.errors_shown(page, drive.CURRENT_NOTEBOOK), drive.errors_shown(page, drive.CURRENT_NOTEBOOK)
        times = time_k_shot(page.locator(f"{drive.CURRENT_NOTEBOOK} {drive.EXPLORER}"), changes)
        page.close()
        return times
    finally:
        server.stop()


def in_app(browser, home: Path, changes: int) -> list[float]:
    server, app = drive.start_app(home)
    try:
        base, token = app.split("|")
        page = drive.new_page(browser, timeout_ms=60_000)
        page.goto(f"{base}/voila/render/{NOTEBOOK}?token={token}", timeout=300_000)
        explorer = page.locator(drive.EXPLORER)
        explorer.locator(":scope > img.widget-image").wait_for(timeout=120_000)
        times = time_k_shot(explorer, changes)
        page.close()
        return times
    finally:
        server.stop()


def summary(name: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(f"{name:28s} median {median:.3f} s  min {min(times):.3f}  max {max(times):.3f}  ({len(times)} changes)"
          f"  target < {TARGET_S:g} s: {'met' if median < TARGET_S else 'MISSED'}", flush=True)
    return median


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 changes per setting instead of 20")
    args = parser.parse_args(argv)
    changes = 4 if args.quick else 20
    chromium = drive.find_chromium()
    if chromium is None:
        print(drive.INSTALL_HINT)
        print("RESULT nb02_slider_to_plot_s=nan app_slider_to_plot_s=nan")
        return 0
    from playwright.sync_api import sync_playwright

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = drive.launch_browser(p, chromium)
        try:
            lab = summary("JupyterLab, notebook 02", in_lab(browser, Path(tmp) / "lab", changes))
            app = summary("Voila app, notebook 02", in_app(browser, Path(tmp) / "app", changes))
        finally:
            browser.close()
    print(f"({time.perf_counter() - start:.0f} s in all, servers and notebook runs included)")
    fmt = lambda x: "nan" if math.isnan(x) else f"{x:.3f}"  # noqa: E731
    print(f"RESULT nb02_slider_to_plot_s={fmt(lab)} app_slider_to_plot_s={fmt(app)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
