"""Meta-augmentation (Rajendran, Irpan and Jang, NeurIPS 2020): non-mutually-exclusive tasks let a
meta-learner memorise, and shuffling the labels takes that shortcut away.

In a *non-mutually-exclusive* (NME) task family every class keeps the same label in every episode
(Yin et al., ICLR 2020). A network can then answer a query from the query image alone, having
memorised class -> label over meta-training, and ignore the support set: training accuracy is
high, and on new classes, whose labels it cannot have memorised, it fails. Label permutation, a
fresh random relabelling of every episode, makes the label unpredictable without the support.

Shuffle modes of :class:`NMESampler`:
  - ``"none"``: the NME family: class ``c`` always has the label ``slot[c]``.
  - ``"intra"``: intra-task shuffling: the same classes as ``"none"`` (one per label slot), but one
    random permutation of the ``n_way`` labels per episode, applied to support and query alike.
  - ``"inter"``: inter-task shuffling: the slot groups are dissolved, every episode draws its
    ``n_way`` classes from the whole pool and labels them in a random order, so a class meets
    different labels and different companions from one task to the next (the usual mutually
    exclusive episodes).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import CHECKPOINTS, train_or_load
from ..datasets import ImageClassDataset
from ..episodes import EpisodeSampler, check_episode, import_learn2learn
from ..gradient.maml import MAML
from ..gradient.training import meta_train
from ..metric.protonet import PrototypicalNetwork
from ..models import Conv4
from ..runtime import recipe_clock, seed_everything
from ..stats import format_ci, mean_ci
from ..training import train_episodes

SHUFFLES = ("none", "intra", "inter")


class NMESampler:
    """Episodes of a non-mutually-exclusive task family, optionally with label shuffling.

    Class ``c`` of the chosen training classes gets the fixed label ``slot[c] = position % n_way``
    (positions after a seeded shuffle of the classes). An episode takes one class from each slot,
    drawn by a learn2learn ``Taskset`` per slot (a ``MetaDataset`` of the slot's classes with
    ``NWays(1)``, ``KShots``, ``LoadData``), so label ``l`` always holds a class of slot ``l``.

    Args:
        dataset: an :class:`~metakit.datasets.ImageClassDataset`.
        n_way, k_shot, n_query: as everywhere.
        shuffle: ``"none"``, ``"intra"`` or ``"inter"`` (see the module docstring).
        classes_per_label: training classes per label slot (None: all classes, split evenly);
            fewer classes make the class -> label map quicker to memorise.
        seed: which classes are kept and which slot each one gets.
        device: where the tensors go.
    """

    def __init__(self, dataset, n_way: int, k_shot: int, n_query: int = 5, shuffle: str = "none",
                 classes_per_label: int | None = None, seed: int = 0, device=None):
        if shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {', '.join(SHUFFLES)}; got {shuffle!r}.")
        check_episode(dataset, n_way, k_shot, n_query)
        per = dataset.num_classes // n_way if classes_per_label is None else classes_per_label
        if isinstance(per, bool) or not isinstance(per, int) or per < 1 or per * n_way > dataset.num_classes:
            raise ValueError(f"{getattr(dataset, 'name', 'this dataset')} has {dataset.num_classes} classes; "
                             f"classes_per_label={classes_per_label!r} with n_way={n_way} needs "
                             f"{per * n_way if isinstance(per, int) else '?'}. Choose classes_per_label <= "
                             f"{dataset.num_classes // n_way}.")
        self.n_way, self.k_shot, self.n_query, self.shuffle = n_way, k_shot, n_query, shuffle
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._move = device is not None   # without device=, the tensors stay where the dataset made them
        order = torch.randperm(dataset.num_classes, generator=torch.Generator().manual_seed(seed))[:per * n_way]
        self.classes = sorted(order.tolist())
        #: class (the dataset's label) -> its fixed label in 0..n_way-1
        self.slot = {int(c): i % n_way for i, c in enumerate(order.tolist())}
        l2l = import_learn2learn()
        self.tasksets = []
        for label in range(n_way):  # one MetaDataset per slot, holding only that slot's classes
            members = sorted(c for c, s in self.slot.items() if s == label)
            meta = l2l.data.MetaDataset(dataset, labels_to_indices={c: dataset.labels_to_indices[c] for c in members})
            transforms = [l2l.data.transforms.NWays(meta, 1), l2l.data.transforms.KShots(meta, k_shot + n_query),
                          l2l.data.transforms.LoadData(meta)]
            self.tasksets.append(l2l.data.Taskset(meta, task_transforms=transforms, num_tasks=-1))
        if shuffle == "inter":
            self.pool = dataset_subset(dataset, self.classes)
            self.inter = EpisodeSampler(self.pool, n_way, k_shot, n_query)

    def sample(self, return_classes: bool = False):
        """One episode ``(x_support, y_support, x_query, y_query)`` in label order, as
        :class:`~metakit.episodes.EpisodeSampler` returns; ``return_classes`` adds the (n_way,)
        dataset classes behind labels 0..n_way-1 (for ``"inter"``, positions in ``classes``)."""
        if self.shuffle == "inter":
            x_support, y_support, x_query, y_query = self.inter.sample()
            perm = torch.randperm(self.n_way)
            out = relabel((x_support, y_support, x_query, y_query), perm)
            out = tuple(t.to(self.device) for t in out) if self._move else out
            return (*out, torch.full((self.n_way,), -1)) if return_classes else out
        xs, classes = [], []
        for taskset in self.tasksets:
            x, y = taskset.sample()  # (k_shot + n_query, 1, 28, 28), one class of this slot
            xs.append(x)
            classes.append(int(y[0]))
        k, q = self.k_shot, self.n_query
        x = torch.stack(xs)  # (n_way, k + q, 1, 28, 28)
        x_support, x_query = x[:, :k].flatten(0, 1), x[:, k:].flatten(0, 1)
        labels = torch.arange(self.n_way)
        episode = (x_support, labels.repeat_interleave(k), x_query, labels.repeat_interleave(q))
        classes = torch.tensor(classes)
        if self.shuffle == "intra":
            perm = torch.randperm(self.n_way)
            episode = relabel(episode, perm)
            classes = classes[torch.argsort(perm)]
        episode = tuple(t.to(self.device) for t in episode) if self._move else episode
        return (*episode, classes) if return_classes else episode

    def __iter__(self):
        while True:
            yield self.sample()


def relabel(episode, perm: torch.Tensor):
    """Give label ``l`` the new label ``perm[l]`` in support and query, then reorder both by label.

    Args:
        episode: ``(x_support, y_support, x_query, y_query)``; perm: (n_way,) a permutation.
    """
    x_support, y_support, x_query, y_query = episode
    y_support, y_query = perm[y_support], perm[y_query]
    s, q = torch.argsort(y_support, stable=True), torch.argsort(y_query, stable=True)
    return x_support[s], y_support[s], x_query[q], y_query[q]


def dataset_subset(dataset, classes):
    """The given classes of an ImageClassDataset, relabelled 0..len(classes)-1 in that order."""

    rows = [i for c in classes for i in dataset.labels_to_indices[c]]
    new = {c: i for i, c in enumerate(classes)}
    return ImageClassDataset(dataset.images[rows], [new[int(dataset.targets[i])] for i in rows],
                             [dataset.class_names[c] for c in classes], name=f"{dataset.name}, {len(classes)} classes")


def shift_labels(y: torch.Tensor, n_way: int, shift: int = 1) -> torch.Tensor:
    """The "support labels shuffled" probe: every label ``l`` becomes ``(l + shift) % n_way``, a
    permutation that moves every class (a derangement). A learner that reads the support follows
    the new labels and is scored wrong on nearly every query; one that ignores it does not notice."""
    if shift % n_way == 0:
        raise ValueError(f"shift={shift} leaves every label where it is with n_way={n_way}; choose 1..{n_way - 1}.")
    return (y + shift) % n_way


def predict_episode(learner, x_support, y_support, x_query, steps: int | None = None) -> torch.Tensor:
    """(n_query_total, n_way) logits of any learner after it has seen the support set: a gradient
    method (``adapt`` then ``predict``, ``steps`` inner steps) or a metric one (``fit_support``)."""
    if hasattr(learner, "adapt"):
        params = learner.adapt(x_support, y_support, steps=steps)
        with torch.no_grad():
            return learner.predict(params, x_query)
    with torch.no_grad():
        learner.fit_support(x_support, y_support)
        return learner(x_query)


def probe(learner, sampler, episodes: int = 100, zero_steps: bool = False) -> dict:
    """Does the learner use the support set? The same episodes scored three ways.

    Returns:
        ``{"acc", "acc_shifted"[, "acc_0_steps"]}`` each ``(mean, ci95)``: query accuracy with the
        true support labels, with the support labels shifted by one (:func:`shift_labels`; the
        query keeps its true labels), and for gradient methods without adaptation (0 inner steps).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes!r}.")
    was_training = learner.training
    learner.eval()
    scores = {"acc": [], "acc_shifted": []} | ({"acc_0_steps": []} if zero_steps else {})
    try:
        for _ in range(episodes):
            x_support, y_support, x_query, y_query = sampler.sample()
            n_way = int(y_support.max()) + 1
            runs = {"acc": (y_support, None), "acc_shifted": (shift_labels(y_support, n_way), None)}
            if zero_steps:
                runs["acc_0_steps"] = (y_support, 0)
            for key, (labels, steps) in runs.items():
                logits = predict_episode(learner, x_support, labels, x_query, steps=steps)
                scores[key].append((logits.argmax(-1) == y_query).float().mean().item())
    finally:
        learner.train(was_training)
    return {k: mean_ci(v) for k, v in scores.items()}


