import math
import time

import pytest
import torch
from helpers import image_tasks, tiny_conv4
from torch import nn

from metakit.gradient.maml import MAML
from metakit.meta_augmentation.learned import (
    HAND_TUNED,
    LIMITS,
    NAMES,
    Augmentation,
    AugmentedMAML,
    augmentation_optimizer,
    format_differences,
    make_augmented,
    train_augmented,
    train_policy,
)


def test_output_keeps_shape_and_range():
    torch.manual_seed(0)
    x = torch.rand(7, 1, 28, 28)
    for strength in (0.0, 1.0, 3.0):
        for augment in (Augmentation(), Augmentation(HAND_TUNED, learnable=False),
                        Augmentation({n: 0.99 * LIMITS[n] for n in NAMES})):
            y = augment(x, strength=strength)
            assert y.shape == x.shape
            assert float(y.detach().min()) >= 0.0 and float(y.detach().max()) <= 1.0


def test_zero_magnitudes_leave_images_alone():
    torch.manual_seed(0)
    x = (torch.rand(3, 1, 28, 28) > 0.7).float()
    assert torch.allclose(Augmentation({n: 0.0 for n in NAMES})(x), x, atol=5e-3)
    assert torch.allclose(Augmentation()(x, strength=0.0), x, atol=1e-5)


def test_policy_reports_the_magnitudes():
    policy = Augmentation(HAND_TUNED).policy()
    assert list(policy) == list(NAMES)
    assert policy["rotation"] == pytest.approx(10.0, rel=1e-4)
    assert policy["shear"] == pytest.approx(HAND_TUNED["shear"], rel=1e-4)


def test_gradients_reach_the_augmentation_through_the_inner_loop():
    tasks = image_tasks(tasks=2, n_way=5, k_shot=1, n_query=2)
    torch.manual_seed(0)
    alg = AugmentedMAML(tiny_conv4(), Augmentation(), copies=2, inner_lr=0.4, inner_steps=1)
    loss, metrics = alg.meta_loss(tasks)
    loss.backward()
    grad = alg.augment.raw.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0
    assert len(alg.trajectory) == 1
    # first order drops the second derivatives, the only path from the query loss to the augmentation
    fo = AugmentedMAML(tiny_conv4(), Augmentation(), copies=2, inner_lr=0.4, inner_steps=1, first_order=True)
    fo.meta_loss(tasks)[0].backward()
    assert fo.augment.raw.grad is None or float(fo.augment.raw.grad.abs().sum()) == 0.0


def test_meta_gradient_matches_finite_differences():
    """d(query loss after adapting on the augmented support)/d(raw), autograd against central differences."""
    torch.manual_seed(0)
    tasks = tuple(t.double() if t.is_floating_point() else t for t in image_tasks(tasks=1, n_way=3, n_query=2))
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    alg = AugmentedMAML(model, Augmentation(HAND_TUNED), copies=1, inner_lr=0.5, inner_steps=1)
    alg.augment.double()

    def loss_at(raw):
        alg.augment.raw.data.copy_(raw)
        torch.manual_seed(1)  # the same random draws every time: the reparameterised noise is fixed
        return alg.meta_loss(tasks)[0]

    raw0 = alg.augment.raw.detach().clone()
    alg.zero_grad()
    loss_at(raw0).backward()
    grad = alg.augment.raw.grad.clone()
    eps = 1e-5
    for k in range(len(NAMES) - 1):  # the noise enters through a clamp; its kinks spoil the quotient
        step = torch.zeros_like(raw0)
        step[k] = eps
        with torch.no_grad():
            fd = (loss_at(raw0 + step) - loss_at(raw0 - step)) / (2 * eps)
        assert float(grad[k]) == pytest.approx(float(fd), rel=1e-3, abs=1e-7), NAMES[k]


def test_adapt_augments_the_support_at_test_time():
    x_support, y_support, x_query, _ = (t[0] for t in image_tasks(tasks=1, n_way=5, k_shot=1, n_query=2))
    alg = make_augmented("learned", hidden=4)
    assert alg.augment_support(x_support, y_support)[0].shape == (15, 1, 28, 28)
    params = alg.adapt(x_support, y_support)
    assert alg.predict(params, x_query).shape == (10, 5)
    assert not any(p.requires_grad for p in params.values())
    none = make_augmented("none", hidden=4)
    assert none.copies == 0 and none.augment_support(x_support, y_support)[0] is x_support


