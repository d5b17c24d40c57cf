import math
import re

import pytest
import torch

from metakit.compare import episode_accuracy
from metakit.episodes import EpisodeSampler, sample_episode
from metakit.gradient import family
from metakit.gradient.training import meta_train
from metakit.models import Conv4
from metakit.transfer import experiments
from metakit.transfer import mtl as M
from metakit.transfer import widgets as transfer_widgets
from metakit.widgets import run_safely

from .test_widgets import tiny_dataset


def pretrained_like(seed=0, hidden=4):
    """A small Conv-4 whose BatchNorm has non-trivial running statistics and affine parameters."""
    torch.manual_seed(seed)
    backbone = Conv4(hidden=hidden).train()
    with torch.no_grad():
        for _ in range(3):
            backbone(torch.rand(16, 1, 28, 28) * 3)
        for m in backbone.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    return backbone.eval()


def test_folding_batchnorm_keeps_the_backbones_test_time_features():
    backbone = pretrained_like()
    net = M.ScaledConv4(backbone)
    x = torch.rand(6, 1, 28, 28)
    assert torch.allclose(net.features(x), backbone(x), atol=1e-5)
    assert {n for n, _ in net.named_parameters()} == {*(f"scale.{i}" for i in range(4)),
                                                      *(f"shift.{i}" for i in range(4)), "head.weight", "head.bias"}
    assert torch.count_nonzero(net.head.weight) == 0 and torch.count_nonzero(net.head.bias) == 0


def test_the_modes_use_the_scaling_and_the_shifting_as_named():
    backbone = pretrained_like()
    net = M.ScaledConv4(backbone)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        for s in net.scale:
            s.fill_(1.5)
        for t in net.shift:
            t.fill_(0.3)
    out = {}
    for mode in M.SS_MODES:
        net.set_mode(mode)
        out[mode] = net.features(x)
    assert torch.allclose(out["off"], backbone(x), atol=1e-5)
    assert len({tuple(v.flatten()[:8].tolist()) for v in out.values()}) == 4  # four different feature maps
    with torch.no_grad():  # scaling the first convolution's weights by s is scaling its output before the bias
        w0 = net.weight0 * 1.5
        ref = torch.nn.functional.conv2d(x, w0, net.bias0 + 0.3, padding=1)
        net.set_mode("scale and shift")
        first = torch.nn.functional.conv2d(x, net.weight0 * net.scale[0][:, None, None, None], net.bias0 + net.shift[0],
                                           padding=1)
    assert torch.allclose(first, ref)
    with pytest.raises(ValueError, match="mode must be one of"):
        net.set_mode("sideways")


def test_a_backbone_without_running_statistics_is_refused_with_a_message():
    with pytest.raises(ValueError, match="running statistics"):
        M.ScaledConv4(Conv4(hidden=4, track_running_stats=False))


@pytest.mark.parametrize("mode", ["scale and shift", "off"])
def test_the_meta_gradient_matches_finite_differences(mode):
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(), n_way=3), inner_lr=0.5, inner_steps=3)
    with torch.no_grad():  # away from the symmetric start, so every direction matters
        mtl.model.head.weight.normal_(0, 0.3)
        for s in mtl.model.scale:
            s.uniform_(0.8, 1.2)
    mtl.model.set_mode(mode)
    task = sample_episode(tiny_dataset(classes=5, per_class=6), 3, 2, 2)
    assert M.meta_gradient_check(mtl, task) < 1e-6


def test_the_meta_gradient_check_catches_features_cut_off_from_the_scaling(monkeypatch):
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(), n_way=3), inner_lr=0.5, inner_steps=2)
    task = sample_episode(tiny_dataset(classes=5, per_class=6), 3, 2, 2)
    features = M.ScaledConv4.features
    monkeypatch.setattr(M.ScaledConv4, "features", lambda self, x: features(self, x).detach())
    assert M.meta_gradient_check(mtl, task) > 1e-3  # the right gradient gives about 1e-9


def test_the_inner_loop_moves_only_the_head_and_fits_the_support_set():
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(hidden=8), n_way=3), inner_lr=0.5, inner_steps=20)
    xs, ys, xq, yq = sample_episode(tiny_dataset(classes=5, per_class=6), 3, 2, 2)
    assert set(mtl.adapt(xs, ys, steps=0)) == {"weight", "bias"}
    untouched = mtl.predict(mtl.adapt(xs, ys, steps=0), xs)
    assert torch.count_nonzero(untouched) == 0  # the zero head: every class alike before the support set
    params = mtl.adapt(xs, ys)
    before = torch.nn.functional.cross_entropy(untouched, ys)  # log 3
    assert torch.nn.functional.cross_entropy(mtl.predict(params, xs), ys) < before
    assert 0.0 <= episode_accuracy(mtl, xs, ys, xq, yq) <= 1.0


def test_training_pretrains_then_meta_learns_the_scaling_and_shifting_only(tmp_path):
    data = tiny_dataset(classes=6, per_class=8)
    mtl = M.make_mtl(n_way=5, inner_lr=0.1)
    history = M.train(mtl, data, pretrain_steps=3, meta_steps=4, progress=False)
    assert history["pretrain_steps"] == 3 and history["steps"] == 4
    assert history["clock_seconds"] >= history["pretrain_clock_seconds"] > 0
    frozen = {n: b.clone() for n, b in mtl.model.named_buffers()}
    assert any(not torch.equal(s, torch.ones_like(s)) for s in mtl.model.scale)
    assert any(torch.count_nonzero(t) > 0 for t in mtl.model.shift)
    family.train(mtl, data, steps=2, progress=False)  # the outer loop leaves the frozen body alone
    assert all(torch.equal(frozen[n], b) for n, b in mtl.model.named_buffers())
    with pytest.raises(ValueError, match="give seconds"):
        M.train(mtl, data, pretrain_steps=3, progress=False)


