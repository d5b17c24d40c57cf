"""Transfer learning against meta-learning (Chen et al., ICLR 2019, "A Closer Look at Few-Shot
Classification"): pretrain an ordinary classifier on every background class, then meet a new task
by fitting a new head on its support set, with the backbone frozen or partly fine-tuned.

Baseline fits a linear head, Baseline++ a cosine head (and is pretrained with one). Notebook 08
and ``benchmarks/transfer.py`` compare them with a prototypical network and MAML trained for the
same CPU time, on the same test episodes, with :func:`compare`.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..episodes import EpisodeSampler
from ..fewshot import FewShotClassifier
from ..models import Conv4
from ..runtime import seed_everything
from ..stats import mean_ci as interval
from ..training import train_episodes

HEADS = {"baseline": "linear", "baselinepp": "cosine"}
NAMES = {"baseline": "Baseline", "baselinepp": "Baseline++", "proto": "ProtoNet", "maml": "MAML"}
LAYERS = ("head", "last block", "all")
# Fine-tuning as Chen et al.: SGD with learning rate 0.01, momentum 0.9 and weight decay 1e-3 on the
# support set, 100 steps (full batch here: the support set is 5 to 25 images).
FINETUNE = dict(steps=100, lr=0.01, momentum=0.9, weight_decay=1e-3)
SCALE = 10.0  # the cosine head's temperature (Chen et al.'s code uses 10 for many classes)
SETTINGS = {"5w1s": dict(n_way=5, k_shot=1, n_query=15), "5w5s": dict(n_way=5, k_shot=5, n_query=15)}


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


def _budget(seconds, steps, clock):
    if seconds is None and steps is None:
        raise ValueError("Give a budget: seconds=..., steps=..., or both.")
    start = clock()
    return lambda done: (steps is not None and done >= steps) or (seconds is not None and clock() - start >= seconds)


def pretrain(backbone: Conv4, dataset, head: str = "linear", *, seconds: float | None = None, steps: int | None = None,
             batch_size: int = 64, lr: float = 1e-3, rotations: bool = True, clock=time.process_time,
             progress: bool = True, seed: int = 0) -> dict:
    """Train ``backbone`` plus a ``head`` over every class of ``dataset`` with ordinary cross-entropy
    on mini-batches (Adam), as any image classifier is trained; the head is thrown away afterwards.

    Args:
        backbone: a Conv-4 without head, trained in place.
        dataset: an :class:`~metakit.datasets.ImageClassDataset` (the background alphabets).
        head: ``"linear"`` (Baseline) or ``"cosine"`` (Baseline++).
        seconds: budget as ``clock`` counts it (default: CPU seconds of this process).
        steps: budget in mini-batches.
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
    done = _budget(seconds, steps, clock)
    history = {"loss": [], "acc": [], "steps": 0}
    start, clock_start = time.perf_counter(), clock()
    bar = tqdm(total=steps, desc=f"pretraining ({head} head)", unit="batch", disable=not progress)
    while not done(history["steps"]):
        i = torch.randint(len(images), (batch_size,), generator=g)
        r = torch.randint(n_rot, (batch_size,), generator=g)
        x = images[i]  # (B, 1, 28, 28)
        for k in range(1, n_rot):
            x[r == k] = torch.rot90(x[r == k], k, dims=(-2, -1))
        y = dataset.targets[i] + r * dataset.num_classes
        logits = model(x)  # (B, 4C)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"The loss became {loss.item()} at step {history['steps'] + 1} with lr={lr:g}.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["loss"].append(loss.item())
        history["acc"].append((logits.argmax(1) == y).float().mean().item())
        history["steps"] += 1
        bar.update(1)
    bar.close()
    history["seconds"], history["clock_seconds"] = time.perf_counter() - start, clock() - clock_start
    backbone.eval()
    return history


