import pytest
import torch
import torch.nn.functional as F
from helpers import central_difference, image_tasks, learn2learn_meta_loss, sine_tasks, tiny_conv4
from torch import nn

from metakit.gradient.anil import ANIL
from metakit.gradient.functional import adapt
from metakit.gradient.maml import MAML
from metakit.gradient.mamlpp import MAMLPlusPlus
from metakit.gradient.metasgd import MetaSGD
from metakit.gradient.reptile import Reptile
from metakit.models import Conv4


def sine_mlp(hidden=40, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def grads_of(loss, params):
    return torch.autograd.grad(loss, list(params))


@pytest.mark.parametrize("first_order", [False, True])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("kind", ["mlp", "conv4"])
def test_maml_class_matches_learn2learn_clone_adapt(kind, steps, first_order):
    model, tasks, inner_lr = (sine_mlp(), sine_tasks(), 0.01) if kind == "mlp" else (tiny_conv4(), image_tasks(), 0.4)
    loss_fn = F.mse_loss if kind == "mlp" else F.cross_entropy
    maml = MAML(model, inner_lr=inner_lr, inner_steps=steps, first_order=first_order)
    loss, metrics = maml.meta_loss(tasks)
    assert set(metrics) == ({"loss", "mse"} if kind == "mlp" else {"loss", "acc"})

    expected = learn2learn_meta_loss(model, tasks, inner_lr=inner_lr, steps=steps, first_order=first_order,
                                     loss_fn=loss_fn)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    got, want = grads_of(loss, model.parameters()), grads_of(expected, model.parameters())
    floor = 1e-5 * torch.cat([w.flatten() for w in want]).norm()  # pre-BatchNorm conv biases: round-off only
    for g, w in zip(got, want):
        assert (g - w).norm() <= 1e-4 * w.norm() + floor


def test_adapt_and_predict_fit_the_support_set():
    maml = MAML(sine_mlp(), inner_lr=0.01, inner_steps=1)
    x_support, y_support, x_query, _ = (t[0] for t in sine_tasks(tasks=1))
    params = maml.adapt(x_support, y_support, steps=10)
    assert not any(p.requires_grad for p in params.values())  # evaluation needs no graph
    assert F.mse_loss(maml.predict(params, x_support), y_support) < F.mse_loss(maml(x_support), y_support)
    assert maml.predict(params, x_query).shape == (10, 1)
    kept = maml.adapt(x_support, y_support, create_graph=True)
    assert kept["0.weight"].requires_grad


def test_meta_sgd_learning_rates_receive_gradients():
    model = tiny_conv4()
    metasgd = MetaSGD(model, inner_lr=0.1)
    rates = metasgd.learning_rates()
    assert set(rates) == {n for n, _ in model.named_parameters()}
    assert {id(p) for p in rates.values()} <= {id(p) for p in metasgd.parameters()}
    loss, _ = metasgd.meta_loss(image_tasks())
    for name, g in zip(rates, grads_of(loss, rates.values())):
        assert g.abs().sum() > 0, name
    # with every rate equal to inner_lr, Meta-SGD is MAML
    maml_loss, _ = MAML(model, inner_lr=0.1).meta_loss(image_tasks())
    torch.testing.assert_close(loss, maml_loss)


def test_anil_adapts_only_the_head_and_meta_learns_the_body():
    model = tiny_conv4()
    anil = ANIL(model, inner_lr=0.4, inner_steps=2)
    assert anil.head == "head" and anil.head_names == ["head.weight", "head.bias"]
    x_support, y_support, _, _ = (t[0] for t in image_tasks())
    theta = anil.init_params()
    adapted = adapt(model, theta, x_support, y_support, inner_lr=0.4, steps=2, **{"only": anil.head_names})
    assert all(adapted[n] is theta[n] for n in theta if not n.startswith("head."))
    params = anil.adapt(x_support, y_support)
    assert all(torch.equal(params[n], theta[n]) for n in theta if not n.startswith("head."))
    assert not torch.equal(params["head.weight"], theta["head.weight"])
    loss, _ = anil.meta_loss(image_tasks())
    assert grads_of(loss, [model.features[0][0].weight])[0].abs().sum() > 0
    assert ANIL(sine_mlp()).head == "4"


def test_reptile_pseudo_gradient_is_minus_the_mean_step():
    model = sine_mlp(hidden=16)
    reptile = Reptile(model, inner_lr=0.02, inner_steps=4)
    tasks = sine_tasks()
    theta = {n: p.detach().clone() for n, p in model.named_parameters()}
    phis = [adapt(model, theta, xs, ys, inner_lr=0.02, steps=4, loss_fn=F.mse_loss, first_order=True)
            for xs, ys in zip(tasks[0], tasks[1])]
    direction = {n: torch.stack([phi[n] for phi in phis]).mean(0) - theta[n] for n in theta}

    loss, metrics = reptile.meta_loss(tasks)
    assert set(metrics) == {"loss", "mse"}
    loss.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(-p.grad, direction[n], rtol=1e-4, atol=1e-7)
    eps = 0.5  # with SGD(lr=eps) the outer step is Reptile's interpolation
    torch.optim.SGD(model.parameters(), lr=eps).step()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), theta[n] + eps * direction[n], rtol=1e-4, atol=1e-6)