def test_trained_mtl_trains_then_loads_its_checkpoint(tmp_path):
    data = tiny_dataset(classes=6, per_class=8)
    mtl, info = experiments.trained_mtl(data, 0.5, tmp_path, progress=False)
    assert not info["loaded"] and (tmp_path / "transfer-mtl-300s.pt").exists()
    assert info["pretrain_steps"] >= 1 and info["steps"] >= 0
    again, info2 = experiments.trained_mtl(data, 0.5, tmp_path, progress=False)
    assert info2["loaded"]
    assert all(torch.equal(a, b) for a, b in zip(mtl.state_dict().values(), again.state_dict().values()))


def test_with_test_steps_changes_only_the_test_time_steps():
    maml = family.make_algorithm("maml", hidden=4)
    ten = experiments.with_test_steps(maml, 10)
    assert ten.inner_steps == 10 and maml.inner_steps == 1
    assert all(torch.equal(a, b) for a, b in zip(maml.parameters(), ten.parameters()))


def test_the_mtl_curve_starts_at_chance_and_the_mode_is_restored():
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(hidden=8), n_way=5))
    data = tiny_dataset(classes=8, per_class=20)
    curve = experiments.mtl_curve(mtl, data, "off", k_shot=2, steps=5, lr=0.5, episodes=2)
    assert curve["steps"] == list(range(6)) and len(curve["acc"]) == 6 and len(curve["loss"]) == 5
    assert curve["acc"][0] == pytest.approx(0.2)  # the zero head ties every class: argmax picks class 0
    assert mtl.model.mode == "scale and shift"
    zero = experiments.mtl_curve(mtl, data, "off", k_shot=2, steps=0, lr=0.5, episodes=2)
    assert zero["loss"] == [] and zero["acc"] == curve["acc"][:1]


@pytest.mark.parametrize("values, message", [
    (dict(k_shot=19), "k_shot \\+ n_query"),
    (dict(lr=-1.0), "positive number"),
    (dict(lr=1e6, steps=30), "lower the learning rate"),
    (dict(steps=2.5), "whole number"),
    (dict(mode="sideways"), "mode must be one of"),
    (dict(dataset="nope"), "dataset must be one of"),
])
def test_the_mtl_explorer_shows_a_message_for_bad_values(values, message):
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(hidden=8), n_way=5))
    args = dict(mtl=mtl, datasets={"tiny": tiny_dataset(classes=8, per_class=20)}, dataset="tiny",
                mode="scale and shift", k_shot=1, steps=5, lr=0.1, episodes=2) | values
    fig, error = run_safely(transfer_widgets.mtl_figure, **args)
    assert fig is None and error and re.search(message, error), error


def test_the_mtl_explorer_redraws_for_every_mode():
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(hidden=8), n_way=5))
    explorer = transfer_widgets.mtl_explorer(mtl, {"tiny": tiny_dataset(classes=8, per_class=20)}, episodes=2)
    for mode in M.SS_MODES:
        explorer.controls["mode"].value = mode
        assert not explorer.message.value and explorer.image.value
    assert math.isfinite(explorer.seconds)


def test_without_scale_shift_is_a_copy_with_the_pretrained_features():
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(), n_way=3))
    with torch.no_grad():
        for s in mtl.model.scale:
            s.fill_(2.0)
    off = experiments.without_scale_shift(mtl)
    x = torch.rand(4, 1, 28, 28)
    assert off.model.mode == "off" and mtl.model.mode == "scale and shift"
    assert not torch.allclose(off.features(x), mtl.features(x))
    assert torch.equal(off.model.head.weight, mtl.model.head.weight)


def test_the_outer_optimiser_steps_the_scaling_and_shifting_ten_times_more_gently_than_the_head():
    mtl = M.MetaTransfer(M.ScaledConv4(pretrained_like(), n_way=3))
    groups = mtl.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [pytest.approx(1e-4), 1e-3]
    assert sum(len(g["params"]) for g in groups) == len(list(mtl.parameters()))
    seen = []

    class Recording(torch.optim.Adam):
        def __init__(self, params, lr):
            params = list(params)
            seen.append([g["lr"] for g in params])
            super().__init__(params, lr=lr)

    meta_train(mtl, EpisodeSampler(tiny_dataset(classes=6, per_class=8), 3, 1, 2), meta_lr=1e-3, meta_batch_size=2,
               steps=1, progress=False, optimizer=Recording)
    assert seen == [[pytest.approx(1e-4), 1e-3]]


def test_the_directional_check_steps_over_a_kink_that_lies_within_its_step():
    p = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    loss = lambda: (p - 0.2).pow(2).sum() + torch.relu(p - 0.5 + 3e-6).sum()  # noqa: E731  kink 3e-6 below p
    right, wrong = torch.tensor([1.6], dtype=torch.float64), torch.tensor([0.6], dtype=torch.float64)
    assert abs(M.central_difference(loss, [p], [torch.ones(1, dtype=torch.float64)], 1e-5) - 1.6) > 0.3  # kink inside
    assert M.directional_check(loss, [p], [right]) < 1e-6
    assert M.directional_check(loss, [p], [wrong]) > 0.5
