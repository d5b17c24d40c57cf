import pytest
import torch
from torch import nn

from metakit.checkpoints import CHECKPOINTS, checkpoint_path, load_weights, train_or_load


def make():
    torch.manual_seed(0)
    return nn.Linear(3, 2)


def fake_train(calls):
    def train(model):
        calls.append(1)
        with torch.no_grad():
            model.weight.fill_(0.5)
        return {"episodes": 7, "seconds": 0.1, "loss": [1.0, 0.5], "not_saved": object()}
    return train


def test_trains_once_then_loads(tmp_path):
    calls = []
    path = tmp_path / "m.pt"
    info = train_or_load(make(), path, fake_train(calls))
    assert info["loaded"] is False and calls == [1] and path.exists()
    model = make()
    info = train_or_load(model, path, fake_train(calls))
    assert info["loaded"] is True and calls == [1]
    assert info["episodes"] == 7 and info["loss"] == [1.0, 0.5] and "not_saved" not in info
    assert torch.all(model.weight == 0.5)


def test_retrain_overwrites(tmp_path):
    calls = []
    train_or_load(make(), tmp_path / "m.pt", fake_train(calls))
    train_or_load(make(), tmp_path / "m.pt", fake_train(calls), retrain=True)
    assert calls == [1, 1]


def test_a_corrupted_checkpoint_is_retrained_with_a_warning(tmp_path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"not a checkpoint")
    calls = []
    with pytest.warns(UserWarning, match="training again"):
        info = train_or_load(make(), path, fake_train(calls))
    assert calls == [1] and info["loaded"] is False
    assert train_or_load(make(), path, fake_train(calls))["loaded"] is True


def test_a_checkpoint_of_another_architecture_is_not_loaded_silently(tmp_path):
    path = tmp_path / "m.pt"
    train_or_load(make(), path, fake_train([]))
    with pytest.warns(UserWarning, match="Could not load"):
        train_or_load(nn.Linear(4, 2), path, lambda m: {"episodes": 1})


def test_load_weights_reads_what_train_or_load_saved(tmp_path):
    path = tmp_path / "m.pt"
    train_or_load(make(), path, fake_train([]))
    model = make()
    info = load_weights(model, path)
    assert info["episodes"] == 7 and torch.all(model.weight == 0.5)
    assert checkpoint_path("m.pt") == CHECKPOINTS / "m.pt" and checkpoint_path(path) == path
    with pytest.raises(FileNotFoundError):
        load_weights(make(), tmp_path / "missing.pt")
