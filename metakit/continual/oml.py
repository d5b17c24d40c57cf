"""Meta-continual learning: OML (Javed & White, 2019) and ANML (Beaulieu et al., 2020), shrunk to
a CPU. Both meta-learn a representation on which a linear output layer can learn a long stream of
new classes online, one example per SGD step, without erasing the classes before; ANML adds a
neuromodulatory network that gates the representation, input by input.

At meta-test the representation is frozen, so every model here is ``features(x) -> (B, D)`` and
the same head protocol (:func:`stream_accuracy`) compares them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints import CHECKPOINTS, train_or_load
from ..runtime import Budget
from ..training import model_device
from .stream import diverged

# Held out of meta-training and pretraining, to choose each model's head learning rate.
VALIDATION_ALPHABETS = ("Cyrillic", "Greek")


def conv_features(width: int = 32) -> nn.Sequential:
    """Three stride-2 3x3 convolutions with ReLUs: (B, 1, 28, 28) -> (B, width * 16)."""
    return nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), nn.ReLU(), nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(),
                         nn.Conv2d(width, width, 3, 2, 1), nn.ReLU(), nn.Flatten())   # 28 -> 14 -> 7 -> 4


class OnlineLearner(nn.Module):
    """A representation ``features`` and a linear output layer ``head`` over the training classes.

    OML's "representation learning network" is ``rln``; its "prediction network" is the head. The
    pretrained baseline is this same network trained with ordinary minibatch cross-entropy.
    """

    def __init__(self, n_classes: int, width: int = 32):
        super().__init__()
        self.rln = conv_features(width)
        self.dim = width * 16
        self.head = nn.Linear(self.dim, n_classes)
        self.log_inner_lr = nn.Parameter(torch.tensor(math.log(0.1)))   # meta-learned in meta-training

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.rln(x)

    def frozen(self) -> nn.Module:
        """The part kept at meta-test (what a checkpoint holds): the representation."""
        return nn.ModuleDict({"rln": self.rln})

    def forward(self, x):
        return self.head(self.features(x))


class ANML(OnlineLearner):
    """ANML: a neuromodulatory network computes, from the same input, a gate in (0, 1) for every
    feature, ``features(x) = rln(x) * sigmoid(nm(x))``; it is trained only in the outer loop, and
    learns to switch off the features a class does not need, which protects the other classes."""

    def __init__(self, n_classes: int, width: int = 32, nm_width: int = 16):
        super().__init__(n_classes, width)
        self.nm = nn.Sequential(conv_features(nm_width), nn.Linear(nm_width * 16, self.dim))

    def features(self, x):
        return self.rln(x) * torch.sigmoid(self.nm(x))

    def frozen(self):
        return nn.ModuleDict({"rln": self.rln, "nm": self.nm})


def online_head_step(W, b, z, y, lr):
    """One SGD step of cross-entropy on the linear head for one example (the OML/ANML inner loop).

    Args:
        W: (C, D), b: (C,) the head; z: (D,) the example's features; y: its class (int).
    Returns:
        The new ``(W, b)``; differentiable in everything, so meta-training backpropagates through it.
    """
    loss = F.cross_entropy((W @ z + b)[None], torch.tensor([y], device=z.device))
    gW, gb = torch.autograd.grad(loss, (W, b), create_graph=torch.is_grad_enabled())
    return W - lr * gW, b - lr * gb


def meta_train_online(model: OnlineLearner, dataset, steps: int | None = 1000, seconds: float | None = None, *,
                      classes: int = 3, shots: int = 5, remember: int = 30, meta_lr: float = 1e-3, seed: int = 0,
                      clock=time.perf_counter, progress: bool = True) -> dict:
    """OML/ANML meta-training, a few CPU-minutes' worth.

    Each meta-step draws ``classes`` classes, zeroes their rows of the head (they are "new"), and
    runs the inner loop over their ``classes * shots`` images one at a time, class after class:
    one SGD step on the head per image (:func:`online_head_step`). The outer loss is the
    cross-entropy of the final head on the trajectory plus ``remember`` random images of all the
    classes (so learning the new classes must not erase the old ones); Adam updates the
    representation (and ANML's gate), the head's starting weights and the inner learning rate.

    The budget is :class:`~metakit.runtime.Budget`'s: at most ``steps`` meta-steps and/or
    ``seconds`` of ``clock`` time (wall clock by default).

    Returns:
        ``{"loss", "steps", "seconds", "clock_seconds"}`` with the outer loss of every step.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=meta_lr)
    n_classes, images, device = dataset.num_classes, dataset, model_device(model)
    budget = Budget(steps, seconds, clock=clock, device=device, desc=f"meta-training {type(model).__name__}",
                    progress=progress)
    model.train()
    for _ in budget:
        chosen = torch.randperm(n_classes, generator=g)[:classes].tolist()
        rows = [dataset.labels_to_indices[c][i] for c in chosen
                for i in torch.randperm(len(dataset.labels_to_indices[c]), generator=g)[:shots].tolist()]
        rows_rem = torch.randint(len(dataset), (remember,), generator=g).tolist()
        x = torch.stack([images[i][0] for i in rows + rows_rem]).to(device)  # (T + R, 1, 28, 28)
        y = torch.tensor([images[i][1] for i in rows + rows_rem], device=device)
        z = model.features(x)                                                # (T + R, D)
        keep = torch.ones(n_classes, 1, device=device)
        keep[chosen] = 0.0
        W, b = model.head.weight * keep, model.head.bias * keep[:, 0]         # the new classes start at 0
        lr = model.log_inner_lr.exp()
        for i in range(len(rows)):
            W, b = online_head_step(W, b, z[i], int(y[i]), lr)
        adam_step(opt, F.cross_entropy(z @ W.T + b, y), budget, "the meta-training loss", "meta_lr")
    return {**budget.history, **budget.summary()}