def test_training_moves_only_the_learned_policy(glyphs_background):
    torch.manual_seed(0)
    learned = make_augmented("learned", hidden=4)
    start = learned.augment.raw.detach().clone()
    history = train_augmented(learned, glyphs_background, steps=3, aug_lr=0.1, progress=False)
    assert history["steps"] == 3 and len(history["traj_rotation"]) == 3
    assert not torch.equal(start, learned.augment.raw.detach())
    fixed = make_augmented("fixed", hidden=4)
    history = train_augmented(fixed, glyphs_background, steps=2, progress=False)
    assert history["traj_noise"] == []
    assert fixed.augment.policy()["rotation"] == pytest.approx(10.0, rel=1e-4)


def test_optimizer_gives_the_augmentation_its_own_rate():
    alg = make_augmented("learned", hidden=4)
    opt = augmentation_optimizer(alg, 0.05)(alg.parameters(), 1e-3)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 0.05]
    assert opt.param_groups[1]["params"][0] is alg.augment.raw


def test_bad_input():
    with pytest.raises(ValueError, match="unknown"):
        Augmentation({"blur": 0.1})
    with pytest.raises(ValueError, match="LIMITS"):
        Augmentation({"rotation": math.radians(90)})
    with pytest.raises(ValueError, match="arm"):
        make_augmented("random")
    with pytest.raises(ValueError, match="aug_lr"):
        train_augmented(make_augmented("learned", hidden=4), None, steps=1, aug_lr=float("nan"))


def test_train_policy_refuses_bad_settings(glyphs_background, glyphs_evaluation):
    for kwargs, match in [(dict(meta_lr=0.0), "meta_lr"), (dict(aug_lr=math.inf), "aug_lr"),
                          (dict(seconds=-1.0), "seconds")]:
        args = dict(meta_lr=1e-3, aug_lr=0.05, seconds=1.0) | kwargs
        with pytest.raises(ValueError, match=match):
            train_policy(glyphs_background, glyphs_evaluation, **args)


def test_format_differences_fixed_values():
    none = torch.tensor([0.5, 0.6] * 20, dtype=torch.float64)
    accs = {("none", "glyphs"): none, ("fixed", "glyphs"): none, ("learned", "glyphs"): none + 0.1}
    assert format_differences(accs) == ("  glyphs: learned - none +0.100 ± 0.000 (above no augmentation); "
                                        "learned - fixed +0.100 ± 0.000")


# --- labels through the augmentation (issue 22; the meta-gradient into it is checked above) -----

@pytest.mark.parametrize("batched", [False, True])
def test_each_augmented_copy_keeps_the_label_of_its_image(batched):
    torch.manual_seed(0)
    alg = AugmentedMAML(tiny_conv4(), Augmentation({n: 0.0 for n in NAMES}), copies=2, inner_lr=0.1)
    x = torch.rand(2, 6, 1, 28, 28)
    y = torch.stack([torch.tensor([3, 0, 4, 1, 0, 2]), torch.tensor([1, 4, 2, 0, 3, 3])])
    if not batched:
        x, y = x[0], y[0]
    xa, ya = alg.augment_support(x, y)
    assert xa.shape[-4] == 18 and ya.shape[-1] == 18
    for xs, ys, xas, yas in zip(x, y, xa, ya) if batched else [(x, y, xa, ya)]:
        nearest = torch.cdist(xas.flatten(1), xs.flatten(1)).argmin(1)   # which original each copy came from
        assert torch.equal(yas, ys[nearest])


# --- the augmentation's defining computation, pinned (issue 22's mutation run) -------------------

def reference_augment(x, m, u, noise):
    """Augmentation.forward written out per image in float64: theta = (1 + u1 m_scale) R(u0 m_rot)
    [[1, u2 m_shear], [0, 1]] with the shift (u3, u4) m_translate; then a 3x3 dilation (t > 0) or
    erosion (t < 0) blended in by |t|, t = u5 m_thickness; then pixel noise of std m_noise; clamp."""
    out = []
    for i in range(x.shape[0]):
        a, s, sh = float(u[i, 0] * m[0]), 1 + float(u[i, 1] * m[1]), float(u[i, 2] * m[2])
        rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
        lin = s * rot @ torch.tensor([[1.0, sh], [0.0, 1.0]], dtype=torch.float64)
        shift = torch.stack([u[i, 3], u[i, 4]]) * m[3]
        theta = torch.cat([lin, shift[:, None]], 1)[None]                  # (1, 2, 3)
        grid = nn.functional.affine_grid(theta, [1, *x.shape[1:]], align_corners=False)
        y = nn.functional.grid_sample(x[i:i + 1], grid, padding_mode="zeros", align_corners=False)[0, 0]
        h, w = y.shape
        shifted = lambda p: torch.stack([p[r:r + h, c:c + w] for r in range(3) for c in range(3)])  # noqa: E731
        dilated = shifted(nn.functional.pad(y, (1, 1, 1, 1), value=-math.inf)).amax(0)
        eroded = shifted(nn.functional.pad(y, (1, 1, 1, 1), value=math.inf)).amin(0)
        t = float(u[i, 5] * m[4])
        y = y + t * (dilated - y) if t > 0 else y + (-t) * (eroded - y)
        out.append((y + m[5] * noise[i, 0]).clamp(0, 1)[None])
    return torch.stack(out)


