"""Every exercise test starts as a learner, not under nbgrader: a test that wants grading sets
``NBGRADER_EXECUTION`` itself."""
import pytest


@pytest.fixture(autouse=True)
def learner(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
