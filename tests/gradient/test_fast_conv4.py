import pytest
import torch
import torch.nn.functional as F
from helpers import image_tasks, learn2learn_meta_loss
from torch import nn

from metakit.gradient.fast_conv4 import conv4_forward, folded_first_block
from metakit.gradient.functional import functional_forward, meta_loss
from metakit.models import Conv4


def conv4(hidden=8, in_channels=1, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    model = Conv4(in_channels=in_channels, hidden=hidden, out_features=5, track_running_stats=False).to(dtype)
    with torch.no_grad():  # BatchNorm weights away from 1 and biases away from 0, so a wrong fold shows
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return model


def tasks_of(dtype=torch.float64, **kwargs):
    return tuple(t.to(dtype) if t.is_floating_point() else t for t in image_tasks(**kwargs))


def relative_errors(got, expected):
    """Per tensor ``|g - e| / |e|``, leaving out the conv biases before BatchNorm (zero gradient in exact
    arithmetic, round-off here)."""
    whole = torch.cat([e.flatten() for e in expected]).norm()
    return [((g - e).norm() / e.norm()).item() for g, e in zip(got, expected) if e.norm() > 1e-8 * whole]


def test_folded_first_block_is_conv_then_batch_norm():
    torch.manual_seed(0)
    x = torch.rand(7, 1, 28, 28, dtype=torch.float64)
    w, b = torch.randn(6, 1, 3, 3, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    gamma, beta = torch.rand(6, dtype=torch.float64) + 0.5, torch.randn(6, dtype=torch.float64)
    expected = F.batch_norm(F.conv2d(x, w, b, padding=1), None, None, gamma, beta, training=True, eps=1e-3)
    w2, b2, shift = folded_first_block(x, w, b, gamma, beta, eps=1e-3)
    torch.testing.assert_close(F.conv2d(x, w2, b2, padding=1) + shift[:, None, None], expected, rtol=1e-12, atol=1e-12)
    w3, b3, shift = folded_first_block(x, w, None, None, None, eps=1e-5)  # no bias, no affine BatchNorm
    assert b3 is None
    expected = F.batch_norm(F.conv2d(x, w, padding=1), None, None, training=True)
    torch.testing.assert_close(F.conv2d(x, w3, padding=1) + shift[:, None, None], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_fast_forward_equals_the_module(in_channels):
    model = conv4(in_channels=in_channels)
    x = torch.rand(10, in_channels, 28, 28, dtype=torch.float64)
    params = dict(model.named_parameters())
    torch.testing.assert_close(conv4_forward(model)(params, x), model(x), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("steps", [1, 2])
@pytest.mark.parametrize("tasks, n_way, k_shot, n_query", [(3, 5, 1, 3), (1, 5, 1, 2), (2, 1, 1, 4), (2, 3, 2, 2)])
def test_float64_meta_gradients_equal_the_module_loop_and_learn2learn(tasks, n_way, k_shot, n_query, steps):
    """Several tasks, a single task, one class (batch statistics of one image), two shots."""
    model = conv4()
    batch = tasks_of(tasks=tasks, n_way=n_way, k_shot=k_shot, n_query=n_query, seed=1)
    params = dict(model.named_parameters())
    kwargs = dict(inner_lr=0.4, steps=steps, loss_fn=F.cross_entropy)
    reference = torch.autograd.grad(meta_loss(functional_forward(model, fast=False), params, batch,
                                              vectorize=False, **kwargs).loss, list(params.values()))
    l2l = torch.autograd.grad(learn2learn_meta_loss(model, batch, first_order=False, **kwargs), list(params.values()))
    for vectorize in (False, True):
        result = meta_loss(functional_forward(model, fast=True), params, batch, vectorize=vectorize, **kwargs)
        got = torch.autograd.grad(result.loss, list(params.values()))
        assert max(relative_errors(got, reference)) < 1e-10
        assert max(relative_errors(got, l2l)) < 1e-10
        assert got[1].norm() < 1e-10 * reference[0].norm()  # the first conv bias cancels in BatchNorm


def test_float32_meta_gradients_agree_with_learn2learn_to_1e_4():
    model = conv4(hidden=16, dtype=torch.float32)
    batch = tasks_of(torch.float32, tasks=4, n_query=5, seed=2)
    params = dict(model.named_parameters())
    kwargs = dict(inner_lr=0.4, steps=1, loss_fn=F.cross_entropy)
    got = torch.autograd.grad(meta_loss(functional_forward(model, fast=True), params, batch, vectorize=False,
                                        **kwargs).loss, list(params.values()))
    l2l = torch.autograd.grad(learn2learn_meta_loss(model, batch, first_order=False, **kwargs), list(params.values()))
    whole = torch.cat([e.flatten() for e in l2l]).norm()
    assert max(((g - e).norm() / e.norm()).item() for g, e in zip(got, l2l) if e.norm() > 1e-4 * whole) < 1e-4


def test_other_models_and_partial_params_fall_back_to_the_module():
    assert conv4_forward(nn.Sequential(nn.Linear(2, 2))) is None
    assert conv4_forward(Conv4(hidden=4, out_features=5, track_running_stats=True)) is None
    model = conv4()
    model.features[0][3] = nn.MaxPool2d(3)  # not a block the rewrite knows
    assert conv4_forward(model) is None
    model = conv4()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    head_only = {n: p for n, p in model.named_parameters() if n.startswith("head")}
    torch.testing.assert_close(conv4_forward(model)(head_only, x), model(x))  # buffers and the rest from the module
    embedding = conv4()
    embedding.head = None
    torch.testing.assert_close(conv4_forward(embedding)(dict(embedding.named_parameters()), x), embedding(x),
                               rtol=1e-11, atol=1e-11)
