import math

import pytest
import torch
import torch.nn.functional as F
from helpers import random_episode, run_quick

import metakit
from metakit.datasets import ImageClassDataset
from metakit.models import Conv4
from metakit.transfer import finetune as transfer


def tiny_backbone(seed=0):
    torch.manual_seed(seed)
    return Conv4(hidden=4).eval()


def tiny_dataset(classes=3, per_class=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(classes * per_class, 28, 28, generator=g) * 255).to(torch.uint8)
    targets = torch.arange(classes).repeat_interleave(per_class)
    return ImageClassDataset(images, targets, [f"a{c % 2}/c{c}" for c in range(classes)], name="tiny")


def test_cosine_head_is_scaled_cosine_and_ignores_norms():
    head = transfer.CosineClassifier(3, 2, scale=5.0)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]))
    z = torch.tensor([[3.0, 4.0, 0.0]])
    assert torch.allclose(head(z), torch.tensor([[5.0 * 0.6, 5.0 * 0.8]]))
    before = head(z)
    with torch.no_grad():
        head.weight.mul_(torch.tensor([[7.0], [0.1]]))  # rescaling a class's weights changes nothing
    assert torch.allclose(head(z), before) and torch.allclose(head(10 * z), before)


def test_make_head_refuses_unknown_kind():
    with pytest.raises(ValueError, match="linear' or 'cosine"):
        transfer.make_head("svm", 4, 2)


@pytest.mark.parametrize("layers, tuned_params", [("head", 0), ("last block", 4), ("all", 16)])
def test_split_backbone_parts_compose_to_the_backbone(layers, tuned_params):
    backbone = tiny_backbone()
    frozen, tuned = transfer.split_backbone(backbone, layers)
    x = torch.rand(6, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(tuned(frozen(x)), backbone(x))
    assert len(list(tuned.parameters())) == tuned_params


def test_split_backbone_refuses_unknown_layers():
    with pytest.raises(ValueError, match="layers must be one of"):
        transfer.split_backbone(tiny_backbone(), "first block")


@pytest.mark.parametrize("head", ["linear", "cosine"])
@pytest.mark.parametrize("layers", transfer.LAYERS)
def test_fine_tuning_lowers_the_support_loss_and_leaves_the_backbone_alone(head, layers):
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    x_support, y_support, x_query = random_episode(3, 2, 2)
    model = transfer.FineTuner(backbone, head=head, layers=layers, steps=30, lr=0.05)
    model.fit_support(x_support, y_support)
    loss = model.history["loss"]
    assert len(loss) == 30 and loss[-1] < loss[0]
    assert model(x_query).shape == (6, 3)
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())


def test_fine_tuning_is_deterministic_and_watch_records_query_accuracy():
    backbone = tiny_backbone()
    x_support, y_support, x_query = random_episode(4, 1, 3)
    y_query = torch.arange(4).repeat_interleave(3)
    a = transfer.FineTuner(backbone, steps=50, seed=1)
    a.fit_support(x_support, y_support, watch=(x_query, y_query))
    b = transfer.FineTuner(backbone, steps=50, seed=1)
    b.fit_support(x_support, y_support)
    assert torch.equal(a(x_query), b(x_query))
    assert a.history["query_steps"][0] == 0 and a.history["query_steps"][-1] == 50
    assert len(a.history["query_acc"]) == len(a.history["query_steps"])
    assert all(0 <= v <= 1 for v in a.history["query_acc"])


def test_head_only_fine_tuning_fits_separable_features():
    # a linear head on the features is logistic regression: on separable features it fits the support set
    backbone = tiny_backbone()
    model = transfer.FineTuner(backbone, steps=300, lr=0.5)
    h = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    y = torch.arange(4)
    model.fit_features(h, y)
    assert torch.equal(model.head(h).argmax(1), y)
    assert model.history["loss"][-1] < 0.2


def test_diverging_fine_tuning_raises_a_clear_error():
    x_support, y_support, _ = random_episode(3, 1, 1)
    model = transfer.FineTuner(tiny_backbone(), head="linear", steps=50, lr=1e30)
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        model.fit_support(x_support * 1e3, y_support)


