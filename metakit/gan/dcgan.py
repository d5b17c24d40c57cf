"""A small DCGAN (Radford, Metz and Chintala, 2016) for 28x28 glyphs, and the GAN training loop
that notebook 05 and the DAGAN share (Goodfellow et al., 2014, with the non-saturating loss)."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import train_or_load
from ..runtime import Budget, recipe_clock


class DCGANGenerator(nn.Module):
    """Noise ``z`` to a 28x28 image: a linear layer to 7x7 feature maps, then two transposed
    convolutions that double the size (7, 14, 28), BatchNorm and ReLU between, a sigmoid at the end
    so ink lies in [0, 1] (Radford et al., 2016, scaled down).

    Args:
        z_dim: size of the noise vector.
        hidden: channels at 14x14 (twice as many at 7x7).
    """

    def __init__(self, z_dim: int = 32, hidden: int = 32):
        super().__init__()
        self.z_dim = z_dim
        self.project = nn.Sequential(nn.Linear(z_dim, 2 * hidden * 49), nn.BatchNorm1d(2 * hidden * 49), nn.ReLU())
        self.up = nn.Sequential(
            nn.Unflatten(1, (2 * hidden, 7, 7)),
            nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1), nn.BatchNorm2d(hidden), nn.ReLU(),
            nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """
        Args:
            z: (B, z_dim) noise.
        Returns:
            (B, 1, 28, 28) images with values in [0, 1].
        """
        return torch.sigmoid(self.up(self.project(z)))

    @torch.no_grad()
    def sample(self, n: int, noise_scale: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images from ``z ~ N(0, noise_scale^2 I)``, in eval mode: (n, 1, 28, 28)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        z = noise_scale * torch.randn(n, self.z_dim, generator=generator).to(device)
        out = self(z)
        self.train(was_training)
        return out


class DCGANDiscriminator(nn.Module):
    """A 28x28 image (or a stack of ``in_channels`` images) to one logit: two strided convolutions
    with LeakyReLU, then a linear layer. No sigmoid: the losses take logits.

    Args:
        in_channels: 1 for the DCGAN; 2 for the DAGAN's pair of images.
        hidden: channels at 14x14 (twice as many at 7x7).
    """

    def __init__(self, in_channels: int = 1, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * hidden * 49, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, 28, 28) -> (B,) logits of "real"."""
        return self.net(x).squeeze(1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-log D(x) - log(1 - D(G(z)))``, averaged: the discriminator's side of the minimax game."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor, non_saturating: bool = True) -> torch.Tensor:
    """The generator's loss on ``D(G(z)) = sigmoid(fake_logits)``.

    ``non_saturating=True`` is ``-log D(G(z))`` (Goodfellow et al., 2014, Sec. 3), whose gradient
    stays large when the discriminator wins; ``False`` is the minimax ``log(1 - D(G(z)))``.
    """
    if non_saturating:
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    return -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))


