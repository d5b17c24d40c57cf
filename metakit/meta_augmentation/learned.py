"""A differentiable augmentation whose magnitudes are learned by the meta-gradient (a bilevel problem).

The inner problem adapts the network on the support set *plus augmented copies of it*; the outer
loss is the query loss after that adaptation. Because the augmentation is differentiable in its
magnitudes (a reparameterised random affine warp through ``affine_grid``/``grid_sample``, a soft
stroke dilation or erosion, pixel noise), the outer gradient flows from the query loss, through
the inner gradient step, into the augmentation's parameters, in the spirit of learned
augmentation policies such as Hataya et al.'s Faster AutoAugment (2020), here trained by MAML's
second-order meta-gradient.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CHECKPOINTS, train_or_load
from ..compare import compare
from ..episodes import EpisodeSampler
from ..gradient.maml import MAML
from ..gradient.training import meta_evaluate, meta_train
from ..models import Conv4
from ..runtime import recipe_clock, seed_everything
from ..stats import format_ci, mean_ci

NAMES = ("rotation", "scale", "shear", "translate", "thickness", "noise")
#: the largest magnitude each parameter can reach (rotation in radians; scale, shear, translate as
#: fractions; thickness as the share of a 3x3 dilation or erosion; noise as a pixel std)
LIMITS = dict(rotation=math.radians(45), scale=0.4, shear=0.6, translate=0.3, thickness=1.0, noise=0.3)
#: where the learned policy starts: mild everything
START = dict(rotation=math.radians(5), scale=0.05, shear=0.05, translate=0.03, thickness=0.1, noise=0.03)
#: the hand-set fixed policy: values that look like plausible handwriting variation on glyphs
HAND_TUNED = dict(rotation=math.radians(10), scale=0.1, shear=0.2, translate=0.05, thickness=0.4, noise=0.0)


class Augmentation(nn.Module):
    """Random affine warp, stroke thickness and noise with magnitudes ``m = LIMITS * sigmoid(raw)``.

    Every image draws ``u ~ U(-1, 1)`` per transformation and is warped by ``u * m``
    (reparameterised: the randomness is fixed, the output is differentiable in ``m``).

    Args:
        magnitudes: starting magnitudes by name (default :data:`START`), each in (0, LIMITS).
        learnable: make ``raw`` a parameter (the learned policy) or a buffer (a fixed one).
    """

    def __init__(self, magnitudes: dict | None = None, learnable: bool = True):
        super().__init__()
        m = {**START, **(magnitudes or {})}
        unknown = sorted(set(m) - set(NAMES))
        if unknown:
            raise ValueError(f"unknown augmentation parameter(s) {unknown}; they are {', '.join(NAMES)}.")
        fractions = torch.tensor([m[n] / LIMITS[n] for n in NAMES], dtype=torch.float32)
        if not bool(((fractions >= 0) & (fractions < 1)).all()):
            raise ValueError(f"each magnitude must lie in [0, LIMITS); limits: {LIMITS}, asked: {m}.")
        raw = torch.logit(fractions.clamp(1e-4, 1 - 1e-4))
        if learnable:
            self.raw = nn.Parameter(raw)
        else:
            self.register_buffer("raw", raw)

    def magnitudes(self) -> torch.Tensor:
        """(6,) magnitudes in the order of :data:`NAMES`."""
        return torch.tensor([LIMITS[n] for n in NAMES], device=self.raw.device) * torch.sigmoid(self.raw)

    def policy(self) -> dict:
        """The magnitudes as floats by name, rotation in degrees."""
        m = self.magnitudes().detach().tolist()
        return {n: math.degrees(v) if n == "rotation" else v for n, v in zip(NAMES, m)}

    def forward(self, x: torch.Tensor, strength: float = 1.0, generator=None) -> torch.Tensor:
        """Augment a batch of images.

        Args:
            x: (B, 1, H, W) images, ink 1 on 0.
            strength: a multiplier on every magnitude (the widget's; 1 in training).
            generator: a ``torch.Generator`` for the random draws (default: the global one).
        Returns:
            (B, 1, H, W) augmented images in [0, 1].
        """
        b = x.shape[0]
        u = torch.rand(b, 6, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1  # (B, 6) in U(-1, 1)
        m = self.magnitudes().to(x.dtype) * strength
        angle, scale, shear = u[:, 0] * m[0], 1 + u[:, 1] * m[1], u[:, 2] * m[2]
        shift = u[:, 3:5] * m[3]                                           # (B, 2)
        thick = u[:, 5] * m[4]                                             # (B,) >0 thickens, <0 thins
        cos, sin = torch.cos(angle), torch.sin(angle)
        rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # (B, 2, 2)
        shearing = torch.stack([torch.stack([torch.ones_like(shear), shear], -1),
                                torch.stack([torch.zeros_like(shear), torch.ones_like(shear)], -1)], -2)
        theta = torch.cat([scale[:, None, None] * rotation @ shearing, shift[:, :, None]], -1)  # (B, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        y = F.grid_sample(x, grid, padding_mode="zeros", align_corners=False)  # zeros: the background
        dilated = F.max_pool2d(y, 3, 1, 1)
        eroded = -F.max_pool2d(-y, 3, 1, 1)
        t = thick[:, None, None, None]
        y = y + F.relu(t) * (dilated - y) + F.relu(-t) * (eroded - y)
        noise = torch.randn(y.shape, generator=generator, device=x.device, dtype=x.dtype)
        return (y + m[5] * noise).clamp(0.0, 1.0)


class AugmentedMAML(MAML):
    """MAML whose inner loop adapts on the support set plus ``copies`` augmented copies of it, in
    meta-training and at test time alike; a learnable :class:`Augmentation` is then trained by the
    outer loss through the inner step (second order: FOMAML would cut that path).

    Args:
        model: the network (BatchNorm on batch statistics).
        augment: an :class:`Augmentation`, or None for plain MAML (the "no augmentation" arm).
        copies: augmented copies of each support image.
        **maml: ``inner_lr``, ``inner_steps`` and the rest of :class:`~metakit.gradient.maml.MAML`'s arguments.
    """

    def __init__(self, model: nn.Module, augment: Augmentation | None = None, copies: int = 2, **maml):
        super().__init__(model, **maml)
        self.augment, self.copies = augment, copies if augment is not None else 0
        self.trajectory: list[dict] = []  # the policy at every meta-iteration

    def augment_support(self, x_support, y_support):
        """``x_support`` (..., N, 1, H, W) and ``copies`` augmented copies along the example axis:
        (..., (1 + copies) N, 1, H, W), with the labels repeated to match."""
        if self.copies == 0:
            return x_support, y_support
        flat = x_support.flatten(0, -4)                                   # (B*N, 1, H, W)
        copies = [self.augment(flat).reshape(x_support.shape) for _ in range(self.copies)]
        dim = x_support.dim() - 4                                         # the example axis
        return torch.cat([x_support, *copies], dim), torch.cat([y_support] * (1 + self.copies), dim)

    def meta_loss(self, tasks, step_weights=None, keep_adapted: bool = False):
        x_support, y_support, x_query, y_query = tasks
        x_support, y_support = self.augment_support(x_support, y_support)  # (T, (1+copies) N, ...)
        if self.augment is not None and self.augment.raw.requires_grad:
            self.trajectory.append(self.augment.policy())
        return super().meta_loss((x_support, y_support, x_query, y_query), step_weights, keep_adapted)

    def adapt(self, x_support, y_support, steps: int | None = None, create_graph: bool = False) -> dict:
        with torch.set_grad_enabled(create_graph):
            x_support, y_support = self.augment_support(x_support, y_support)
        return super().adapt(x_support, y_support, steps=steps, create_graph=create_graph)


ARMS = ("none", "fixed", "learned")


def make_augmented(arm: str, n_way: int = 5, hidden: int = 32, copies: int = 2, inner_lr: float = 0.4,
                   inner_steps: int = 1) -> AugmentedMAML:
    """One arm of the comparison on a fresh Conv-4: ``"none"`` (plain MAML), ``"fixed"``
    (:data:`HAND_TUNED`, frozen) or ``"learned"`` (starting at :data:`START`)."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {', '.join(ARMS)}; got {arm!r}.")
    augment = {"none": None, "fixed": Augmentation(HAND_TUNED, learnable=False), "learned": Augmentation()}[arm]
    return AugmentedMAML(Conv4(hidden=hidden, out_features=n_way, track_running_stats=False), augment,
                         copies=copies, inner_lr=inner_lr, inner_steps=inner_steps)