def test_augmentation_matches_the_written_out_warp_thickness_and_noise():
    """Every magnitude drives its own transformation with its own draw, in float64 to 1e-10."""
    aug = Augmentation(dict(rotation=math.radians(30), scale=0.3, shear=0.4, translate=0.2, thickness=0.9,
                            noise=0.1)).double()
    x = (torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(3)) > 0.6).double()
    m = aug.magnitudes().detach()
    for strength in (1.0, 0.5):
        g = torch.Generator().manual_seed(7)
        u = torch.rand(8, 6, generator=g, dtype=torch.float64) * 2 - 1
        noise = torch.randn(x.shape, generator=g, dtype=torch.float64)
        assert (u[:, 5] > 0).any() and (u[:, 5] < 0).any(), "both thickening and thinning are exercised"
        torch.manual_seed(0)  # the global generator must not be the one used
        got = aug(x, generator=torch.Generator().manual_seed(7)) if strength == 1.0 else \
            aug(x, strength=strength, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(got, reference_augment(x, m * strength, u, noise), rtol=0, atol=1e-10)


def test_start_and_extreme_magnitudes_have_finite_raw_values():
    """A zero magnitude starts at LIMITS * 1e-4 (finite raw, so the meta-gradient can still move
    it); a magnitude just under its limit is held at LIMITS * (1 - 1e-4); at or over it is refused."""
    low = Augmentation({n: 0.0 for n in NAMES})
    assert bool(torch.isfinite(low.raw).all())
    limits = torch.tensor([LIMITS[n] for n in NAMES])
    torch.testing.assert_close(low.magnitudes().detach(), limits * 1e-4, rtol=1e-3, atol=0)
    high = Augmentation({n: 0.99999 * LIMITS[n] for n in NAMES})
    torch.testing.assert_close(high.magnitudes().detach(), limits * (1 - 1e-4), rtol=1e-6, atol=0)
    for factor in (1.0, 1.5):
        with pytest.raises(ValueError, match="LIMITS"):
            Augmentation({"scale": factor * LIMITS["scale"]})


def test_augmented_maml_defaults_to_two_copies():
    x_support, y_support = torch.rand(5, 1, 28, 28), torch.arange(5)
    alg = AugmentedMAML(tiny_conv4(), Augmentation())
    assert alg.copies == 2 and alg.augment_support(x_support, y_support)[0].shape[0] == 15


def test_adapt_is_mamls_adapt_on_the_augmented_support():
    """steps= and create_graph= reach MAML's adapt: the same augmented support (same draws) gives the
    same adapted parameters, and with create_graph the result is differentiable in the magnitudes."""
    x_support, y_support, x_query, y_query = (t[0] for t in image_tasks(tasks=1, n_way=5, k_shot=1, n_query=2))
    alg = AugmentedMAML(tiny_conv4(), Augmentation(HAND_TUNED), copies=1, inner_lr=0.3, inner_steps=1)
    torch.manual_seed(5)
    got = alg.adapt(x_support, y_support, steps=3)
    torch.manual_seed(5)
    with torch.no_grad():
        xa, ya = alg.augment_support(x_support, y_support)
    want = MAML.adapt(alg, xa, ya, steps=3)
    one = MAML.adapt(alg, xa, ya, steps=1)
    for n in want:
        torch.testing.assert_close(got[n], want[n])
    assert any(not torch.allclose(want[n], one[n]) for n in want), "three steps differ from one"
    params = alg.adapt(x_support, y_support, create_graph=True)
    assert all(p.requires_grad for p in params.values())
    nn.functional.cross_entropy(alg.predict(params, x_query), y_query).backward()
    assert alg.augment.raw.grad is not None and float(alg.augment.raw.grad.abs().sum()) > 0


def test_meta_loss_passes_step_weights_and_keep_adapted_to_maml(monkeypatch):
    tasks = image_tasks(tasks=2, n_way=5, k_shot=1, n_query=2)
    alg = AugmentedMAML(tiny_conv4(), Augmentation(HAND_TUNED, learnable=False), copies=1, inner_lr=0.3,
                        inner_steps=2)
    weights = torch.tensor([1.0, 0.0])
    calls = []
    original = MAML._meta_loss

    def spy(self, tasks, step_weights=None, keep_adapted=False, params=None):
        calls.append((step_weights, keep_adapted, tasks[0].shape[1]))
        return original(self, tasks, step_weights, keep_adapted, params)

    monkeypatch.setattr(MAML, "_meta_loss", spy)
    alg.meta_loss(tasks)
    alg.meta_loss(tasks, weights, keep_adapted=True)
    assert calls[0][:2] == (None, False) and calls[0][2] == 10          # support plus one copy
    assert calls[1][0] is weights and calls[1][1] is True


def test_make_augmented_builds_the_documented_arm():
    alg = make_augmented("none")
    assert (alg.inner_lr, alg.inner_steps, alg.copies) == (0.4, 1, 0)
    assert alg.model.embedding_dim == 32 and alg.model.head.out_features == 5
    custom = make_augmented("learned", n_way=3, hidden=4, copies=3, inner_lr=0.2, inner_steps=2)
    assert (custom.inner_lr, custom.inner_steps, custom.copies) == (0.2, 2, 3)
    assert custom.model.embedding_dim == 4 and custom.model.head.out_features == 3
    fixed = make_augmented("fixed", hidden=4)
    assert not fixed.augment.raw.requires_grad and not list(fixed.augment.parameters())


def test_optimizer_rates_for_every_arm():
    alg = make_augmented("learned", hidden=4)
    opt = augmentation_optimizer(alg, 0.3)(alg.parameters(), 0.02)
    assert [g["lr"] for g in opt.param_groups] == [0.02, 0.3]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(alg.parameters()))
    for arm in ("none", "fixed"):
        alg = make_augmented(arm, hidden=4)
        opt = augmentation_optimizer(alg, 0.3)(alg.parameters(), 0.02)
        assert [g["lr"] for g in opt.param_groups] == [0.02], arm
        assert len(opt.param_groups[0]["params"]) == len(list(alg.parameters()))


