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


# --- adapt's and meta_loss's arguments, pinned by behaviour (issue 22: mutation survivors) ------

def test_adapt_is_second_order_unless_first_order_is_asked():
    """By default the adapted parameters depend on theta through the inner gradients too
    (d phi / d theta = I - alpha H); first_order=True makes them move one for one with theta."""
    model = sine_mlp(hidden=8)
    params = dict(model.named_parameters())
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    weight = params["2.weight"]
    slopes = {}
    for first_order in (False, True):
        kwargs = {} if first_order is False else {"first_order": True}
        phi = adapt(model, params, x_support, y_support, inner_lr=0.1, steps=2, loss_fn=F.mse_loss, **kwargs)
        slopes[first_order] = torch.autograd.grad(phi["2.weight"].sum(), weight)[0]
    torch.testing.assert_close(slopes[True], torch.ones_like(weight))
    assert (slopes[False] - 1).abs().max() > 1e-3


def test_adapt_returns_the_last_of_its_steps():
    """Three steps of adapt are two steps, then one more from there (not the second or first step)."""
    model = sine_mlp(hidden=8)
    params = {n: p.detach() for n, p in model.named_parameters()}
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    kwargs = dict(inner_lr=0.05, loss_fn=F.mse_loss)
    three = adapt(model, params, x_support, y_support, steps=3, **kwargs)
    two_then_one = adapt(model, adapt(model, params, x_support, y_support, steps=2, **kwargs),
                         x_support, y_support, steps=1, **kwargs)
    for n in params:
        torch.testing.assert_close(three[n], two_then_one[n])
    assert not torch.allclose(three["4.bias"], adapt(model, params, x_support, y_support, steps=2, **kwargs)["4.bias"])


def test_per_param_lr_sets_each_parameters_rate():
    """A per-parameter rate replaces inner_lr for that parameter, in adapt and in meta_loss: a rate
    of zero keeps the parameter where it was, the others take the plain step of inner_lr."""
    model = sine_mlp(hidden=8)
    params = {n: p.detach() for n, p in model.named_parameters()}
    tasks = sine_tasks(tasks=1)
    x_support, y_support = tasks[0][0], tasks[1][0]
    rates = {"0.weight": torch.tensor(0.0), "4.bias": torch.tensor(0.3)}
    got = adapt(model, params, x_support, y_support, inner_lr=0.05, steps=1, loss_fn=F.mse_loss, per_param_lr=rates)
    grads = torch.func.grad(lambda p: F.mse_loss(torch.func.functional_call(model, p, (x_support,)), y_support))(params)
    for n in params:
        rate = rates[n] if n in rates else 0.05
        torch.testing.assert_close(got[n], params[n] - rate * grads[n])
    run = meta_loss(model, params, tasks, inner_lr=0.05, steps=1, loss_fn=F.mse_loss, per_param_lr=rates,
                    vectorize=False, keep_adapted=True)
    for n in params:
        torch.testing.assert_close(run.adapted[n][0], got[n])


def test_diverging_learned_rates_are_described_in_the_message():
    """With learned rates the message gives their range (per step, per parameter, or Meta-SGD's
    dict given as inner_lr); a single learned rate is named as inner_lr."""
    torch.manual_seed(0)
    model = sine_mlp(hidden=4)
    params = dict(model.named_parameters())
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    names = list(params)
    per_param = {n: torch.tensor(2e6 if i else 1e6) for i, n in enumerate(names)}
    cases = [({"per_step_lr": {n: torch.tensor([1e5, 3e5, 1e6]) for n in names}},
              r"inner_lr=learned rates from 1e\+05 to 1e\+06; lower inner_lr\.$"),
             ({"per_param_lr": per_param}, r"inner_lr=learned rates from 1e\+06 to 2e\+06; lower inner_lr\.$"),
             ({"per_step_lr": torch.tensor([1e6, 2e6, 3e6])}, r"inner_lr=learned rates from 1e\+06 to 3e\+06"),
             ({"inner_lr": per_param}, r"inner_lr=learned rates from 1e\+06 to 2e\+06")]
    for kwargs, message in cases:
        with pytest.raises(FloatingPointError, match=message):
            adapt(model, params, x_support, y_support, steps=3, loss_fn=F.mse_loss, **{"inner_lr": 0.01, **kwargs})
    with pytest.raises(FloatingPointError, match=r"at step 4 with inner_lr=4e\+06; lower inner_lr\.$"):
        adapt(model, params, x_support, y_support, inner_lr=0.01, steps=6, loss_fn=F.mse_loss,
              per_param_lr={"4.bias": torch.tensor(4e6)})
    with pytest.raises(FloatingPointError, match=r"with inner_lr=learned rates from 4e\+06 to 4e\+06; lower"):
        adapt(model, params, x_support, y_support, inner_lr=0.01, steps=6, loss_fn=F.mse_loss,
              per_param_lr={"4.bias": torch.tensor(4e6), "4.weight": torch.tensor(4e6)})


