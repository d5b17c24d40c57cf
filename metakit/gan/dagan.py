"""A DAGAN-style conditional generator (Antoniou, Storkey and Edwards, 2017, "Data Augmentation
Generative Adversarial Networks"): one image of a character plus noise in, another plausible
drawing of the same character out."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import checkpoint_path, load_weights, train_or_load
from ..runtime import recipe_clock
from .dcgan import DCGANDiscriminator, dataset_images, train_adversarial

CHECKPOINT = "dagan-glyphs.pt"  # made by: python benchmarks/gan_augmentation.py --save-checkpoints
CPU_SECONDS = 300               # the generator's training budget in CPU-seconds (time.process_time)
#: the balanced generator: the same network, budget and losses, with the R1 penalty on the discriminator
#: (see :func:`~metakit.gan.dcgan.train_adversarial`), which keeps its loss near the game's equilibrium
BALANCED = dict(r1=1.0)
BALANCED_CHECKPOINT = "dagan-balanced-glyphs.pt"  # made by: python benchmarks/dagan_protocol.py --save-checkpoints


class DAGANGenerator(nn.Module):
    """An encoder that reads ``(x, z)`` and redraws ``x`` as another drawing of the same character.

    The encoder shrinks ``x`` to 7x7 feature maps and the noise is projected to extra 7x7 maps
    beside them, as in the DAGAN's encoder-decoder; the decoder's output is not free pixels but a
    deformation of the input: a global affine map (slant, rotation, scale, shift) plus a smooth
    7x7 displacement field, applied with ``grid_sample``, and a pen-width change. A character
    cannot turn into another one this way, which is what a few-shot learner needs of its extra
    examples. The discriminator judges *pairs* ``(x, x')``: real when ``x'`` is another drawing of
    the same character, fake when ``x' = G(x, z)``; since real pairs are never copies, the
    generator learns deformations as varied as real drawings show (Antoniou et al., 2017, Sec. 3).

    Args:
        z_dim: size of the noise vector.
        hidden: channels at 14x14 (twice as many at 7x7).
        max_flow: the largest displacement of the field, as a fraction of the image's half-width.
    """

    def __init__(self, z_dim: int = 16, hidden: int = 32, max_flow: float = 0.3):
        super().__init__()
        self.z_dim, self.max_flow = z_dim, max_flow
        self.encode = nn.Sequential(
            nn.Conv2d(1, hidden, 4, stride=2, padding=1), nn.LeakyReLU(0.2),              # (B, hidden, 14, 14)
            nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1), nn.LeakyReLU(0.2))     # (B, 2*hidden, 7, 7)
        self.noise = nn.Sequential(nn.Linear(z_dim, 8 * 49), nn.Unflatten(1, (8, 7, 7)))
        self.mix = nn.Sequential(nn.Conv2d(2 * hidden + 8, 2 * hidden, 3, padding=1), nn.LeakyReLU(0.2))
        self.flow = nn.Conv2d(2 * hidden, 2, 3, padding=1)                                # (B, 2, 7, 7)
        self.affine = nn.Linear(2 * hidden + z_dim, 7)                                   # 6 affine numbers, pen
        for head in (self.flow, self.affine):  # start at the identity: the input copied
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, 1, 28, 28) images, ink 1.0.
            z: (B, z_dim) noise.
        Returns:
            (B, 1, 28, 28) generated images with values in [0, 1].
        """
        h = self.mix(torch.cat([self.encode(x), self.noise(z)], 1))            # (B, 2*hidden, 7, 7)
        a = self.affine(torch.cat([h.mean((2, 3)), z], 1))                     # (B, 7)
        eye = torch.eye(2, 3, device=x.device, dtype=x.dtype)
        theta = eye + 0.3 * torch.tanh(a[:, :6]).view(-1, 2, 3)                # (B, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)       # (B, 28, 28, 2)
        flow = self.max_flow * torch.tanh(self.flow(h))                        # (B, 2, 7, 7)
        flow = F.interpolate(flow, size=x.shape[-2:], mode="bilinear", align_corners=False)
        out = F.grid_sample(x, grid + flow.permute(0, 2, 3, 1), align_corners=False)
        # pen width: a 3x3 max-pool thickens the strokes, blended in by a learned amount in [-1, 1]
        pen = torch.tanh(a[:, 6]).view(-1, 1, 1, 1)
        thick = F.max_pool2d(out, 3, stride=1, padding=1)
        thin = -F.max_pool2d(-out, 3, stride=1, padding=1)
        out = out + pen.clamp(min=0) * (thick - out) + (-pen).clamp(min=0) * (thin - out)
        return out.clamp(0, 1)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, n_samples: int, noise_scale: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` variations of each image, with ``z ~ N(0, noise_scale^2 I)``, in eval mode.

        Args:
            x: (N, 1, 28, 28) images.
        Returns:
            (N, n_samples, 1, 28, 28) variations.
        """
        check_generate(n_samples, noise_scale)
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        n = len(x)
        z = noise_scale * torch.randn(n * n_samples, self.z_dim, generator=generator).to(device)
        xs = x.to(device).repeat_interleave(n_samples, 0)       # (N*n_samples, 1, 28, 28)
        out = self(xs, z).view(n, n_samples, *x.shape[1:])
        self.train(was_training)
        return out


def check_generate(n_samples, noise_scale) -> None:
    """The arguments every augmenter's ``generate`` takes: a positive whole ``n_samples`` and a
    ``noise_scale`` of 0 or more (NaN refused); ``ValueError`` otherwise."""
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive whole number; got {n_samples!r}.")
    if not (noise_scale >= 0):
        raise ValueError(f"noise_scale must be 0 or more; got {noise_scale!r}.")


def class_index(dataset) -> torch.Tensor:
    """(C, M) image indices of each class, for classes that all hold M images (glyphs: M = 20)."""
    rows = [dataset.labels_to_indices[c] for c in sorted(dataset.labels_to_indices)]
    m = min(len(r) for r in rows)
    return torch.tensor([r[:m] for r in rows])


def train_dagan(generator: DAGANGenerator, dataset, *, discriminator: nn.Module | None = None,
                batch_size: int = 32, seed: int = 0, steps: int | None = None, seconds: float | None = None,
                diversity_weight: float = 1.0, clock=time.perf_counter, **kwargs) -> dict:
    """Train the DAGAN on the characters of ``dataset`` (the glyph background alphabets).

    A real pair is two different drawings of one character; a fake pair is a drawing and the
    generator's variation of it. A conditional generator tends to ignore its noise (nothing in the
    pair game asks two variations to differ), so the generator also maximises the mode-seeking
    ratio of Mao et al. (2019), ``|G(x, z1) - G(x, z2)| / |z1 - z2|``, capped at 0.15 and weighted
    by ``diversity_weight``. ``steps``, ``seconds`` and ``clock`` are the budget, and other keyword
    arguments go to :func:`~metakit.gan.dcgan.train_adversarial`.

    Returns:
        The training history (``d_loss``, ``g_loss``, ``steps``, ``seconds``, ``clock_seconds``).
    """
    torch.manual_seed(seed)
    device = next(generator.parameters()).device
    discriminator = (discriminator or DCGANDiscriminator(in_channels=2)).to(device)
    images = dataset_images(dataset)                      # (N, 1, 28, 28)
    index = class_index(dataset)                          # (C, M)
    c, m = index.shape
    pick = {}

    def real_batch():
        classes = torch.randint(c, (batch_size,))
        i = torch.randint(m, (batch_size,))
        j = (i + torch.randint(1, m, (batch_size,))) % m  # another drawing, never the same one
        pick["x"] = images[index[classes, i]].to(device)
        return torch.cat([pick["x"], images[index[classes, j]].to(device)], 1)  # (B, 2, 28, 28)

    def fake_batch():
        x = pick["x"]
        z = torch.randn(2 * len(x), generator.z_dim, device=device)
        fake, other = generator(torch.cat([x, x]), z).chunk(2)            # two variations of each image
        z1, z2 = z.chunk(2)
        pick["ratio"] = ((fake - other).abs().mean((1, 2, 3)) / (z1 - z2).abs().mean(1)).clamp(max=0.15)
        return torch.cat([x, fake], 1)

    def diversity_loss():
        return -diversity_weight * pick["ratio"].mean()

    return train_adversarial(generator, discriminator, real_batch, fake_batch, steps=steps,
                             seconds=seconds, clock=clock, desc="DAGAN training",
                             generator_extra=diversity_loss if diversity_weight else None, **kwargs)


def train_or_load_dagan(dataset, path=CHECKPOINT, seconds: float = CPU_SECONDS, clock=None,
                        retrain: bool = False, progress: bool = True, seed: int = 0, device=None,
                        **kwargs) -> tuple[DAGANGenerator, dict]:
    """The DAGAN of ``path`` (a bare name is looked up in ``data/checkpoints/``), or trained on
    ``dataset`` for ``seconds`` of ``clock`` time and saved there (by default
    :func:`~metakit.runtime.recipe_clock`: CPU time on the CPU, as the committed checkpoint was
    trained; wall clock on a GPU). It loads or trains on ``device`` (None: the CPU).

    Returns:
        The generator in eval mode, and its record (``d_loss``, ``g_loss``, ``steps``,
        ``clock_seconds``, ``loaded``).
    """
    generator = DAGANGenerator().to(device)
    clock = clock or recipe_clock(device)
    info = train_or_load(generator, path, lambda g: train_dagan(g, dataset, seconds=seconds, clock=clock, seed=seed,
                                                                progress=progress, **kwargs), retrain=retrain)
    return generator.eval(), info


def load_dagan(path=CHECKPOINT) -> DAGANGenerator:
    """The committed DAGAN, in eval mode; ``FileNotFoundError`` naming the command that makes it."""
    path = checkpoint_path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; make it with "
                                "python benchmarks/gan_augmentation.py --save-checkpoints")
    generator = DAGANGenerator()
    load_weights(generator, path)
    return generator.eval()
