"""Continual learning: a task stream, the learner contract, a memory, the training loop and the
metrics of Lopez-Paz & Ranzato (2017, "Gradient Episodic Memory for Continual Learning").

Every strategy (:mod:`metakit.continual.methods`) is a :class:`ContinualLearner`: ``observe(x, y,
task_id)`` takes one gradient step on a batch of the current task, ``predict(x, task_id=None)``
returns class indices. Task ids arrive in order, 0, 1, 2, ...
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.functional import rotate
from tqdm.auto import tqdm

# A training loss above this has diverged even if it has not overflowed yet: a cross-entropy starts
# near log(classes), and a run whose weights have blown up can settle at huge finite losses, or
# overflow to inf only on some CPUs (float32 round-off differs between AVX2 and AVX-512 kernels).
LOSS_LIMIT = 1e10


def diverged(loss: float) -> bool:
    """Whether a training loss says the run has diverged: not finite, or above ``LOSS_LIMIT``."""
    return not math.isfinite(loss) or loss > LOSS_LIMIT


@dataclass
class Task:
    """One task of a stream: its name, training and test images and labels."""
    name: str
    x_train: torch.Tensor   # (N, 1, 28, 28)
    y_train: torch.Tensor   # (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor


def glyph_stream(dataset, kind: str = "permutations", n_tasks: int = 10, n_classes: int = 20,
                 train_per_class: int = 15, max_angle: float = 180.0, seed: int = 0) -> list[Task]:
    """The same ``n_classes`` glyph classes in every task, each task seen through its own fixed
    transformation, as GEM's "MNIST permutations" and "MNIST rotations" streams.

    Args:
        dataset: an :class:`~metakit.datasets.ImageClassDataset`, e.g. ``load_glyphs("evaluation")``.
        kind: "permutations" (task 0 as drawn, task t > 0 with its pixels shuffled by a fixed
            random permutation) or "rotations" (task t turned by ``max_angle * t / n_tasks`` degrees).
        train_per_class: images of each class to train on; the rest of the class is its test set.
    Returns:
        ``n_tasks`` :class:`Task`, labels ``0..n_classes-1`` in every task (one shared output head).
    """
    if kind not in ("permutations", "rotations"):
        raise ValueError(f"kind must be 'permutations' or 'rotations'; got {kind!r}.")
    for name, v in (("n_tasks", n_tasks), ("n_classes", n_classes), ("train_per_class", train_per_class)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}.")
    if n_classes > dataset.num_classes:
        raise ValueError(f"n_classes={n_classes} is more than the {dataset.num_classes} classes of {dataset.name}.")
    g = torch.Generator().manual_seed(seed)
    classes = torch.randperm(dataset.num_classes, generator=g)[:n_classes].tolist()
    xs, ys, split = [], [], []
    for label, c in enumerate(classes):
        rows = dataset.labels_to_indices[c]
        if len(rows) <= train_per_class:
            raise ValueError(f"train_per_class={train_per_class} leaves no test images: class {c} has {len(rows)}.")
        xs += [dataset[i][0] for i in rows]
        ys += [label] * len(rows)
        split += [k < train_per_class for k in range(len(rows))]
    x, y, is_train = torch.stack(xs), torch.tensor(ys), torch.tensor(split)   # x: (N, 1, 28, 28)
    tasks = []
    for t in range(n_tasks):
        if kind == "rotations":
            angle = max_angle * t / n_tasks
            xt, name = (rotate(x, angle) if angle else x), f"{angle:.0f}°"
        else:
            perm = torch.randperm(x[0].numel(), generator=g) if t else torch.arange(x[0].numel())
            xt, name = x.flatten(1)[:, perm].view_as(x), f"perm {t}"
        tasks.append(Task(name, xt[is_train], y[is_train], xt[~is_train], y[~is_train]))
    return tasks


def mlp(n_classes: int, hidden: int = 100, in_features: int = 28 * 28) -> nn.Module:
    """GEM's network for MNIST streams: two hidden layers of 100 ReLUs, one shared output head."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