def test_a_forward_function_works_in_place_of_a_module():
    """adapt, meta_loss and default_vectorize take a ``forward(params, x, step)`` function as well as
    a module (MAML++ passes one); a function is vectorised by default and gives the module's numbers."""
    model = sine_mlp(hidden=8)
    params = dict(model.named_parameters())
    forward = functional_forward(model)
    del forward.batch_norm                       # a bare function says nothing about BatchNorm
    assert default_vectorize(forward) is True
    tasks = sine_tasks(tasks=2)
    kwargs = dict(inner_lr=0.05, steps=2, loss_fn=F.mse_loss)
    torch.testing.assert_close(meta_loss(forward, params, tasks, **kwargs).loss,
                               meta_loss(model, params, tasks, **kwargs).loss)
    x_support, y_support = tasks[0][0], tasks[1][0]
    torch.testing.assert_close(adapt(forward, params, x_support, y_support, **kwargs)["0.weight"],
                               adapt(model, params, x_support, y_support, **kwargs)["0.weight"])


def test_meta_loss_picks_vmap_by_model_and_returns_adapted_only_when_asked(monkeypatch):
    """vectorize=None follows default_vectorize (vmap for an MLP, the loop for a conv net);
    True or False is obeyed; the adapted parameters come back only with keep_adapted=True."""
    import metakit.gradient.functional as functional
    calls = []
    real_vmap = functional.vmap
    monkeypatch.setattr(functional, "vmap", lambda *a, **k: calls.append(1) or real_vmap(*a, **k))

    def used_vmap(model, tasks, **kwargs):
        calls.clear()
        out = meta_loss(model, dict(model.named_parameters()), tasks, inner_lr=0.01, steps=1, **kwargs)
        return bool(calls), out

    mlp, conv = sine_mlp(hidden=4), tiny_conv4()
    vmapped, out = used_vmap(mlp, sine_tasks(tasks=2), loss_fn=F.mse_loss)
    assert vmapped and out.adapted is None
    assert not used_vmap(conv, image_tasks())[0]
    assert used_vmap(conv, image_tasks(), vectorize=True)[0]
    assert not used_vmap(mlp, sine_tasks(tasks=2), loss_fn=F.mse_loss, vectorize=False)[0]
    _, result = used_vmap(mlp, sine_tasks(tasks=2), loss_fn=F.mse_loss, keep_adapted=True)
    assert result.adapted["0.weight"].shape[0] == 2


def test_meta_loss_passes_only_step_indices_and_the_weighted_steps():
    """meta_loss adapts only the ``only`` parameters; calls the forward with the inner step's index
    (support at step k uses k, the query after the last step uses steps - 1: MAML++'s per-step
    BatchNorm rows); weights the query losses after each step; returns the last step's outputs and
    parameters, which are adapt's."""
    torch.manual_seed(0)
    model = sine_mlp(hidden=8)
    params = {n: p.detach() for n, p in model.named_parameters()}
    tasks = sine_tasks(tasks=1)
    module_forward, seen = functional_forward(model), []

    def forward(p, x, step):
        seen.append((len(x), step))
        return module_forward(p, x)

    kwargs = dict(inner_lr=0.05, steps=3, loss_fn=F.mse_loss, vectorize=False, keep_adapted=True)
    last = meta_loss(forward, params, tasks, **kwargs)
    n_support, n_query = tasks[0].shape[1], tasks[2].shape[1]
    assert seen == [(n_support, 0), (n_support, 1), (n_support, 2), (n_query, 2)]
    phi = adapt(model, params, tasks[0][0], tasks[1][0], inner_lr=0.05, steps=3, loss_fn=F.mse_loss)
    for n in params:
        torch.testing.assert_close(last.adapted[n][0], phi[n])
    seen.clear()
    weighted = meta_loss(forward, params, tasks, step_weights=[0.2, 0.3, 0.5], **kwargs)
    assert seen[3:] == [(n_query, 0), (n_query, 1), (n_query, 2)]
    torch.testing.assert_close(weighted.outputs, last.outputs)
    queries = [F.mse_loss(module_forward(adapt(model, params, tasks[0][0], tasks[1][0], inner_lr=0.05, steps=k,
                                               loss_fn=F.mse_loss), tasks[2][0]), tasks[3][0]) for k in (1, 2, 3)]
    torch.testing.assert_close(weighted.loss, 0.2 * queries[0] + 0.3 * queries[1] + 0.5 * queries[2])
    torch.testing.assert_close(last.loss, queries[2])

    head = ["4.weight", "4.bias"]
    only = meta_loss(model, params, tasks, only=head, **kwargs)
    for n in params:
        assert torch.equal(only.adapted[n][0], params[n]) == (n not in head), n