def test_mamlpp_learned_rates_and_per_step_batchnorm_receive_gradients():
    model = tiny_conv4()
    mamlpp = MAMLPlusPlus(model, inner_lr=0.1, inner_steps=3, msl_iterations=10)
    rates = mamlpp.learning_rates()
    assert all(r.shape == (3,) for r in rates.values())
    assert len(mamlpp.bn_names) == 8 and not set(rates) & set(mamlpp.bn_names)  # BatchNorm is not adapted
    assert all(p.shape[0] == 3 for p in mamlpp.bn_per_step.values())
    loss, _ = mamlpp.meta_loss(image_tasks())
    assert int(mamlpp.iteration) == 1
    grads = grads_of(loss, list(rates.values()) + list(mamlpp.bn_per_step.values()))
    for g in grads:
        assert g.abs().sum() > 0
    weights = [g for n, g in zip(rates, grads) if n.endswith("weight")]
    assert torch.stack(weights).abs().min() > 0  # every step's rate of every weight
    with pytest.raises(ValueError, match="Choose steps <= 3"):
        mamlpp.adapt(*(t[0] for t in image_tasks()[:2]), steps=4)
    assert set(mamlpp.adapt(*(t[0] for t in image_tasks()[:2]), steps=2)) == set(mamlpp.init_params())


def test_mamlpp_step_weights_anneal_to_the_last_step():
    mamlpp = MAMLPlusPlus(sine_mlp(hidden=8), inner_lr=0.01, inner_steps=4, msl_iterations=100)
    start, middle, end = (mamlpp.step_weights(i) for i in (0, 50, 100))
    assert start == pytest.approx([0.25] * 4)
    assert all(sum(w) == pytest.approx(1.0) for w in (start, middle, end))
    assert middle[0] < start[0] and middle[-1] > start[-1]
    assert end[0] == pytest.approx(0.03 / 4) and end[-1] == pytest.approx(1 - 3 * 0.03 / 4)


def test_mamlpp_without_per_step_batchnorm_and_with_annealed_order():
    model = tiny_conv4()
    mamlpp = MAMLPlusPlus(model, inner_steps=2, per_step_bn=False, first_order_iterations=1)
    assert len(mamlpp.bn_per_step) == 0 and len(mamlpp.learning_rates()) == len(list(model.parameters()))
    assert mamlpp.use_first_order()
    mamlpp.meta_loss(image_tasks())
    assert not mamlpp.use_first_order()


