"""Packaging basics: one version number (pyproject.toml's, which CITATION.cff and
``metakit.__version__`` repeat), and a LICENSE file for the licence pyproject.toml names."""
import re
from pathlib import Path

import pytest

import metakit

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_one_version_number():
    citation = re.search(r"^version: *(\S+)$", (ROOT / "CITATION.cff").read_text(), re.M).group(1)
    assert citation == PROJECT["version"]
    assert metakit.__version__ == PROJECT["version"]  # from the installed metadata, not a copy


def test_license_file_matches_pyproject():
    assert PROJECT["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert re.search(r"^license: *MIT$", (ROOT / "CITATION.cff").read_text(), re.M)