def adam_step(opt, loss: torch.Tensor, budget: Budget, what: str, lr_name: str) -> None:
    """One optimiser step on ``loss``, logged on ``budget``. A loss that has diverged (not finite or
    above ``LOSS_LIMIT``: :func:`~metakit.continual.stream.diverged`) takes no step, closes the
    budget's bar and raises ``FloatingPointError`` naming the learning rate to lower."""
    value = loss.item()
    if diverged(value):
        budget.close()
        raise FloatingPointError(f"{what} became {value:.3g}; lower {lr_name}.")
    opt.zero_grad()
    loss.backward()
    opt.step()
    budget.log(loss=value)


def pretrain(model: OnlineLearner, dataset, steps: int | None = 1000, seconds: float | None = None, *,
             batch_size: int = 64, lr: float = 1e-3, seed: int = 0, clock=time.perf_counter,
             progress: bool = True) -> dict:
    """The baseline: ordinary minibatch cross-entropy on all the training classes, Adam steps for a
    :class:`~metakit.runtime.Budget` of ``steps`` and/or ``seconds`` of ``clock`` time.

    Returns:
        ``{"loss", "steps", "seconds", "clock_seconds"}`` with the loss of every step.
    """
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x_all, device = torch.stack([dataset[i][0] for i in range(len(dataset))]), model_device(model)
    budget = Budget(steps, seconds, clock=clock, device=device, desc="pretraining", progress=progress)
    model.train()
    for _ in budget:
        rows = torch.randint(len(dataset), (batch_size,), generator=g)
        x, y = x_all[rows].to(device), dataset.targets[rows].to(device)
        adam_step(opt, F.cross_entropy(model(x), y), budget, "the pretraining loss", "lr")
    return {**budget.history, **budget.summary()}


@torch.no_grad()
def stream_accuracy(features, dataset, n_classes: int = 100, lr: float = 0.01, train_per_class: int = 15,
                    report=None, seed: int = 0, device=None) -> dict[int, float]:
    """The meta-test protocol of OML and ANML: learn ``n_classes`` new classes one after the other,
    each from ``train_per_class`` images seen once, one SGD step per image on a linear head that
    starts at zero with one output per class of the stream; the representation stays frozen.

    Args:
        features: ``(B, 1, 28, 28) -> (B, D)``, e.g. ``model.features``.
        dataset: the classes to learn, in a random order drawn from ``seed``.
        report: the numbers of classes after which to test (default: every 10 and ``n_classes``).
        device: where ``features`` computes (default: where its module's parameters are, for a
            module or a module's method; else the CPU).
    Returns:
        ``{n: accuracy}``: accuracy on the held-out images (the rest of each class) of the first
        ``n`` classes, right after learning the n-th, predicting among the first ``n`` outputs.
    """
    if int(n_classes) != n_classes or not 1 <= n_classes <= dataset.num_classes:
        raise ValueError(f"n_classes must be between 1 and {dataset.num_classes}; got {n_classes!r}.")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"the head's learning rate must be a positive number; got {lr!r}.")
    report = sorted(set(report or [*range(10, n_classes, 10), n_classes]))
    order = torch.randperm(dataset.num_classes, generator=torch.Generator().manual_seed(seed))[:n_classes].tolist()
    owner = getattr(features, "__self__", features)
    device = torch.device(device) if device is not None else (
        model_device(owner) if isinstance(owner, nn.Module) else torch.device("cpu"))
    z_train, z_test = [], []
    for c in order:
        rows = dataset.labels_to_indices[c]
        if len(rows) <= train_per_class:
            raise ValueError(f"train_per_class={train_per_class} leaves no test images: class {c} has {len(rows)}.")
        z = features(torch.stack([dataset[i][0] for i in rows]).to(device))
        z_train.append(z[:train_per_class])
        z_test.append(z[train_per_class:])
    W, b = torch.zeros(n_classes, z.shape[1], device=device), torch.zeros(n_classes, device=device)  # one per class
    out = {}
    for n, zs in enumerate(z_train, 1):
        for zi in zs:
            p = torch.softmax(W @ zi + b, 0)
            p[n - 1] -= 1.0                                         # d(cross-entropy)/d(logits) = p - onehot
            W -= lr * p[:, None] * zi
            b -= lr * p
        if n in report:
            zt = torch.cat(z_test[:n])
            yt = torch.cat([torch.full((len(t),), k, device=device) for k, t in enumerate(z_test[:n])])
            out[n] = ((zt @ W[:n].T + b[:n]).argmax(1) == yt).float().mean().item()
    return out


