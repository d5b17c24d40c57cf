"""Servers and page actions for the browser tests and benchmarks/widget_latency.py.

JupyterLab and the Voila app run as child process groups on 127.0.0.1 with a fresh token and
their own config, settings, workspace and runtime folders; Chromium is Debian's, driven by
Playwright (nothing here downloads a browser). The page helpers know the DOM of ipywidgets 8 and
of metakit's ``Explorer`` (a box of controls, then a message HTML, then the plot image).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
INSTALL_HINT = ("Chromium is needed for the browser tests: `sudo apt-get install chromium` (Debian/Ubuntu), "
                "or point $METAKIT_CHROMIUM at a Chromium or Chrome executable. `.ci/run` installs it.")
ERROR_MARKS = ["Traceback (most recent call last)", "Error displaying widget", "Failed to load model class"]
# The Explorer: a box whose direct children are the controls' box, the message and the plot.
EXPLORER = ".widget-vbox:has(> img.widget-image)"
CURRENT_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"   # the notebook in the current tab


def find_chromium() -> str | None:
    """$METAKIT_CHROMIUM when set (None if it is not an executable), else a Chromium or Chrome on
    PATH, else None."""
    if os.environ.get("METAKIT_CHROMIUM"):
        return shutil.which(os.environ["METAKIT_CHROMIUM"])
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A command run in its own process group until ``url`` answers; ``stop()`` ends the group."""

    def __init__(self, args, *, url: str, env: dict, cwd=ROOT, log: Path, timeout: float = 120):
        self.url, self.log_path = url, log
        self.log = open(log, "w+")
        self.proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{args[0]} did not answer at {url}; its log:\n{log.read_text()[-3000:]}")

    def stop(self):
        """SIGTERM to the group (the server then shuts its kernels down), SIGKILL to whatever is
        left; kernels run in sessions of their own, so they are found as descendants first."""
        children = descendants(self.proc.pid)
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        for pid in [self.proc.pid, *children]:
            try:
                os.killpg(pid, signal.SIGKILL) if pid == self.proc.pid else os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.log.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc; empty where there is none)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def jupyter_env(home: Path, quick: bool = True) -> dict:
    """Environment for a server: private Jupyter folders under ``home``, quick mode (unless
    ``quick=False``), lab settings that keep every cell in the page (no windowing) and ask for no news."""
    dirs = {name: home / name.lower() for name in ("JUPYTER_CONFIG_DIR", "JUPYTERLAB_SETTINGS_DIR",
                                                   "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_RUNTIME_DIR")}
    settings = {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
                "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}
    for plugin, values in settings.items():
        path = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **{k: str(v) for k, v in dirs.items()}, "METAKIT_QUICK": "1", "MPLBACKEND": "agg",
           "PYTHONUNBUFFERED": "1"}
    if not quick:
        del env["METAKIT_QUICK"]
    return env


def start_lab(notebook_dir: Path, home: Path) -> tuple[Server, str]:
    """JupyterLab serving ``notebook_dir``; returns the server and its base URL (token included
    as ``?token=``)."""
    port, token = free_port(), secrets.token_hex(16)
    bindir = Path(sys.executable).parent
    args = [str(bindir / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebook_dir}",
            f"--LabApp.app_settings_dir={ROOT / 'lab-settings'}"]   # the kit's defaults, as `make lab` passes them
    if os.getuid() == 0:
        args.append("--allow-root")
    base = f"http://127.0.0.1:{port}"
    server = Server(args, url=f"{base}/api/status?token={token}", env=jupyter_env(home), log=home / "lab.log")
    return server, f"{base}|{token}"


def start_app(home: Path, quick: bool = True, extra_env: dict | None = None) -> tuple[Server, str]:
    """``make app`` (Voila on notebooks/), in quick mode unless ``quick=False``; returns the server and
    ``base|token``."""
    port, token = free_port(), secrets.token_hex(16)
    # VENV points make at the environment running this, so nothing installs.
    # -o: never rebuild the install stamp from here, even when pyproject.toml is newer
    args = ["make", "-s", "-o", f"{sys.prefix}/.metakit-installed", "app", f"VENV={sys.prefix}",
            f"APP_ARGS=--no-browser --port={port} --token={token}"]
    base = f"http://127.0.0.1:{port}"
    server = Server(args, url=f"{base}/voila/tree?token={token}", env={**jupyter_env(home, quick), **(extra_env or {})},
                    log=home / "app.log")
    return server, f"{base}|{token}"


