"""Fixtures of the browser suite: Chromium (Playwright driving Debian's executable), JupyterLab on a
temporary copy of the notebooks, and the Voila app of `make app`. Every server runs in its own
process group and is stopped by a finalizer, whether the tests pass or fail; the fixtures are
per module, so nothing is left running while the rest of `make test` runs.

Without Chromium the suite skips with the install command; in CI (``CI=true``) or with
``METAKIT_BROWSER_REQUIRED=1`` (both set by `.ci/run`) it fails instead, so CI never skips it.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys

import drive
import pytest
from helpers import skip_or_fail

LATENCIES: dict[str, list[float]] = {}   # name -> seconds, printed at the end of the run


def unavailable(reason: str):
    skip_or_fail(reason, "METAKIT_BROWSER_REQUIRED")


@pytest.fixture(scope="module")
def browser():
    if sys.platform == "win32":
        pytest.skip("the browser suite uses POSIX process groups")
    chromium = drive.find_chromium()
    if chromium is None:
        unavailable(drive.INSTALL_HINT)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is missing: `pip install playwright` (it is in pyproject.toml; do not run "
                    "`playwright install`, the suite uses the system's Chromium)")
    with sync_playwright() as p:
        browser = drive.launch_browser(p, chromium)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    console = []
    page.on("pageerror", lambda e: console.append(f"page error: {e}"))
    yield page
    # the last state of a failing test, beside its step screenshots
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        target = drive.ARTIFACTS / request.node.name
        target.mkdir(parents=True, exist_ok=True)
        try:
            page.screenshot(path=str(target / "failed.png"), full_page=True)
        except Exception:  # the page may be gone; the finalizer must still close the context
            pass
        (target / "console.txt").write_text("\n".join(console))
    context.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a temporary copy of notebooks 01 and 02 (the browser autosaves; the committed
    notebooks stay as they are). Yields ``base_url|token``."""
    home = tmp_path_factory.mktemp("lab")
    notebooks = home / "notebooks"
    notebooks.mkdir()
    for name in ("01_few_shot_tasks.ipynb", "02_maml_derivation.ipynb"):
        shutil.copy(drive.ROOT / "notebooks" / name, notebooks / name)
    server, url = drive.start_lab(notebooks, home)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """`make app` (Voila) in quick mode. Yields ``base_url|token``."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    server, url = drive.start_app(tmp_path_factory.mktemp("app"))
    yield url
    server.stop()


@pytest.fixture
def record_latency():
    def record(name: str, seconds: list[float]):
        LATENCIES[name] = seconds
    return record


def pytest_terminal_summary(terminalreporter):
    if not LATENCIES:
        return
    terminalreporter.section("widget latency: slider change to redrawn plot (target under 1 s)")
    for name, times in LATENCIES.items():
        terminalreporter.write_line(f"{name}: median {statistics.median(times):.3f} s, max {max(times):.3f} s "
                                    f"over {len(times)} changes")
    drive.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (drive.ARTIFACTS / "latency.json").write_text(json.dumps(LATENCIES, indent=1))
