"""Transfer learning against meta-learning (Chen et al., ICLR 2019, "A Closer Look at Few-Shot
Classification"): pretrain an ordinary classifier on every background class, then meet a new task
by fitting a new head on its support set, with the backbone frozen or partly fine-tuned.

Baseline fits a linear head, Baseline++ a cosine head (and is pretrained with one). Notebook 08
and ``benchmarks/transfer.py`` compare them with a prototypical network and MAML trained for the
same CPU time, on the same test episodes (:mod:`metakit.transfer.experiments`).
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..fewshot import FewShotClassifier
from ..models import Conv4
from ..runtime import Budget
from ..training import model_device

HEADS = {"baseline": "linear", "baselinepp": "cosine"}
LAYERS = ("head", "last block", "all")
# Fine-tuning as Chen et al.: SGD with learning rate 0.01, momentum 0.9 and weight decay 1e-3 on the
# support set, 100 steps (full batch here: the support set is 5 to 25 images).
FINETUNE = dict(steps=100, lr=0.01, momentum=0.9, weight_decay=1e-3)
SCALE = 10.0  # the cosine head's temperature (Chen et al.'s code uses 10 for many classes)


class CosineClassifier(nn.Module):
    """Logits ``scale * cos(z, w_c)``: a class is a direction, so the head cannot favour a class by
    the norm of its weights (Baseline++'s head, Chen et al. 2019; Gidaris & Komodakis 2018).

    Args:
        in_features: embedding size D.
        n_classes: C.
        scale: the temperature that turns cosines in [-1, 1] into logits.
    """

    def __init__(self, in_features: int, n_classes: int, scale: float = SCALE, generator=None):
        super().__init__()
        # unit rows: the gradient through the normalisation scales as 1 / |w|, so tiny rows would jump
        self.weight = nn.Parameter(F.normalize(torch.randn(n_classes, in_features, generator=generator), dim=-1))
        self.scale = scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D) embeddings -> (B, C) logits."""
        return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.weight, dim=-1).T


def make_head(kind: str, in_features: int, n_classes: int, generator=None) -> nn.Module:
    """A fresh ``"linear"`` or ``"cosine"`` head, drawn from ``generator`` (reproducible per episode)."""
    if kind == "cosine":
        return CosineClassifier(in_features, n_classes, generator=generator)
    if kind != "linear":
        raise ValueError(f"head must be 'linear' or 'cosine'; got {kind!r}.")
    head = nn.Linear(in_features, n_classes)
    with torch.no_grad():
        head.weight.copy_(0.01 * torch.randn(n_classes, in_features, generator=generator))
        head.bias.zero_()
    return head


