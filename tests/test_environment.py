"""environment.yml (conda) and pyproject.toml (pip) must ask for the same packages and versions."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}     # conda's name -> pip's name
NOT_PACKAGES = {"python", "pip"}


def split(spec: str) -> tuple[str, str]:
    name, version = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", spec).groups()
    name = name.lower().replace("_", "-")
    return CONDA_NAMES.get(name, name), version.replace(" ", "")


def pyproject_requirements() -> dict:
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M).group(1)
    return dict(split(s) for s in re.findall(r'"([^"]+)"', block))


def conda_requirements() -> dict:
    specs, inside = [], False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        line = line.split("#")[0].rstrip()
        if re.match(r"^\S", line):               # a top-level key: channels, dependencies, ...
            inside = line.startswith("dependencies:")
        m = re.match(r"\s*-\s+([A-Za-z0-9].*)$", line)
        if inside and m:
            specs.append(m.group(1))
    found = dict(split(s) for s in specs)
    return {k: v for k, v in found.items() if k not in NOT_PACKAGES}


def test_conda_and_pip_dependencies_agree():
    pip, conda = pyproject_requirements(), conda_requirements()
    assert "torch" in pip and "learn2learn" in pip
    assert set(pip) == set(conda), \
        f"only in pyproject: {set(pip) - set(conda)}; only in environment.yml: {set(conda) - set(pip)}"
    assert pip == conda


def test_torch_ranges_admit_the_local_builds():
    # A range that excluded the builds on local disk would download several GB on each fresh machine.
    pip = pyproject_requirements()
    assert pip["torch"].startswith(">=") and pip["torchvision"].startswith(">=")
    assert "<" not in pip["torch"] + pip["torchvision"]


def test_the_readme_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
