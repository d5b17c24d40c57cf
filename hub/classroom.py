"""The pieces of the class hub that are code rather than settings (``hub/jupyterhub_config.py``).

A shared class password over real Unix accounts, the notebooks each learner gets on first spawn,
and a Python interpreter every learner account can run.
"""
from __future__ import annotations

import hmac
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from jupyterhub.auth import LocalAuthenticator
from traitlets import Unicode

REPO = Path(__file__).resolve().parents[1]


class ClassPasswordAuthenticator(LocalAuthenticator):
    """Everyone on the roster logs in with one shared class password; each name is a Unix account,
    created by the hub when ``create_system_users`` is on.

    For a class on one machine only. For real use take NativeAuthenticator (learners sign up, the
    instructor approves), an OAuth authenticator (GitHub, Google, your university's) or LTI 1.3
    from your LMS (``ltiauthenticator``); the rest of this configuration stays the same.
    """

    password = Unicode("", config=True, help="The shared class password; empty refuses every login.")

    async def authenticate(self, handler, data):
        if not self.password or not data:
            return None
        given = str(data.get("password", "")).encode()
        if not hmac.compare_digest(given, self.password.encode()):
            return None
        return data.get("username", "").strip().lower() or None


def world_runnable(path) -> bool:
    """Whether a user without any group in common with the owner can execute ``path``: every
    folder above it searchable by others, the file itself executable by others."""
    path = Path(os.path.realpath(path))
    if not os.stat(path).st_mode & stat.S_IXOTH:
        return False
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in path.parents)


def readable_by_learners(path) -> bool:
    """Whether every folder above ``path`` (and ``path`` itself) lets other users through."""
    path = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def learner_python(state_dir) -> str:
    """An interpreter with this environment's packages that learner accounts can run.

    This environment's own Python when others may run it. Otherwise (a venv made from a Python in
    root's home, mode 700, as pyenv does) a small venv in ``state_dir`` on a system Python of the
    same version whose site-packages adds this environment's: same ABI, no second install.
    """
    here = Path(sys.prefix)
    base = Path(os.path.realpath(sys.executable))
    site = here / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    if world_runnable(base) and all(os.stat(p).st_mode & stat.S_IXOTH for p in site.parents):
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = next((p for p in (f"/usr/bin/{version}", f"/usr/local/bin/{version}")
                   if os.path.exists(p) and world_runnable(p)), None)
    if system is None:
        raise SystemExit(f"Learner accounts cannot run {base} (a folder above it is private) and there "
                         f"is no /usr/bin/{version}. Install the environment where everyone can read "
                         "it (e.g. /opt/metakit) and run `make hub` from there.")
    shim = Path(state_dir) / "learner-python"
    python = shim / "bin" / "python"
    if not python.exists():
        subprocess.run([system, "-m", "venv", "--without-pip", str(shim)], check=True)
        (shim / "lib" / version / "site-packages" / "metakit-env.pth").write_text(
            f"import site; site.addsitedir({str(site)!r})\n")
    for p in [shim, *shim.rglob("*")]:
        p.chmod(p.stat().st_mode | stat.S_IROTH | (stat.S_IXOTH if p.is_dir() or os.access(p, os.X_OK) else 0))
    return str(python)


def student_notebooks(notebooks, out_dir) -> Path:
    """The student versions (``python -m metakit.student``) of ``notebooks`` in ``out_dir``,
    written again when a notebook is newer than its student copy."""
    out_dir = Path(out_dir)
    stale = [str(nb) for nb in notebooks
             if not (out_dir / Path(nb).name).exists()
             or (out_dir / Path(nb).name).stat().st_mtime < Path(nb).stat().st_mtime]
    if stale:
        subprocess.run([sys.executable, "-m", "metakit.student", str(out_dir), *stale], check=True,
                       cwd=REPO, stdout=subprocess.DEVNULL)
    return out_dir


def give_notebooks(username: str, source, folder: str = "metakit") -> Path:
    """Copy the ``.ipynb`` files of ``source`` into ``~username/folder`` once (a learner's edits are
    never overwritten), owned by the learner, with the home folder closed to others."""
    account = pwd.getpwnam(username)
    home = Path(account.pw_dir)
    home.chmod(0o700)  # the file isolation the hub relies on, whatever adduser's default
    dest = home / folder
    if not dest.exists():
        dest.mkdir()
        for nb in sorted(Path(source).glob("*.ipynb")):
            shutil.copy2(nb, dest / nb.name)
        for p in [dest, *dest.iterdir()]:
            os.chown(p, account.pw_uid, account.pw_gid)
    return dest
