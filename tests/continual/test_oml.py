import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metakit.continual.oml import (
    ANML,
    OnlineLearner,
    choose_lr,
    compare_on_stream,
    meta_continual_models,
    meta_train_online,
    online_head_step,
    pretrain,
    split_background,
    stream_accuracy,
)
from metakit.datasets import ImageClassDataset


def tiny_dataset(alphabets=("Latin", "Cyrillic", "Greek", "Arabic"), per_alphabet=3, images=8, seed=0):
    rng = np.random.default_rng(seed)
    n = len(alphabets) * per_alphabet
    pictures = rng.integers(0, 256, size=(n, 1, 28, 28)).repeat(images, 1)          # one pattern per class
    noise = rng.integers(-20, 20, size=pictures.shape)
    pictures = np.clip(pictures + noise, 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    names = [f"{a}/c{i}" for a in alphabets for i in range(per_alphabet)]
    return ImageClassDataset(pictures, np.arange(n).repeat(images), names, name="tiny")


def test_online_head_step_is_the_analytic_softmax_gradient():
    torch.manual_seed(0)
    W, b, z = torch.randn(5, 7, requires_grad=True), torch.randn(5, requires_grad=True), torch.randn(7)
    W2, b2 = online_head_step(W, b, z, 3, 0.5)
    p = torch.softmax(W @ z + b, 0).detach()
    p[3] -= 1
    assert torch.allclose(W2, W - 0.5 * p[:, None] * z, atol=1e-6)
    assert torch.allclose(b2, b - 0.5 * p, atol=1e-6)
    assert W2.requires_grad        # differentiable, so meta-training reaches the representation


def test_stream_accuracy_learns_separable_features_and_reports_where_asked():
    data = tiny_dataset()
    # features that give each class its own coordinate: a perfect, non-interfering representation
    lookup = {}
    for c, rows in data.labels_to_indices.items():
        for i in rows:
            lookup[data[i][0].sum().item()] = c

    def one_hot(x):
        # scaled so that the weights, not the biases, decide (a bias alone favours the latest class)
        return 5 * F.one_hot(torch.tensor([lookup[v.sum().item()] for v in x]), data.num_classes).float()

    acc = stream_accuracy(one_hot, data, n_classes=12, lr=1.0, train_per_class=5, report=[3, 12])
    assert list(acc) == [3, 12] and acc[12] == 1.0
    default = stream_accuracy(one_hot, data, n_classes=12, lr=1.0, train_per_class=5)
    assert list(default) == [10, 12]
    with pytest.raises(ValueError, match="n_classes"):
        stream_accuracy(one_hot, data, n_classes=13)
    with pytest.raises(ValueError, match="learning rate"):
        stream_accuracy(one_hot, data, lr=-1.0, n_classes=3)
    with pytest.raises(ValueError, match="no test images"):
        stream_accuracy(one_hot, data, n_classes=3, train_per_class=8)
    best, scores = choose_lr(one_hot, data, n_classes=12, lrs=(1e-6, 1.0), train_per_class=5)
    assert set(scores) == {1e-6, 1.0} and scores[best] == max(scores.values())


@pytest.mark.parametrize("cls", [OnlineLearner, ANML])
def test_meta_training_reaches_the_representation(cls):
    data = tiny_dataset()
    torch.manual_seed(0)
    model = cls(data.num_classes, width=4)
    before = {k: v.clone() for k, v in model.frozen().state_dict().items()}
    info = meta_train_online(model, data, steps=3, classes=2, shots=3, remember=4, progress=False)
    assert info["steps"] == 3 and all(math.isfinite(v) for v in info["loss"])
    after = model.frozen().state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before)
    z = model.features(data[0][0][None])
    assert z.shape == (1, model.dim)
    if cls is ANML:
        gate = torch.sigmoid(model.nm(data[0][0][None]))
        assert ((0 < gate) & (gate < 1)).all()


