"""The install files: the Python range, the torch cap, the record .ci/run reads, and the smoke subset."""

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_smoke():
    spec = importlib.util.spec_from_file_location("smoke", ROOT / "tools" / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_requires_python_admits_3_10_to_3_13_only():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^requires-python = ">=3.10,<3.14"$', text, re.M)


def test_constraints_never_ask_for_a_torch_newer_than_the_local_build():
    lines = (ROOT / "tools" / "constraints.txt").read_text().splitlines()
    assert "torch<=2.14.1" in lines and "torchvision<=0.29.1" in lines


@pytest.mark.skipif(subprocess.run(["git", "-C", str(ROOT), "status"], capture_output=True).returncode != 0,
                    reason="not a git checkout")
def test_install_hash_is_stable_and_the_record_matches_its_form():
    script = ROOT / "tools" / "test_pythons.sh"
    first = subprocess.run(["bash", str(script), "--hash"], capture_output=True, text=True, check=True).stdout
    assert re.fullmatch(r"[0-9a-f]{64}\n", first)
    again = subprocess.run(["bash", str(script), "--hash"], capture_output=True, text=True, check=True).stdout
    assert first == again
    record = (ROOT / "tools" / "pythons-tested.txt")
    if record.exists():  # the record names a hash in the same form
        assert re.search(r"^install-files-sha256: [0-9a-f]{64}$", record.read_text(), re.M)


def test_smoke_maml_step_matches_learn2learn():
    load_smoke().check_maml_step()


def test_smoke_qpth_qp_value_and_gradient():
    load_smoke().check_qpth()