class BiasedPrototypicalNetwork(PrototypicalNetwork):
    """A prototypical network plus a learned linear head on the query embedding: logits
    ``-|z - c_k|^2 + w_k . z + b_k``. The head answers without the support set, so this
    prototypical-style learner *can* memorise an NME family (the plain one cannot: its only
    class information is the prototypes, built from the support).

    Args:
        backbone: (B, C, H, W) -> (B, D), with ``embedding_dim`` D (for example ``Conv4()``).
        n_way: the head's outputs.
    """

    def __init__(self, backbone: nn.Module, n_way: int = 5):
        super().__init__(backbone)
        self.head = nn.Linear(backbone.embedding_dim, n_way)

    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        """(n_query_total, n_way) prototype logits plus the head's."""
        self._check_fitted()
        z = self.backbone(x_query)  # (n_query_total, D)
        return -(z[:, None, :] - self.prototypes[None, :, :]).pow(2).sum(-1) + self.head(z)


LEARNERS = ("maml", "proto", "protobias")


def make_nme_learner(kind: str, n_way: int = 5, hidden: int = 32, inner_lr: float = 0.4, inner_steps: int = 1):
    """A fresh learner for the NME experiment on a Conv-4 of ``hidden`` channels: ``"maml"``
    (:class:`~metakit.gradient.maml.MAML`), ``"proto"`` (:class:`~metakit.metric.protonet.PrototypicalNetwork`) or
    ``"protobias"`` (:class:`BiasedPrototypicalNetwork`)."""

    if kind == "maml":
        return MAML(Conv4(hidden=hidden, out_features=n_way, track_running_stats=False), inner_lr=inner_lr,
                    inner_steps=inner_steps)
    if kind == "proto":
        return PrototypicalNetwork(Conv4(hidden=hidden))
    if kind == "protobias":
        return BiasedPrototypicalNetwork(Conv4(hidden=hidden), n_way)
    raise ValueError(f"kind must be one of {', '.join(LEARNERS)}; got {kind!r}.")


