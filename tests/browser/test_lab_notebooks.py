"""Notebooks 01 and 02 in JupyterLab, driven in headless Chromium the way a learner uses them: run
all cells from the Run menu, see no error, move a slider and watch the plot change, ask for an
impossible setting and read the friendly message. Screenshots: artifacts/browser/lab-01/, lab-02/."""

import drive


def run_notebook(page, lab, name, shots):
    drive.open_notebook(page, lab, name)
    shots("opened")
    prompts = drive.run_all(page, lab)
    shots("ran-all")
    counts = [int(p.strip("[]: ")) for p in prompts if p.strip("[]: ").isdigit()]
    assert counts == list(range(1, len(counts) + 1)), f"cells ran out of order: {prompts}"
    assert not drive.errors_shown(page, drive.CURRENT_NOTEBOOK), drive.errors_shown(page, drive.CURRENT_NOTEBOOK)
    explorer = page.locator(f"{drive.CURRENT_NOTEBOOK} {drive.EXPLORER}")
    assert explorer.count() == 1, f"{explorer.count()} Explorer widgets found"
    explorer.scroll_into_view_if_needed()
    explorer.locator(":scope > img.widget-image").wait_for()
    assert drive.image_src(explorer), "the widget shows no plot"
    assert drive.message(explorer).strip() == ""
    shots("widgets", explorer)
    return explorer


def test_01_episode_explorer(page, lab):
    shots = drive.Shots(page, "lab-01")
    explorer = run_notebook(page, lab, "01_few_shot_tasks.ipynb", shots)
    for name in ("n_way", "k_shot", "n_query"):
        assert drive.control(explorer, name).count() == 1, f"no {name} slider"

    old = drive.image_src(explorer)
    drive.press_on_slider(explorer, "k_shot", "ArrowRight")
    drive.wait_src_change(explorer, old)
    assert drive.slider_value(explorer, "k_shot") == "2"
    shots("k_shot-moved", explorer)

    old = drive.image_src(explorer)
    drive.type_in_readout(explorer, "k_shot", 15)          # 15 + 3 queries of 20 drawings: possible
    drive.wait_src_change(explorer, old)
    # n_query 10: 15 + 10 > 20 drawings per character; then 4, not 3 (the same plot would not be sent again)
    drive.not_possible_then_back(explorer, "n_query", 10, 4, shots, "Choose")
    assert not drive.errors_shown(page, drive.CURRENT_NOTEBOOK)


def test_02_adaptation_explorer(page, lab, record_latency):
    shots = drive.Shots(page, "lab-02")
    explorer = run_notebook(page, lab, "02_maml_derivation.ipynb", shots)
    for name in ("k_shot", "inner_lr", "inner_steps", "amplitude", "phase"):
        assert drive.control(explorer, name).count() == 1, f"no {name} slider"

    times = drive.slider_latency(explorer, "k_shot")
    record_latency("nb02 in JupyterLab (k_shot)", times)
    assert drive.slider_value(explorer, "k_shot") == "5"
    print(f"nb02 slider to plot: {sorted(times)}")
    old = drive.image_src(explorer)
    drive.press_on_slider(explorer, "inner_steps", "ArrowRight")
    drive.wait_src_change(explorer, old)
    shots("inner_steps-moved", explorer)

    # SGD at inner_lr 10 diverges; then 0.03, not 0.01 (the same plot would not be sent again)
    drive.not_possible_then_back(explorer, "inner_lr", 10, 0.03, shots, "diverged", "Lower inner_lr")
    assert not drive.errors_shown(page, drive.CURRENT_NOTEBOOK)
