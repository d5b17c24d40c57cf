import copy
import inspect
import math
import types

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
    assert list(result) == ["baseline_5w1s", "baselinepp_5w1s", "proto_5w1s", "maml_5w1s", "mtl_5w1s", "mtloff_5w1s",
                            "maml10_5w1s", "mamlrot_5w1s", "baseline_omniglot", "proto_omniglot", "mtl_omniglot"]
    for key, value in result.items():  # quick mode leaves out MAML's two variants
        assert value == "nan" and ("omniglot" in key or key.startswith("maml")) or 0.0 <= float(value) <= 1.0
    assert result["mtl_5w1s"] != "nan" and "MTL:" in stdout
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


# Behaviour pinned: the new head's draw, pretraining's labels and rotations, Adam's and SGD's exact
# steps, what is recorded when, and where divergence is called.

def test_new_heads_are_drawn_from_the_generator_as_documented():
    linear = transfer.make_head("linear", 4, 3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(linear.weight, 0.01 * torch.randn(3, 4, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(linear.bias, torch.zeros(3))
    cosine = transfer.make_head("cosine", 4, 3, generator=torch.Generator().manual_seed(5))
    expected = F.normalize(torch.randn(3, 4, generator=torch.Generator().manual_seed(5)), dim=1)
    assert torch.allclose(cosine.weight, expected) and cosine.scale == transfer.SCALE == 10.0
    assert torch.allclose(cosine.weight.norm(dim=1), torch.ones(3))   # unit rows, so no class starts favoured


class RecordingConv4(Conv4):
    """A Conv-4 that keeps each batch it sees and whether it was in training mode."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__(hidden=4)
        self.seen = []

    def forward(self, x):
        self.seen.append((x.clone(), self.training))
        return super().forward(x)


def recording_cross_entropy(monkeypatch, nan_at=None):
    """Replace finetune's F.cross_entropy by one that records (logits, y), and returns NaN on call ``nan_at``."""
    calls = []

    def cross_entropy(logits, y):
        calls.append((logits.detach().clone(), y.clone()))
        loss = F.cross_entropy(logits, y)
        return loss * math.nan if len(calls) == nan_at else loss

    monkeypatch.setattr(transfer, "F", types.SimpleNamespace(cross_entropy=cross_entropy, normalize=F.normalize))
    return calls


@pytest.mark.parametrize("rotations", [True, False])
def test_pretraining_batches_carry_the_rotated_class_as_label(monkeypatch, rotations):
    dataset = tiny_dataset(classes=3, per_class=4)
    calls = recording_cross_entropy(monkeypatch)
    backbone = RecordingConv4()
    history = transfer.pretrain(backbone, dataset, "linear", steps=3, batch_size=16, rotations=rotations,
                                progress=False)
    images = 1.0 - dataset.images.float().unsqueeze(1) / 255.0   # (12, 1, 28, 28), as the dataset gives them
    classes = 12 if rotations else 3
    assert len(calls) == len(backbone.seen) == 3
    turns_seen = set()
    for (x, training), (logits, y) in zip(backbone.seen, calls):
        assert training and x.shape == (16, 1, 28, 28) and logits.shape == (16, classes)
        for xi, yi in zip(x, y.tolist()):
            turns, c = divmod(yi, 3)
            turns_seen.add(turns)
            assert any(torch.equal(xi, torch.rot90(images[j], turns, dims=(-2, -1)))
                       for j in dataset.labels_to_indices[c])
    assert history["loss"] == pytest.approx([F.cross_entropy(logits, y).item() for logits, y in calls])
    assert history["acc"] == [(logits.argmax(1) == y).float().mean().item() for logits, y in calls]
    assert turns_seen == ({0, 1, 2, 3} if rotations else {0})


def test_pretraining_rotates_classes_by_default(monkeypatch):
    calls = recording_cross_entropy(monkeypatch)
    transfer.pretrain(Conv4(hidden=4), tiny_dataset(classes=3), steps=1, batch_size=4, progress=False)
    assert calls[0][0].shape == (4, 12)


def test_cosine_head_normalises_each_embedding_and_each_class_row():
    head = transfer.CosineClassifier(4, 3, scale=2.0, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        head.weight.mul_(torch.tensor([[3.0], [0.5], [2.0]]))
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    expected = 2.0 * F.cosine_similarity(z[:, None], head.weight[None], dim=-1)   # (5, 3)
    assert torch.allclose(head(z), expected, atol=1e-6)


def test_unknown_layers_message_lists_the_choices():
    with pytest.raises(ValueError) as e:
        transfer.split_backbone(tiny_backbone(), "x")
    assert str(e.value) == "layers must be one of 'head', 'last block', 'all'; got 'x'."


def test_pretraining_takes_adams_first_step_of_the_given_lr():
    # Adam's first update is lr * g / (|g| + eps), about lr for every weight with a gradient
    for lr in (1e-3, 3e-2):
        backbone = Conv4(hidden=4)
        before = backbone.features[0][0].weight.clone()
        transfer.pretrain(backbone, tiny_dataset(), steps=1, batch_size=8, lr=lr, progress=False)
        step = (backbone.features[0][0].weight - before).abs()
        assert step.max().item() == pytest.approx(lr, rel=1e-3)
    assert inspect.signature(transfer.pretrain).parameters["lr"].default == 1e-3


def test_pretraining_with_no_steps_returns_empty_histories():
    history = transfer.pretrain(Conv4(hidden=4), tiny_dataset(), steps=0, progress=False)
    assert history["loss"] == [] and history["acc"] == [] and history["steps"] == 0


def test_pretraining_draws_head_and_batches_from_its_seed_alone():
    backbone = Conv4(hidden=4)

    def run(global_seed, **seed):
        torch.manual_seed(global_seed)                       # the global generator must not matter
        return transfer.pretrain(copy.deepcopy(backbone), tiny_dataset(), steps=2, batch_size=8, progress=False,
                                 **seed)["loss"]

    assert run(1, seed=0) == run(2, seed=0) == run(3) != run(1, seed=1)   # the default seed is 0


def test_pretraining_names_the_step_where_the_loss_stopped_being_finite(monkeypatch):
    recording_cross_entropy(monkeypatch, nan_at=2)
    with pytest.raises(FloatingPointError, match=r"^The loss became nan at step 2 with lr=0\.001\.$"):
        transfer.pretrain(Conv4(hidden=4), tiny_dataset(), steps=5, batch_size=4, progress=False)


def test_trim_history_keeps_two_hundred_values_by_default():
    assert transfer.trim_history({"loss": list(range(300))}) == {"loss": list(range(100, 300))}


def test_fine_tuning_defaults_are_chen_et_als():
    model = transfer.FineTuner(tiny_backbone())
    assert (model.head_kind, model.layers, model.steps, model.lr) == ("linear", "head", 100, 0.01)
    assert (model.momentum, model.weight_decay, model.seed) == (0.9, 1e-3, 0)
    assert model.history == {} and model.n_way is None      # nothing fitted yet


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_fine_tuning_is_sgd_with_momentum_and_weight_decay_from_the_seeded_head(head):
    # the same three steps written out: v = mu v + (g + wd w), w = w - lr v
    h = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    lr, mu, wd, seed = 0.3, 0.5, 0.1, 7
    model = transfer.FineTuner(tiny_backbone(), head=head, steps=3, lr=lr, momentum=mu, weight_decay=wd, seed=seed)
    model.fit_features(h, y)
    ref = transfer.make_head(head, 4, 3, generator=torch.Generator().manual_seed(seed))
    params = list(ref.parameters())
    velocity = [torch.zeros_like(p) for p in params]
    losses = []
    for _ in range(3):
        loss = F.cross_entropy(ref(h), y)
        losses.append(loss.item())
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, v, g in zip(params, velocity, grads):
                v.mul_(mu).add_(g + wd * p)
                p.sub_(lr * v)
    assert model.history["loss"] == pytest.approx(losses, rel=1e-5)
    for p, q in zip(model.head.parameters(), params):
        assert torch.allclose(p, q, atol=1e-6)
    assert model.n_way == 3 and torch.allclose(model.head(h), ref(h), atol=1e-5)


def test_the_tuned_block_moves_but_keeps_the_pretrained_batchnorm_statistics():
    backbone = tiny_backbone()
    with torch.no_grad():
        backbone.features[3][1].running_mean.fill_(0.5)     # statistics that a train-mode pass would change
    x_support, y_support, x_query = random_episode(3, 2, 2)
    model = transfer.FineTuner(backbone, layers="last block", steps=5, lr=0.1)
    model.fit_support(x_support, y_support)
    tuned_bn = model.tuned[0][1]
    assert torch.equal(tuned_bn.running_mean, backbone.features[3][1].running_mean)
    assert not torch.equal(model.tuned[0][0].weight, backbone.features[3][0].weight)
    # queries go through the frozen blocks, the tuned block and the new head, without a graph
    logits = model(x_query)
    with torch.no_grad():
        expected = model.head(model.tuned(model.frozen(x_query)))
    assert torch.allclose(logits, expected) and not logits.requires_grad


def test_frozen_features_use_the_running_statistics_even_from_a_training_backbone():
    backbone = tiny_backbone()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        expected = backbone(x)                               # tiny_backbone is in eval mode
    model = transfer.FineTuner(backbone.train())
    h = model.features(x)
    assert torch.allclose(h, expected) and not h.requires_grad


def test_watch_records_the_query_accuracy_every_tenth_of_the_steps_and_at_the_end():
    backbone = tiny_backbone()
    x_support, y_support, x_query = random_episode(4, 1, 3)
    y_query = torch.arange(4).repeat_interleave(3)
    model = transfer.FineTuner(backbone, steps=31, lr=0.5)
    model.fit_support(x_support, y_support, watch=(x_query, y_query))
    assert model.history["query_steps"] == [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 31]
    final = (model(x_query).argmax(1) == y_query).float().mean().item()
    assert model.history["query_acc"][-1] == final
    h_query = model.features(x_query)
    start = transfer.make_head("linear", 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert model.history["query_acc"][0] == (start(h_query).argmax(1) == y_query).float().mean().item()
    few = transfer.FineTuner(backbone, steps=3)
    few.fit_support(x_support, y_support, watch=(x_query, y_query))
    assert few.history["query_steps"] == [0, 1, 2, 3] and len(few.history["loss"]) == 3


def test_zero_steps_leave_the_seeded_head():
    model = transfer.FineTuner(tiny_backbone(), steps=0)
    h = torch.randn(4, 4)
    model.fit_features(h, torch.arange(4))
    assert model.history["loss"] == [] and model.n_way == 4
    assert torch.equal(model.head.weight, transfer.make_head("linear", 4, 4, torch.Generator().manual_seed(0)).weight)


def test_a_step_too_small_to_move_the_loss_is_not_divergence():
    model = transfer.FineTuner(tiny_backbone(), steps=3, lr=1e-30)
    model.fit_features(torch.randn(6, 4), torch.arange(3).repeat(2))
    assert model.history["loss"][0] == model.history["loss"][-1]


def test_a_rise_over_two_steps_is_divergence_and_one_step_cannot_rise():
    h = 10 * torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(3).repeat(2)
    transfer.FineTuner(tiny_backbone(), steps=1, lr=1e3).fit_features(h, y)   # one loss: nothing to compare
    for steps in (2, 3):
        model = transfer.FineTuner(tiny_backbone(), steps=steps, lr=1e3)
        with pytest.raises(FloatingPointError) as e:
            model.fit_features(h, y)
        loss = model.history["loss"]
        assert len(loss) == steps and loss[-1] > loss[0]
        assert str(e.value) == (f"Fine-tuning diverged: the support loss rose from {loss[0]:.3g} to {loss[-1]:.3g} in "
                                f"{steps} steps with lr=1000. Lower the learning rate (try lr / 10).")


def test_a_loss_that_stops_being_finite_names_its_step():
    h = 1e5 * torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    model = transfer.FineTuner(tiny_backbone(), steps=5, lr=1e30)
    with pytest.raises(FloatingPointError) as e:
        model.fit_features(h, torch.arange(3).repeat(2))
    step = len(model.history["loss"]) + 1
    assert str(e.value).startswith("Fine-tuning diverged: the support loss became ")
    assert str(e.value).endswith(f" at step {step} with lr=1e+30. Lower the learning rate (try lr / 10).")