def launch_browser(playwright, chromium: str):
    args = ["--no-sandbox"] if os.getuid() == 0 else []
    return playwright.chromium.launch(executable_path=chromium, headless=True,
                                      args=[*args, "--disable-dev-shm-usage", "--disable-gpu"])


def new_page(browser, timeout_ms: float | None = None):
    """A page the size the benchmarks measure at (1400x1000); ``timeout_ms`` sets its default timeout."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    if timeout_ms is not None:
        page.set_default_timeout(timeout_ms)
    return page


class Shots:
    """Numbered screenshots of each step (the page, or one element) under artifacts/browser/<name>/."""

    def __init__(self, page, name: str):
        self.page, self.n = page, 0
        self.dir = ARTIFACTS / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)

    def __call__(self, step: str, target=None, full_page: bool = False):
        self.n += 1
        path = self.dir / f"{self.n:02d}-{step}.png"
        if target is None:
            self.page.screenshot(path=str(path), full_page=full_page)
        else:
            target.screenshot(path=str(path))
        return path


# --- JupyterLab -------------------------------------------------------------------------------

def open_notebook(page, lab: str, name: str):
    """Open ``name`` in JupyterLab and wait until its kernel has started and is idle."""
    base, token = lab.split("|")
    before = len(kernels(lab))
    # a workspace of its own, so that the tabs of an earlier test are not restored beside it
    workspace = re.sub(r"\W", "-", name)
    page.goto(f"{base}/lab/workspaces/{workspace}/tree/{name}?token={token}", wait_until="domcontentloaded")
    page.locator(f"{CURRENT_NOTEBOOK} .jp-Cell").first.wait_for(timeout=90_000)
    deadline = time.time() + 90
    while len(kernels(lab)) <= before or not kernels_idle(lab):
        assert time.time() < deadline, "no idle kernel 90 s after opening the notebook"
        time.sleep(0.5)


def menu(page, title: str, command: str):
    """Click a main-menu entry the way a person does: the menu title, then the item."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{title}$")).click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def code_prompts(page) -> list[str]:
    return page.locator(f"{CURRENT_NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_inner_texts()


RAN_ALL = """() => {
  const cells = [...document.querySelectorAll('%s .jp-CodeCell')]
    .filter(c => c.querySelector('.jp-InputArea-editor')?.textContent.trim());
  return cells.length > 0 && cells.every(c => /\\[\\d+\\]/.test(c.querySelector('.jp-InputArea-prompt').textContent));
}""" % CURRENT_NOTEBOOK


def kernels(lab: str, attempts: int = 10) -> list[dict]:
    """The server's running kernels. Listing them while one is starting can answer 500 for a
    moment (seen in CI right after a notebook opened), so a server error is asked again, up to
    ``attempts`` times half a second apart, before it fails the test."""
    base, token = lab.split("|")
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == attempts - 1:
                raise
            time.sleep(0.5)


def kernels_idle(lab: str) -> bool:
    found = kernels(lab)
    return bool(found) and all(k["execution_state"] == "idle" for k in found)


def run_all(page, lab: str, timeout: float = 600) -> list[str]:
    """Clear every output, run all cells from the Run menu, wait until every non-empty code cell
    shows an execution count and the kernel is idle. Returns the execution prompts."""
    menu(page, "Edit", "editmenu:clear-all")
    page.wait_for_function(f"() => [...document.querySelectorAll('{CURRENT_NOTEBOOK} .jp-CodeCell "
                           ".jp-InputArea-prompt')]"
                           ".every(p => !/\\d/.test(p.textContent))", timeout=30_000)
    menu(page, "Run", "runmenu:run-all")
    deadline = time.time() + timeout
    page.wait_for_function(RAN_ALL, timeout=timeout * 1000, polling=500)
    while not kernels_idle(lab):
        assert time.time() < deadline, "the kernel stayed busy"
        time.sleep(0.5)
    return code_prompts(page)


def errors_shown(page, scope: str = "body") -> list[str]:
    """Output texts in ``scope`` that show an error (a traceback, a widget that failed to render)."""
    texts = page.locator(f"{scope} .jp-OutputArea-output").all_inner_texts()
    return [t[:2000] for t in texts if any(mark in t for mark in ERROR_MARKS)]


# --- widgets ----------------------------------------------------------------------------------

def control(explorer, description: str):
    """The ipywidgets slider (or other control) labelled ``description`` inside ``explorer``."""
    return explorer.locator(".widget-inline-hbox", has=explorer.page.locator(
        "label.widget-label", has_text=re.compile(f"^{re.escape(description)}$"))).first


def image_src(explorer) -> str:
    return explorer.locator(":scope > img.widget-image").get_attribute("src") or ""


def message(explorer) -> str:
    return explorer.locator(":scope > .widget-html").inner_text()


def wait_message(explorer, contains: str = "", timeout: float = 30) -> str:
    """Wait until the message area shows ``contains`` (with "", until it is empty); returns its
    text. The plot and the message are two widgets, updated one after the other."""
    area = explorer.locator(":scope > .widget-html")
    area.page.wait_for_function("([e, s]) => s ? e.textContent.includes(s) : !e.textContent.trim()",
                                arg=[area.element_handle(), contains], timeout=timeout * 1000)
    return area.inner_text()


def wait_src_change(explorer, old: str, timeout: float = 30) -> float:
    """Wait until the plot's src differs from ``old`` and the image has loaded; returns the
    seconds waited."""
    start = time.perf_counter()
    explorer.locator(":scope > img.widget-image").evaluate(
        "(img, old) => new Promise((ok, fail) => {"
        "  const done = () => img.src !== old && img.complete;"
        "  if (done()) return ok();"
        "  const t = setTimeout(() => fail(new Error('plot not redrawn')), %d);"
        "  const check = () => { if (done()) { clearTimeout(t); ok(); } else requestAnimationFrame(check); };"
        "  check(); })" % int(timeout * 1000), old)
    return time.perf_counter() - start


def press_on_slider(explorer, description: str, key: str):
    """Focus the slider's handle and press ``key`` (ArrowRight moves it one step)."""
    handle = control(explorer, description).locator(".noUi-handle")
    handle.focus()
    handle.press(key)


def slider_value(explorer, description: str) -> str:
    return control(explorer, description).locator(".widget-readout").inner_text().strip()


def type_in_readout(explorer, description: str, value):
    """Type a value in the slider's readout box, as a person does to set an exact value."""
    readout = control(explorer, description).locator(".widget-readout")
    readout.fill(str(value))
    readout.press("Enter")


def slider_latency(explorer, description: str, keys=("ArrowRight", "ArrowLeft"), repeats: int = 3) -> list[float]:
    """Seconds from a key press on the slider to the redrawn plot, ``len(keys) * repeats`` times."""
    times = []
    for _ in range(repeats):
        for key in keys:
            old = image_src(explorer)
            start = time.perf_counter()
            press_on_slider(explorer, description, key)
            wait_src_change(explorer, old)
            times.append(time.perf_counter() - start)
    return times


def not_possible_then_back(explorer, description: str, bad, fine, shots, *expected: str):
    """Type an impossible value in a slider's readout: the message says "Not possible" (and each of
    ``expected``) while the last good plot stays; then a possible value redraws and clears it."""
    good = image_src(explorer)
    type_in_readout(explorer, description, bad)
    wait_message(explorer, "Not possible")
    for text in expected:
        assert text in message(explorer), (text, message(explorer))
    assert image_src(explorer) == good, "the last good plot stays"
    shots("not-possible", explorer)

    type_in_readout(explorer, description, fine)
    wait_src_change(explorer, good)
    wait_message(explorer, "")
    shots("possible-again", explorer)