class TaskMemory:
    """An episodic memory holding at most ``per_task`` examples of each task, a uniform sample of
    everything the task showed (reservoir sampling, so the sample stays uniform as data arrives)."""

    def __init__(self, per_task: int, seed: int = 0):
        if int(per_task) != per_task or per_task < 1:
            raise ValueError(f"the memory needs at least one example per task; got memory_per_task={per_task!r}.")
        self.per_task = int(per_task)
        self.x: dict[int, torch.Tensor] = {}
        self.y: dict[int, torch.Tensor] = {}
        self.seen: dict[int, int] = {}
        self.rng = np.random.default_rng(seed)

    def add(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> None:
        for xi, yi in zip(x, y):
            n = self.seen.get(task_id, 0)
            if n < self.per_task:
                self.x[task_id] = torch.cat([self.x[task_id], xi[None]]) if n else xi[None].clone()
                self.y[task_id] = torch.cat([self.y[task_id], yi[None]]) if n else yi[None].clone()
            else:
                j = int(self.rng.integers(n + 1))   # keep the new example with probability per_task / (n + 1)
                if j < self.per_task:
                    self.x[task_id][j], self.y[task_id][j] = xi, yi
            self.seen[task_id] = n + 1

    def tasks(self, before: int | None = None) -> list[int]:
        return sorted(t for t in self.x if before is None or t < before)

    def get(self, task_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[task_id], self.y[task_id]

    def sample(self, n: int, before: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Up to ``n`` examples drawn uniformly from the memories of tasks ``< before``."""
        x = torch.cat([self.x[t] for t in self.tasks(before)])
        y = torch.cat([self.y[t] for t in self.tasks(before)])
        rows = torch.from_numpy(self.rng.permutation(len(y))[:n])
        return x[rows], y[rows]

    def __len__(self):
        return sum(len(y) for y in self.y.values())


class ContinualLearner(nn.Module):
    """The contract of every continual strategy: ``observe(x, y, task_id)`` learns from one batch
    of the current task and returns its loss, ``predict(x, task_id=None)`` returns class indices.
    This base class is naive fine-tuning: plain SGD on each batch as it comes."""

    def __init__(self, net: nn.Module, lr: float = 0.1):
        super().__init__()
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"the learning rate must be a positive number; got lr={lr!r}.")
        self.net, self.lr, self.task = net, float(lr), -1
        self.optimizer = torch.optim.SGD(net.parameters(), lr=lr)

    def forward(self, x):
        return self.net(x)

    @property
    def device(self) -> torch.device:
        """Where the network's parameters are (batches are moved there)."""
        return next(self.net.parameters()).device

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int | None = None) -> torch.Tensor:
        """(B, ...) inputs -> (B,) predicted classes, on the network's device (the shared head
        ignores ``task_id``)."""
        return self.net(x.to(self.device)).argmax(1)

    def check_batch(self, x, y, task_id):
        """Refuse an empty or mislabelled batch and a task id out of order (every strategy's
        ``observe`` starts here), put the network in training mode, and return the batch on the
        network's device."""
        if len(x) != len(y) or len(y) == 0:
            raise ValueError("observe needs a non-empty batch with one label per input; "
                             f"got {len(x)} inputs, {len(y)} labels.")
        if int(task_id) != task_id or task_id < max(self.task, 0):
            raise ValueError(f"task ids must arrive in order 0, 1, 2, ...; "
                             f"got task {task_id!r} after task {self.task}.")
        self.net.train()
        return x.to(self.device), y.to(self.device)

    def loss(self, x, y):
        return F.cross_entropy(self.net(x), y)

    def observe(self, x: torch.Tensor, y: torch.Tensor, task_id: int) -> float:
        x, y = self.check_batch(x, y, task_id)
        self.task = task_id
        self.optimizer.zero_grad()
        loss = self.loss(x, y)
        loss.backward()
        self.optimizer.step()
        return loss.item()

    # flat-gradient helpers for the strategies that edit the gradient (GEM, A-GEM)
    def flat_grad(self, loss) -> torch.Tensor:
        params = [p for p in self.net.parameters() if p.requires_grad]
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])

    def step_with(self, grad: torch.Tensor) -> None:
        """One SGD step along the flat gradient ``grad``."""
        i = 0
        for p in self.net.parameters():
            if p.requires_grad:
                p.grad = grad[i:i + p.numel()].view_as(p).clone()
                i += p.numel()
        self.optimizer.step()