def augmentation_optimizer(algorithm: AugmentedMAML, aug_lr: float):
    """An optimiser factory for :func:`~metakit.gradient.training.meta_train`: Adam with the
    network at ``meta_lr`` and the augmentation's magnitudes at their own rate ``aug_lr``."""
    aug = [] if algorithm.augment is None else [p for p in algorithm.augment.parameters()]

    def make(params, lr):
        net = [p for p in params if not any(p is a for a in aug)]
        return torch.optim.Adam([{"params": net, "lr": lr}] + ([{"params": aug, "lr": aug_lr}] if aug else []))
    return make


def train_augmented(algorithm: AugmentedMAML, dataset, *, steps: int | None = None, seconds: float | None = None,
                    meta_lr: float = 1e-3, aug_lr: float = 0.05, meta_batch_size: int = 4, n_way: int = 5,
                    k_shot: int = 1, n_query: int = 5, progress: bool = True, callback=None,
                    clock=time.perf_counter) -> dict:
    """Meta-train one arm on ``dataset`` for at most ``steps`` meta-iterations and ``seconds`` of
    ``clock`` time (see :class:`~metakit.runtime.Budget`).

    Returns:
        :func:`~metakit.gradient.training.meta_train`'s history plus ``traj_<name>`` lists: the
        learned policy at every meta-iteration (empty for the fixed arms).
    """
    if not (aug_lr > 0 and math.isfinite(aug_lr)):
        raise ValueError(f"aug_lr must be a positive number; got {aug_lr!r}.")
    sampler = EpisodeSampler(dataset, n_way, k_shot, n_query)
    history = meta_train(algorithm, sampler, meta_lr=meta_lr, meta_batch_size=meta_batch_size, seconds=seconds,
                         steps=steps, progress=progress, callback=callback, clock=clock,
                         optimizer=augmentation_optimizer(algorithm, aug_lr))
    history.update(trajectory_lists(algorithm.trajectory))
    return history


