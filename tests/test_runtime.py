import pytest
import torch

import metakit


def test_device_defaults_to_what_the_machine_has(monkeypatch):
    monkeypatch.delenv("METAKIT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        expected = "mps"
    assert metakit.device().type == expected


def test_environment_variable_overrides_the_device(monkeypatch):
    monkeypatch.setenv("METAKIT_DEVICE", "cpu")
    assert metakit.device() == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_a_missing_gpu_says_so(monkeypatch):
    monkeypatch.setenv("METAKIT_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        metakit.device()


def test_seed_everything_repeats_a_run(glyphs_evaluation):
    def run():
        metakit.seed_everything(7)
        return torch.randn(3), metakit.sample_episode(glyphs_evaluation, 5, 1, 2)[0]

    (a, ea), (b, eb) = run(), run()
    assert torch.equal(a, b) and torch.equal(ea, eb)


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("METAKIT_QUICK", value)
    assert metakit.quick_mode() is expected