def continual_metrics(R, b=None) -> dict[str, float]:
    """Lopez-Paz & Ranzato's three numbers from the accuracy matrix.

    Args:
        R: (T, T), ``R[i, j]`` the test accuracy on task j after training on tasks 0..i.
        b: (T,) test accuracies of the network at random initialisation, for forward transfer.
    Returns:
        ``acc`` = mean_j R[T-1, j]; ``bwt`` = mean_{j<T-1} (R[T-1, j] - R[j, j]), negative when
        learning later tasks made the network forget; ``fwt`` = mean_{j>0} (R[j-1, j] - b[j]),
        what earlier tasks taught about a task before it was seen. With one task ``bwt`` and
        ``fwt`` are nan.
    """
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square (T, T); got shape {R.shape}.")
    T = len(R)
    out = {"acc": float(R[-1].mean()),
           "bwt": float(np.mean(R[-1, :-1] - np.diag(R)[:-1])) if T > 1 else math.nan,
           "fwt": math.nan}
    if b is not None:
        b = np.asarray(b, dtype=float)
        if b.shape != (T,):
            raise ValueError(f"b needs one baseline accuracy per task, shape ({T},); got {b.shape}.")
        if T > 1:
            out["fwt"] = float(np.mean([R[j - 1, j] - b[j] for j in range(1, T)]))
    return out


@torch.no_grad()
def accuracy(learner: ContinualLearner, x, y, task_id=None, batch_size: int = 500) -> float:
    learner.net.eval()
    right = sum((learner.predict(x[i:i + batch_size], task_id).cpu() == y[i:i + batch_size].cpu()).sum().item()
                for i in range(0, len(y), batch_size))
    return right / len(y)


def run_stream(learner: ContinualLearner, stream: list[Task], epochs: int = 1, batch_size: int = 10,
               seed: int = 0, progress: bool = True) -> dict:
    """Train ``learner`` on the tasks in order and fill the accuracy matrix.

    Returns:
        ``R`` (T, T) and ``b`` (T,) as numpy arrays, the metrics of :func:`continual_metrics`,
        ``losses`` (one per step) and ``seconds``. A loss that is not finite or above ``LOSS_LIMIT``
        raises ``FloatingPointError`` (a learning rate too large, usually).
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs per task must be a positive integer; got {epochs!r}.")
    start = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    T = len(stream)
    b = np.array([accuracy(learner, t.x_test, t.y_test, j) for j, t in enumerate(stream)])
    R, losses = np.zeros((T, T)), []
    steps = sum(math.ceil(len(t.y_train) / batch_size) for t in stream) * epochs
    bar = tqdm(total=steps, desc=type(learner).__name__, disable=not progress, leave=False)
    for i, task in enumerate(stream):
        for _ in range(epochs):
            order = torch.randperm(len(task.y_train), generator=g)
            for k in range(0, len(order), batch_size):
                rows = order[k:k + batch_size]
                loss = learner.observe(task.x_train[rows], task.y_train[rows], i)
                if diverged(loss):
                    bar.close()
                    raise FloatingPointError(f"the loss became {loss:.3g} on task {i}: the learning rate "
                                             f"{learner.lr:g} is too large for this strategy; try a smaller one.")
                losses.append(loss)
                bar.update()
        R[i] = [accuracy(learner, t.x_test, t.y_test, j) for j, t in enumerate(stream)]
    bar.close()
    return {"R": R, "b": b, **continual_metrics(R, b), "losses": losses, "seconds": time.perf_counter() - start}
