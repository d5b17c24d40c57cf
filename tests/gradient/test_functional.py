import pytest
import torch
import torch.nn.functional as F
from helpers import image_tasks, learn2learn_meta_loss, sine_tasks, tiny_conv4
from torch import nn

from metakit.gradient.functional import adapt, default_vectorize, functional_forward, meta_loss
from metakit.gradient.vmap_batchnorm import DecomposedBatchNorm
from metakit.models import Conv4


def sine_mlp(hidden=40):
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def assert_grads_close(got, expected, rtol=1e-4):
    # a conv bias just before BatchNorm has a gradient of zero up to round-off, so the tolerance
    # is relative to each tensor's gradient and, for those, to the whole gradient's size
    floor = 1e-5 * torch.cat([e.flatten() for e in expected]).norm()
    for i, (g, e) in enumerate(zip(got, expected)):
        assert (g - e).norm() <= rtol * e.norm() + floor, (i, (g - e).norm().item(), e.norm().item())


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("kind", ["mlp", "conv4"])
def test_meta_loss_matches_learn2learn(kind, steps, first_order):
    torch.manual_seed(0)
    if kind == "mlp":
        model, tasks, loss_fn, inner_lr = sine_mlp(), sine_tasks(), F.mse_loss, 0.01
    else:
        model, tasks, loss_fn, inner_lr = tiny_conv4(), image_tasks(), F.cross_entropy, 0.4
    params = dict(model.named_parameters())
    expected = learn2learn_meta_loss(model, tasks, inner_lr=inner_lr, steps=steps, first_order=first_order,
                                     loss_fn=loss_fn)
    expected_grads = torch.autograd.grad(expected, list(params.values()))
    for vectorize in (False, True):
        got = meta_loss(model, params, tasks, inner_lr=inner_lr, steps=steps, loss_fn=loss_fn,
                        first_order=first_order, vectorize=vectorize).loss
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        assert_grads_close(torch.autograd.grad(got, list(params.values())), expected_grads)


def tanh_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, 5), nn.Tanh(), nn.Linear(5, 1)).double()


def test_one_step_meta_gradient_is_i_minus_alpha_hessian_times_query_gradient():
    model, alpha = tanh_mlp(), 0.3
    x_support, y_support, x_query, y_query = (t[0].double() for t in sine_tasks(tasks=1, k_shot=5, n_query=5))
    params = dict(model.named_parameters())
    theta = list(params.values())
    forward = functional_forward(model)

    # the meta-gradient by the formula: (I - alpha H_support(theta)) grad L_query(theta')
    g_support = torch.autograd.grad(F.mse_loss(forward(params, x_support), y_support), theta, create_graph=True)
    adapted = {n: (t - alpha * g).detach().requires_grad_() for (n, t), g in zip(params.items(), g_support)}
    v = torch.autograd.grad(F.mse_loss(forward(adapted, x_query), y_query), list(adapted.values()))
    hv = torch.autograd.grad(g_support, theta, grad_outputs=v)  # Hessian-vector product by double backward
    formula = [vi - alpha * hvi for vi, hvi in zip(v, hv)]

    tasks = tuple(t[None] for t in (x_support, y_support, x_query, y_query))
    loss = meta_loss(model, params, tasks, inner_lr=alpha, steps=1, loss_fn=F.mse_loss).loss
    for got, want in zip(torch.autograd.grad(loss, theta), formula):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)

    # and against central finite differences of the meta-loss, one parameter element at a time
    flat = torch.cat([t.detach().flatten() for t in theta])
    shapes = [t.shape for t in theta]

    def meta_loss_at(vector):
        pieces = torch.split(vector, [s.numel() for s in shapes])
        p = {n: piece.view(s) for n, piece, s in zip(params, pieces, shapes)}
        return meta_loss(model, p, tasks, inner_lr=alpha, steps=1, loss_fn=F.mse_loss).loss.item()

    h = 1e-6
    numeric = torch.tensor([(meta_loss_at(flat + h * e) - meta_loss_at(flat - h * e)) / (2 * h)
                            for e in torch.eye(len(flat), dtype=flat.dtype)], dtype=flat.dtype)
    torch.testing.assert_close(numeric, torch.cat([f.flatten() for f in formula]), rtol=1e-6, atol=1e-8)


