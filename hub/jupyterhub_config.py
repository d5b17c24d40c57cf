# A class on one machine: `make hub` (README, "A class on one hub"). Run as root, since the hub
# creates a Unix account per learner and starts each learner's server as that account.
#
# Settings from the environment (make hub passes them on):
#   METAKIT_HUB_PASSWORD  the shared class password (required; no password, no login)
#   METAKIT_HUB_USERS     the roster, names separated by spaces or commas (learners)
#   METAKIT_HUB_ADMINS    instructors: admin rights, and the instructor version of the notebooks
#   METAKIT_HUB_IP        where the hub listens (default 127.0.0.1: this machine only)
#   METAKIT_HUB_PORT      its port (default 8000; the proxy's API and the hub take the next two)
#   METAKIT_HUB_STATE     the hub's database, secrets and notebook copies (default .cache/hub/)
#   METAKIT_HUB_THREADS   OMP_NUM_THREADS per learner (default 1)
#   METAKIT_HUB_CULL_S    idle seconds before the culler stops a learner's server (default 3600)
#   METAKIT_HUB_SPAWNS    servers starting at once (default 30); the hub refuses more (429, "try again")
#   METAKIT_DATA          the one read-only glyph cache every learner shares (default data/)
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import classroom  # noqa: E402

c = get_config()  # noqa: F821 (jupyterhub defines it)
REPO = classroom.REPO
if not classroom.readable_by_learners(REPO):
    raise SystemExit(f"Learner accounts cannot read {REPO} (a folder above it is private, e.g. /root): "
                     "clone metakit where everyone can read it (e.g. /srv/metakit) and run make hub there.")
STATE = Path(os.environ.get("METAKIT_HUB_STATE") or REPO / ".cache" / "hub")
STATE.mkdir(parents=True, exist_ok=True)
SECRETS = STATE / "secrets"
SECRETS.mkdir(mode=0o700, exist_ok=True)
SECRETS.chmod(0o700)


def names(var):
    return {n.strip().lower() for n in os.environ.get(var, "").replace(",", " ").split() if n.strip()}


# -- network: loopback unless told otherwise; the hub's own API and the proxy's API stay on loopback.
PORT = int(os.environ.get("METAKIT_HUB_PORT", "8000"))
c.JupyterHub.ip = os.environ.get("METAKIT_HUB_IP", "127.0.0.1")
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = PORT + 2
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PORT + 1}"
c.ConfigurableHTTPProxy.command = [str(REPO / ".cache" / "hub-node" / "node_modules" / ".bin" /
                                       "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(SECRETS / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{SECRETS / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(SECRETS / "cookie_secret")
c.JupyterHub.pid_file = str(SECRETS / "jupyterhub.pid")

# -- who: a roster, real Unix accounts made by the hub, one shared class password.
c.JupyterHub.authenticator_class = classroom.ClassPasswordAuthenticator
c.ClassPasswordAuthenticator.password = os.environ.get("METAKIT_HUB_PASSWORD", "")
if not c.ClassPasswordAuthenticator.password:
    raise SystemExit("Set METAKIT_HUB_PASSWORD, the class password, e.g. "
                     "make hub METAKIT_HUB_PASSWORD=... METAKIT_HUB_USERS=\"ada alan\"")
c.LocalAuthenticator.create_system_users = True
ADMINS = names("METAKIT_HUB_ADMINS")
c.Authenticator.allowed_users = names("METAKIT_HUB_USERS") | ADMINS
c.Authenticator.admin_users = ADMINS

# -- each learner's server: their own process, as their own account, in their own home.
c.JupyterHub.spawner_class = "localprocess"
LEARNER_PYTHON = classroom.learner_python(STATE)
c.Spawner.cmd = [LEARNER_PYTHON, "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~/metakit"
c.Spawner.default_url = "/lab"
# Two cores and twenty learners importing torch at once: a server may take a minute to answer.
c.Spawner.start_timeout = 300
c.Spawner.http_timeout = 240
# The hub does not queue spawns over this limit: it answers 429 and the learner must try again. A
# whole class logging in at once should not see that, so the limit is a class, not a core count: 20
# servers starting together on 2 cores took 40 to 45 s each here (benchmarks/classroom.py).
c.JupyterHub.concurrent_spawn_limit = int(os.environ.get("METAKIT_HUB_SPAWNS", "30"))
DATA = os.environ.get("METAKIT_DATA") or str(REPO / "data")
c.Spawner.environment = {
    "OMP_NUM_THREADS": os.environ.get("METAKIT_HUB_THREADS", "1"),
    "MKL_NUM_THREADS": os.environ.get("METAKIT_HUB_THREADS", "1"),
    "METAKIT_DATA": DATA,  # glyph cache, built once by `make hub`, read-only to learners
}
if LEARNER_PYTHON != sys.executable:  # the shim's prefix has no Jupyter config or Lab assets of its own
    c.Spawner.environment.update({"JUPYTER_CONFIG_PATH": f"{sys.prefix}/etc/jupyter",
                                  "JUPYTER_PATH": f"{sys.prefix}/share/jupyter",
                                  "JUPYTERLAB_DIR": f"{sys.prefix}/share/jupyter/lab"})
# Kernels talk to their server over Unix sockets in the learner's own runtime folder, not TCP ports
# on 127.0.0.1: twenty servers starting kernels at once otherwise race for the same free port (a
# kernel then dies with "Address already in use"), and no other account can reach the sockets.
c.Spawner.args = ["--KernelManager.transport=ipc"]
c.Spawner.env_keep = ["PATH", "PYTHONPATH", "LANG", "LC_ALL", "METAKIT_QUICK", "MPLBACKEND"]
# LocalProcessSpawner cannot enforce these (it only passes MEM_LIMIT to the server); systemdspawner
# (one machine, cgroups) or KubeSpawner (Zero to JupyterHub) does.
c.Spawner.mem_limit = "2G"
c.Spawner.cpu_limit = 1

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT = STATE / "student"
INSTRUCTOR = REPO / "notebooks"
if NOTEBOOKS:
    classroom.student_notebooks(NOTEBOOKS, STUDENT)


def first_spawn(spawner):
    """The learner's own copy of the notebooks: the student version, or the instructor version
    for admins; made once, never overwritten."""
    source = INSTRUCTOR if spawner.user.admin else STUDENT
    classroom.give_notebooks(spawner.user.name, source)


c.Spawner.pre_spawn_hook = first_spawn

# -- idle learners give their CPU and memory back.
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={os.environ.get('METAKIT_HUB_CULL_S', '3600')}", "--cull-every=300"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
c.JupyterHub.cleanup_servers = True  # stopping the hub stops every learner's server