LEARNING_RATES = tuple(float(f"{m}e{e}") for e in range(-7, 0) for m in (1, 3)) + (1.0,)   # 1e-7, 3e-7, ..., 0.3, 1


def choose_lr(features, validation, n_classes: int = 100, lrs=LEARNING_RATES, train_per_class: int = 15,
              seed: int = 0, device=None) -> tuple[float, dict]:
    """The head learning rate with the best accuracy after ``n_classes`` classes of ``validation``
    (OML and ANML tune it per model too). Returns ``(best lr, {lr: accuracy})``.

    The grid reaches down to where accuracy stops changing: as the learning rate goes to 0 the
    head becomes a sum of the examples' features, scaled by the rate, whose argmax no longer
    depends on it. ``device``: as in :func:`stream_accuracy`."""
    n = min(n_classes, validation.num_classes)
    scores = {lr: stream_accuracy(features, validation, n, lr, train_per_class, [n], seed, device=device)[n]
              for lr in lrs}
    return max(scores, key=scores.get), scores


# Steps of training per model in the benchmark and notebook 07 (a few CPU-minutes each).
STEPS = {"oml": 3000, "anml": 3000, "pretrain": 3000}


def split_background(background):
    """``(training classes, validation classes)``: the validation alphabets are held out of
    (meta-)training and only choose the head's learning rate."""
    train = background.subset([a for a in background.alphabets if a not in VALIDATION_ALPHABETS])
    return train, background.subset(list(VALIDATION_ALPHABETS))


def meta_continual_models(background, folder=None, steps: int | None = None, retrain: bool = False, seed: int = 0,
                          progress: bool = True, device=None) -> dict:
    """OML, ANML and the pretrained network, trained (train-or-load) on the training part of
    ``background``. Only the representation (and ANML's gate) is saved: the head is not used at
    meta-test.

    Args:
        folder: where the checkpoints ``<name>-<steps>steps.pt`` live (default ``data/checkpoints``).
        steps: training steps for each model (default :data:`STEPS`).
        device: where the models are trained or loaded (None: the CPU).
    Returns:
        ``name -> (model, info)``, info holding ``steps``, ``seconds``, ``loss`` and ``loaded``.
    """
    train, _ = split_background(background)
    folder = Path(folder) if folder is not None else CHECKPOINTS
    out = {}
    for name in ("oml", "anml", "pretrain"):
        n = steps or STEPS[name]
        torch.manual_seed(seed)
        model = (ANML if name == "anml" else OnlineLearner)(train.num_classes).to(device)
        fit = pretrain if name == "pretrain" else meta_train_online
        info = train_or_load(model.frozen(), folder / f"{name}-{n}steps.pt",
                             lambda _: fit(model, train, n, seed=seed, progress=progress), retrain=retrain)
        out[name] = (model.eval(), info)
    return out


def compare_on_stream(models: dict, background, evaluation, n_choose: int = 100, train_per_class: int = 15,
                      seed: int = 0, device=None):
    """Each model's head learning rate chosen on the validation alphabets after ``n_choose``
    classes, then its accuracy curve on all of ``evaluation``'s classes learned in sequence, on
    ``device`` (None: where each model's parameters are).

    Returns:
        ``(curves, table)``: ``curves[name] = {n_classes: accuracy}``; ``table[name]`` holds
        ``steps``, ``seconds``, ``lr`` and ``validation`` (accuracy for each learning rate tried).
    """
    _, validation = split_background(background)
    n_all = evaluation.num_classes
    report = sorted({1, 5, 10, 25, 50, 75, 100, *range(150, n_all, 50), n_all})
    curves, table = {}, {}
    for name, (model, info) in models.items():
        lr, scores = choose_lr(model.features, validation, n_choose, train_per_class=train_per_class, seed=seed,
                               device=device)
        curves[name] = stream_accuracy(model.features, evaluation, n_all, lr, train_per_class, report, seed,
                                       device=device)
        table[name] = {"steps": info.get("steps"), "seconds": info.get("seconds", math.nan), "lr": lr,
                       "validation": scores}
    return curves, table