def test_mamlpp_vmap_and_loop_agree():
    runs = []
    for vectorize in (False, True):
        model = tiny_conv4()
        mamlpp = MAMLPlusPlus(model, inner_lr=0.1, inner_steps=2, vectorize=vectorize)
        loss, _ = mamlpp.meta_loss(image_tasks())
        runs.append((loss, grads_of(loss, [p for p in mamlpp.parameters() if p.requires_grad and p.dim() > 1])))
    torch.testing.assert_close(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_a_deep_copy_runs_its_own_model():
    import copy
    mamlpp = MAMLPlusPlus(tiny_conv4(), inner_steps=2)
    twin = copy.deepcopy(mamlpp)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    x = image_tasks()[0][0]
    assert not torch.allclose(twin(x), mamlpp(x))
    with pytest.raises(ValueError, match="track_running_stats=False"):
        MAML(Conv4(hidden=4, out_features=5))


# --- MAML++ per step, by finite differences in float64 (issue 22) -----------------------------

def test_mamlpp_every_step_row_and_rate_reaches_the_loss_as_finite_differences_say():
    """Each inner step k uses row k of every per-step BatchNorm weight and bias and its own learned
    rates: moving one row or one step's rates moves the meta-loss, by what the meta-gradient says.
    (A forward that always reads row 0 gives rows 1 and 2 no effect at all.)"""
    mamlpp = MAMLPlusPlus(tiny_conv4(), inner_lr=0.1, inner_steps=3, msl_iterations=10).double().eval()
    tasks = tuple(t.double() if t.is_floating_point() else t for t in image_tasks(tasks=1, n_way=5, k_shot=1))
    weights = [0.2, 0.3, 0.5]                          # every step's query loss counts

    def loss():
        return mamlpp.meta_loss(tasks, step_weights=weights)[0]

    bn, lrs = list(mamlpp.bn_per_step.items()), [(n, p) for n, p in mamlpp.step_lrs.items() if n.endswith("weight")]
    blocks = {kind + n: p for kind, pairs in (("bn ", bn), ("lr ", lrs)) for n, p in (pairs[0], pairs[-1])}
    grads = dict(zip(blocks, torch.autograd.grad(loss(), list(blocks.values()))))
    g = torch.Generator().manual_seed(1)
    for name, p in blocks.items():
        for k in range(3):
            d = torch.zeros_like(p)
            d[k] = torch.randn(p[k].shape, generator=g, dtype=p.dtype)
            fd = central_difference(loss, p, d, 1e-6)
            assert abs(fd) > 1e-6, (name, k)           # the row (the rate) of step k is used
            assert (grads[name] * d).sum().item() == pytest.approx(fd, rel=1e-4, abs=1e-9), (name, k)


def test_mamlpp_training_loss_is_the_annealed_multi_step_loss():
    """In training mode the meta-loss weights every step's query loss by step_weights(iteration);
    in eval mode, and once annealed, only the last step counts (issue 22: found by mutation testing)."""
    torch.manual_seed(0)
    mamlpp = MAMLPlusPlus(sine_mlp(hidden=8), inner_lr=0.01, inner_steps=3, msl_iterations=100, vectorize=False)
    tasks = sine_tasks(tasks=2)
    last = [0.0, 0.0, 1.0]
    weights = mamlpp.step_weights(0)
    with torch.no_grad():
        trained = mamlpp.meta_loss(tasks)[0]
        mamlpp.iteration.zero_()
        torch.testing.assert_close(trained, mamlpp.meta_loss(tasks, step_weights=weights)[0])
        final_only = mamlpp.meta_loss(tasks, step_weights=last)[0]
        assert abs(trained - final_only) > 1e-4
        mamlpp.eval()
        torch.testing.assert_close(mamlpp.meta_loss(tasks)[0], final_only)
        mamlpp.train()
        mamlpp.iteration.fill_(100)                      # annealed: the last step alone
        torch.testing.assert_close(mamlpp.meta_loss(tasks)[0], final_only)


# --- ANIL's and Reptile's arguments and messages (issue 22: mutation survivors) ----------------

def test_anil_adapts_the_head_with_its_own_rate_and_steps():
    """ANIL(inner_lr, inner_steps) reaches the inner loop: its adapted head is two steps of 0.4, and
    its meta-loss is MAML's on the same head-only inner loop."""
    model = tiny_conv4()
    anil = ANIL(model, inner_lr=0.4, inner_steps=2)
    x_support, y_support, _, _ = (t[0] for t in image_tasks())
    theta = {n: p.detach() for n, p in anil.init_params().items()}
    want = adapt(model, theta, x_support, y_support, inner_lr=0.4, steps=2, only=anil.head_names)
    got = anil.adapt(x_support, y_support)
    for n in anil.head_names:
        torch.testing.assert_close(got[n], want[n])


def test_anil_bad_heads_are_refused_with_a_message():
    with pytest.raises(ValueError, match=r"^the model has no child module with parameters to use as the head; "
                                         r"pass head=\.\.\.$"):
        ANIL(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match=r"^the model has no parameters under 'tail'; its parameters are "
                                         r"0\.weight, 0\.bias, 2\.weight, 2\.bias\.$"):
        ANIL(nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)), head="tail")


