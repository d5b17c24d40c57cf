"""Notebook 03's views of the MAML family: training curves, accuracy against inner steps, an
adaptation explorer on trained models (ways, shots, steps, inner rate), and a Run button that
meta-trains with a live plot (ways, shots, inner and outer rates, meta-batch size, budget).

The figure functions are plain callbacks of control values (tests call them directly); bad
values raise ``ValueError`` or ``FloatingPointError``, which the widgets show as messages.
"""

from __future__ import annotations

import ipywidgets as W
from matplotlib.figure import Figure

from ..widgets import Explorer, RunPanel, figure_png
from .family import FAMILY, META, NAMES, adaptation_curve, train_and_test, with_ways
from .mamlpp import MAMLPlusPlus
from .metasgd import MetaSGD


def running_mean(values, window: int = 50) -> list[float]:
    """The mean of the last ``window`` values at each point (a steadier curve to read)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def training_figure(histories: dict, window: int = 50) -> Figure:
    """Query loss and accuracy after adaptation against meta-training time, one line per history.

    Args:
        histories: name -> :func:`~metakit.gradient.training.meta_train` history (or the info a
            checkpoint kept of it: ``loss``, ``acc``, ``seconds``).
    """
    fig = Figure(figsize=(10, 3.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for name, h in histories.items():
        n = len(h.get("loss", []))
        if n == 0:
            continue
        t = [h["seconds"] * (i + 1) / n for i in range(n)]
        ax_loss.plot(t, running_mean(h["loss"], window), label=NAMES.get(name, name))
        ax_acc.plot(t, running_mean(h["acc"], window), label=NAMES.get(name, name))
    ax_loss.set(xlabel="meta-training time (s)", ylabel="query loss after adaptation", yscale="log")
    ax_acc.set(xlabel="meta-training time (s)", ylabel="query accuracy after adaptation", ylim=(0, 1))
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"meta-training (running mean over {window} meta-iterations)", fontsize=10)
    fig.tight_layout()
    return fig


def steps_figure(curves: dict, trained_steps: dict | None = None) -> Figure:
    """Test accuracy against the number of inner steps at test time
    (:func:`metakit.gradient.family.accuracy_vs_steps`)."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    for name, c in curves.items():
        line, = ax.plot(c["steps"], c["acc"], marker="o", label=NAMES.get(name, name))
        lo = [a - e for a, e in zip(c["acc"], c["ci95"])]
        hi = [a + e for a, e in zip(c["acc"], c["ci95"])]
        ax.fill_between(c["steps"], lo, hi, color=line.get_color(), alpha=0.15)
        if trained_steps and name in trained_steps and trained_steps[name] in c["steps"]:
            i = c["steps"].index(trained_steps[name])
            ax.plot([c["steps"][i]], [c["acc"][i]], marker="*", markersize=14, color=line.get_color())
    ax.set(xlabel="inner steps at test time", ylabel="query accuracy", ylim=(0, 1.02))
    ax.set_title("accuracy against test-time inner steps (star: the steps it trained with)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def adaptation_figure(algorithms: dict, dataset, algorithm: str, k_shot: int, inner_steps: int, inner_lr: float,
                      episodes: int = 10, seed: int = 0, n_way: int | None = None) -> Figure:
    """The explorer's plot: query accuracy and support loss step by step for one trained algorithm,
    on ``n_way``-way episodes (None: the ways it was trained with; fewer use the first rows of its
    head, :func:`~metakit.gradient.family.with_ways`)."""
    if algorithm not in algorithms:
        raise ValueError(f"no trained {algorithm!r}; choose one of {', '.join(algorithms)}.")
    alg, name = algorithms[algorithm], NAMES.get(algorithm, algorithm)
    if n_way is not None:
        alg = with_ways(alg, n_way)
    if isinstance(alg, MAMLPlusPlus) and inner_steps > alg.inner_steps:
        raise ValueError(f"MAML++ learned one rate per step for {alg.inner_steps} steps; choose inner_steps <= "
                         f"{alg.inner_steps} (or retrain it with more).")
    lr = None if isinstance(alg, (MetaSGD, MAMLPlusPlus)) else inner_lr
    curve = adaptation_curve(alg, dataset, k_shot, inner_steps, lr, episodes=episodes, seed=seed)
    fig = Figure(figsize=(10, 3.4))
    ax_acc, ax_loss = fig.subplots(1, 2)
    steps = list(range(inner_steps + 1))
    mean = curve["acc"].mean(0)
    ax_acc.plot(steps, mean, marker="o")
    for row in curve["acc"]:
        ax_acc.plot(steps, row, color="grey", alpha=0.2, lw=0.8)
    ax_acc.axhline(1 / alg.model.head.out_features, color="k", ls=":", lw=0.8)
    ax_acc.set(xlabel="inner step", ylabel="query accuracy", ylim=(0, 1.02),
               title=f"{name}, {alg.model.head.out_features}-way {k_shot}-shot: "
                     f"{mean[-1]:.2f} after {inner_steps} steps")
    if inner_steps:
        ax_loss.plot(range(1, inner_steps + 1), curve["support_loss"].mean(0), marker="o", color="C1")
    ax_loss.set(xlabel="inner step", ylabel="support loss before the step", yscale="log",
                title="learned rates (inner_lr unused)" if lr is None else f"inner_lr = {inner_lr:g}")
    for ax in (ax_acc, ax_loss):
        ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def adaptation_explorer(algorithms: dict, dataset) -> Explorer:
    """Sliders over a trained algorithm's test-time adaptation: algorithm, n_way, k_shot, inner_steps, inner_lr."""
    return Explorer(adaptation_figure, {
        "algorithm": W.Dropdown(options=[(NAMES.get(n, n), n) for n in algorithms], description="algorithm"),
        "n_way": W.IntSlider(5, min=2, max=20, description="n_way"),
        "k_shot": W.IntSlider(1, min=1, max=10, description="k_shot"),
        "inner_steps": W.IntSlider(1, min=0, max=10, description="inner_steps"),
        "inner_lr": W.FloatLogSlider(0.4, base=10, min=-3, max=1.5, description="inner_lr"),
        "seed": W.IntSlider(0, min=0, max=99, description="episodes seed"),
    }, algorithms=algorithms, dataset=dataset)


