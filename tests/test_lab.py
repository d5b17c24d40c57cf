"""`make lab` starts a JupyterLab server that answers on localhost and lists the notebooks."""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform == "win32", reason="uses make and process groups")
def test_make_lab_serves_the_notebooks(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    args = f"--no-browser --port={port} --ServerApp.token={token} --ServerApp.ip=127.0.0.1"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    # VENV points make at the environment running this test, so the stamp is fresh and nothing installs.
    venv = Path(sys.prefix)
    log = open(tmp_path / "lab.log", "w+")
    proc = subprocess.Popen(["make", "-s", "lab", f"VENV={venv}", f"LAB_ARGS={args}"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/api/contents?token={token}"
        deadline, listing = time.time() + 90, None
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    listing = json.load(r)
                break
            except OSError:
                time.sleep(1)
        log.seek(0)
        assert listing is not None, f"no answer on port {port}; make lab printed:\n{log.read()[-3000:]}"
        names = {item["name"] for item in listing["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
        assert any(n.endswith(".ipynb") for n in names)
        # the kit's defaults: saved widget state restored, no news prompt
        for plugin, key, value in [("@jupyter-widgets/jupyterlab-manager:plugin", "saveState", True),
                                   ("@jupyterlab/apputils-extension:notification", "fetchNews", "false")]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab/api/settings/{plugin}?token={token}",
                                        timeout=10) as r:
                assert json.load(r)["schema"]["properties"][key]["default"] == value, (plugin, key)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