def record_meta_train(monkeypatch):
    """Replace learned.meta_train by a recorder that returns an empty history."""
    import metakit.meta_augmentation.learned as learned
    calls = []

    def fake(algorithm, sampler, **kwargs):
        calls.append(dict(algorithm=algorithm, sampler=sampler, **kwargs))
        return {"steps": 0}

    monkeypatch.setattr(learned, "meta_train", fake)
    return calls


def test_train_augmented_hands_its_settings_to_meta_train(monkeypatch, glyphs_background):
    calls = record_meta_train(monkeypatch)
    alg = make_augmented("learned", hidden=4)
    clock, callback = (lambda: 0.0), (lambda history: None)
    train_augmented(alg, glyphs_background, steps=7, seconds=3.0, meta_lr=0.01, aug_lr=0.2, meta_batch_size=3,
                    n_way=4, k_shot=2, n_query=3, progress=False, callback=callback, clock=clock)
    train_augmented(alg, glyphs_background, steps=1)
    got, default = calls
    assert got["algorithm"] is alg and default["algorithm"] is alg
    s = got["sampler"]
    assert (s.n_way, s.k_shot, s.n_query) == (4, 2, 3)
    assert (got["steps"], got["seconds"], got["meta_lr"], got["meta_batch_size"]) == (7, 3.0, 0.01, 3)
    assert got["progress"] is False and got["callback"] is callback and got["clock"] is clock
    opt = got["optimizer"](alg.parameters(), got["meta_lr"])
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.2]
    # the defaults: 5-way 1-shot episodes with 5 queries, 4 tasks a step, Adam at 1e-3 and 0.05
    s = default["sampler"]
    assert (s.n_way, s.k_shot, s.n_query) == (5, 1, 5)
    assert (default["meta_lr"], default["meta_batch_size"], default["seconds"]) == (1e-3, 4, None)
    assert default["progress"] is True and default["callback"] is None
    opt = default["optimizer"](alg.parameters(), default["meta_lr"])
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 0.05]


@pytest.mark.parametrize("aug_lr", [0.0, -1.0, math.inf, float("nan")])
def test_train_augmented_refuses_a_rate_that_is_not_positive_and_finite(monkeypatch, aug_lr):
    calls = record_meta_train(monkeypatch)
    with pytest.raises(ValueError, match="aug_lr"):
        train_augmented(make_augmented("learned", hidden=4), None, steps=1, aug_lr=aug_lr)
    assert calls == []


