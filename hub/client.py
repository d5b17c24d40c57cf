"""Drive the class hub as learners do, over HTTP: start it, log in, spawn, run code in a kernel.

Used by ``tests/hub`` (the small test in ``make test``) and ``benchmarks/classroom.py``.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import requests
import websocket

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "hub" / "jupyterhub_config.py"
PROXY = REPO / ".cache" / "hub-node" / "node_modules" / ".bin" / "configurable-http-proxy"


def free_ports(n: int = 3) -> int:
    """A port p with p .. p+n-1 all free on loopback (the proxy, its API, the hub)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + n < 65535 and all(_free(port + i) for i in range(n)):
            return port
    raise RuntimeError("no free block of ports on 127.0.0.1")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def describe(p: psutil.Process) -> str:
    """A process's command line, or its pid when it has ended meanwhile (a zombie has none to read)."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return f"pid {p.pid} (ended)"


class Hub:
    """A hub started from ``hub/jupyterhub_config.py`` in a fresh state folder, stopped with every
    process it started and every account it created (:meth:`stop`, also after a failure)."""

    def __init__(self, users, password: str, admins=(), env=None, extra_config: str = ""):
        self.users, self.admins, self.password = list(users), list(admins), password
        for name in self.users + self.admins:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            raise RuntimeError(f"a Unix account {name} exists already; the hub must create its own")
        self.state = Path(tempfile.mkdtemp(prefix="metakit-hub-"))
        self.state.chmod(0o755)  # learners run the interpreter shim from here
        self.port = free_ports(3)
        self.url = f"http://127.0.0.1:{self.port}"
        config = self.state / "config.py"
        config.write_text(f"c = get_config()\nload_subconfig({str(CONFIG)!r})\n{extra_config}\n")
        self.env = {**os.environ, **(env or {}), "METAKIT_HUB_STATE": str(self.state),
                    "METAKIT_HUB_PORT": str(self.port), "METAKIT_HUB_PASSWORD": password,
                    "METAKIT_HUB_USERS": " ".join(self.users), "METAKIT_HUB_ADMINS": " ".join(self.admins)}
        self.log = open(self.state / "hub.log", "w")
        self.proc = None

    def start(self, timeout: float = 120) -> "Hub":
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(self.state / "config.py")],
                                     cwd=self.state, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the hub exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if requests.get(self.url + "/hub/api/", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the hub did not answer in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 40) -> str:
        self.log.flush()
        return "\n".join((self.state / "hub.log").read_text(errors="replace").splitlines()[-n:])

    def processes(self) -> list[psutil.Process]:
        """The hub, everything it started (proxy, culler), and every process of its accounts."""
        uids = set()
        for name in self.users + self.admins:
            try:
                uids.add(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
        found = {}
        if self.proc is not None:
            try:
                hub = psutil.Process(self.proc.pid)
                found.update({p.pid: p for p in [hub, *hub.children(recursive=True)]})
            except psutil.NoSuchProcess:
                pass
        for p in psutil.process_iter(["uids"]):
            if p.info["uids"] and p.info["uids"].real in uids:
                found[p.pid] = p
        return list(found.values())

    def stop(self) -> list[str]:
        """Stop the hub (it stops the learners' servers), end whatever is left by its id, delete the
        accounts and their homes, remove the state folder. Returns what had to be killed."""
        killed = []
        leftovers = self.processes()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for p in leftovers:
            try:
                p.wait(5 if p.is_running() else 0)
            except psutil.TimeoutExpired:
                killed.append(describe(p))
                p.kill()
            except psutil.NoSuchProcess:
                pass
        for p in self.processes():  # anything a learner started after the first look
            killed.append(describe(p))
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(self.processes(), timeout=10)
        for name in self.users + self.admins:
            try:
                pwd.getpwnam(name)
            except KeyError:
                continue
            subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)
        self.log.close()
        shutil.rmtree(self.state, ignore_errors=True)
        return killed


class Learner:
    """One learner's browser-free session: login with the class password, then the REST API."""

    def __init__(self, hub: Hub, name: str):
        self.hub, self.name = hub, name
        self.token = None
        self.spawn_retries = 0

    def login(self, password: str) -> bool:
        """The login form, as a browser fills it; on success an API token is made for the learner."""
        s = requests.Session()
        s.get(self.hub.url + "/hub/login", timeout=30)
        r = s.post(self.hub.url + "/hub/login", allow_redirects=False, timeout=60,
                   data={"username": self.name, "password": password, "_xsrf": s.cookies.get("_xsrf")})
        if r.status_code != 302:
            return False
        s.get(self.hub.url + "/hub/token", timeout=30)  # a fresh _xsrf cookie for the logged-in session
        xsrf = [c.value for c in s.cookies if c.name == "_xsrf"][-1]
        r = s.post(f"{self.hub.url}/hub/api/users/{self.name}/tokens", json={"note": "classroom"},
                   headers={"X-XSRFToken": xsrf}, timeout=30)
        r.raise_for_status()
        self.token, self.browser = r.json()["token"], s  # the session holds the login cookie
        return True

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def hub_api(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.hub.url}/hub/api{path}", headers=self.headers, timeout=60, **kw)

    def server_api(self, method: str, path: str, user: str | None = None, **kw) -> requests.Response:
        """``/user/<user>/api<path>`` through the proxy (``user`` defaults to this learner)."""
        return requests.request(method, f"{self.hub.url}/user/{user or self.name}/api{path}",
                                headers=self.headers, timeout=60, allow_redirects=False, **kw)

    def spawn(self, timeout: float = 300) -> float:
        """Start this learner's server; seconds until the hub says it is ready. A spawn the hub
        refuses because too many are starting (429) is asked again after the wait it names, as a
        learner would; :attr:`spawn_retries` counts them."""
        t0 = time.monotonic()
        self.spawn_retries = 0
        while True:
            r = self.hub_api("POST", f"/users/{self.name}/server")
            if r.status_code != 429 or time.monotonic() - t0 > timeout:
                break
            self.spawn_retries += 1
            time.sleep(min(float(r.headers.get("Retry-After", 10)), 10))
        if r.status_code not in (201, 202):
            raise RuntimeError(f"spawn of {self.name}: {r.status_code} {r.text[:300]}")
        while time.monotonic() - t0 < timeout:
            server = self.hub_api("GET", f"/users/{self.name}").json().get("servers", {}).get("", {})
            if server.get("ready"):
                return time.monotonic() - t0
            if not server.get("pending") and not server:
                raise RuntimeError(f"the server of {self.name} failed to start:\n{self.hub.log_tail()}")
            time.sleep(0.5)
        raise RuntimeError(f"the server of {self.name} was not ready in {timeout:.0f} s")

    def kernel(self, notebook: str) -> "Kernel":
        """A kernel for ``notebook`` (a session, so it runs in the notebook's folder)."""
        r = self.server_api("POST", "/sessions", json={"path": notebook, "type": "notebook",
                                                        "kernel": {"name": "python3"}})
        r.raise_for_status()
        kernel_id = r.json()["kernel"]["id"]
        ws_url = f"ws://127.0.0.1:{self.hub.port}/user/{self.name}/api/kernels/{kernel_id}/channels"
        return Kernel(websocket.create_connection(ws_url, header=[f"Authorization: token {self.token}"],
                                                  timeout=600), kernel_id)


class Kernel:
    """The Jupyter messaging protocol over the server's websocket: execute and wait for the reply."""

    def __init__(self, ws, kernel_id: str):
        self.ws, self.id, self.session = ws, kernel_id, uuid.uuid4().hex

    def execute(self, code: str, timeout: float = 600) -> dict:
        """Run ``code``; returns ``{"status", "ename", "evalue", "stdout", "seconds"}``."""
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": "learner", "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        t0, out = time.monotonic(), {"status": None, "ename": None, "evalue": None, "stdout": ""}
        idle = False
        self.ws.settimeout(timeout)
        while out["status"] is None or not idle:
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"no reply in {timeout:.0f} s to:\n{code[:200]}")
            opcode, data = self.ws.recv_data()
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue  # binary frames carry buffers (widget state), never a reply
            msg = json.loads(data)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                out["stdout"] += content["text"]
            elif kind == "error":
                out["ename"], out["evalue"] = content["ename"], content["evalue"]
            elif kind == "execute_reply":
                out["status"] = content["status"]
                out["ename"] = out["ename"] or content.get("ename")
                out["evalue"] = out["evalue"] or content.get("evalue")
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
        out["seconds"] = time.monotonic() - t0
        return out

    def close(self):
        self.ws.close()