# --- DecomposedBatchNorm's arguments, pinned by behaviour (issue 22: mutation survivors) ---------

def test_decomposed_batch_norm_leaves_running_statistics_to_the_fused_kernel():
    """A BatchNorm with running statistics is passed through unchanged: in eval mode it normalises
    with its running mean and variance (not the batch's), in training mode it updates them."""
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3, eps=0.1)
    nn.init.uniform_(bn.weight, 0.5, 1.5)
    nn.init.uniform_(bn.bias)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(4, 3, 5, 5)
    outside = bn.eval()(x)
    with DecomposedBatchNorm():
        inside = bn(x)
    torch.testing.assert_close(inside, outside)
    running = bn.running_mean.clone()
    with DecomposedBatchNorm():
        bn.train()(x)
    torch.testing.assert_close(bn.running_mean, 0.9 * running + 0.1 * x.mean((0, 2, 3)))


def test_decomposed_batch_norm_uses_eps_and_works_without_affine_parameters():
    """Batch statistics normalised with the module's own eps (0.5, not the default 1e-5), and a
    BatchNorm without weight and bias (affine=False) is a plain normalisation."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5)
    for bn in (nn.BatchNorm2d(3, eps=0.5, track_running_stats=False),
               nn.BatchNorm2d(3, affine=False, track_running_stats=False)):
        with DecomposedBatchNorm():
            decomposed = bn(x)
        torch.testing.assert_close(decomposed, bn(x), rtol=1e-5, atol=1e-5)
    with DecomposedBatchNorm():
        plain = nn.BatchNorm1d(3, affine=False, track_running_stats=False)(x[:, :, 0, 0])
    torch.testing.assert_close(plain.mean(0), torch.zeros(3), atol=1e-6, rtol=0)


def test_decomposed_batch_norm_reads_batch_norms_arguments_by_position_too():
    """The handler takes F.batch_norm's arguments as F.batch_norm does: all by position (input,
    running_mean, running_var, weight, bias, training, momentum, eps), or the trailing ones left to
    F.batch_norm's defaults (eps=1e-5)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 5, 5, generator=g)
    weight, bias = torch.rand(3, generator=g) + 0.5, torch.rand(3, generator=g) + 0.5
    handler = DecomposedBatchNorm().__torch_function__
    got = handler(F.batch_norm, (), (x, None, None, weight, bias, True, 0.1, 0.5))
    torch.testing.assert_close(got, F.batch_norm(x, None, None, weight, bias, True, 0.1, 0.5), rtol=1e-5, atol=1e-5)
    got = handler(F.batch_norm, (), (x, None, None, weight, bias))
    torch.testing.assert_close(got, F.batch_norm(x, None, None, weight, bias, training=True), rtol=1e-5, atol=1e-5)


def test_decomposed_batch_norm_accumulates_its_statistics_in_float64():
    """Mean and variance are taken in float64 for a float32 input: a channel whose variance (1e40)
    overflows float32 is still normalised as float64 normalises it (float32 statistics give
    an infinite variance, so all zeros)."""
    x = torch.tensor([[-3e19, 1e20], [3e19, -1e20], [0.0, 2e20], [1e19, 0.0]])  # (4, 2) float32
    with DecomposedBatchNorm():
        decomposed = F.batch_norm(x, None, None, training=True)
    assert decomposed.dtype == torch.float32
    torch.testing.assert_close(decomposed, F.batch_norm(x.double(), None, None, training=True).float())