def test_meta_training_and_pretraining_take_the_kits_budget():
    data = tiny_dataset()
    clock = iter(range(1000)).__next__  # one "second" per reading
    torch.manual_seed(0)
    info = meta_train_online(OnlineLearner(data.num_classes, width=4), data, steps=None, seconds=3, clock=clock,
                             classes=2, shots=2, remember=2, progress=False)
    assert info["steps"] == len(info["loss"]) >= 1 and info["clock_seconds"] >= 3 and info["seconds"] >= 0
    info = pretrain(OnlineLearner(data.num_classes, width=4), data, steps=4, seconds=1e9, batch_size=4,
                    progress=False)
    assert info["steps"] == len(info["loss"]) == 4 and set(info) == {"loss", "steps", "seconds", "clock_seconds"}
    with pytest.raises(ValueError, match="budget"):
        pretrain(OnlineLearner(data.num_classes, width=4), data, steps=None, progress=False)
    with pytest.raises(FloatingPointError, match="pretraining loss became nan; lower lr"):
        pretrain(OnlineLearner(data.num_classes, width=4), data, steps=3, batch_size=4, lr=1e30, progress=False)
    with pytest.raises(FloatingPointError, match="meta-training loss became nan; lower meta_lr"):
        meta_train_online(OnlineLearner(data.num_classes, width=4), data, steps=3, classes=2, shots=2, remember=2,
                          meta_lr=1e30, progress=False)


def test_pretraining_lowers_the_loss():
    data = tiny_dataset()
    torch.manual_seed(0)
    info = pretrain(OnlineLearner(data.num_classes, width=4), data, steps=60, batch_size=16, lr=1e-2, progress=False)
    assert np.mean(info["loss"][-10:]) < np.mean(info["loss"][:10])


def test_models_train_then_load_and_compare(tmp_path):
    data = tiny_dataset(per_alphabet=5, images=8)
    train, validation = split_background(data)
    assert validation.alphabets == ["Cyrillic", "Greek"] and train.alphabets == ["Arabic", "Latin"]
    first = meta_continual_models(data, folder=tmp_path, steps=2, progress=False)
    assert sorted(first) == ["anml", "oml", "pretrain"] and not first["oml"][1]["loaded"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anml-2steps.pt", "oml-2steps.pt", "pretrain-2steps.pt"]
    again = meta_continual_models(data, folder=tmp_path, steps=2, progress=False)
    assert again["anml"][1]["loaded"]
    x = data[0][0][None]
    assert torch.allclose(first["anml"][0].features(x), again["anml"][0].features(x))
    curves, table = compare_on_stream(again, data, data, n_choose=5, train_per_class=5)
    assert set(curves["oml"]) >= {1, 5, 10, data.num_classes}
    assert all(0 <= a <= 1 for c in curves.values() for a in c.values())
    assert table["pretrain"]["lr"] in table["pretrain"]["validation"]


# --- the meta-gradient through the online steps, checked by finite differences (issue 22) ------

def outer_loss(z, W0, b0, log_lr, y, inner):
    """meta_train_online's outer loss on features ``z``: the new classes' rows of the head start at
    zero, one online step per image of the trajectory (the first ``inner`` rows), then
    cross-entropy on everything (the trajectory and the images to remember)."""
    keep = torch.ones(len(W0), 1, dtype=z.dtype)
    keep[y[:inner].unique()] = 0.0
    W, b = W0 * keep, b0 * keep[:, 0]
    for i in range(inner):
        W, b = online_head_step(W, b, z[i], int(y[i]), log_lr.exp())
    return F.cross_entropy(z @ W.T + b, y)


@pytest.mark.parametrize("cls", [OnlineLearner, ANML])
def test_meta_gradient_through_the_online_steps_matches_finite_differences(cls):
    torch.manual_seed(0)
    model = cls(4, width=2, **({"nm_width": 2} if cls is ANML else {})).double()
    x = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([2, 2, 3, 3, 0, 1, 2])     # a trajectory of 4 images of 2 new classes, then 3 to remember
    params = dict(model.named_parameters())
    # the last layer of the representation (and of ANML's gate), the head's start, the inner learning rate
    chosen = [n for n in params if n.startswith(("rln.4", "nm.1", "head", "log_inner_lr"))]
    assert any(n.startswith("nm.") for n in chosen) == (cls is ANML)

    def loss_of(*values):
        p = {**params, **dict(zip(chosen, values))}
        z = _features(model, p, x)
        return outer_loss(z, p["head.weight"], p["head.bias"], p["log_inner_lr"], y, inner=4)

    values = tuple(params[n].detach().clone().requires_grad_() for n in chosen)
    grads = torch.autograd.grad(loss_of(*values), values)
    g = torch.Generator().manual_seed(1)
    for k in range(len(values)):          # each block alone, along a random direction: central differences
        d = torch.randn(values[k].shape, generator=g, dtype=torch.float64)
        shifted = [[v.detach().requires_grad_() for v in values] for _ in range(2)]
        shifted[0][k] = (values[k].detach() + 1e-5 * d).requires_grad_()
        shifted[1][k] = (values[k].detach() - 1e-5 * d).requires_grad_()
        fd = (loss_of(*shifted[0]) - loss_of(*shifted[1])).detach() / 2e-5   # (the online step needs autograd)
        assert (grads[k] * d).sum().item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-9), chosen[k]