def test_reptile_is_first_order_with_several_steps_by_default():
    """Reptile never differentiates through its inner steps: an adapted copy kept differentiable
    moves one for one with theta (d phi / d theta = I, no Hessian term). Its defaults take 5 steps of 0.1."""
    model = sine_mlp(hidden=8)
    reptile = Reptile(model)
    assert (reptile.inner_lr, reptile.inner_steps) == (0.1, 5)
    x_support, y_support = (t[0] for t in sine_tasks(tasks=1)[:2])
    phi = reptile.adapt(x_support, y_support, steps=3, create_graph=True)
    weight = model[2].weight
    (slope,) = torch.autograd.grad(phi["2.weight"].sum(), weight)
    torch.testing.assert_close(slope, torch.ones_like(weight))
    (second,) = torch.autograd.grad(MAML(model, inner_lr=0.1).adapt(x_support, y_support, steps=3,
                                                                     create_graph=True)["2.weight"].sum(), weight)
    assert not torch.allclose(second, torch.ones_like(weight))   # the check can tell the two apart


def test_reptile_passes_loss_fn_on_to_the_inner_loop():
    """Reptile(loss_fn=...) adapts with that loss: here L1, so the reported query loss is the L1 loss
    of the networks adapted with L1 steps (the default for float targets would be MSE)."""
    from metakit.gradient.functional import meta_loss as functional_meta_loss
    model = sine_mlp(hidden=8)
    tasks = sine_tasks(tasks=2)
    _, metrics = Reptile(model, inner_lr=0.02, inner_steps=3, loss_fn=F.l1_loss, vectorize=False).meta_loss(tasks)
    want = functional_meta_loss(model, dict(model.named_parameters()), tasks, inner_lr=0.02, steps=3,
                                loss_fn=F.l1_loss, first_order=True, vectorize=False).loss
    assert metrics["loss"] == pytest.approx(want.item(), rel=1e-5)


# --- MAML's own arguments, hooks and metrics (issue 22: mutation survivors of gradient/maml.py) -----

def test_maml_defaults_are_one_inner_step_of_0_4_second_order():
    """MAML(model) is notebook 03's configuration: one second-order inner step of 0.4."""
    maml = MAML(sine_mlp(hidden=4))
    assert (maml.inner_lr, maml.inner_steps, maml.first_order, maml.loss_fn) == (0.4, 1, False, None)


def test_maml_refuses_bad_inner_steps_and_takes_zero_steps_as_no_adaptation():
    """inner_steps must be a whole number >= 0: -1 and 1.5 are refused with a message; 0 is allowed
    and its meta-loss is the unadapted network's query loss."""
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match=r"^inner_steps must be a whole number >= 0; got "):
            MAML(sine_mlp(hidden=4), inner_steps=bad)
    model = sine_mlp(hidden=4)
    tasks = sine_tasks(tasks=2)
    loss, metrics = MAML(model, inner_steps=0).meta_loss(tasks)
    torch.testing.assert_close(loss, F.mse_loss(model(tasks[2]), tasks[3]))
    assert metrics["mse"] == pytest.approx(loss.item())