def r1_penalty(real_logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``E |grad_x D(x)|^2`` over the real batch ``real`` (which must require grad), differentiable
    in the discriminator's weights; the logit's gradient, as Mescheder et al. (2018) use it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def train_adversarial(generator, discriminator, real_batch, fake_batch, *, steps: int | None = None,
                      seconds: float | None = None, lr: float = 2e-4, callback=None, callback_every: int = 50,
                      progress: bool = True, clock=time.perf_counter, desc: str = "GAN training",
                      generator_extra=None, r1: float = 0.0, d_lr: float | None = None) -> dict:
    """Alternate one discriminator step and one generator step with Adam (betas 0.5, 0.999).

    Args:
        generator, discriminator: the two networks, trained in place.
        real_batch: ``() -> (B, C, 28, 28)`` real examples as the discriminator sees them.
        fake_batch: ``() -> (B, C, 28, 28)`` generated examples, differentiable in the generator.
        steps, seconds, clock: the budget (see :class:`~metakit.runtime.Budget`): at most ``steps``
            steps and ``seconds`` of ``clock`` time (wall clock by default; ``time.process_time``
            for a CPU-time budget that a busy machine does not shorten).
        callback: ``callback(history)`` every ``callback_every`` steps and at the end (live plots).
        generator_extra: ``() -> loss`` added to the generator's loss after each ``fake_batch()``
            (the DAGAN's diversity term).
        r1: the weight ``gamma`` of the R1 penalty (Mescheder, Geiger and Nowozin, 2018),
            ``gamma / 2 * E |grad_x D(x)|^2`` on real examples, added to the discriminator's loss.
            It keeps the discriminator from growing steep around the real data, the usual way it
            runs away from the generator; 0 (the default) leaves it out.
        d_lr: the discriminator's learning rate (default ``lr``).
    Returns:
        ``{"d_loss": [...], "g_loss": [...], "steps", "seconds", "clock_seconds"}``, one loss per step.
    Raises:
        FloatingPointError: when a loss stops being finite (a learning rate too large).
    """
    d_lr = lr if d_lr is None else d_lr
    if not (lr > 0 and d_lr > 0):
        raise ValueError(f"learning rates must be positive; got lr={lr!r}, d_lr={d_lr!r}.")
    if not (r1 >= 0):
        raise ValueError(f"r1 (the R1 penalty's weight) must be 0 or more; got {r1!r}.")
    device = next(generator.parameters()).device
    budget = Budget(steps, seconds, clock=clock, device=device, desc=desc, progress=progress)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=d_lr, betas=(0.5, 0.999))
    generator.train(), discriminator.train()

    def history():
        return {"d_loss": [], "g_loss": [], **budget.history, **budget.summary()}

    for step in budget:
        real, fake = real_batch(), fake_batch()
        if r1:
            real = real.detach().requires_grad_()
        real_logits = discriminator(real)
        d_loss = discriminator_loss(real_logits, discriminator(fake.detach()))
        penalty = r1_penalty(real_logits, real) if r1 else 0.0
        opt_d.zero_grad(set_to_none=True)
        (d_loss + r1 / 2 * penalty).backward()
        opt_d.step()
        g_loss = generator_loss(discriminator(fake))
        if generator_extra is not None:
            g_loss = g_loss + generator_extra()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if not (torch.isfinite(d_loss) and torch.isfinite(g_loss)):
            budget.close()
            raise FloatingPointError(f"A GAN loss became non-finite at step {step + 1} with lr={lr:g}: "
                                     "lower the learning rate and train again.")
        budget.log(d_loss=d_loss.item(), g_loss=g_loss.item())
        if callback is not None and (step + 1) % callback_every == 0:
            callback({**history(), "steps": step + 1})
    if callback is not None:
        callback(history())
    generator.eval()
    return history()


def train_dcgan(generator: DCGANGenerator, images: torch.Tensor, *, discriminator: DCGANDiscriminator | None = None,
                batch_size: int = 64, seed: int = 0, **kwargs) -> dict:
    """Train a DCGAN on ``images`` (N, 1, 28, 28); keyword arguments go to :func:`train_adversarial`."""
    torch.manual_seed(seed)
    discriminator = discriminator or DCGANDiscriminator()
    device = next(generator.parameters()).device
    discriminator.to(device)

    def real_batch():
        return images[torch.randint(len(images), (batch_size,))].to(device)

    def fake_batch():
        return generator(torch.randn(batch_size, generator.z_dim, device=device))

    return train_adversarial(generator, discriminator, real_batch, fake_batch, **kwargs)


def dataset_images(dataset) -> torch.Tensor:
    """All images of an :class:`~metakit.datasets.ImageClassDataset` as (N, 1, 28, 28), ink 1.0."""
    return 1.0 - dataset.images.float().unsqueeze(1) / 255.0


CHECKPOINT = "dcgan-glyphs.pt"  # made by: python benchmarks/gan_augmentation.py --save-checkpoints
CPU_SECONDS = 100               # the DCGAN's training budget, in CPU-seconds (time.process_time)


def train_or_load_dcgan(images: torch.Tensor, path=CHECKPOINT, seconds: float = CPU_SECONDS,
                        clock=None, retrain: bool = False, progress: bool = True, callback=None,
                        seed: int = 0, generator: DCGANGenerator | None = None, device=None,
                        **kwargs) -> tuple[DCGANGenerator, dict]:
    """The DCGAN generator of ``path`` (a bare name is looked up in ``data/checkpoints/``), or one
    trained on ``images`` for ``seconds`` of ``clock`` time (``callback(history)`` drawing live
    curves) and saved there. The clock is
    :func:`~metakit.runtime.recipe_clock` by default: CPU time on the CPU, as the committed
    checkpoint was trained, so that other jobs do not shorten the training; wall clock on a GPU.

    Args:
        generator: the network to fill (so a live plot can sample from it while it trains).
        device: where to load or train it (None: where ``generator`` is, the CPU for a new one).
    Returns:
        The generator in eval mode and its record (``d_loss``, ``g_loss``, ``steps``,
        ``clock_seconds``, ``loaded``).
    """
    generator = (generator if generator is not None else DCGANGenerator()).to(device)
    clock = clock or recipe_clock(next(generator.parameters()).device)
    info = train_or_load(generator, path, lambda g: train_dcgan(g, images, seconds=seconds, clock=clock, seed=seed,
                                                                progress=progress, callback=callback, **kwargs),
                         retrain=retrain)
    return generator.eval(), info