def train_nme(learner, sampler, *, steps: int | None = None, seconds: float | None = None, meta_lr: float = 1e-3,
              meta_batch_size: int = 4, clock=time.perf_counter, progress: bool = True, callback=None) -> dict:
    """Meta-train a learner on a sampler's episodes: gradient methods with
    :func:`~metakit.gradient.training.meta_train` (``meta_batch_size`` tasks per step), metric ones
    with :func:`~metakit.training.train_episodes` (one episode and one Adam step at ``meta_lr`` per
    step); both on the budget ``steps``, ``seconds`` of ``clock`` time (see
    :class:`~metakit.runtime.Budget`).

    Returns:
        the history (``steps``, ``seconds``, ``clock_seconds`` and the per-step ``loss``, ``acc``).
    """
    if hasattr(learner, "adapt"):
        return meta_train(learner, sampler, meta_lr=meta_lr, meta_batch_size=meta_batch_size, steps=steps,
                          seconds=seconds, progress=progress, callback=callback, clock=clock)
    return train_episodes(learner, sampler, lr=meta_lr, steps=steps, seconds=seconds, progress=progress, clock=clock)


#: the NME experiment's runs: name -> (learner, shuffle)
RUNS = {"maml": ("maml", "none"), "maml_intra": ("maml", "intra"), "maml_inter": ("maml", "inter"),
        "proto": ("proto", "none"), "protobias": ("protobias", "none"), "protobias_intra": ("protobias", "intra")}
