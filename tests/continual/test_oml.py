import copy
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metakit.continual.oml import (
    ANML,
    OnlineLearner,
    choose_lr,
    compare_on_stream,
    conv_features,
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
    with pytest.raises(FloatingPointError, match="pretraining loss became .+; lower lr"):
        pretrain(OnlineLearner(data.num_classes, width=4), data, steps=3, batch_size=4, lr=1e30, progress=False)
    with pytest.raises(FloatingPointError, match="meta-training loss became .+; lower meta_lr"):
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


# --- architecture, defaults, seeds and the comparison's table pinned (issue 22; mutation testing, mut3) ----

def test_conv_features_is_three_stride_2_3x3_convolutions_with_relus():
    torch.manual_seed(0)
    net = conv_features()                                  # default width 32
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [(32, 1, 3, 3), (32, 32, 3, 3), (32, 32, 3, 3)]
    x = torch.rand(2, 1, 28, 28)
    h = x
    for c in convs:
        h = F.relu(F.conv2d(h, c.weight, c.bias, stride=2, padding=1))
    assert h.shape == (2, 32, 4, 4)                        # 28 -> 14 -> 7 -> 4
    torch.testing.assert_close(net(x), h.flatten(1))


def test_default_widths_and_the_inner_learning_rate_start_at_0_1():
    oml, anml = OnlineLearner(5), ANML(5)
    assert oml.dim == anml.dim == 32 * 16 and tuple(oml.head.weight.shape) == (5, 512)
    assert oml.log_inner_lr.exp().item() == pytest.approx(0.1)
    assert anml.nm[0][0].out_channels == 16 and tuple(anml.nm[1].weight.shape) == (512, 16 * 16)
    small = ANML(5, width=4, nm_width=2)
    assert small.dim == 64 and small.rln[0].out_channels == 4
    assert small.features(torch.rand(3, 1, 28, 28)).shape == (3, 64)


def test_anml_features_are_the_representation_times_the_sigmoid_gate():
    torch.manual_seed(0)
    model = ANML(3, width=8, nm_width=2)
    x = torch.rand(4, 1, 28, 28)
    z, gate = model.rln(x), torch.sigmoid(model.nm(x))
    assert (z > 0.01).sum() > 20                           # not a check of zeros (all ReLUs dead at small widths)
    torch.testing.assert_close(model.features(x), z * gate)


def test_frozen_parts_hold_the_checkpoints_keys():
    """What a checkpoint holds: the representation ("rln.*") and ANML's gate ("nm.*"), under the
    names the committed checkpoints were saved with."""
    for cls, kept in ((OnlineLearner, ("rln.",)), (ANML, ("rln.", "nm."))):
        model = cls(3, width=2)
        keys = set(model.frozen().state_dict())
        assert keys == {k for k in model.state_dict() if k.startswith(kept)} and keys, cls.__name__
        assert any(k.startswith("nm.") for k in keys) == (cls is ANML)


def random_projection(seed=0, dim=16):
    """Features that tell tiny_dataset's and many_classes' classes apart: a fixed random projection."""
    proj = torch.randn(28 * 28, dim, generator=torch.Generator().manual_seed(seed))
    return lambda x: (x.flatten(1) - 0.5) @ proj


def test_choose_lr_takes_the_first_best_rate_its_seed_and_defaults():
    data = tiny_dataset(images=16)                         # 16 images a class: the default 15 leave one to test
    features = random_projection(dim=3)                    # weak enough that the rate and the order matter
    lrs = (1e-6, 1e-3, 1e-1, 10.0)
    best, scores = choose_lr(features, data, n_classes=5, lrs=lrs, seed=3)
    assert scores == {lr: stream_accuracy(features, data, 5, lr, 15, [5], 3)[5] for lr in lrs}
    assert best == next(lr for lr in lrs if scores[lr] == max(scores.values()))
    assert best != max(lrs)                                # not simply the largest rate
    assert choose_lr(features, data, n_classes=5, lrs=lrs)[1] == choose_lr(features, data, 5, lrs, 15, seed=0)[1]
    assert choose_lr(features, data, n_classes=5, lrs=lrs, seed=0)[1] != scores   # the seed matters here


def many_classes(n_classes=210, images=2, seed=0, alphabet="e"):
    """``n_classes`` classes of ``images`` noisy copies of one random pattern each."""
    rng = np.random.default_rng(seed)
    pictures = rng.integers(0, 256, size=(n_classes, 1, 28, 28)).repeat(images, 1)
    pictures = np.clip(pictures + rng.integers(-60, 60, size=pictures.shape), 0, 255).astype(np.uint8)
    return ImageClassDataset(pictures.reshape(-1, 28, 28), np.arange(n_classes).repeat(images),
                             [f"{alphabet}/c{i}" for i in range(n_classes)], name="many")


def test_compare_on_stream_reports_fixed_points_and_tables_each_models_run():
    background, evaluation = tiny_dataset(), many_classes()
    a, b = SimpleNamespace(features=random_projection(0)), SimpleNamespace(features=random_projection(1))
    models = {"a": (a, {"steps": 7, "seconds": 1.5, "loaded": True}), "b": (b, {"loaded": True})}
    curves, table = compare_on_stream(models, background, evaluation, n_choose=4, train_per_class=1, seed=3)
    report = [1, 5, 10, 25, 50, 75, 100, 150, 200, 210]   # and every 50 up to all 210 classes
    _, validation = split_background(background)
    for name, (model, _) in models.items():
        lr, scores = choose_lr(model.features, validation, 4, train_per_class=1, seed=3)
        assert table[name]["lr"] == lr and table[name]["validation"] == scores
        assert list(curves[name]) == report
        assert curves[name] == stream_accuracy(model.features, evaluation, 210, lr, 1, report, 3)
    assert set(table["a"]) == {"steps", "seconds", "lr", "validation"}
    assert (table["a"]["steps"], table["a"]["seconds"]) == (7, 1.5)
    assert table["b"]["steps"] is None and math.isnan(table["b"]["seconds"])   # a model without its run's info
    other, _ = compare_on_stream({"a": models["a"]}, background, evaluation, n_choose=4, train_per_class=1, seed=0)
    assert other["a"] != curves["a"]                       # the seed matters here


def test_compare_on_stream_defaults_are_seed_0_and_15_images_a_class():
    data = tiny_dataset(images=16)
    models = {"a": (SimpleNamespace(features=random_projection(dim=4)), {})}   # weak: the order matters
    curves, table = compare_on_stream(models, data, data)
    assert (curves, table) == compare_on_stream(models, data, data, n_choose=100, train_per_class=15, seed=0)
    assert curves != compare_on_stream(models, data, data, seed=1)[0]


def test_meta_train_online_defaults_are_3_classes_of_5_shots_and_30_to_remember():
    data = tiny_dataset()
    torch.manual_seed(0)
    model = OnlineLearner(data.num_classes, width=4)
    runs = [copy.deepcopy(model) for _ in range(3)]
    meta_train_online(runs[0], data, steps=1, progress=False)
    meta_train_online(runs[1], data, steps=1, classes=3, shots=5, remember=30, meta_lr=1e-3, seed=0, progress=False)
    meta_train_online(runs[2], data, steps=1, classes=3, shots=5, remember=30, meta_lr=1e-3, seed=1, progress=False)
    same = [all(torch.equal(p, q) for p, q in zip(runs[0].parameters(), r.parameters())) for r in runs[1:]]
    assert same == [True, False]


def test_pretrain_defaults_and_its_own_seeded_batches():
    data = tiny_dataset()
    torch.manual_seed(0)
    model = OnlineLearner(data.num_classes, width=4)
    runs = [copy.deepcopy(model) for _ in range(3)]
    torch.manual_seed(5)
    pretrain(runs[0], data, steps=2, progress=False)
    torch.manual_seed(6)                                   # the global generator must not matter
    pretrain(runs[1], data, steps=2, batch_size=64, lr=1e-3, seed=0, progress=False)
    pretrain(runs[2], data, steps=2, batch_size=64, lr=1e-3, seed=1, progress=False)
    same = [all(torch.equal(p, q) for p, q in zip(runs[0].parameters(), r.parameters())) for r in runs[1:]]
    assert same == [True, False]


def test_a_time_budget_counts_the_clock_it_is_given():
    data = tiny_dataset()
    for fit, kwargs in ((meta_train_online, {"classes": 2, "shots": 2, "remember": 2}), (pretrain, {"batch_size": 4})):
        clock = iter(range(1000)).__next__                 # one "second" per reading: a few steps at most
        torch.manual_seed(0)
        info = fit(OnlineLearner(data.num_classes, width=4), data, steps=None, seconds=2.5, clock=clock,
                   progress=False, **kwargs)
        assert 1 <= info["steps"] <= 3 and info["clock_seconds"] >= 2.5, fit.__name__


def test_meta_continual_models_trains_each_model_with_its_own_loop_and_seed(tmp_path, monkeypatch):
    data = tiny_dataset(per_alphabet=5, images=8)
    train, _ = split_background(data)
    models = meta_continual_models(data, folder=tmp_path, steps=2, seed=3, progress=False)
    assert [type(models[k][0]) for k in ("oml", "anml", "pretrain")] == [OnlineLearner, ANML, OnlineLearner]
    for name, fit in (("oml", meta_train_online), ("pretrain", pretrain)):
        torch.manual_seed(3)
        reference = OnlineLearner(train.num_classes)
        fit(reference, train, 2, seed=3, progress=False)
        got = models[name][0].frozen().state_dict()
        assert all(torch.equal(v, got[k]) for k, v in reference.frozen().state_dict().items()), name
    # only the online loop meta-learns the inner learning rate; pretraining never uses it
    lrs = {k: m.log_inner_lr.exp().item() for k, (m, _) in models.items()}
    assert lrs["pretrain"] == pytest.approx(0.1) and lrs["oml"] != pytest.approx(0.1) != lrs["anml"]
    again = meta_continual_models(data, folder=tmp_path, steps=2, seed=3, retrain=True, progress=False)
    assert not any(info["loaded"] for _, info in again.values())
    # the default folder and seed
    monkeypatch.setattr("metakit.continual.oml.CHECKPOINTS", tmp_path / "default")
    default = meta_continual_models(data, steps=2, progress=False)
    assert sorted(p.name for p in (tmp_path / "default").iterdir()) == ["anml-2steps.pt", "oml-2steps.pt",
                                                                          "pretrain-2steps.pt"]
    torch.manual_seed(0)
    reference = OnlineLearner(train.num_classes)
    meta_train_online(reference, train, 2, seed=0, progress=False)
    got = default["oml"][0].frozen().state_dict()
    assert all(torch.equal(v, got[k]) for k, v in reference.frozen().state_dict().items())


@pytest.mark.parametrize("cls", [OnlineLearner, ANML])
def test_meta_gradient_matches_finite_differences_where_the_features_are_alive(cls):
    """The finite-difference check above at width 2, where every ReLU of the representation is off
    (z = 0: its rln/nm/head.weight blocks compare 0 with 0), repeated at width 4, where 3/4 of the
    features are on, so the representation's (and the gate's) path through the online steps is checked."""
    torch.manual_seed(0)
    model = cls(4, width=4, **({"nm_width": 2} if cls is ANML else {})).double()
    x = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([2, 2, 3, 3, 0, 1, 2])
    params = dict(model.named_parameters())
    assert (model.features(x).abs() > 1e-6).float().mean() > 0.5
    chosen = [n for n in params if n.startswith(("rln.2", "rln.4", "nm.0.4", "nm.1", "head", "log_inner_lr"))]

    def loss_of(*values):
        p = {**params, **dict(zip(chosen, values))}
        return outer_loss(_features(model, p, x), p["head.weight"], p["head.bias"], p["log_inner_lr"], y, inner=4)

    values = tuple(params[n].detach().clone().requires_grad_() for n in chosen)
    grads = torch.autograd.grad(loss_of(*values), values)
    g = torch.Generator().manual_seed(1)
    for k, name in enumerate(chosen):
        assert grads[k].norm() > 1e-6, name                # a gradient that is there to check
        d = torch.randn(values[k].shape, generator=g, dtype=torch.float64)
        shifted = [[v.detach().requires_grad_() for v in values] for _ in range(2)]
        shifted[0][k] = (values[k].detach() + 1e-5 * d).requires_grad_()
        shifted[1][k] = (values[k].detach() - 1e-5 * d).requires_grad_()
        fd = (loss_of(*shifted[0]) - loss_of(*shifted[1])).detach() / 2e-5
        assert (grads[k] * d).sum().item() == pytest.approx(fd.item(), rel=1e-5, abs=1e-9), name


def test_the_head_rate_is_chosen_after_100_validation_classes_by_default():
    """Notebook 07's validation alphabets hold 121 classes, so the default of 100 is what is used."""
    parts = [many_classes(2, alphabet="Latin"), many_classes(100, alphabet="Cyrillic", seed=1),
             many_classes(1, alphabet="Greek", seed=2)]
    offsets = np.cumsum([0] + [p.num_classes for p in parts])
    background = ImageClassDataset(torch.cat([p.images for p in parts]),
                                   torch.cat([p.targets + int(o) for p, o in zip(parts, offsets)]),
                                   sum((p.class_names for p in parts), []))
    _, validation = split_background(background)
    assert validation.num_classes == 101
    features = random_projection(dim=4)
    scores = choose_lr(features, validation, lrs=(0.1,), train_per_class=1)[1]
    assert scores[0.1] == stream_accuracy(features, validation, 100, 0.1, 1, [100])[100]
    assert scores[0.1] != stream_accuracy(features, validation, 101, 0.1, 1, [101])[101]
    _, table = compare_on_stream({"a": (SimpleNamespace(features=features), {})}, background, parts[0],
                                 train_per_class=1)
    assert table["a"]["validation"] == choose_lr(features, validation, 100, train_per_class=1)[1]


def test_a_huge_finite_loss_is_a_divergence_and_takes_no_step():
    """Some CPUs settle at huge finite losses where others overflow: both stop training, before the step."""
    from metakit.continual.oml import adam_step
    from metakit.runtime import Budget
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=0.1)
    with pytest.raises(FloatingPointError, match=r"the pretraining loss became 7.5e\+36; lower lr"):
        adam_step(opt, 2.5e36 * w.sum(), Budget(steps=5, progress=False), "the pretraining loss", "lr")
    assert torch.equal(w.detach(), torch.ones(3))
