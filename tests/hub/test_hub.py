"""The class hub (``make hub``) with three learners: each runs notebook 01 (quick mode) in their own
server, and none can reach another's server, files or the hub's admin API.

Needs root (the hub creates a Unix account per learner, as CI can), jupyterhub and
configurable-http-proxy (``make test`` installs both); otherwise it skips and says why, or fails
where tests/helpers.required says so (CI, or METAKIT_HUB_REQUIRED=1).
"""
import importlib.util
import ipaddress
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "01_few_shot_tasks.ipynb"
PASSWORD = "class-password-for-the-test"


def _client():
    spec = importlib.util.spec_from_file_location("metakit_hub_client", REPO / "hub" / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _why_not() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "the hub creates Unix accounts: run as root (CI does)"
    if not shutil.which("adduser") or not shutil.which("userdel"):
        return "adduser/userdel not found"
    if any(not os.stat(p).st_mode & 0o001 for p in [REPO, *REPO.parents]):
        return f"learner accounts cannot read {REPO}: a folder above it is private (clone it elsewhere)"
    if importlib.util.find_spec("jupyterhub") is None:
        return "jupyterhub is not installed (make test installs it)"
    if not (REPO / ".cache/hub-node/node_modules/.bin/configurable-http-proxy").exists():
        return "configurable-http-proxy is not installed (make test installs it with npm)"
    return None


@pytest.fixture(scope="module")
def classroom():
    """A hub, three learners logged in with the class password, their servers started."""
    import metakit
    from helpers import skip_or_fail

    if not all(os.stat(p).st_mode & 0o001 for p in [REPO, *REPO.parents]):
        # where the checkout lives is the machine's choice, not a missing install: say so, even in CI
        pytest.skip(f"learner accounts cannot read {REPO}: a folder above it is private; clone the kit "
                    "somewhere other users can read (e.g. /opt or /srv) to run the hub test")
    if _why_not():  # skips on a developer's machine, fails in CI
        skip_or_fail(_why_not(), "METAKIT_HUB_REQUIRED")

    metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")  # the shared cache, built by root
    client = _client()
    tag = os.getpid() % 100000
    names = [f"mkt{tag}{c}" for c in "abc"]
    instructor = f"mkt{tag}i"
    hub = client.Hub(names, PASSWORD, admins=[instructor], env={"METAKIT_QUICK": "1", "MPLBACKEND": "agg"})
    t0 = time.monotonic()
    try:
        hub.start()
        learners = [client.Learner(hub, n) for n in names]
        teacher = client.Learner(hub, instructor)
        assert not learners[0].login("not the class password"), "a wrong password logged in"
        for learner in learners + [teacher]:
            assert learner.login(PASSWORD), f"{learner.name} could not log in:\n{hub.log_tail()}"
        with ThreadPoolExecutor(len(learners) + 1) as pool:
            spawn_s = list(pool.map(lambda learner: learner.spawn(), learners + [teacher]))
        yield hub, learners, {"spawn_s": spawn_s, "start_s": time.monotonic() - t0, "instructor": teacher}
    finally:
        alive = hub.processes()
        killed = hub.stop()
        # every process the test started is gone, and so is every account it made
        import pwd
        for name in names + [instructor]:
            with pytest.raises(KeyError):
                pwd.getpwnam(name)
        assert not [p for p in alive if p.is_running() and p.status() != "zombie"], "processes survived"
        print(f"hub test: {time.monotonic() - t0:.0f} s from start to clean-up; killed after the hub "
              f"stopped: {killed or 'nothing'}")


def test_each_learner_runs_notebook_01_in_their_own_server(classroom):
    hub, learners, times = classroom

    def run(learner):
        listing = learner.server_api("GET", "/contents").json()
        assert NOTEBOOK in [c["name"] for c in listing["content"]]
        nb = nbformat.from_dict(learner.server_api("GET", f"/contents/{NOTEBOOK}").json()["content"])
        source = "\n".join(c.source for c in nb.cells)
        assert "### BEGIN SOLUTION" not in source, "a learner got the instructor version"
        kernel = learner.kernel(NOTEBOOK)
        try:
            who = kernel.execute("import getpass, os, metakit\n"
                                 "from ipykernel.kernelapp import IPKernelApp\n"
                                 "print(getpass.getuser(), os.environ['OMP_NUM_THREADS'], metakit.quick_mode(),\n"
                                 "      IPKernelApp.instance().transport)")
            # ipc: the kernel's sockets are files in the learner's own folder, not ports any account could try
            assert who["stdout"].split() == [learner.name, "1", "True", "ipc"], who
            for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
                out = kernel.execute(cell.source)
                assert out["status"] == "ok", f"{learner.name}, cell {i}: {out['ename']}: {out['evalue']}"
        finally:
            kernel.close()
        return True

    with ThreadPoolExecutor(len(learners)) as pool:
        assert all(pool.map(run, learners))
    print("spawn seconds", [round(s, 1) for s in times["spawn_s"]])


def test_the_instructor_gets_the_instructor_version(classroom):
    _, _, info = classroom
    r = info["instructor"].server_api("GET", f"/contents/{NOTEBOOK}")
    assert r.status_code == 200
    assert "### BEGIN SOLUTION" in "\n".join(c.source for c in nbformat.from_dict(r.json()["content"]).cells)


def test_a_learners_token_cannot_open_another_learners_server(classroom):
    _, (ada, alan, _), _ = classroom
    assert ada.server_api("GET", "/contents").status_code == 200
    assert ada.server_api("GET", "/contents", user=alan.name).status_code == 403
    assert ada.server_api("POST", "/kernels", user=alan.name).status_code == 403


def test_a_learners_login_cookie_cannot_open_another_learners_server(classroom):
    hub, (ada, alan, _), _ = classroom
    # the browser path: the server sends the cookie through the hub's OAuth, which refuses
    own = ada.browser.get(f"{hub.url}/user/{ada.name}/lab", timeout=60)
    assert own.status_code == 200, own.url
    other = ada.browser.get(f"{hub.url}/user/{alan.name}/lab", timeout=60)
    assert other.status_code == 403, (other.status_code, other.url)


def test_a_learners_kernel_cannot_read_or_change_another_learners_files(classroom):
    _, (ada, alan, _), _ = classroom
    kernel = ada.kernel(NOTEBOOK)
    try:
        for code in [f"open(os.path.expanduser('~{alan.name}/metakit/{NOTEBOOK}')).read()",
                     f"os.listdir(os.path.expanduser('~{alan.name}'))",
                     f"open(os.path.expanduser('~{alan.name}/metakit/mine.txt'), 'w')"]:
            out = kernel.execute("import os\n" + code)
            assert out["ename"] == "PermissionError", (code, out)
        # the glyph cache every learner shares is read-only to them
        out = kernel.execute("import os, metakit.glyphs as g\n"
                             "open(os.path.join(g.cache_dir(), 'glyphs-v2-seed0.npz'), 'ab')")
        assert out["ename"] == "PermissionError", out
    finally:
        kernel.close()


def test_a_learner_cannot_use_the_admin_api(classroom):
    _, (ada, alan, _), _ = classroom
    assert ada.hub_api("GET", "/users").status_code == 403
    assert ada.hub_api("POST", "/users/intruder").status_code == 403
    assert ada.hub_api("DELETE", f"/users/{alan.name}/server").status_code in (403, 404)
    assert ada.hub_api("POST", f"/users/{alan.name}/tokens", json={}).status_code in (403, 404)
    assert ada.hub_api("PATCH", f"/users/{ada.name}", json={"admin": True}).status_code == 403
    assert alan.hub_api("GET", f"/users/{alan.name}").json()["servers"][""]["ready"], "alan's server was stopped"


def test_the_hub_listens_only_on_loopback(classroom):
    hub, _, _ = classroom
    listening = [c.laddr for p in hub.processes() for c in _connections(p) if c.status == "LISTEN"]
    assert listening, "found no listening socket of the hub"
    assert all(ipaddress.ip_address(addr.ip).is_loopback for addr in listening), listening
    assert hub.port in [addr.port for addr in listening]


def _connections(process):
    import psutil
    try:
        return process.net_connections(kind="inet")
    except psutil.Error:
        return []
