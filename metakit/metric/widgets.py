"""Notebook 04's widgets: live re-testing of trained metric models, the embedding in 2-D, and a
Run button that trains a new one. Callbacks are plain functions returning a Figure, wired by
:class:`~metakit.widgets.Explorer`."""

from __future__ import annotations

import ipywidgets as W
import numpy as np
import torch
from matplotlib.figure import Figure

from ..stats import mean_ci
from ..widgets import Explorer, RunPanel, new_episode_button, run_safely  # noqa: F401 (notebook 04 calls it from here)
from .experiments import embedding_2d, episode_accuracies, make_model
from .experiments import train as metric_train


def _trained(models: dict, method: str, train_ways: int):
    if (method, train_ways) not in models:
        have = ", ".join(f"{m} ({w}-way)" for m, w in models)
        raise ValueError(f"no {method} model trained with {train_ways} ways yet (trained: {have}); "
                         "train it with the Run button below.")
    return models[method, train_ways]


def metric_accuracy_figure(models: dict, datasets: dict, method: str, train_ways: int, dataset: str,
                           n_way: int, k_shot: int, distance: str = "euclidean", episodes: int = 100,
                           seed: int = 0):
    """Notebook 04's live re-measurement: a trained model's query accuracy on fresh episodes.

    Args:
        models: ``(method, train_ways) -> trained model``.
        datasets: name -> dataset to test on.
        distance: for the prototypical network, the distance used at test time (the embedding was
            trained with whatever it was trained with); other methods ignore it.
    Returns:
        A Figure: the histogram of per-episode accuracy with its mean, 95% interval and chance.
    """
    model = _trained(models, method, train_ways)
    accs = episode_accuracies(model, datasets[dataset], n_way, k_shot, n_query=5, episodes=episodes, seed=seed,
                              distance=distance)
    mean, ci = mean_ci(accs)
    fig = Figure(figsize=(6, 2.8), layout="constrained")
    ax = fig.subplots()
    ax.hist(accs, bins=np.linspace(0, 1, 21), color="#4878a8")
    ax.axvline(mean, color="k", label=f"mean {mean:.3f} ± {ci:.3f}")
    ax.axvline(1 / n_way, color="gray", ls=":", label=f"chance {1 / n_way:.3f}")
    ax.set_xlabel("query accuracy of one episode")
    ax.set_ylabel("episodes")
    extra = f", {distance} distance" if hasattr(model, "distance") else ""
    ax.set_title(f"{method} trained {train_ways}-way, tested {n_way}-way {k_shot}-shot on {dataset}{extra}", fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def embedding_figure(models: dict, datasets: dict, method: str, dataset: str, n_way: int, k_shot: int,
                     n_query: int = 5, train_ways: int = 40, seed: int = 0):
    """Notebook 04's picture of an episode in embedding space, projected to 2-D.

    The support and query embeddings are projected on their first two principal components. The
    prototypes are the projected class means, and the shaded regions are the nearest-prototype
    regions *in the projection*: a faithful picture of the prototypical rule in 2-D, an
    approximation of what it does in the full 64 dimensions. Queries the full model gets wrong
    are circled in red.
    """
    view = embedding_2d(_trained(models, method, train_ways), datasets[dataset], n_way, k_shot, n_query, seed=seed)
    p, ps, pq, protos = view["points"], view["support"], view["query"], view["prototypes"]
    y_support, y_query, wrong = view["y_support"], view["y_query"], view["wrong"]
    lo, hi = p.min(0).values, p.max(0).values
    pad = 0.1 * (hi - lo)
    gx, gy = torch.meshgrid(torch.linspace(lo[0] - pad[0], hi[0] + pad[0], 200),
                            torch.linspace(lo[1] - pad[1], hi[1] + pad[1], 200), indexing="xy")
    grid = torch.stack([gx, gy], -1).reshape(-1, 2)
    region = torch.cdist(grid, protos).argmin(1).reshape(200, 200)
    acc_2d = (torch.cdist(pq, protos).argmin(1) == y_query).float().mean().item()

    fig = Figure(figsize=(6, 4.6), layout="constrained")
    ax = fig.subplots()
    cmap = "tab20" if n_way > 10 else "tab10"
    extent = (gx.min().item(), gx.max().item(), gy.min().item(), gy.max().item())
    ax.imshow(region.numpy(), origin="lower", extent=extent, cmap=cmap, vmin=0, vmax=19 if n_way > 10 else 9,
              alpha=0.18, aspect="auto", interpolation="nearest")
    kw = dict(cmap=cmap, vmin=0, vmax=19 if n_way > 10 else 9)
    ax.scatter(*pq.T, c=y_query, marker="o", s=22, edgecolors="none", label="query", **kw)
    ax.scatter(*pq[wrong].T, facecolors="none", edgecolors="red", s=70, lw=1.2, label="query, misclassified")
    ax.scatter(*ps.T, c=y_support, marker="s", s=40, edgecolors="k", lw=0.6, label="support", **kw)
    ax.scatter(*protos.T, c=range(n_way), marker="*", s=260, edgecolors="k", lw=1.0, label="prototype", **kw)
    full = 1 - wrong.float().mean().item()
    ax.set_title(f"{method} ({train_ways}-way trained), {n_way}-way {k_shot}-shot on {dataset}\n"
                 f"query accuracy: full model {full:.2f}, nearest prototype in this 2-D view {acc_2d:.2f}",
                 fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, loc="best")
    return fig


class MetricTrainer(RunPanel):
    """A Run button that trains a metric model on episodes, with a progress bar, and adds it to
    ``models`` under ``(method, train_ways)`` so the accuracy and embedding views can use it. It
    trains on ``device`` (None: the CPU); notebook 04 passes ``metakit.device()``."""

    def __init__(self, models: dict, dataset, seconds: float = 60.0, on_trained=None, device=None):
        self.models, self.dataset, self.on_trained, self.device = models, dataset, on_trained, device
        super().__init__({
            "method": W.Dropdown(options=["proto", "matching", "metaopt"], description="method"),
            "train_ways": W.IntSlider(20, min=2, max=60, description="training ways"),
            "seconds": W.FloatLogSlider(seconds, base=10, min=0, max=3, description="seconds"),
            "lr": W.FloatLogSlider(1e-3, base=10, min=-5, max=1, description="lr"),
        }, rows=[["method", "train_ways"], ["seconds", "lr"]])

    def run(self):
        """Train with the current control values; a learner's error becomes a message."""

        def train(method, train_ways, seconds, lr):
            model = make_model(method).to(self.device)
            # the same episode size for every method here: 1 shot, 2 queries per class, rotations
            return model, metric_train(model, self.dataset, n_way=train_ways, k_shot=1, n_query=2, rotations=True,
                                       lr=lr, seconds=seconds, device=self.device)

        values = self.values
        result = self.call(train, **values)
        if result is None:
            return None
        model, history = result
        self.models[values["method"], values["train_ways"]] = model
        self.message.value = (f"Trained {values['method']} with {values['train_ways']} ways: "
                              f"{history['steps']} episodes in {history['seconds']:.0f} s.")
        if self.on_trained is not None:
            self.on_trained()
        return history


def metric_explorers(models: dict, datasets: dict, background, episodes: int = 100, train_seconds: float = 60.0,
                     device=None):
    """Notebook 04's controls: live accuracy of a trained model, its embedding view, and a trainer
    that trains on ``device`` (None: the CPU).

    Returns:
        ``(accuracy, embedding, trainer)``: two :class:`Explorer` and a :class:`MetricTrainer`
        whose Run adds the new model to both explorers' choices.
    """
    style = {"description_width": "initial"}

    def methods():
        return list(dict.fromkeys(m for m, _ in models))

    def ways_options():
        return sorted({w for _, w in models})

    def model_choice():
        """The method and training-ways dropdowns both views start with."""
        return {"method": W.Dropdown(options=methods(), description="method"),
                "train_ways": W.Dropdown(options=ways_options(), value=max(ways_options()),
                                         description="training ways", style=style)}

    accuracy = Explorer(metric_accuracy_figure, {
        **model_choice(),
        "dataset": W.Dropdown(options=list(datasets), description="test on"),
        "n_way": W.IntSlider(5, min=2, max=60, description="n_way"),
        "k_shot": W.IntSlider(1, min=1, max=20, description="k_shot"),
        "distance": W.ToggleButtons(options=["euclidean", "cosine"], description="distance"),
    }, models=models, datasets=datasets, episodes=episodes)
    seed = W.IntText(0, description="seed", layout=W.Layout(width="140px"))
    embedding = Explorer(embedding_figure, {
        **model_choice(),
        "dataset": W.Dropdown(options=list(datasets), description="episode from"),
        "n_way": W.IntSlider(5, min=2, max=20, description="n_way"),
        "k_shot": W.IntSlider(3, min=1, max=10, description="k_shot"),
        "seed": seed,
    }, extras=[new_episode_button(seed)], models=models, datasets=datasets)

    def refresh():
        for ex in (accuracy, embedding):
            ex.controls["method"].options = methods()
            ex.controls["train_ways"].options = ways_options()
            ex.update()

    trainer = MetricTrainer(models, background, seconds=train_seconds, on_trained=refresh, device=device)
    return accuracy, embedding, trainer
