"""Notebook 08's views: the comparison as a bar chart, and a fine-tuning explorer (n_way, k_shot,
fine-tuning steps and learning rate, which layers to fine-tune) on the pretrained backbones.

The figure functions are plain callbacks of control values (tests call them directly); bad values
raise ``ValueError`` or ``FloatingPointError``, which the explorer shows as a message.
"""

from __future__ import annotations

import ipywidgets as W
from matplotlib.figure import Figure

from ..episodes import EpisodeSampler
from ..runtime import seed_everything
from ..widgets import Explorer, new_episode_button
from .finetune import HEADS, LAYERS, NAMES, FineTuner, episode_accuracy, interval

N_QUERY = 10  # queries per class: 10 shots + 10 queries fit the 20 drawings of a character
_CACHE: dict = {}  # episodes, frozen features and reference accuracies, so a slider move only re-tunes


def _cached(key, make, *owners):
    """``make()``, kept under ``key``; the entry holds ``owners`` (whose ids are in the key) alive,
    so that no other object can reuse their ids while it is cached."""
    if key not in _CACHE:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = (owners, make())
    return _CACHE[key][1]


def comparison_figure(results: dict, names: dict = NAMES) -> Figure:
    """Accuracy with its 95% interval per method, one panel per test set, one bar per setting
    (:func:`metakit.transfer.compare`'s results)."""
    methods = list(dict.fromkeys(k[0] for k in results))
    sets = list(dict.fromkeys(k[1] for k in results))
    settings = list(dict.fromkeys(k[2] for k in results))
    fig = Figure(figsize=(5 * len(sets), 3.6))
    axes = fig.subplots(1, len(sets), squeeze=False)[0]
    width = 0.8 / len(settings)
    for ax, s in zip(axes, sets):
        for j, x in enumerate(settings):
            acc = [results[m, s, x]["acc"] for m in methods]
            ci = [results[m, s, x]["ci95"] for m in methods]
            ax.bar([i + j * width for i in range(len(methods))], acc, width, yerr=ci, capsize=3, label=x)
        ax.set_xticks([i + width * (len(settings) - 1) / 2 for i in range(len(methods))],
                      [names.get(m, m) for m in methods])
        low = min(results[k]["acc"] for k in results if k[1] == s)
        ax.set(ylim=(max(0.0, low - 0.1), 1.0), ylabel="query accuracy", title=s)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def finetune_curve(backbone, dataset, head: str, n_way: int, k_shot: int, steps: int, lr: float, layers: str,
                   seed: int = 0, episodes: int = 3, references: dict | None = None) -> dict:
    """Fine-tune a new head (and ``layers``) on ``episodes`` episodes and follow it step by step.

    Args:
        backbone: a pretrained Conv-4.
        head: ``"linear"`` (Baseline) or ``"cosine"`` (Baseline++).
        references: name -> trained method (ProtoNet, MAML) scored on the same episodes.
    Returns:
        ``{"loss": mean support loss per step, "steps": the steps where the query accuracy was
        taken, "acc": mean query accuracy there, "references": {name: accuracy}}``.
    """
    model = FineTuner(backbone, head=head, layers=layers, steps=steps, lr=lr)  # refuses bad settings first
    key = (id(dataset), n_way, k_shot, seed, episodes)

    def draw():
        seed_everything(seed)
        sampler = EpisodeSampler(dataset, n_way, k_shot, N_QUERY)  # ValueError for an impossible episode
        return [sampler.sample() for _ in range(episodes)]

    tasks = _cached(("episodes", *key), draw, dataset)
    feats = _cached(("features", id(backbone), layers, *key),
                    lambda: [(model.features(xs), ys, model.features(xq), yq) for xs, ys, xq, yq in tasks],
                    backbone, dataset)
    losses, accs = [], []
    for h_support, y_support, h_query, y_query in feats:
        model.fit_features(h_support, y_support, watch=(h_query, y_query))
        losses.append(model.history["loss"])
        accs.append(model.history["query_acc"])
    refs = {}
    for name, method in (references or {}).items():
        out = getattr(getattr(method, "model", None), "head", None)
        if out is not None and out.out_features != n_way:
            continue  # MAML's head was trained for a fixed number of ways
        refs[name] = _cached(("reference", id(method), *key), lambda method=method: _mean_accuracy(method, tasks),
                             method, dataset)
    mean = lambda rows: [sum(col) / len(col) for col in zip(*rows)]  # noqa: E731
    return {"loss": mean(losses), "steps": model.history["query_steps"], "acc": mean(accs), "references": refs}


def _mean_accuracy(method, tasks) -> float:
    was_training = method.training
    method.eval()  # BatchNorm on its running statistics, as at test time
    try:
        return sum(episode_accuracy(method, *t) for t in tasks) / len(tasks)
    finally:
        method.train(was_training)