def train_episodic(model, sampler, *, seconds: float | None = None, steps: int | None = None, lr: float = 1e-3,
                   clock=time.process_time, progress: bool = True) -> dict:
    """:func:`metakit.training.train_episodes` with a budget in ``clock`` seconds (CPU time by
    default), so that a prototypical network gets the same compute as the pretrained classifier;
    the history also counts its episodes as ``steps``, like :func:`pretrain`'s."""
    history = train_episodes(model, sampler, lr=lr, steps=steps, seconds=seconds, progress=progress, clock=clock)
    model.eval()
    return history


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


def episode_accuracy(method, x_support, y_support, x_query, y_query) -> float:
    """Query accuracy of any method of the kit on one episode: a metric method or fine-tuner
    (``fit_support``/``forward``) or a gradient method (``adapt``/``predict``)."""
    if hasattr(method, "adapt"):
        params = method.adapt(x_support, y_support)
        with torch.no_grad():
            logits = method.predict(params, x_query)
    else:
        with torch.no_grad() if not isinstance(method, FineTuner) else torch.enable_grad():
            method.fit_support(x_support, y_support)
        with torch.no_grad():
            logits = method(x_query)
    return (logits.argmax(-1) == y_query).float().mean().item()


def compare(methods: dict, test_sets: dict, settings: dict = SETTINGS, episodes: int = 600, seed: int = 0,
            progress: bool = True) -> dict:
    """Every method on the same test episodes (the sampler is reseeded before each method).

    Returns:
        ``{(method, test set, setting): {"acc", "ci95", "ms", "accs"}}``, ``accs`` the per-episode
        accuracies (for paired differences, :func:`paired`), ``ms`` per episode, sampling included.
    """
    results = {}
    jobs = [(m, t, s) for t in test_sets for s in settings for m in methods]
    for name, set_name, setting in tqdm(jobs, desc="testing", disable=not progress):
        method = methods[name]
        was_training = method.training
        method.eval()
        seed_everything(seed)
        sampler = EpisodeSampler(test_sets[set_name], **settings[setting])
        start = time.perf_counter()
        accs = [episode_accuracy(method, *sampler.sample()) for _ in range(episodes)]
        method.train(was_training)
        acc, ci95 = interval(accs)
        results[name, set_name, setting] = {"acc": acc, "ci95": ci95, "accs": accs,
                                            "ms": 1000 * (time.perf_counter() - start) / episodes}
    return results


def paired(results: dict, a: str, b: str, test_set: str, setting: str) -> tuple[float, float]:
    """``a`` minus ``b`` on the same episodes: the mean per-episode difference and its 95% interval."""
    diff = [x - y for x, y in zip(results[a, test_set, setting]["accs"], results[b, test_set, setting]["accs"])]
    return interval(diff)


def format_table(results: dict, train_info: dict | None = None, names: dict = NAMES) -> str:
    """One row per (test set, method), a column per setting (``acc±ci95``), then ms per test
    episode and, from ``train_info`` (name -> ``{"steps", "clock_seconds"}``), training steps and time."""
    train_info = train_info or {}
    methods = list(dict.fromkeys(k[0] for k in results))
    sets = list(dict.fromkeys(k[1] for k in results))
    settings = list(dict.fromkeys(k[2] for k in results))
    lines = [f"{'test set, method':<20} " + " ".join(f"{s:>15}" for s in settings)
             + f" {'ms/ep':>6} {'train steps':>11} {'train s':>8}"]
    for s in sets:
        for m in methods:
            cells = " ".join(f"{results[m, s, x]['acc']:.4f}±{results[m, s, x]['ci95']:.4f}" for x in settings)
            info = train_info.get(m, {})
            lines.append(f"{s + ', ' + names.get(m, m):<20} {cells} {results[m, s, settings[0]]['ms']:>6.1f} "
                         f"{info.get('steps', ''):>11} {info.get('clock_seconds', math.nan):>8.0f}")
    return "\n".join(lines)
