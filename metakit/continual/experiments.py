"""Notebook 07's experiments, which ``benchmarks/continual.py`` runs at full size: every strategy
trained on the same task stream, and OML, ANML and the pretrained network compared on a stream of
new classes."""

from __future__ import annotations

import math

import torch

from .methods import EWC, STRATEGIES, make_strategy
from .oml import compare_on_stream, meta_continual_models
from .stream import glyph_stream, mlp, run_stream

# Notebook 07's stream and training (the benchmark's too): 10 rotated-glyph tasks of the same 20
# classes, SGD 0.1, 3 epochs per task, 75 memories per task, EWC strength 10.
STREAM = dict(kind="rotations", n_tasks=10, n_classes=20)
TRAINING = dict(lr=0.1, epochs=3, memory_per_task=75, ewc_strength=10.0)
NAMES = {"naive": "naive fine-tuning", "ewc": "EWC", "replay": "experience replay", "gem": "GEM", "agem": "A-GEM"}


def train_strategy(dataset, strategy: str = "gem", n_tasks: int = 10, memory_per_task: int = 75, lr: float = 0.1,
                   epochs: int = 3, ewc_strength: float = 10.0, kind: str = "rotations", n_classes: int = 20,
                   seed: int = 0, progress: bool = True, device=None) -> dict:
    """Build the stream, train one strategy on it (its network drawn from ``seed``, on ``device``;
    None: the CPU), and return
    :func:`~metakit.continual.stream.run_stream`'s result plus the task names (``tasks``). Bad values
    (no memory for GEM, a diverging learning rate) raise ``ValueError`` or ``FloatingPointError``
    with a message for the learner."""
    stream = glyph_stream(dataset, kind, n_tasks=n_tasks, n_classes=n_classes, seed=seed)
    torch.manual_seed(seed)
    learner = make_strategy(strategy, mlp(n_classes).to(device), lr=lr, memory_per_task=memory_per_task,
                            ewc_strength=ewc_strength)
    result = run_stream(learner, stream, epochs=epochs, seed=seed, progress=progress)
    return {**result, "tasks": [t.name for t in stream]}


def compare_strategies(dataset, strategies=STRATEGIES, seed: int = 0, progress: bool = True, **settings) -> dict:
    """Every strategy on the same stream: ``{name: train_strategy(...)}``, with :data:`STREAM` and
    :data:`TRAINING` unless ``settings`` says otherwise (e.g. ``n_tasks=3, epochs=1``)."""
    settings = STREAM | TRAINING | settings
    return {name: train_strategy(dataset, name, seed=seed, progress=progress, **settings) for name in strategies}


def strategies_table(results: dict, names: dict = NAMES) -> str:
    """One line per strategy: ACC, BWT, FWT, the mean of R[i, i] and the training time."""
    lines = [f"{'strategy':<20} {'ACC':>6} {'BWT':>7} {'FWT':>7} {'mean R[i,i]':>11} {'seconds':>8}"]
    for name, r in results.items():
        lines.append(f"{names.get(name, name):<20} {r['acc']:6.3f} {r['bwt']:+7.3f} {r['fwt']:+7.3f} "
                     f"{r['R'].diagonal().mean():11.3f} {r['seconds']:8.1f}")
    return "\n".join(lines)


def ewc_sweep(dataset, strengths=(0.0, 1.0, 3.0, 10.0, 15.0, 30.0), lrs=(0.1,), seed: int = 0,
              progress: bool = True, **settings) -> list[dict]:
    """EWC on the same stream (:data:`STREAM` and :data:`TRAINING` unless ``settings`` says
    otherwise) at every learning rate in ``lrs`` and strength in ``strengths``; strength 0 is
    naive fine-tuning. A run whose loss diverges is kept as a row, not raised.

    Returns:
        One dict per run: ``lr``, ``strength``, and either ``result`` (:func:`train_strategy`'s) or
        ``diverged`` (the message, which names the task where the loss overflowed).
    """
    settings = STREAM | TRAINING | settings
    rows = []
    for lr in lrs:
        for strength in strengths:
            row = {"lr": float(lr), "strength": float(strength)}
            try:
                row["result"] = train_strategy(dataset, "ewc", seed=seed, progress=progress,
                                               **(settings | dict(lr=lr, ewc_strength=strength)))
            except FloatingPointError as error:
                row["diverged"] = str(error)
            rows.append(row)
    return rows


def sweep_table(rows: list[dict]) -> str:
    """One line per :func:`ewc_sweep` run: learning rate, strength, ACC, BWT and the mean of R[i, i],
    or where it diverged."""
    lines = [f"{'lr':>5} {'lambda':>7} {'ACC':>6} {'BWT':>7} {'mean R[i,i]':>11}"]
    for row in rows:
        head = f"{row['lr']:5g} {row['strength']:7g}"
        if "result" in row:
            r = row["result"]
            lines.append(f"{head} {r['acc']:6.3f} {r['bwt']:+7.3f} {r['R'].diagonal().mean():11.3f}")
        else:
            task = row["diverged"].split(" on task ")[1].split(":")[0] if " on task " in row["diverged"] else "?"
            lines.append(f"{head}   diverged on task {task}")
    return "\n".join(lines)


def ewc_stable_strength(learner: EWC, lr: float | None = None) -> float:
    """The largest EWC strength for which plain SGD at ``lr`` (default the learner's) is stable on
    the penalty alone: the penalty ``strength/2 * sum_k F_k,i (theta_i - theta*_k,i)^2`` is a quadratic
    of curvature ``strength * sum_k F_k,i`` along weight i, and gradient descent on a quadratic of
    curvature h diverges when ``lr * h > 2``. So ``2 / (lr * max_i sum_k F_k,i)`` over the Fisher
    diagonals the learner holds now (inf before its first task ends)."""
    lr = learner.lr if lr is None else lr
    if not learner.anchors:
        return math.inf
    fishers = [fisher for fisher, _ in learner.anchors]
    curvature = max(float(sum(f[k] for f in fishers).max()) for k in fishers[0])
    return 2.0 / (lr * curvature) if curvature > 0 else math.inf


def meta_continual_comparison(background, evaluation, folder=None, steps: int | None = None, retrain: bool = False,
                              seed: int = 0, progress: bool = True, device=None) -> tuple[dict, dict, dict]:
    """OML, ANML and the pretrained network (train-or-load, :func:`~metakit.continual.oml.meta_continual_models`),
    each one's head learning rate chosen on the validation alphabets, then all of ``evaluation``'s
    classes learned one image per step (:func:`~metakit.continual.oml.compare_on_stream`).

    Returns:
        ``(models, curves, table)``.
    """
    models = meta_continual_models(background, folder=folder, steps=steps, retrain=retrain, seed=seed,
                                   progress=progress, device=device)
    curves, table = compare_on_stream(models, background, evaluation, seed=seed)
    return models, curves, table


def online_table(curves: dict, table: dict, n_all: int) -> str:
    """One line per model: its head learning rate and its accuracy after 10, 50, 100 and all classes."""
    lines = [f"{'model':9s} {'head lr':>8} {'10':>6} {'50':>6} {'100':>6} {n_all:>6}   "
             "(test accuracy after that many classes)"]
    for name, row in table.items():
        c = curves[name]
        lines.append(f"{name:9s} {row['lr']:8.0e} {c[10]:6.3f} {c[50]:6.3f} {c[100]:6.3f} {c[n_all]:6.3f}")
    return "\n".join(lines)
