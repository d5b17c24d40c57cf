"""metakit.results: a stored result is used only when its key matches, and then leaves the random
state as the computation did; anything else computes, says why, and loses nothing."""

import random

import numpy as np
import pytest
import torch

from metakit import results


@pytest.fixture
def folders(tmp_path, monkeypatch):
    user, shipped = tmp_path / "user", tmp_path / "shipped"
    monkeypatch.setenv(results.RESULTS_ENV, str(user))
    monkeypatch.delenv(results.RECOMPUTE_ENV, raising=False)
    monkeypatch.setattr(results, "shipped_dir", lambda: shipped)
    return user, shipped


def seed(s=0):
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


class Counter:
    """A computation that draws random numbers and counts its calls."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {("a", 1): torch.rand(3), "b": float(np.random.rand()), "c": random.random()}


def draws():
    return random.random(), float(np.random.rand()), torch.rand(1).item()


def test_a_stored_result_is_used_and_leaves_the_same_random_state(folders):
    compute = Counter()
    seed()
    first = results.stored("t", compute, settings={"episodes": 10})
    after_compute = draws()
    seed()
    second = results.stored("t", compute, settings={"episodes": 10})
    assert compute.calls == 1 and results.same(first, second)
    assert draws() == after_compute        # the next cell draws what it drew after computing
    assert (folders[0] / "t.pt").exists()


def test_another_random_state_settings_or_checkpoint_computes_again_and_says_why(folders, tmp_path, capsys):
    compute = Counter()
    ckpt = tmp_path / "m.pt"
    torch.save({"w": torch.zeros(2)}, ckpt)
    seed()
    results.stored("t", compute, settings={"episodes": 10}, checkpoints=[ckpt])
    seed()
    results.stored("t", compute, settings={"episodes": 20}, checkpoints=[ckpt])
    assert compute.calls == 2
    assert "settings (episodes 10 -> 20) changed" in capsys.readouterr().out
    torch.save({"w": torch.ones(2)}, ckpt)
    seed()
    results.stored("t", compute, settings={"episodes": 20}, checkpoints=[ckpt])
    assert compute.calls == 3 and "checkpoints (m.pt)" in capsys.readouterr().out
    seed(1)
    results.stored("t", compute, settings={"episodes": 20}, checkpoints=[ckpt])
    assert compute.calls == 4 and "random state changed" in capsys.readouterr().out


def test_the_models_weights_are_part_of_the_key(folders, capsys):
    net = torch.nn.Linear(2, 2)
    compute = Counter()
    for _ in range(2):
        seed()
        results.stored("t", compute, models={"net": net})
    assert compute.calls == 1
    with torch.no_grad():
        net.bias[0] += 1e-6
    seed()
    results.stored("t", compute, models={"net": net})
    assert compute.calls == 2 and "models (net) changed" in capsys.readouterr().out


def test_a_computation_that_trains_a_model_is_not_stored(folders, capsys):
    net = torch.nn.Linear(2, 2)
    compute = Counter()

    def train_a_step():
        with torch.no_grad():
            net.weight += 1.0
        return compute()
    results.stored("t", train_a_step, models={"net": net})
    assert "changed the learned weights of net" in capsys.readouterr().out
    assert not (folders[0] / "t.pt").exists()


def test_what_fitting_a_support_set_leaves_behind_does_not_stop_storing(folders, capsys):
    net = torch.nn.Linear(2, 2)

    def fit_support():
        net.register_buffer("prototypes", torch.randn(3, 2))   # the last episode's state
        net.n_way = 3
        net.head = torch.nn.Linear(2, 3)                       # a head fitted to the episode
        return 1
    net.head = torch.nn.Linear(2, 3)                           # the head of an earlier episode
    results.stored("t", fit_support, models={"net": net})
    assert (folders[0] / "t.pt").exists() and "changed" not in capsys.readouterr().out


def test_a_models_settings_are_part_of_the_key(folders, capsys):
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    net.inner_steps = 1
    compute = Counter()
    seed()
    results.stored("t", compute, models={"net": net})
    net.inner_steps = 10       # the same weights, another experiment
    seed()
    results.stored("t", compute, models={"net": net})
    assert compute.calls == 2 and "models (net) changed" in capsys.readouterr().out


def test_the_calling_cells_source_is_part_of_the_key(folders, capsys):
    compute = Counter()
    for source in ("x = results.stored('t', compute)\n", "x = results.stored('t', compute)  # edited\n"):
        code = compile(source, f"<cell {len(source)}>", "exec")
        import linecache
        linecache.cache[code.co_filename] = (len(source), None, [source], code.co_filename)
        seed()
        exec(code, {"results": results, "compute": compute})
    assert compute.calls == 2 and "cell changed" in capsys.readouterr().out


def test_code_is_part_of_the_key():
    parts = results.key_parts(code=[results.same, results])
    assert set(parts["code"]) == {"metakit.results.same", "metakit.results"}
    assert results.key_of(parts) != results.key_of(results.key_parts(code=[results.describe, results]))


def test_the_shipped_result_is_read_and_recompute_forces_a_computation(folders, monkeypatch):
    user, shipped = folders
    compute = Counter()
    monkeypatch.setenv(results.RESULTS_ENV, str(shipped))   # as when the notebooks are run to ship results
    seed()
    results.stored("t", compute)
    monkeypatch.setenv(results.RESULTS_ENV, str(user))
    seed()
    results.stored("t", compute)
    assert compute.calls == 1 and not (user / "t.pt").exists()
    monkeypatch.setenv(results.RECOMPUTE_ENV, "1")
    seed()
    results.stored("t", compute)
    assert compute.calls == 2 and (user / "t.pt").exists()


def test_a_corrupted_file_is_reported_and_computed_again(folders, capsys):
    user, _ = folders
    user.mkdir()
    (user / "t.pt").write_bytes(b"not a pickle")
    compute = Counter()
    value = results.stored("t", compute)
    assert compute.calls == 1 and "b" in value
    assert "could not be read" in capsys.readouterr().out
    seed()
    results.stored("t", compute)
    seed()
    results.stored("t", compute)
    assert compute.calls == 2   # the file was replaced by a good one


def test_a_folder_that_cannot_be_written_still_gives_the_result(folders, monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(results.RESULTS_ENV, str(blocker / "results"))
    assert results.stored("t", lambda: 42) == 42
    assert "Could not store the result" in capsys.readouterr().out


def test_the_recompute_button_runs_the_same_draws_and_keeps_the_notebooks_state(folders, monkeypatch, capsys):
    shown = []
    compute = Counter()
    seed()
    results.stored("t", compute, show=shown.append)
    widgets = []
    monkeypatch.setattr("IPython.display.display", widgets.append)
    seed()
    stored = results.stored("t", compute, show=shown.append)
    assert "Stored result: computed" in capsys.readouterr().out and len(shown) == 2
    box = widgets[0]
    button, _ = box.children
    before = results.random_state()
    button.click()
    assert compute.calls == 2 and results.same(shown[-1], stored)
    assert results.state_digest(results.random_state()) == results.state_digest(before)
    assert "the same numbers as the stored result" in capsys.readouterr().out   # (in out, in a kernel)

    def fails():
        raise RuntimeError("out of memory")
    seed()
    results.stored("t", fails, show=shown.append)   # a stored hit: fails is not called
    capsys.readouterr()
    widgets[-1].children[0].click()
    assert "Could not recompute: RuntimeError: out of memory" in capsys.readouterr().out


@pytest.mark.parametrize("a, b, equal", [
    ({"x": [1.0, float("nan")]}, {"x": [1.0, float("nan")]}, True),
    ({"x": torch.ones(2)}, {"x": torch.ones(2)}, True),
    ({"x": torch.ones(2)}, {"x": torch.zeros(2)}, False),
    (np.arange(3), np.arange(3), True),
    ((1, 2), (1, 3), False),
    ({"x": 1}, {"y": 1}, False),
])
def test_same(a, b, equal):
    assert results.same(a, b) is equal


def test_check_shipped_names_the_code_that_changed(folders, monkeypatch):
    _, shipped = folders
    monkeypatch.setenv(results.RESULTS_ENV, str(shipped))
    results.stored("fresh", lambda: 1, code=[results.same, results])
    results.stored("old", lambda: 2, code=[results.same])
    record = torch.load(shipped / "old.pt", weights_only=False)
    record["parts"]["code"]["metakit.results.same"] = "0" * 16
    torch.save(record, shipped / "old.pt")
    (shipped / "broken.pt").write_bytes(b"")
    assert dict(results.check_shipped()) == {"fresh": "", "old": "metakit.results.same changed",
                                             "broken": "unreadable (EOFError)"}


def test_every_shipped_result_is_readable():
    for path in results.shipped_dir().glob("*.pt"):
        record = torch.load(path, map_location="cpu", weights_only=False)
        assert record["format"] == results.FORMAT and record["name"] == path.stem
        assert record["key"] == results.key_of(record["parts"]) and "value" in record


def test_recompute_that_trains_stores_nothing_and_puts_the_weights_back(folders, monkeypatch, capsys):
    net = torch.nn.Linear(2, 2)
    calls = []

    def evaluate_then_train_once():  # the first call (stored) leaves the weights; the next changes them
        calls.append(1)
        if len(calls) > 1:
            with torch.no_grad():
                net.weight += 1.0
        return float(net.weight.detach().sum())
    widgets = []
    monkeypatch.setattr("IPython.display.display", widgets.append)
    seed()
    first = results.stored("t", evaluate_then_train_once, models={"net": net})
    stamp = (folders[0] / "t.pt").stat().st_mtime_ns
    seed()
    results.stored("t", evaluate_then_train_once, models={"net": net})
    capsys.readouterr()
    weights = net.weight.detach().clone()
    widgets[-1].children[0].click()
    out = capsys.readouterr().out
    assert len(calls) == 2 and "changed the learned weights of net, so its result is not stored" in out
    assert "put back as they were" in out and torch.equal(net.weight, weights)
    assert (folders[0] / "t.pt").stat().st_mtime_ns == stamp
    assert results.load("t")[0][1]["value"] == first
