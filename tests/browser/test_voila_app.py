"""`make app` serves the notebooks with Voila: outputs and controls, no code. Checked in headless
Chromium on notebook 02: the page renders with its plots, and a slider redraws the adaptation plot.
Screenshots: artifacts/browser/app-*/."""

import os
import subprocess
import sys

import drive


def test_app_lists_the_notebooks(page, app):
    base, token = app.split("|")
    page.goto(f"{base}/voila/tree?token={token}")
    shots = drive.Shots(page, "app-tree")
    for name in ("01_few_shot_tasks.ipynb", "02_maml_derivation.ipynb"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    shots("tree")


def test_app_renders_notebook_02_and_its_slider_redraws(page, app, record_latency):
    base, token = app.split("|")
    # Voila runs the whole notebook (quick mode) before it sends the page
    page.goto(f"{base}/voila/render/02_maml_derivation.ipynb?token={token}", timeout=300_000)
    shots = drive.Shots(page, "app-02")
    explorer = page.locator(drive.EXPLORER)
    explorer.locator(":scope > img.widget-image").wait_for(timeout=120_000)
    assert explorer.count() == 1
    page.locator(".jp-OutputArea-output img").first.wait_for()   # the notebook's static plots
    shots("rendered", full_page=True)
    text = page.locator("body").inner_text()
    assert "widgets.Explorer(" not in text and "import torch" not in text, "the app shows code"
    assert "MSE on new sines" in text                             # a printed output of the notebook
    assert not drive.errors_shown(page)
    assert drive.image_src(explorer) and drive.message(explorer).strip() == ""
    explorer.scroll_into_view_if_needed()
    shots("widgets", explorer)

    times = drive.slider_latency(explorer, "k_shot")
    record_latency("nb02 in the Voila app (k_shot)", times)
    print(f"app slider to plot: {sorted(times)}")
    old = drive.image_src(explorer)
    drive.press_on_slider(explorer, "amplitude", "PageDown")
    drive.wait_src_change(explorer, old)
    shots("amplitude-moved", explorer)

    drive.type_in_readout(explorer, "inner_lr", 10)
    drive.wait_message(explorer, "Not possible")
    shots("not-possible", explorer)


def test_the_app_open_benchmark_opens_notebook_02_in_full_mode(browser):
    """benchmarks/app_open.py --quick: notebook 02 in full mode (its checkpoints, 600 test tasks), timed,
    with every line the committed notebook printed found in the page."""
    env = {k: v for k, v in os.environ.items() if k != "METAKIT_QUICK"}
    done = subprocess.run([sys.executable, "benchmarks/app_open.py", "--quick", "--limit", "300"], cwd=drive.ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("02_maml_derivation.ipynb"))
    same, total = map(int, line.split("same lines ")[1].split()[0].split("/"))
    timed = int(line.split("same lines ")[1].split()[1].strip("("))   # lines that print a redraw time
    assert same + timed == total and total > 5 and "ERRORS" not in line, line
    result = dict(kv.split("=") for kv in done.stdout.splitlines()[-1].split()[1:])
    assert float(result["nb02_s"]) > 0 and result["under_60s"].endswith("/1")