def test_maml_runs_a_loop_for_conv_nets_and_vmap_for_mlps_unless_told(monkeypatch):
    """vectorize=None picks per model (the loop for a conv net, vmap for an MLP) and reaches the
    functional meta-loss; True or False is obeyed."""
    import metakit.gradient.functional as functional
    calls = []
    real_vmap = functional.vmap
    monkeypatch.setattr(functional, "vmap", lambda *a, **k: calls.append(1) or real_vmap(*a, **k))

    def used_vmap(model, tasks, **kwargs):
        calls.clear()
        maml = MAML(model, inner_lr=0.01, **kwargs)
        maml.meta_loss(tasks)
        return maml.vectorize, bool(calls)

    assert used_vmap(tiny_conv4(), image_tasks()) == (False, False)
    assert used_vmap(sine_mlp(hidden=4), sine_tasks(tasks=2)) == (True, True)
    assert used_vmap(tiny_conv4(), image_tasks(), vectorize=True) == (True, True)
    assert used_vmap(sine_mlp(hidden=4), sine_tasks(tasks=2), vectorize=False) == (False, False)


def test_maml_hooks_receive_the_step_count_and_predict_uses_the_last_steps_index():
    """inner_kwargs(steps) is asked with the steps in use (meta_loss: inner_steps; adapt and
    adaptation_path: their steps),
    and predict runs the forward with the index of the last inner step (inner_steps - 1, or 0
    without steps): the row MAML++'s per-step BatchNorm was trained with."""
    class Recording(MAML):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen = []

        def inner_kwargs(self, steps):
            self.seen.append(("inner_kwargs", steps))
            return super().inner_kwargs(steps)

        def forward_fn(self):
            plain = super().forward_fn()

            def forward(params, x, step="not given"):
                self.seen.append(("forward", step))
                return plain(params, x)
            return forward

    x_support, y_support, x_query, _ = (t[0] for t in sine_tasks(tasks=1))
    for inner_steps, last in ((3, 2), (1, 0), (0, 0)):
        maml = Recording(sine_mlp(hidden=4), inner_lr=0.01, inner_steps=inner_steps, vectorize=False)
        maml.predict(maml.init_params(), x_query)
        assert maml.seen == [("forward", last)], inner_steps
    maml = Recording(sine_mlp(hidden=4), inner_lr=0.01, inner_steps=3, vectorize=False)
    maml.meta_loss(sine_tasks(tasks=1))
    assert ("inner_kwargs", 3) in maml.seen and ("inner_kwargs", None) not in maml.seen
    for create_graph in (False, True):
        maml.seen.clear()
        maml.adapt(x_support, y_support, steps=2, create_graph=create_graph)
        assert maml.seen == [("inner_kwargs", 2), ("forward", 0), ("forward", 1)], create_graph
    maml.seen.clear()
    maml.adaptation_path(x_support, y_support, steps=2)
    assert maml.seen == [("inner_kwargs", 2), ("forward", 0), ("forward", 1)]


def test_maml_meta_loss_starts_from_the_parameters_it_is_given():
    """_meta_loss(params=...) (Reptile's detached theta) adapts from those parameters, not from the
    module's own."""
    from metakit.gradient.functional import meta_loss as functional_meta_loss
    maml = MAML(sine_mlp(hidden=8), inner_lr=0.01, inner_steps=2, vectorize=False)
    tasks = sine_tasks(tasks=2)
    shifted = {n: p.detach() + 0.1 for n, p in maml.init_params().items()}
    got = maml._meta_loss(tasks, params=shifted).loss
    want = functional_meta_loss(maml.model, shifted, tasks, inner_lr=0.01, steps=2, loss_fn=F.mse_loss,
                                vectorize=False).loss
    torch.testing.assert_close(got, want)
    assert abs(got - maml._meta_loss(tasks).loss) > 1e-3


