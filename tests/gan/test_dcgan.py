"""metakit.gan.dcgan: the DCGAN's shapes and ranges, the two generator losses, the training loop."""

import math

import pytest
import torch

from metakit.gan.dcgan import (
    DCGANDiscriminator,
    DCGANGenerator,
    dataset_images,
    discriminator_loss,
    generator_loss,
    train_dcgan,
)


def test_generator_shapes_and_range():
    torch.manual_seed(0)
    g = DCGANGenerator(z_dim=8, hidden=4)
    x = g(torch.randn(6, 8))
    assert x.shape == (6, 1, 28, 28)
    assert x.min() >= 0 and x.max() <= 1
    s = g.sample(3, generator=torch.Generator().manual_seed(1))
    assert s.shape == (3, 1, 28, 28) and g.training  # sample() restores the mode it found


def test_discriminator_gives_one_logit_per_image():
    d = DCGANDiscriminator(in_channels=2, hidden=4)
    assert d(torch.rand(5, 2, 28, 28)).shape == (5,)


def test_losses_fixed_values():
    zero = torch.zeros(4)  # D = 1/2 everywhere
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zero).item() == pytest.approx(math.log(2))
    assert generator_loss(zero, non_saturating=False).item() == pytest.approx(-math.log(2))


def test_non_saturating_gradient_is_larger_when_the_discriminator_wins():
    logit = torch.tensor([-6.0], requires_grad=True)  # D(G(z)) ~ 0.0025: the generator is losing
    (g_ns,) = torch.autograd.grad(generator_loss(logit), logit)
    (g_mm,) = torch.autograd.grad(generator_loss(logit, non_saturating=False), logit)
    assert abs(g_ns.item()) > 100 * abs(g_mm.item())


def test_training_records_losses_and_calls_back():
    torch.manual_seed(0)
    images = (torch.rand(64, 1, 28, 28) > 0.8).float()
    g = DCGANGenerator(z_dim=8, hidden=4)
    calls = []
    h = train_dcgan(g, images, discriminator=DCGANDiscriminator(hidden=4), steps=6, batch_size=8, progress=False,
                    callback=lambda hist: calls.append(hist["steps"]), callback_every=3)
    assert h["steps"] == 6 and len(h["d_loss"]) == 6 and len(h["g_loss"]) == 6
    assert all(math.isfinite(v) for v in h["d_loss"] + h["g_loss"])
    assert calls == [3, 6, 6] and h["clock_seconds"] > 0 and h["seconds"] > 0


def test_training_runs_on_a_time_budget_of_the_given_clock():
    ticks = iter(range(10**6))  # a clock that advances one second per reading
    g = DCGANGenerator(z_dim=8, hidden=4)
    h = train_dcgan(g, torch.rand(16, 1, 28, 28), discriminator=DCGANDiscriminator(hidden=4), seconds=5,
                    clock=lambda: float(next(ticks)), batch_size=4, progress=False)
    assert 1 <= h["steps"] < 5 and h["clock_seconds"] >= 5 and len(h["d_loss"]) == h["steps"]
    assert {"d_loss", "g_loss", "steps", "seconds", "clock_seconds"} <= set(h)


def test_training_needs_a_budget_and_a_sane_lr():
    g = DCGANGenerator(z_dim=8, hidden=4)
    images = torch.rand(8, 1, 28, 28)
    with pytest.raises(ValueError, match="budget"):
        train_dcgan(g, images, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train_dcgan(g, images, steps=1, lr=-1.0, progress=False)


def test_diverging_lr_raises_floating_point_error():
    g = DCGANGenerator(z_dim=8, hidden=4)
    with pytest.raises(FloatingPointError, match="non-finite"):
        train_dcgan(g, torch.rand(16, 1, 28, 28), discriminator=DCGANDiscriminator(hidden=4), steps=50, batch_size=8,
                    lr=1e12, progress=False)


def test_dataset_images_ink_convention():
    from metakit.datasets import ImageClassDataset

    ds = ImageClassDataset(torch.full((2, 28, 28), 255, dtype=torch.uint8), [0, 1], ["a/x", "a/y"])
    x = dataset_images(ds)
    assert x.shape == (2, 1, 28, 28) and x.max() == 0.0  # white paper is no ink


# Behaviour pinned at logits where the answer is known (issue 22): zero logits are symmetric, so a
# loss with its real and fake targets swapped passes the fixed-value test above; these do not.

def test_discriminator_loss_at_asymmetric_logits():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([-2.0, 0.5])
    expected = (math.log1p(math.exp(-3.0)) + math.log1p(math.exp(-1.0))) / 2 \
        + (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(0.5))) / 2
    assert discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
    # a confident, correct discriminator has a small loss; the same logits with roles swapped, a large one
    assert discriminator_loss(torch.tensor([8.0]), torch.tensor([-8.0])).item() < 1e-3
    assert discriminator_loss(torch.tensor([-8.0]), torch.tensor([8.0])).item() > 15


def test_generator_losses_at_asymmetric_logits():
    logit = torch.tensor([2.0, -1.0])
    d = torch.sigmoid(logit.double())
    assert generator_loss(logit).item() == pytest.approx((-d.log()).mean().item(), rel=1e-6)  # -log D(G(z))
    assert generator_loss(logit, non_saturating=False).item() == pytest.approx((1 - d).log().mean().item(), rel=1e-6)
    # both push D(G(z)) up: their gradients with respect to the logit are negative
    for ns in (True, False):
        x = logit.clone().requires_grad_()
        (g,) = torch.autograd.grad(generator_loss(x, non_saturating=ns), x)
        assert (g < 0).all()