def test_adapting_lowers_the_support_loss():
    model = sine_mlp()
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    params = dict(model.named_parameters())
    before = F.mse_loss(model(x_support), y_support)
    adapted = adapt(model, params, x_support, y_support, inner_lr=0.01, steps=5, loss_fn=F.mse_loss)
    after = F.mse_loss(functional_forward(model)(adapted, x_support), y_support)
    assert after < before
    assert adapt(model, params, x_support, y_support, inner_lr=0.01, steps=0) is params


def test_meta_gradients_reach_every_initial_parameter():
    model = tiny_conv4()
    params = dict(model.named_parameters())
    loss = meta_loss(model, params, image_tasks(), inner_lr=0.4, steps=2).loss
    grads = torch.autograd.grad(loss, list(params.values()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_only_adapts_the_named_parameters():
    model = tiny_conv4()
    params = dict(model.named_parameters())
    x_support, y_support, _, _ = (t[0] for t in image_tasks())
    adapted = adapt(model, params, x_support, y_support, inner_lr=0.4, steps=2, only=["head.weight", "head.bias"])
    assert all(adapted[n] is params[n] for n in params if not n.startswith("head."))
    assert not torch.equal(adapted["head.weight"], params["head.weight"])


def test_vmap_and_loop_agree_with_learned_rates_and_keep_adapted():
    model = sine_mlp(hidden=8)
    params = dict(model.named_parameters())
    rates = {n: torch.full((3,), 0.01, requires_grad=True) for n in params}
    runs = [meta_loss(model, params, sine_tasks(), inner_lr=0.01, steps=3, loss_fn=F.mse_loss, per_step_lr=rates,
                      vectorize=v, step_weights=[0.2, 0.3, 0.5], keep_adapted=True) for v in (False, True)]
    torch.testing.assert_close(runs[0].loss, runs[1].loss)
    torch.testing.assert_close(runs[0].outputs, runs[1].outputs)
    for n in params:
        torch.testing.assert_close(runs[0].adapted[n], runs[1].adapted[n])
    inputs = list(params.values()) + list(rates.values())
    for a, b in zip(*(torch.autograd.grad(r.loss, inputs) for r in runs)):
        torch.testing.assert_close(a, b)


def test_diverging_inner_lr_raises_a_helpful_error():
    model = sine_mlp()
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    params = dict(model.named_parameters())
    message = r"inner loss became .* at step \d+ with inner_lr=1e\+06; lower inner_lr"
    with pytest.raises(FloatingPointError, match=message):
        adapt(model, params, x_support, y_support, inner_lr=1e6, steps=5, loss_fn=F.mse_loss)
    with pytest.raises(FloatingPointError, match="lower inner_lr"):
        meta_loss(model, params, sine_tasks(), inner_lr=1e6, steps=5, loss_fn=F.mse_loss)


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="track_running_stats=False"):
        functional_forward(Conv4(hidden=4, out_features=5))
    model = sine_mlp(hidden=4)
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    rates = {n: torch.full((2,), 0.1) for n, _ in model.named_parameters()}
    with pytest.raises(ValueError, match="Choose steps <= 2"):
        adapt(model, dict(model.named_parameters()), x_support, y_support, inner_lr=0.1, steps=3, per_step_lr=rates)
    with pytest.raises(ValueError, match="not parameters"):
        adapt(model, dict(model.named_parameters()), x_support, y_support, inner_lr=0.1, steps=1, only=["head.weight"])


def test_default_vectorize_by_model_kind():
    assert default_vectorize(sine_mlp()) is True
    assert default_vectorize(tiny_conv4()) is False


def test_decomposed_batch_norm_matches_the_fused_kernel():
    bn = nn.BatchNorm2d(3, track_running_stats=False)
    nn.init.uniform_(bn.weight)
    nn.init.uniform_(bn.bias)
    x = torch.randn(4, 3, 5, 5)
    with DecomposedBatchNorm():
        decomposed = bn(x)
    torch.testing.assert_close(decomposed, bn(x), rtol=1e-5, atol=1e-5)