def test_maml_metrics_are_the_query_accuracy_and_mse():
    """acc is the share of queries whose largest logit is their label (3 of 4 here); mse the mean
    squared error of float targets; loss the loss given."""
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]])  # (1, 4, 3)
    labels = torch.tensor([[0, 1, 2, 2]])
    assert MAML.metrics(torch.tensor(0.5), logits, labels) == {"loss": 0.5, "acc": 0.75}
    two_tasks = torch.cat([logits, logits.flip(1)])                                    # (2, 4, 3)
    assert MAML.metrics(torch.tensor(0.5), two_tasks, torch.cat([labels, labels.flip(1)]))["acc"] == 0.75
    outputs, targets = torch.tensor([[[1.0], [2.0], [3.0]]]), torch.tensor([[[1.0], [0.0], [3.0]]])
    metrics = MAML.metrics(torch.tensor(2.0), outputs, targets)
    assert set(metrics) == {"loss", "mse"} and metrics["mse"] == pytest.approx(4 / 3)


def test_adaptation_path_is_adapt_after_each_step_for_every_member_of_the_family():
    """adaptation_path's point k is adapt(steps=k) and its loss k the support loss there, with each
    member's own inner loop: MAML++'s per-step rates and frozen BatchNorm, ANIL's head only,
    Meta-SGD's per-parameter rates (one of them zero), a given loss_fn; plain tensors; inner_steps
    points by default."""
    x_support, y_support, _, _ = (t[0] for t in image_tasks(k_shot=2))
    mamlpp = MAMLPlusPlus(tiny_conv4(), inner_lr=0.1, inner_steps=3)
    metasgd = MetaSGD(tiny_conv4(), inner_lr=0.2, inner_steps=3)
    with torch.no_grad():
        for rates in mamlpp.learning_rates().values():
            rates.copy_(torch.tensor([0.3, 0.02, 0.1]))
        metasgd.learning_rates()["features.0.0.weight"].zero_()
    members = {"mamlpp": mamlpp, "anil": ANIL(tiny_conv4(), inner_lr=0.4, inner_steps=3), "metasgd": metasgd,
               "l1": MAML(sine_mlp(hidden=8), inner_lr=0.05, inner_steps=3, loss_fn=F.l1_loss)}
    for name, alg in members.items():
        xs, ys = (sine_tasks(tasks=1)[0][0], sine_tasks(tasks=1)[1][0]) if name == "l1" else (x_support, y_support)
        path, losses = alg.adaptation_path(xs, ys)
        assert len(path) == 4 and losses.shape == (3,), name
        assert not any(p.requires_grad for point in path for p in point.values()), name
        forward, loss_fn = alg.forward_fn(), alg.loss_fn or F.cross_entropy
        for k in range(4):
            want = alg.adapt(xs, ys, steps=k) if k else {n: p.detach() for n, p in alg.init_params().items()}
            for n in want:
                torch.testing.assert_close(path[k][n], want[n], msg=f"{name} step {k} {n}")
            if k < 3:
                assert losses[k].item() == pytest.approx(loss_fn(forward(path[k], xs, k), ys).item(), rel=1e-5)
        moved = {n for n in path[0] if not torch.equal(path[0][n], path[-1][n])}
        if name == "mamlpp":
            assert moved == set(mamlpp.adapted_names)
        if name == "anil":
            assert moved == set(alg.head_names)
        if name == "metasgd":
            assert "features.0.0.weight" not in moved and "head.weight" in moved


def test_adaptation_path_refuses_a_diverging_rate_with_a_message():
    """A loss that stops being finite after the first step names the step and the rate; parameters
    that overflow while every loss was finite name the step."""
    x_support, y_support, _, _ = (t[0] for t in sine_tasks(tasks=1))
    with pytest.raises(FloatingPointError, match=r"at step \d with inner_lr=1e\+20; lower inner_lr\.$"):
        MAML(sine_mlp(hidden=8), inner_lr=1e20).adaptation_path(x_support, y_support, steps=3)
    with pytest.raises(FloatingPointError,
                       match=r"^The adapted parameters stopped being finite at step 1; lower inner_lr\.$"):
        MAML(sine_mlp(hidden=8), inner_lr=1e39).adaptation_path(x_support, y_support)