def trajectory_lists(trajectory: list[dict]) -> dict:
    """``{"traj_<name>": [value per meta-iteration]}`` (what a checkpoint can store)."""
    return {f"traj_{n}": [p[n] for p in trajectory] for n in NAMES}


#: the comparison's budget: CPU-seconds of meta-training per arm, and the outer rates
AUG_TRAIN = dict(seconds=150.0, meta_lr=1e-3, aug_lr=0.05)
TEST = "5w1s"  # the comparison's test setting


def augmentation_experiment(background, test_sets: dict, seconds: float = AUG_TRAIN["seconds"], episodes: int = 300,
                            folder=None, retrain: bool = False, progress: bool = True, seed: int = 0, device=None):
    """Train (or load) the three arms with the same CPU budget, then test them on the same
    5-way 1-shot episodes (15 queries per class) with :func:`metakit.compare.compare`, all on
    ``device`` (None: the CPU).

    Args:
        test_sets: name -> dataset of new classes (``metakit.datasets.held_out_sets()``).
        folder: where the ``metaaug-aug-<arm>.pt`` checkpoints live (default ``data/checkpoints``).
    Returns:
        ``(algorithms, histories, accs)``: arm -> trained model, arm -> its history (or the
        checkpoint's record of it), and ``{(arm, test set): (episodes,) accuracies}`` (float64).
    """
    folder = Path(folder) if folder is not None else CHECKPOINTS
    algorithms, histories = {}, {}
    for arm in ARMS:
        seed_everything(seed)
        alg = make_augmented(arm).to(device)
        histories[arm] = train_or_load(alg, folder / f"metaaug-aug-{arm}.pt", lambda m: train_augmented(
            m, background, seconds=seconds, meta_lr=AUG_TRAIN["meta_lr"], aug_lr=AUG_TRAIN["aug_lr"],
            clock=recipe_clock(device), progress=progress), retrain=retrain)
        algorithms[arm] = alg
    results = compare(algorithms, test_sets, {TEST: dict(n_way=5, k_shot=1, n_query=15)}, episodes=episodes,
                      seed=seed + 1, progress=progress)
    accs = {(arm, s): torch.tensor(results[arm, s, TEST]["accs"], dtype=torch.float64)
            for arm in ARMS for s in test_sets}
    return algorithms, histories, accs


