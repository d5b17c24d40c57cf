"""A committed notebook opened in JupyterLab without running anything, as a learner first sees it
(`make lab`'s settings; the notebook is not trusted on a new machine, so JupyterLab shows only its
safe outputs): no output is a widget's text fallback (``VBox(children=...``), and where the
episode explorer stands there is a figure. Screenshot: artifacts/browser/lab-static/."""

import re
import shutil

import drive
import pytest

NAME = "01_few_shot_tasks.ipynb"


@pytest.fixture(scope="module")
def fresh_lab(tmp_path_factory):
    """JupyterLab on an untouched copy of the committed notebook (the other lab tests run theirs)."""
    home = tmp_path_factory.mktemp("lab-static")
    notebooks = home / "notebooks"
    notebooks.mkdir()
    shutil.copy(drive.ROOT / "notebooks" / NAME, notebooks / NAME)
    server, url = drive.start_lab(notebooks, home)
    yield url
    server.stop()


def test_committed_notebook_shows_figures_where_its_widgets_stand(page, fresh_lab):
    shots = drive.Shots(page, "lab-static")
    drive.open_notebook(page, fresh_lab, NAME)
    outputs = page.locator(f"{drive.CURRENT_NOTEBOOK} .jp-OutputArea-output")
    explorer_cell = page.locator(f"{drive.CURRENT_NOTEBOOK} .jp-Cell", has_text="episode_explorer(datasets)")
    # JupyterLab renders cells as they scroll into view: scroll down, reading every output on the way
    page.locator(f"{drive.CURRENT_NOTEBOOK} .jp-Cell").first.hover()
    texts = []
    for _ in range(100):
        texts += outputs.all_inner_texts()
        if explorer_cell.count():
            break
        page.mouse.wheel(0, 500)
        page.wait_for_timeout(250)
    explorer_cell.first.scroll_into_view_if_needed()
    figure = explorer_cell.first.locator(".jp-OutputArea-output img").first
    figure.wait_for()
    assert (figure.get_attribute("src") or "").startswith(("data:image/png", "blob:")), "no figure for the explorer"
    shots("explorer", explorer_cell.first)
    texts += outputs.all_inner_texts()
    fallbacks = [t[:200] for t in texts if re.search(r"\b[VH]Box\(", t)]
    assert not fallbacks, f"widgets shown as text: {fallbacks}"
    assert not drive.errors_shown(page, drive.CURRENT_NOTEBOOK), drive.errors_shown(page, drive.CURRENT_NOTEBOOK)
    assert page.get_by_text("official Jupyter news").count() == 0, "the news prompt is shown"