#: 5-way 1-shot training episodes over 5 classes per label (25 background classes), MAML with one
#: inner step of 0.1: a family the network can memorise within a CPU-minute
NME = dict(n_way=5, k_shot=1, n_query=5, classes_per_label=5, inner_lr=0.1)


def nme_experiment(background, evaluation, runs=RUNS, seconds: float = 60.0, episodes: int = 2000,
                   test_episodes: int = 200, folder=None, retrain: bool = False, progress: bool = True,
                   seed: int = 0, device=None) -> dict:
    """Train (or load) every run on NME tasks, then probe each on the same episodes, on ``device``
    (None: the CPU).

    Args:
        seconds: MAML's meta-training budget in CPU-seconds (``time.process_time``); episodes: the
            metric learners' budget in steps (one episode each).
        folder: where the ``metaaug-nme-<run>.pt`` checkpoints live (default ``data/checkpoints``).
    Returns:
        ``{run: {"acc", "acc_shifted", ["acc_0_steps"], "new", "new_shifted": (mean, ci95),
        "steps", "cpu_s", "loaded"}}``: the probes on NME episodes of the training classes,
        and ``new`` on ordinary 5-way 1-shot episodes of the evaluation classes.
    """
    folder = Path(folder) if folder is not None else CHECKPOINTS
    n_way, k_shot, n_query, per = NME["n_way"], NME["k_shot"], NME["n_query"], NME["classes_per_label"]
    results = {}
    for name, (kind, shuffle) in runs.items():
        seed_everything(seed)
        learner = make_nme_learner(kind, n_way=n_way, inner_lr=NME["inner_lr"]).to(device)
        sampler = NMESampler(background, n_way, k_shot, n_query, shuffle=shuffle, classes_per_label=per, seed=seed,
                             device=device)
        budget = dict(seconds=seconds) if kind == "maml" else dict(steps=episodes)
        info = train_or_load(learner, folder / f"metaaug-nme-{name}.pt", lambda m, s=sampler, b=budget: train_nme(
            m, s, clock=recipe_clock(device), progress=progress, **b), retrain=retrain)
        seed_everything(seed + 1)  # every run meets the same probe episodes
        train_probe = probe(learner, NMESampler(background, n_way, k_shot, 15, classes_per_label=per, seed=seed,
                                                device=device), test_episodes, zero_steps=kind == "maml")
        seed_everything(seed + 2)
        new = probe(learner, EpisodeSampler(evaluation, n_way, k_shot, 15, device=device), test_episodes)
        results[name] = {**train_probe, "new": new["acc"], "new_shifted": new["acc_shifted"],
                         "steps": info.get("steps", 0), "cpu_s": info.get("clock_seconds", float("nan")),
                         "loaded": info["loaded"]}
    return results


