import pytest


@pytest.fixture(autouse=True)
def on_the_cpu(monkeypatch):
    """These tests are about gloo processes on the CPU; on a machine with a GPU they stay there."""
    monkeypatch.setenv("METAKIT_DEVICE", "cpu")