def record_train_policy(monkeypatch):
    """Replace train_augmented and meta_evaluate inside learned by recorders; each also notes the
    global RNG's next draw, to see which seed was set before it."""
    import metakit.meta_augmentation.learned as learned
    calls = {}

    def fake_train(alg, background, **kwargs):
        calls["train"] = dict(alg=alg, background=background, rng=float(torch.rand(())), **kwargs)
        return {"steps": 0, "trained": True}

    def fake_evaluate(alg, sampler, **kwargs):
        calls["evaluate"] = dict(alg=alg, sampler=sampler, rng=float(torch.rand(())), **kwargs)
        return (0.25, 0.01)

    monkeypatch.setattr(learned, "train_augmented", fake_train)
    monkeypatch.setattr(learned, "meta_evaluate", fake_evaluate)
    return calls


def test_train_policy_trains_then_tests_on_5way_1shot_episodes(monkeypatch, glyphs_background, glyphs_evaluation):
    calls = record_train_policy(monkeypatch)
    mine = make_augmented("learned", hidden=4)
    callback = lambda history: None  # noqa: E731
    alg, history, acc = train_policy(glyphs_background, glyphs_evaluation, meta_lr=0.01, aug_lr=0.2, seconds=2.5,
                                     callback=callback, test_episodes=7, progress=False, seed=3, algorithm=mine)
    train, evaluate = calls["train"], calls["evaluate"]
    assert alg is mine and history == {"steps": 0, "trained": True} and acc == (0.25, 0.01)
    assert train["alg"] is mine and train["background"] is glyphs_background
    assert (train["seconds"], train["meta_lr"], train["aug_lr"]) == (2.5, 0.01, 0.2)
    assert train["progress"] is False and train["callback"] is callback
    assert train["clock"] is time.process_time                      # CPU-seconds on the CPU
    assert evaluate["alg"] is mine and evaluate["episodes"] == 7
    s = evaluate["sampler"]
    assert (s.n_way, s.k_shot, s.n_query) == (5, 1, 15)
    ep = s.sample()
    assert ep[0].shape[0] == 5 and ep[2].shape[0] == 75
    torch.manual_seed(3)
    seeded = float(torch.rand(()))
    assert train["rng"] == seeded and evaluate["rng"] == seeded    # seeded before training and again before testing
    # the defaults: a fresh learned arm seeded with seed 0, 50 test episodes, a progress bar
    alg, _, _ = train_policy(glyphs_background, glyphs_evaluation, meta_lr=1.0, aug_lr=10.0, seconds=600)
    assert isinstance(alg, AugmentedMAML) and alg.augment.raw.requires_grad and alg.copies == 2
    torch.manual_seed(0)
    fresh = make_augmented("learned")
    assert all(torch.equal(p, q) for p, q in zip(alg.parameters(), fresh.parameters()))
    assert calls["evaluate"]["episodes"] == 50 and calls["train"]["progress"] is True
    assert calls["train"]["callback"] is None
    train_policy(glyphs_background, glyphs_evaluation, meta_lr=1e-3, aug_lr=0.05, seconds=0.5, algorithm=mine)
    assert calls["train"]["seconds"] == 0.5                           # under a second is a budget too


@pytest.mark.parametrize("kwargs, match", [
    (dict(meta_lr=1.5), "^meta_lr must"), (dict(aug_lr=10.5), "^aug_lr must"), (dict(aug_lr=-1.0), "^aug_lr must"),
    (dict(seconds=0.0), "seconds"), (dict(seconds=600.5), "seconds"), (dict(seconds=601.0), "seconds"),
    (dict(seconds=math.nan), "seconds")])
def test_train_policy_bounds(monkeypatch, kwargs, match):
    calls = record_train_policy(monkeypatch)
    args = dict(meta_lr=1e-3, aug_lr=0.05, seconds=0.5) | kwargs
    with pytest.raises(ValueError, match=match):
        train_policy(None, None, **args)
    assert calls == {}


def test_format_differences_verdicts_per_test_set():
    base = torch.tensor([0.5, 0.6] * 20, dtype=torch.float64)
    wobble = torch.tensor([0.1, -0.1] * 20, dtype=torch.float64)
    accs = {}
    for s, learned in (("up", base + 0.1), ("down", base - 0.1), ("even", base + wobble)):
        accs |= {("none", s): base, ("fixed", s): base, ("learned", s): learned}
    lines = format_differences(accs).split("\n")
    assert len(lines) == 3
    assert lines[0].startswith("      up: learned - none +0.100 ± 0.000 (above no augmentation)")
    assert lines[1].startswith("    down: learned - none -0.100 ± 0.000 (below no augmentation)")
    assert lines[2].startswith("    even: learned - none +0.000 ± ")
    assert "(within the noise of no augmentation)" in lines[2]