def nme_run(background, evaluation, *, shuffle: str = "none", inner_lr: float = NME["inner_lr"],
            n_way: int = NME["n_way"], k_shot: int = NME["k_shot"], seconds: float = 20.0,
            classes_per_label: int = NME["classes_per_label"], test_episodes: int = 50, n_query: int = 5,
            progress: bool = True, callback=None, seed: int = 0, device=None) -> tuple:
    """Notebook 06's NME Run button: a fresh MAML meta-trained on NME tasks with the chosen label
    shuffling, then the probes of :func:`nme_experiment` (one row of its table).

    Args:
        shuffle: ``"none"``, ``"intra"`` or ``"inter"`` (:class:`NMESampler`).
        inner_lr, n_way, k_shot: MAML's inner rate and the episodes' shape, in training and probes.
        seconds: the budget, CPU-seconds on the CPU (:func:`~metakit.runtime.recipe_clock`).
        device: where to train and probe (None: the CPU).
    Returns:
        ``(learner, {"acc", "acc_shifted", "acc_0_steps", "new", "new_shifted", "steps", "cpu_s"})``.
    Raises:
        ValueError for a shuffle mode, rate, budget or episode that cannot be used (before any
        training); FloatingPointError when training diverges.
    """
    if shuffle not in SHUFFLES:
        raise ValueError(f"shuffle must be one of {', '.join(SHUFFLES)}; got {shuffle!r}.")
    if isinstance(inner_lr, bool) or not isinstance(inner_lr, (int, float)) or not (0 < inner_lr <= 10
                                                                                   and math.isfinite(inner_lr)):
        raise ValueError(f"inner_lr must be a positive number up to 10; got {inner_lr!r}.")
    if isinstance(n_way, int) and not isinstance(n_way, bool) and n_way < 2:
        raise ValueError(f"n_way must be at least 2 (one class has nothing to tell apart); got {n_way!r}.")
    if not (isinstance(seconds, (int, float)) and 0 < seconds <= 600):
        raise ValueError(f"seconds must be between 0 and 600; got {seconds!r}.")
    check_episode(evaluation, n_way, k_shot, n_query)
    sampler = NMESampler(background, n_way, k_shot, n_query, shuffle=shuffle, classes_per_label=classes_per_label,
                         seed=seed, device=device)  # checks the episode and the classes per label
    seed_everything(seed)
    learner = make_nme_learner("maml", n_way=n_way, inner_lr=inner_lr).to(device)
    info = train_nme(learner, sampler, seconds=seconds, clock=recipe_clock(device), progress=progress,
                     callback=callback)
    seed_everything(seed + 1)
    train_probe = probe(learner, NMESampler(background, n_way, k_shot, n_query, classes_per_label=classes_per_label,
                                            seed=seed, device=device), test_episodes, zero_steps=True)
    seed_everything(seed + 2)
    new = probe(learner, EpisodeSampler(evaluation, n_way, k_shot, n_query, device=device), test_episodes)
    return learner, {**train_probe, "new": new["acc"], "new_shifted": new["acc_shifted"],
                     "steps": info.get("steps", 0), "cpu_s": info.get("clock_seconds", float("nan"))}


#: what Rajendran et al. (2020) report for NME tasks, as a direction of effect
PAPER_DIRECTION = {
    "maml": "memorises: high training accuracy, well below the shuffled runs on new classes",
    "maml_intra": "label shuffling recovers new-class accuracy",
    "maml_inter": "label shuffling recovers new-class accuracy",
    "proto": "(not in the paper) reads the support by construction",
    "protobias": "(not in the paper) a head that can memorise",
    "protobias_intra": "(not in the paper) the same learner with label shuffling",
}


def format_nme_table(results: dict) -> str:
    """One row per run: steps, CPU-s, the probes on training classes, new-class accuracy."""
    head = (f"{'run':<16} {'its':>5} {'cpu s':>6}  {'train':>13} {'train shifted':>13} {'train 0 steps':>13} "
            f"{'new classes':>13}  paper's direction")
    lines = [head]
    cell = lambda v: format_ci(*v, digits=3) if v is not None else "-"  # noqa: E731
    for name, r in results.items():
        lines.append(f"{name:<16} {r['steps']:>5} {r['cpu_s']:>6.0f}  {cell(r['acc']):>13} "
                     f"{cell(r['acc_shifted']):>13} {cell(r.get('acc_0_steps')):>13} {cell(r['new']):>13}  "
                     f"{PAPER_DIRECTION.get(name, '')}")
    return "\n".join(lines)
