"""The three install paths ask for the same packages and versions: pip (pyproject.toml, bounded by
tools/constraints.txt), conda (environment.yml) and Binder (binder/environment.yml and postBuild);
and the extras give each make target what it runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}     # conda's name -> pip's name
NOT_PACKAGES = {"python", "pip", "c-compiler"}   # the interpreter and the tools that build learn2learn
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def split(spec: str) -> tuple[str, frozenset]:
    """``"faker>=30"`` -> ``("faker", {">=30"})``: a name and its set of version clauses."""
    name, version = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
    name = name.lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), frozenset(c for c in version.replace(" ", "").split(",") if c)


def pip_requirements() -> dict:
    """pyproject.toml's dependencies with tools/constraints.txt's bounds added, as install.sh applies
    them: an exact pin replaces the range, an upper bound joins it."""
    wanted = dict(split(s) for s in PROJECT["dependencies"])
    for line in (ROOT / "tools" / "constraints.txt").read_text().splitlines():
        if line.split("#")[0].strip():
            name, clauses = split(line.split("#")[0])
            if name in wanted:
                pinned = any(c.startswith("==") for c in clauses)
                wanted[name] = clauses if pinned else wanted[name] | clauses
    return wanted


def conda_file(path: Path) -> tuple[dict, list]:
    """The packages of a conda environment file, and the lines of its pip section that are not packages."""
    specs, other, inside = [], [], False
    for line in path.read_text().splitlines():
        line = line.split("#")[0].rstrip()
        if re.match(r"^\S", line):               # a top-level key: channels, dependencies, ...
            inside = line.startswith("dependencies:")
        elif inside and (m := re.match(r"\s*-\s+(\S.*)$", line)):
            (specs if re.match(r"[A-Za-z0-9]", m.group(1)) else other).append(m.group(1))
    found = dict(split(s) for s in specs)
    return {k: v for k, v in found.items() if k not in NOT_PACKAGES}, other


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_conda_files_ask_for_what_pip_installs(path):
    pip, (conda, _) = pip_requirements(), conda_file(ROOT / path)
    assert "torch" in pip and "learn2learn" in pip
    assert set(pip) == set(conda), \
        f"only in pyproject: {set(pip) - set(conda)}; only in {path}: {set(conda) - set(pip)}"
    assert conda == pip
    assert pip["faker"] == {"==40.54.0"} and "<=2.14.1" in pip["torch"]  # the constraints took effect
    text = (ROOT / path).read_text()
    assert "- python=3.10" in text and "- c-compiler" in text  # learn2learn's C compiles on 3.10


def test_environment_yml_installs_metakit_itself_and_binder_in_post_build():
    _, top = conda_file(ROOT / "environment.yml")
    _, binder = conda_file(ROOT / "binder" / "environment.yml")
    assert top == ["-e ."] and binder == []  # repo2docker installs the file before the repository is there
    post = ROOT / "binder" / "postBuild"
    assert post.stat().st_mode & 0o111, "repo2docker runs postBuild only when it is executable"
    text = post.read_text()
    assert 'pip install -e ".[exercises]"' in text
    assert "load_glyphs('all')" in text and "python -m metakit.student student" in text


def test_extras_give_each_make_target_what_it_runs():
    extras = {k: {split(s)[0] for s in v} for k, v in PROJECT["optional-dependencies"].items()}
    core = {split(s)[0] for s in PROJECT["dependencies"]}
    assert {"pytest", "nbval", "voila", "playwright", "jupyterhub", "nbgrader"}.isdisjoint(core)
    assert {"pytest", "nbval", "ruff", "metakit"} <= extras["test"]   # metakit[exercises]: nbgrader
    assert extras["exercises"] == {"nbgrader"} and extras["app"] == {"voila"}
    assert extras["browser"] == {"playwright"}
    assert {"jupyterhub", "jupyterhub-idle-culler", "metakit"} <= extras["hub"]
    makefile = (ROOT / "Makefile").read_text()
    for target, extra in [("test", "all"), ("app", "app"), ("hub", "hub"), ("student", "exercises"),
                          ("test-fast", "test")]:
        assert re.search(rf"^{target}: \$\(EXTRA\){extra}$", makefile, re.M), target
    assert re.search(r"^lab: \$\(STAMP\)$", makefile, re.M)  # JupyterLab alone needs no extra


def test_torch_ranges_admit_the_local_builds():
    # A range that excluded the builds on local disk would download several GB on each fresh machine.
    pip = dict(split(s) for s in PROJECT["dependencies"])
    assert all(c.startswith(">=") for c in pip["torch"] | pip["torchvision"])


def test_the_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
