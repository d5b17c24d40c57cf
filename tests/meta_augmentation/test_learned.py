import math

import pytest
import torch
from helpers import image_tasks, tiny_conv4
from torch import nn

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