def train_policy(background, evaluation, meta_lr: float, aug_lr: float, seconds: float, callback=None,
                 test_episodes: int = 50, progress: bool = True, seed: int = 0, algorithm=None, device=None):
    """Notebook 06's Run button: meta-train the learned arm for ``seconds`` CPU-seconds
    (``time.process_time``), then test it.

    Args:
        algorithm: the :class:`~metakit.meta_augmentation.learned.AugmentedMAML` to train (default: a
            fresh learned arm, seeded with ``seed``).
        device: where to train and test (None: where ``algorithm`` is, the CPU for a fresh one).

    Returns:
        ``(algorithm, history, (acc, ci95))`` on ``test_episodes`` 5-way 1-shot evaluation episodes.
    Raises:
        ValueError for rates or budgets out of range; FloatingPointError when training diverges.
    """
    for name, v, top in (("meta_lr", meta_lr, 1.0), ("aug_lr", aug_lr, 10.0)):
        if not (0 < v <= top and math.isfinite(v)):
            raise ValueError(f"{name} must be a positive number up to {top:g}; got {v!r}.")
    if not (0 < seconds <= 600 and math.isfinite(seconds)):
        raise ValueError(f"seconds must be between 0 and 600; got {seconds!r}.")
    seed_everything(seed)
    alg = (make_augmented("learned") if algorithm is None else algorithm).to(device)
    history = train_augmented(alg, background, seconds=seconds, meta_lr=meta_lr, aug_lr=aug_lr, progress=progress,
                              callback=callback, clock=recipe_clock(device))
    seed_everything(seed)
    acc = meta_evaluate(alg, EpisodeSampler(evaluation, 5, 1, 15), episodes=test_episodes)
    return alg, history, acc


def format_augmentation_table(accs: dict, histories: dict) -> str:
    """Rows: arms; columns: meta-iterations, CPU-s, accuracy ± 95% per test set and the paired
    difference to no augmentation (the per-episode difference's interval)."""
    sets = list(dict.fromkeys(s for _, s in accs))
    head = f"{'arm':<8} {'its':>5} {'cpu s':>6}" + "".join(f"  {s:>13} {'- none':>14}" for s in sets)
    lines = [head]
    for arm in dict.fromkeys(a for a, _ in accs):
        h = histories[arm]
        row = f"{arm:<8} {h.get('steps', 0):>5} {h.get('clock_seconds', float('nan')):>6.0f}"
        for s in sets:
            m, c = mean_ci(accs[arm, s])
            d, dc = mean_ci(accs[arm, s] - accs["none", s])
            row += f"  {format_ci(m, c, 3)}  " + (f"{d:+.3f}±{dc:.3f}" if arm != "none" else f"{'':>12}")
        lines.append(row)
    return "\n".join(lines)


def format_differences(accs: dict) -> str:
    """One line per test set: the learned arm minus no augmentation and minus the fixed arm, each
    the mean of the per-episode differences with its 95% interval, and whether the first clears it."""
    lines = []
    for s in dict.fromkeys(s for _, s in accs):
        d, c = mean_ci(accs["learned", s] - accs["none", s])
        f, fc = mean_ci(accs["learned", s] - accs["fixed", s])
        verdict = "above" if d - c > 0 else "below" if d + c < 0 else "within the noise of"
        lines.append(f"{s:>8}: learned - none {d:+.3f} ± {c:.3f} ({verdict} no augmentation); "
                     f"learned - fixed {f:+.3f} ± {fc:.3f}")
    return "\n".join(lines)