def _features(model, p, x):
    """``model.features(x)`` with the parameters ``p``."""
    def part(name):
        return {k[len(name) + 1:]: v for k, v in p.items() if k.startswith(name + ".")}
    out = torch.func.functional_call(model.rln, part("rln"), (x,))
    if isinstance(model, ANML):
        out = out * torch.sigmoid(torch.func.functional_call(model.nm, part("nm"), (x,)))
    return out


@pytest.mark.parametrize("cls", [OnlineLearner, ANML])
def test_meta_train_online_steps_along_the_outer_losss_gradient(cls):
    """One meta-step of meta_train_online is one Adam step on outer_loss (the new classes' rows
    zeroed, one online step per trajectory image, differentiated through those steps) for the
    episode its seed draws: Adam's first step moves every parameter by -meta_lr * g / (|g| + eps)."""
    data = tiny_dataset()
    torch.manual_seed(0)
    model = cls(data.num_classes, width=4, **({"nm_width": 2} if cls is ANML else {}))
    # the episode meta_train_online draws from seed 3 with classes=2, shots=3, remember=4
    g = torch.Generator().manual_seed(3)
    chosen = torch.randperm(data.num_classes, generator=g)[:2].tolist()
    rows = [data.labels_to_indices[c][i] for c in chosen
            for i in torch.randperm(len(data.labels_to_indices[c]), generator=g)[:3].tolist()]
    rows += torch.randint(len(data), (4,), generator=g).tolist()
    x, y = torch.stack([data[i][0] for i in rows]), torch.tensor([data[i][1] for i in rows])
    params = dict(model.named_parameters())
    loss = outer_loss(model.features(x), params["head.weight"], params["head.bias"], params["log_inner_lr"], y, 6)
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    before = {n: p.detach().clone() for n, p in params.items()}
    info = meta_train_online(model, data, steps=1, classes=2, shots=3, remember=4, meta_lr=1e-3, seed=3,
                             progress=False)
    assert info["loss"][0] == pytest.approx(loss.item(), rel=1e-5)
    moved = 0
    for n, p in model.named_parameters():
        step = p.detach() - before[n]
        torch.testing.assert_close(step, -1e-3 * grads[n] / (grads[n].abs() + 1e-8), rtol=1e-3, atol=1e-6)
        moved += int((grads[n].abs() > 1e-5).sum())  # where g >> eps, Adam's first step is +-meta_lr
    assert moved > 500                               # not a check of zeros
