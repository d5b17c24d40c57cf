"""Notebook 07's figures and controls: accuracy matrices side by side, the curves they imply, a
Run button that re-trains one strategy with the values of the sliders (on a stream of rotations or
permutations), and an explorer of the online head's learning rate over the OML, ANML and
pretrained representations."""

from __future__ import annotations

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from ..widgets import Explorer, RunPanel, figure_png
from .experiments import NAMES, train_strategy
from .oml import stream_accuracy

STREAMS = ("rotations", "permutations")


def label(name: str) -> str:
    """A results key as the figures write it: ``"gem, permutations"`` -> ``"GEM, permutations"``."""
    strategy, _, stream = name.partition(", ")
    return NAMES.get(strategy, strategy) + (f", {stream}" if stream else "")


def accuracy_matrices_figure(results: dict):
    """Top row: R[i, j] for each strategy as a heatmap (rows: after training on task i; columns:
    tested on task j). Bottom: mean accuracy over the tasks seen so far, and accuracy on the first
    task, after each task."""
    n = len(results)
    if n == 0:
        raise ValueError("nothing trained yet: press Run.")
    fig = Figure(figsize=(2.7 * max(n, 3), 5.8), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
    axes = np.atleast_1d(top.subplots(1, n))
    for ax, (name, r) in zip(axes, results.items()):
        R = r["R"]
        im = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
        ax.set_title(f"{label(name)}\nacc {r['acc']:.2f}  BWT {r['bwt']:+.2f}  FWT {r['fwt']:+.2f}",
                     fontsize=8)
        ax.set_xlabel("tested on task j", fontsize=8)
        ax.set_ylabel("after training task i", fontsize=8)
        ax.tick_params(labelsize=7)
    top.colorbar(im, ax=list(axes), shrink=0.8, label="accuracy")
    ax_seen, ax_first = bottom.subplots(1, 2)
    for name, r in results.items():
        R = r["R"]
        T = len(R)
        ax_seen.plot(range(1, T + 1), [R[i, : i + 1].mean() for i in range(T)], marker="o", ms=3, label=label(name))
        ax_first.plot(range(1, T + 1), R[:, 0], marker="o", ms=3, label=label(name))
    ax_seen.set_title("mean accuracy over the tasks seen so far", fontsize=9)
    ax_first.set_title("accuracy on task 0 as later tasks are learned", fontsize=9)
    for ax in (ax_seen, ax_first):
        ax.set_xlabel("tasks learned")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    ax_seen.legend(fontsize=7)
    return fig


class ContinualTrainer(RunPanel):
    """Sliders for the strategy, the stream and the settings; Run re-trains that strategy on the
    stream (with a progress bar) and redraws every strategy trained so far. Errors become a message.

    Args:
        kind: the stream the ``results`` were trained on (the stream control starts there); a run
            on the other stream is kept as ``"<strategy>, <stream>"`` beside them.
        device: where Run trains (None: the CPU); notebook 07 passes ``metakit.device()``.
    """

    def __init__(self, dataset, results: dict | None = None, kind: str = "rotations", n_classes: int = 20,
                 device=None):
        self.dataset, self.kind, self.n_classes, self.device = dataset, kind, n_classes, device
        self.results = dict(results or {})
        style = {"description_width": "initial"}
        super().__init__({
            "strategy": W.Dropdown(options=list(NAMES), value="gem", description="strategy"),
            "kind": W.Dropdown(options=list(STREAMS), value=kind, description="stream"),
            "n_tasks": W.IntSlider(10, min=2, max=20, description="tasks"),
            "memory_per_task": W.IntSlider(75, min=0, max=200, step=5, description="memory per task", style=style),
            "lr": W.FloatLogSlider(0.1, base=10, min=-3, max=2, description="learning rate", style=style),
            "epochs": W.IntSlider(3, min=1, max=10, description="epochs per task", style=style),
            "ewc_strength": W.FloatLogSlider(10.0, base=10, min=-2, max=4, description="EWC strength", style=style),
        }, rows=[["strategy", "kind", "n_tasks"], ["memory_per_task", "lr", "epochs"], ["ewc_strength"]])
        if self.results:
            self.image.value = figure_png(accuracy_matrices_figure(self.results))

    def run(self):
        """Train with the current values; returns the result, or None after showing the error."""
        values = self.values
        result = self.call(train_strategy, dataset=self.dataset, n_classes=self.n_classes, device=self.device,
                           **values)
        if result is None:
            return None
        strategy, kind = values["strategy"], values["kind"]
        self.results[strategy if kind == self.kind else f"{strategy}, {kind}"] = result
        self.message.value = (f"{NAMES[strategy]} on {kind}: average accuracy {result['acc']:.3f}, "
                              f"BWT {result['bwt']:+.3f}, FWT {result['fwt']:+.3f}, {result['seconds']:.1f} s.")
        self.image.value = figure_png(accuracy_matrices_figure(self.results))
        return result


def stream_figure(stream, n_classes: int = 5):
    """The first training image of ``n_classes`` classes (rows) in every task of a stream (columns)."""
    firsts = [[t.x_train[t.y_train == c][0, 0] for t in stream] for c in range(n_classes)]
    grid = torch.stack([torch.cat(row, 1) for row in firsts])               # (n_classes, 28, 28 * T)
    fig = Figure(figsize=(0.75 * len(stream) + 0.8, 0.75 * n_classes + 0.6), layout="constrained")
    ax = fig.subplots()
    ax.imshow(1 - torch.cat(list(grid), 0).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([28 * i + 14 for i in range(len(stream))], [t.name for t in stream], fontsize=8)
    ax.set_yticks([28 * i + 14 for i in range(n_classes)], [f"class {c}" for c in range(n_classes)], fontsize=8)
    ax.set_title("one image of each class (rows) in each task (columns)", fontsize=9)
    return fig


def online_curves_figure(curves: dict, reference: tuple | None = None):
    """Accuracy on all classes learned so far against their number, one line per model.

    Args:
        curves: ``name -> {n_classes: accuracy}`` (from :func:`metakit.continual.oml.compare_on_stream`).
        reference: optional ``(n_classes, accuracy, label)`` drawn as a star (a paper's figure).
    """
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    labels = {"oml": "OML", "anml": "ANML", "pretrain": "pretrained, then SGD"}
    for name, curve in curves.items():
        ax.plot(list(curve), list(curve.values()), marker="o", ms=3, label=labels.get(name, name))
    if reference is not None:
        n, acc, label = reference
        ax.plot([n], [acc], marker="*", ms=13, color="k", ls="none", label=label)
    ax.axvline(100, color="gray", ls=":", lw=1)
    ax.set_xlabel("classes learned, one image per SGD step")
    ax.set_ylabel("test accuracy on all of them")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


MODEL_LABELS = {"oml": "OML", "anml": "ANML", "pretrain": "pretrained, then SGD"}


def head_lr_figure(models: dict, dataset, model: str, lr: float, n_classes: int, curves: dict | None = None,
                   train_per_class: int = 15, seed: int = 0):
    """The online head's learning rate, by hand: ``model``'s frozen features, ``n_classes`` classes
    of ``dataset`` learned one image per SGD step at ``lr`` (:func:`~metakit.continual.oml.stream_accuracy`),
    drawn over ``curves`` (each model at its chosen rate, dotted).

    Args:
        models: ``name -> (model, info)`` (:func:`~metakit.continual.oml.meta_continual_models`).
        lr: the head's learning rate; n_classes: how many classes the stream learns.
    """
    if model not in models:
        raise ValueError(f"no model {model!r}; choose one of {', '.join(models)}.")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr <= 10 and np.isfinite(lr)):
        raise ValueError(f"the head's learning rate must be a positive number up to 10; got {lr!r}.")
    with torch.no_grad():
        curve = stream_accuracy(models[model][0].features, dataset, n_classes, lr, train_per_class, seed=seed)
    fig = Figure(figsize=(7, 3.6), layout="constrained")
    ax = fig.subplots()
    for name, c in (curves or {}).items():
        c = {n: a for n, a in c.items() if n <= n_classes}
        ax.plot(list(c), list(c.values()), ls=":", marker=".", ms=3,
                label=f"{MODEL_LABELS.get(name, name)}, chosen rate")
    ax.plot(list(curve), list(curve.values()), marker="o", ms=4, color="k",
            label=f"{MODEL_LABELS.get(model, model)}, head lr {lr:.0e}")
    ax.set(xlabel="classes learned, one image per SGD step", ylabel="test accuracy on all of them", ylim=(0, 1),
           title=f"{MODEL_LABELS.get(model, model)} at head lr {lr:.0e}: "
                 f"{curve[max(curve)]:.3f} after {max(curve)} classes")
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def head_lr_explorer(models: dict, dataset, curves: dict | None = None, n_classes: int = 100) -> Explorer:
    """Explorer over :func:`head_lr_figure`: the representation, the head's learning rate and the
    number of classes in the stream."""
    style = {"description_width": "initial"}
    return Explorer(head_lr_figure, {
        "model": W.Dropdown(options=[(MODEL_LABELS.get(n, n), n) for n in models], description="representation",
                            style=style),
        "lr": W.FloatLogSlider(1e-3, base=10, min=-7, max=0, description="head lr", continuous_update=False),
        "n_classes": W.IntSlider(min(n_classes, dataset.num_classes), min=10, max=dataset.num_classes, step=10,
                                 description="classes", continuous_update=False),
    }, models=models, dataset=dataset, curves=curves)