def finetune_figure(backbones: dict, datasets: dict, dataset: str, method: str, n_way: int, k_shot: int,
                    steps: int, lr: float, layers: str, seed: int = 0, episodes: int = 3,
                    references: dict | None = None) -> Figure:
    """The explorer's callback: support loss and query accuracy against fine-tuning steps.

    Args:
        backbones: ``{"baseline": Conv-4, "baselinepp": Conv-4}`` pretrained with the matching head.
        datasets: name -> dataset; ``dataset`` picks one.
        method: ``"baseline"`` or ``"baselinepp"``.
        references: name -> trained method drawn as a horizontal line on the same episodes.
    """
    if method not in backbones:
        raise ValueError(f"method must be one of {', '.join(backbones)}; got {method!r}.")
    if dataset not in datasets:
        raise ValueError(f"dataset must be one of {', '.join(datasets)}; got {dataset!r}.")
    curve = finetune_curve(backbones[method], datasets[dataset], HEADS[method], n_way, k_shot, steps, lr, layers,
                           seed=seed, episodes=episodes, references=references)
    fig = Figure(figsize=(10, 3.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    if curve["loss"]:
        ax_loss.plot(range(1, len(curve["loss"]) + 1), curve["loss"])
        ax_loss.set(yscale="log")
    ax_loss.set(xlabel="fine-tuning step", ylabel="support loss", title=f"{NAMES[method]}, tuning: {layers}")
    ax_acc.plot(curve["steps"], curve["acc"], marker=".", label=NAMES[method])
    for name, acc in curve["references"].items():
        ax_acc.axhline(acc, ls="--", color={"proto": "C2", "maml": "C3"}.get(name, "gray"), label=NAMES.get(name, name))
    ax_acc.axhline(1 / n_way, ls=":", color="gray", label="chance")
    ax_acc.set(xlabel="fine-tuning step", ylabel="query accuracy", ylim=(0, 1.02),
               title=f"{dataset}: {n_way}-way {k_shot}-shot, mean of {episodes} episodes")
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def finetune_explorer(backbones: dict, datasets: dict, references: dict | None = None, episodes: int = 2) -> Explorer:
    """Sliders for n_way, k_shot, fine-tuning steps and learning rate, a choice of layers to tune,
    of the method (Baseline or Baseline++) and of the test set, and a new-episodes button."""
    style = {"description_width": "initial"}
    controls = {
        "dataset": W.Dropdown(options=list(datasets), description="test set"),
        "method": W.Dropdown(options=[(NAMES[m], m) for m in backbones], value="baselinepp", description="method"),
        "layers": W.Dropdown(options=list(LAYERS), description="fine-tune"),
        "n_way": W.IntSlider(5, min=2, max=30, description="n_way", style=style),
        "k_shot": W.IntSlider(1, min=1, max=15, description="k_shot", style=style),
        "steps": W.IntSlider(100, min=0, max=300, step=10, description="steps", style=style),
        "lr": W.FloatLogSlider(0.01, base=10, min=-4, max=3, description="lr", style=style),
        "seed": W.IntText(0, description="seed", layout=W.Layout(width="140px")),
    }
    return Explorer(finetune_figure, controls, extras=[new_episode_button(controls["seed"])], backbones=backbones,
                    datasets=datasets, references=references, episodes=episodes)


def layers_table(backbone, datasets: dict, head: str, episodes: int = 30, seed: int = 0, progress: bool = True,
                 **finetune) -> dict:
    """Query accuracy (mean, 95% interval) of fine-tuning each choice of ``layers``, 5-way 1-shot,
    on the same episodes: ``{(layers, dataset): (acc, ci95)}``."""
    from tqdm.auto import tqdm


    out = {}
    jobs = [(layers, name) for name in datasets for layers in LAYERS]
    for layers, name in tqdm(jobs, desc="layers", disable=not progress):
        model = FineTuner(backbone, head=head, layers=layers, **finetune)
        seed_everything(seed)
        sampler = EpisodeSampler(datasets[name], 5, 1, 15)
        out[layers, name] = interval([episode_accuracy(model, *sampler.sample()) for _ in range(episodes)])
    return out


def layers_figure(table: dict) -> Figure:
    """:func:`layers_table` as bars: accuracy per choice of layers, one group per test set."""
    sets = list(dict.fromkeys(k[1] for k in table))
    fig = Figure(figsize=(6.5, 3.4))
    ax = fig.subplots()
    for j, layers in enumerate(LAYERS):
        acc = [table[layers, s][0] for s in sets]
        ci = [table[layers, s][1] for s in sets]
        ax.bar([i + 0.27 * j for i in range(len(sets))], acc, 0.27, yerr=ci, capsize=3, label=layers)
    ax.set_xticks([i + 0.27 for i in range(len(sets))], sets)
    ax.set(ylabel="query accuracy, 5-way 1-shot", ylim=(0, 1), title="which layers to fine-tune")
    ax.legend(fontsize=8, loc="lower right", title="fine-tuned")
    fig.tight_layout()
    return fig