class FamilyTrainer(RunPanel):
    """A Run button that meta-trains one family member with the chosen settings: a progress bar,
    a loss/accuracy plot redrawn while it trains, and the test accuracy when it is done. The
    trained algorithm goes into ``algorithms`` under ``"<name> (yours)"``. It trains on ``device``
    (None: the CPU); notebook 03 passes ``metakit.device()``."""

    def __init__(self, background, evaluation, algorithms: dict | None = None, seconds: float = 30.0,
                 test_episodes: int = 100, device=None):
        self.background, self.evaluation, self.device = background, evaluation, device
        self.algorithms = {} if algorithms is None else algorithms
        self.test_episodes = test_episodes
        super().__init__({
            "algorithm": W.Dropdown(options=[(NAMES[n], n) for n in FAMILY], description="algorithm"),
            "n_way": W.IntSlider(5, min=2, max=20, description="n_way"),
            "k_shot": W.IntSlider(1, min=1, max=10, description="k_shot"),
            "inner_lr": W.FloatLogSlider(0.4, base=10, min=-3, max=1.5, description="inner_lr"),
            "inner_steps": W.IntSlider(1, min=1, max=5, description="inner_steps"),
            "meta_lr": W.FloatLogSlider(META["meta_lr"], base=10, min=-5, max=0, description="meta_lr"),
            "meta_batch_size": W.IntSlider(META["meta_batch_size"], min=1, max=16, description="meta_batch_size",
                                           style={"description_width": "initial"}),
            "seconds": W.FloatLogSlider(seconds, base=10, min=0, max=3, description="seconds"),
        }, rows=[["algorithm", "n_way", "k_shot"], ["inner_lr", "inner_steps"],
                 ["meta_lr", "meta_batch_size", "seconds"]])

    def _train(self, algorithm, n_way, k_shot, inner_lr, inner_steps, meta_lr, meta_batch_size, seconds):
        def redraw(history):
            self.image.value = figure_png(training_figure({algorithm: history}, window=20))

        return train_and_test(algorithm, self.background, self.evaluation, n_way=n_way, k_shot=k_shot,
                              inner_lr=inner_lr, inner_steps=inner_steps, meta_lr=meta_lr,
                              meta_batch_size=meta_batch_size, seconds=seconds, callback=redraw,
                              test_episodes=self.test_episodes, device=self.device)

    def run(self):
        """Train with the current control values; a learner's error becomes a message."""
        values = self.values
        self.message.value = f"Training {NAMES.get(values['algorithm'], values['algorithm'])}..."
        result = self.call(self._train, **values)
        if result is None:
            return None
        alg, history, (acc, ci95) = result
        self.algorithms[f"{values['algorithm']} (yours)"] = alg
        self.message.value = (f"{NAMES.get(values['algorithm'], values['algorithm'])}, "
                              f"{values['n_way']}-way {values['k_shot']}-shot: "
                              f"{history['steps']} meta-iterations in {history['seconds']:.0f} s; test accuracy "
                              f"<b>{acc:.3f} ± {ci95:.3f}</b> on {self.test_episodes} episodes of the evaluation "
                              f"alphabets.")
        return history
