import os

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


def test_seed_everything_deterministic_turns_on_deterministic_algorithms(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        metakit.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert not torch.backends.cudnn.benchmark and os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    metakit.seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("METAKIT_QUICK", value)
    assert metakit.quick_mode() is expected


def test_a_step_budget_counts_steps_and_logs_metrics():
    from metakit.runtime import Budget

    budget = Budget(steps=4, progress=False)
    for step in budget:
        budget.log(loss=1.0 / (step + 1))
    summary = budget.summary()
    assert summary["steps"] == 4 and budget.history["loss"] == [1.0, 0.5, 1 / 3, 0.25]
    assert summary["seconds"] >= 0 and summary["clock_seconds"] >= 0


def test_a_time_budget_stops_on_its_clock():
    from metakit.runtime import Budget

    ticks = iter(range(100))
    budget = Budget(seconds=3, clock=lambda: float(next(ticks)), progress=False)
    steps = [s for s in budget]
    # the clock advances one "second" per reading; the loop stops once 3 have passed
    assert 1 <= len(steps) <= 3 and budget.summary()["clock_seconds"] >= 3


def test_whichever_budget_ends_first_and_bad_budgets():
    from metakit.runtime import Budget

    assert len(list(Budget(steps=2, seconds=1e9, progress=False))) == 2
    assert list(Budget(steps=0, progress=False)) == []
    for kwargs, match in [({}, "Give a budget"), ({"steps": -1}, "steps"), ({"seconds": -2.0}, "seconds")]:
        with pytest.raises(ValueError, match=match):
            Budget(**kwargs, progress=False)


def test_threads_are_set_inside_the_block_and_restored_after():
    before = torch.get_num_threads()
    with metakit.runtime.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), metakit.runtime.threads(1):
        raise RuntimeError("a failing training")
    assert torch.get_num_threads() == before      # restored when the block raises too
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="whole number of threads"), metakit.runtime.threads(bad):
            pass
    assert torch.get_num_threads() == before


def test_recipe_clock_is_cpu_time_on_the_cpu_and_wall_clock_elsewhere():
    import time

    from metakit.runtime import recipe_clock
    assert recipe_clock() is time.process_time and recipe_clock("cpu") is time.process_time
    assert recipe_clock(torch.device("cuda")) is time.perf_counter and recipe_clock("mps") is time.perf_counter