def test_one_adversarial_step_moves_each_player_the_right_way():
    from metakit.gan.dcgan import train_adversarial

    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
    real, z = (torch.rand(16, 1, 28, 28) > 0.7).float(), torch.randn(16, 4)
    with torch.no_grad():
        fake_before = generator(z)
        d_before = discriminator_loss(discriminator(real), discriminator(fake_before))
    train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, lr=3e-3, progress=False)
    with torch.no_grad():
        # the discriminator's step separates real from fake better (true labels: real 1, fake 0) ...
        assert discriminator_loss(discriminator(real), discriminator(fake_before)) < d_before - 1e-3
        assert discriminator(real).mean() - discriminator(fake_before).mean() > 0
        # ... and the generator's step raises D(G(z)) under the discriminator it just played against
        assert discriminator(generator(z)).mean() > discriminator(fake_before).mean() + 1e-3


def test_generator_extra_is_added_to_the_generator_loss():
    """The DAGAN's diversity bonus enters the generator's loss with its sign (issue 22: mutation testing)."""
    from metakit.gan.dcgan import train_adversarial

    real, z = (torch.rand(8, 1, 28, 28) > 0.7).float(), torch.randn(8, 4)
    losses = []
    for extra in (None, lambda: torch.tensor(5.0)):
        torch.manual_seed(0)
        generator = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
        discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
        h = train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, lr=3e-3,
                              progress=False, generator_extra=extra)
        losses.append(h["g_loss"][0])
    assert losses[1] == pytest.approx(losses[0] + 5.0, abs=1e-5)


def test_both_players_take_adams_first_step_of_the_given_lr():
    """Both optimisers use ``lr`` (Adam's first step moves each weight by lr * g / (|g| + eps),
    so +-lr wherever the gradient is not tiny), not Adam's default 1e-3."""
    from metakit.gan.dcgan import train_adversarial

    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
    real, z = (torch.rand(16, 1, 28, 28) > 0.7).float(), torch.randn(16, 4)
    before = [p.detach().clone() for p in (generator[0].weight, discriminator[1].weight)]
    train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, lr=3e-4, progress=False)
    for p, p0 in zip((generator[0].weight, discriminator[1].weight), before):
        step = (p.detach() - p0).abs()
        assert step.max().item() == pytest.approx(3e-4, rel=1e-3)
        assert (step > 2e-4).float().mean() > 0.5


def test_r1_penalty_is_the_squared_input_gradient_of_the_logit():
    """For a linear discriminator D(x) = w.x + b the input gradient is w for every example, so
    E|grad D|^2 = |w|^2; and the penalty is differentiable in w (its gradient is 2w)."""
    from metakit.gan.dcgan import r1_penalty

    torch.manual_seed(0)
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
    real = torch.rand(6, 1, 28, 28).requires_grad_()
    penalty = r1_penalty(discriminator(real), real)
    w = discriminator[1].weight
    assert penalty.item() == pytest.approx(w.pow(2).sum().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(penalty, w)
    assert torch.allclose(grad, 2 * w, rtol=1e-5)


def test_r1_enters_only_the_discriminators_step_with_half_its_weight():
    """One step with r1 = gamma against one without: the discriminator's update differs by Adam's
    response to the extra gradient gamma / 2 * 2w = gamma * w; the generator's and the logged
    discriminator loss (without the penalty, comparable to 2 log 2) do not change."""
    from metakit.gan.dcgan import train_adversarial

    real, z = (torch.rand(8, 1, 28, 28) > 0.7).float(), torch.randn(8, 4)
    runs = {}
    for gamma in (0.0, 10.0):
        torch.manual_seed(0)
        generator = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
        discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
        w0 = discriminator[1].weight.detach().clone()
        h = train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, lr=1e-3,
                              progress=False, r1=gamma)
        runs[gamma] = (h, discriminator[1].weight.detach() - w0)
    (h0, step0), (h1, step1) = runs[0.0], runs[10.0]
    assert h1["d_loss"][0] == pytest.approx(h0["d_loss"][0], abs=1e-6)
    assert not torch.allclose(step0, step1)
    # a huge penalty makes the discriminator's first Adam step -lr * sign(w) almost everywhere
    torch.manual_seed(0)
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
    generator = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
    w0 = discriminator[1].weight.detach().clone()
    train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, lr=1e-3, progress=False,
                      r1=1e6)
    step = discriminator[1].weight.detach() - w0
    assert ((step.sign() == -w0.sign()).float().mean() > 0.99)


def test_discriminator_lr_and_bad_values():
    from metakit.gan.dcgan import train_adversarial

    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(4, 784), torch.nn.Sigmoid(), torch.nn.Unflatten(1, (1, 28, 28)))
    discriminator = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 1), torch.nn.Flatten(0))
    real, z = (torch.rand(16, 1, 28, 28) > 0.7).float(), torch.randn(16, 4)
    g0, d0 = generator[0].weight.detach().clone(), discriminator[1].weight.detach().clone()
    train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, lr=3e-4, d_lr=1e-5,
                      progress=False)
    assert (generator[0].weight.detach() - g0).abs().max().item() == pytest.approx(3e-4, rel=1e-3)
    assert (discriminator[1].weight.detach() - d0).abs().max().item() == pytest.approx(1e-5, rel=1e-3)
    for bad in (dict(d_lr=0.0), dict(r1=-1.0), dict(r1=float("nan"))):
        with pytest.raises(ValueError, match="learning rates|r1"):
            train_adversarial(generator, discriminator, lambda: real, lambda: generator(z), steps=1, progress=False,
                              **bad)