@pytest.mark.parametrize("kwargs, match", [({"lr": 0.0}, "positive"), ({"lr": math.nan}, "positive"),
                                           ({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"),
                                           ({"head": "svm"}, "cosine"), ({"layers": "x"}, "layers")])
def test_fine_tuner_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        transfer.FineTuner(tiny_backbone(), **kwargs)


def test_fine_tuner_needs_a_support_set_first():
    with pytest.raises(RuntimeError, match="fit_support"):
        transfer.FineTuner(tiny_backbone())(torch.rand(2, 1, 28, 28))


def test_pretrain_counts_steps_uses_rotated_classes_and_changes_the_backbone():
    backbone = Conv4(hidden=4)
    before = backbone.features[0][0].weight.clone()
    history = transfer.pretrain(backbone, tiny_dataset(), "cosine", steps=3, batch_size=8, progress=False)
    assert history["steps"] == 3 and len(history["loss"]) == 3
    assert all(math.isfinite(v) for v in history["loss"])
    assert not torch.equal(before, backbone.features[0][0].weight)
    assert not backbone.training


def test_pretrain_stops_on_its_clock_budget():
    ticks = iter(range(1000))
    history = transfer.pretrain(Conv4(hidden=4), tiny_dataset(), steps=None, seconds=3, batch_size=4,
                                clock=lambda: next(ticks), progress=False)
    # the fake clock moves one second per call: it starts at 0 and the first check after a step reads 3
    assert history["steps"] == 1


def test_pretrain_runs_on_the_kits_budget_wall_clock_by_default():
    import inspect
    import time

    assert inspect.signature(transfer.pretrain).parameters["clock"].default is time.perf_counter
    history = transfer.pretrain(Conv4(hidden=4), tiny_dataset(), steps=2, batch_size=4, progress=False)
    assert set(history) == {"loss", "acc", "steps", "seconds", "clock_seconds"} and history["steps"] == 2
    assert not hasattr(transfer, "_budget") and not hasattr(transfer, "train_episodic")


def test_fine_tuners_say_they_need_gradients_to_fit():
    assert transfer.FineTuner.needs_grad_to_fit is True


def test_pretrain_needs_a_budget():
    with pytest.raises(ValueError, match="budget"):
        transfer.pretrain(Conv4(hidden=4), tiny_dataset(), progress=False)


def test_proto_equals_a_linear_head_initialised_at_the_prototypes():
    # -|z - c|^2 = 2 z.c - |c|^2 - |z|^2, and -|z|^2 is the same for every class: same softmax
    z, c = torch.randn(7, 4), torch.randn(3, 4)
    proto = -(z[:, None] - c[None]).pow(2).sum(-1)
    linear = z @ (2 * c).T - c.pow(2).sum(-1)
    assert torch.allclose(F.softmax(proto, 1), F.softmax(linear, 1), atol=1e-6)


def test_quick_benchmark():
    stdout, result = run_quick("transfer.py")
    assert list(result) == ["baseline_5w1s", "baselinepp_5w1s", "proto_5w1s", "maml_5w1s", "baseline_omniglot",
                            "proto_omniglot"]
    for key, value in result.items():
        assert value == "nan" and "omniglot" in key or 0.0 <= float(value) <= 1.0
    assert "paired differences" in stdout and "Chen et al. 2019" in stdout
    assert f"device: {metakit.device()}" in stdout.splitlines()


def test_a_support_loss_that_rises_counts_as_diverged():
    # a step far too large overshoots the minimum: the loss ends above where it started, finite or not
    model = transfer.FineTuner(tiny_backbone(), head="linear", steps=20, lr=1e3)
    h = 10 * torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(FloatingPointError, match="diverged"):
        model.fit_features(h, torch.arange(3).repeat(2))


def test_trim_history_keeps_the_last_values_and_the_numbers():
    h = transfer.trim_history({"loss": list(range(10)), "steps": 10, "clock_seconds": 1.5}, keep=3)
    assert h == {"loss": [7, 8, 9], "steps": 10, "clock_seconds": 1.5}