def pretrain(backbone: Conv4, dataset, head: str = "linear", *, steps: int | None = None, seconds: float | None = None,
             clock=time.perf_counter, batch_size: int = 64, lr: float = 1e-3, rotations: bool = True,
             progress: bool = True, seed: int = 0) -> dict:
    """Train ``backbone`` plus a ``head`` over every class of ``dataset`` with ordinary cross-entropy
    on mini-batches (Adam), as any image classifier is trained; the head is thrown away afterwards.

    Args:
        backbone: a Conv-4 without head, trained in place.
        dataset: an :class:`~metakit.datasets.ImageClassDataset` (the background alphabets).
        head: ``"linear"`` (Baseline) or ``"cosine"`` (Baseline++).
        steps: budget in mini-batches.
        seconds: budget as ``clock`` counts it (wall clock by default; ``time.process_time`` for
            this process's CPU time, as notebook 08 and the benchmark give every method).
        rotations: each class turned by 90, 180, 270 degrees is a class of its own (4C classes),
            as the prototypical network's training episodes have it.
    Returns:
        ``{"loss", "acc"}`` (one float per step), ``steps``, ``seconds`` (wall clock) and
        ``clock_seconds``.
    """
    g = torch.Generator().manual_seed(seed)
    n_rot = 4 if rotations else 1
    n_classes = dataset.num_classes * n_rot
    model = nn.Sequential(backbone, make_head(head, backbone.embedding_dim, n_classes, generator=g)).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    images = 1.0 - dataset.images.float().unsqueeze(1) / 255.0  # (N, 1, 28, 28), ink = 1
    device = model_device(backbone)
    model.to(device)
    budget = Budget(steps, seconds, clock=clock, device=device, desc=f"pretraining ({head} head)", progress=progress)
    for step in budget:
        i = torch.randint(len(images), (batch_size,), generator=g)
        r = torch.randint(n_rot, (batch_size,), generator=g)
        x = images[i]  # (B, 1, 28, 28)
        for k in range(1, n_rot):
            x[r == k] = torch.rot90(x[r == k], k, dims=(-2, -1))
        x, y = x.to(device), (dataset.targets[i] + r * dataset.num_classes).to(device)
        logits = model(x)  # (B, 4C)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            budget.close()
            raise FloatingPointError(f"The loss became {loss.item()} at step {step + 1} with lr={lr:g}.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        budget.log(loss=loss.item(), acc=(logits.argmax(1) == y).float().mean().item())
    backbone.eval()
    return {"loss": [], "acc": [], **budget.history, **budget.summary()}


def trim_history(history: dict, keep: int = 200) -> dict:
    """The history with only the last ``keep`` values of each per-step list, so a checkpoint that
    records it stays small (the weights are what matter)."""
    return {k: v[-keep:] if isinstance(v, list) else v for k, v in history.items()}


def split_backbone(backbone: Conv4, layers: str) -> tuple[nn.Module, nn.Module]:
    """``(frozen, tuned)`` parts of a Conv-4: ``"head"`` freezes all four blocks, ``"last block"``
    the first three, ``"all"`` none."""
    if layers not in LAYERS:
        raise ValueError(f"layers must be one of {', '.join(repr(x) for x in LAYERS)}; got {layers!r}.")
    blocks = list(backbone.features)  # four conv blocks, then Flatten
    cut = {"head": len(blocks), "last block": 3, "all": 0}[layers]
    return nn.Sequential(*blocks[:cut]), nn.Sequential(*blocks[cut:])


class FineTuner(FewShotClassifier):
    """Baseline (``head="linear"``) or Baseline++ (``head="cosine"``): a new head fitted on the
    support set by SGD, on top of a pretrained backbone of which ``layers`` are fine-tuned too
    (Chen et al., 2019). BatchNorm keeps the pretrained running statistics throughout.

    Args:
        backbone: the pretrained Conv-4 (not modified: tuned layers are copied per task).
        head: ``"linear"`` or ``"cosine"``.
        layers: ``"head"`` (frozen features, cached), ``"last block"`` or ``"all"``.
        steps, lr, momentum, weight_decay: the SGD fine-tuning on the support set.
        seed: draws the new head's initial weights (the same for every task).
    """

    needs_grad_to_fit = True  # fit_support runs SGD: metakit.compare.episode_accuracy keeps gradients on

    def __init__(self, backbone: Conv4, head: str = "linear", layers: str = "head", steps: int = FINETUNE["steps"],
                 lr: float = FINETUNE["lr"], momentum: float = FINETUNE["momentum"],
                 weight_decay: float = FINETUNE["weight_decay"], seed: int = 0):
        super().__init__(backbone)
        if int(steps) != steps or steps < 0:
            raise ValueError(f"steps must be a whole number >= 0; got {steps!r}.")
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"the fine-tuning learning rate must be a positive number; got {lr!r}.")
        make_head(head, 1, 1)  # refuses an unknown head now
        self.head_kind, self.layers, self.steps, self.lr = head, layers, int(steps), float(lr)
        self.momentum, self.weight_decay, self.seed = momentum, weight_decay, seed
        self.frozen, self._tuned_init = split_backbone(backbone, layers)
        self.history: dict = {}

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part's output (the input to what is tuned): (B, 64) for ``"head"``."""
        self.frozen.eval()
        return self.frozen(x)

    def fit_support(self, x_support: torch.Tensor, y_support: torch.Tensor, watch=None) -> None:
        """Fine-tune on the support set.

        Args:
            x_support: (n_way * k_shot, C, H, W) images.
            y_support: (n_way * k_shot,) labels in 0..n_way-1.
            watch: optional ``(x_query, y_query)``; the query accuracy is then recorded as it goes.
        """
        watch = None if watch is None else (self.features(watch[0]), watch[1])
        self.fit_features(self.features(x_support), y_support, watch=watch)

    def fit_features(self, h_support: torch.Tensor, y_support: torch.Tensor, watch=None) -> None:
        """:meth:`fit_support` from the frozen part's outputs (:meth:`features`), cached by the caller."""
        n_way = self.check_support(y_support)
        g = torch.Generator().manual_seed(self.seed)
        self.tuned = copy.deepcopy(self._tuned_init).eval()  # eval: BatchNorm keeps its running statistics
        self.head = make_head(self.head_kind, self.backbone.embedding_dim, n_way, generator=g).to(h_support.device)
        params = [*self.tuned.parameters(), *self.head.parameters()]
        opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        self.history = {"loss": [], "query_acc": [], "query_steps": []}
        every = max(1, self.steps // 10)
        for step in range(self.steps + 1):
            if watch is not None and (step % every == 0 or step == self.steps):
                with torch.no_grad():
                    acc = (self.head(self.tuned(watch[0])).argmax(1) == watch[1]).float().mean().item()
                self.history["query_acc"].append(acc)
                self.history["query_steps"].append(step)
            if step == self.steps:
                break
            loss = F.cross_entropy(self.head(self.tuned(h_support)), y_support)
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"Fine-tuning diverged: the support loss became {loss.item()} at step {step + 1} with "
                    f"lr={self.lr:g}. Lower the learning rate (try lr / 10).")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.history["loss"].append(loss.item())
        loss = self.history["loss"]
        if len(loss) > 1 and loss[-1] > loss[0]:  # too large a step overshoots; the cosine head never reaches inf
            raise FloatingPointError(
                f"Fine-tuning diverged: the support loss rose from {loss[0]:.3g} to {loss[-1]:.3g} in {self.steps} "
                f"steps with lr={self.lr:g}. Lower the learning rate (try lr / 10).")
        self.n_way = n_way

    @torch.no_grad()
    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        """(n_query_total, C, H, W) images -> (n_query_total, n_way) logits."""
        self._check_fitted()
        return self.head(self.tuned(self.features(x_query)))
