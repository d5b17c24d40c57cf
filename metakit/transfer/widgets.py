"""Notebook 08's views: the comparison as a bar chart, a fine-tuning explorer (n_way, k_shot,
fine-tuning steps and learning rate, which layers to fine-tune) on the pretrained backbones, and
meta-transfer learning's explorer (its scaling and shifting switched on or off).

The figure functions are plain callbacks of control values (tests call them directly); bad values
raise ``ValueError`` or ``FloatingPointError``, which the explorer shows as a message.
"""

from __future__ import annotations

import ipywidgets as W
from matplotlib.figure import Figure

from ..widgets import Explorer, new_episode_button
from .experiments import NAMES, finetune_curve, mtl_curve
from .finetune import HEADS, LAYERS
from .mtl import SS_MODES


def comparison_figure(results: dict, names: dict = NAMES) -> Figure:
    """Accuracy with its 95% interval per method, one panel per test set, one bar per setting
    (:func:`metakit.compare.compare`'s results)."""
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


def layers_figure(table: dict) -> Figure:
    """:func:`metakit.transfer.experiments.layers_table` as bars: accuracy per choice of layers, one
    group per test set."""
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


def mtl_figure(mtl, datasets: dict, dataset: str, mode: str, k_shot: int, steps: int, lr: float, seed: int = 0,
               episodes: int = 5) -> Figure:
    """The MTL explorer's callback: query accuracy against the head's inner steps with the scaling
    and shifting in ``mode``, next to the full method (both on, dashed) on the same episodes; and
    the learned per-channel scales and shifts of the four convolutions."""
    if dataset not in datasets:
        raise ValueError(f"dataset must be one of {', '.join(datasets)}; got {dataset!r}.")
    curve = mtl_curve(mtl, datasets[dataset], mode, k_shot, steps, lr, seed=seed, episodes=episodes)
    fig = Figure(figsize=(10, 3.4))
    ax_acc, ax_ss = fig.subplots(1, 2)
    ax_acc.plot(curve["steps"], curve["acc"], marker=".", label=f"scaling and shifting: {mode}")
    if mode != SS_MODES[0]:
        full = mtl_curve(mtl, datasets[dataset], SS_MODES[0], k_shot, steps, lr, seed=seed, episodes=episodes)
        ax_acc.plot(full["steps"], full["acc"], ls="--", color="gray", label="both on (MTL)")
    ax_acc.axhline(1 / mtl.model.head.out_features, ls=":", color="gray", label="chance")
    ax_acc.set(xlabel="inner step on the head", ylabel="query accuracy", ylim=(0, 1.02),
               title=f"{dataset}: 5-way {k_shot}-shot, mean of {episodes} episodes, final {curve['acc'][-1]:.3f}")
    ax_acc.legend(fontsize=8, loc="lower right")
    for i, (scale, shift) in enumerate(zip(mtl.model.scale, mtl.model.shift)):
        ax_ss.scatter(scale.detach().cpu() - 1, shift.detach().cpu(), s=8, label=f"conv {i + 1}")
    ax_ss.axvline(0, color="gray", lw=0.5)
    ax_ss.axhline(0, color="gray", lw=0.5)
    ax_ss.set(xlabel="scale - 1 (per channel)", ylabel="shift (per channel)", title="what meta-learning changed")
    ax_ss.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mtl_explorer(mtl, datasets: dict, episodes: int = 5) -> Explorer:
    """A switch for the scaling and shifting (both, one, or off), sliders for k_shot, the inner steps
    and their learning rate, the test set, and a new-episodes button."""
    style = {"description_width": "initial"}
    controls = {
        "dataset": W.Dropdown(options=list(datasets), description="test set"),
        "mode": W.ToggleButtons(options=list(SS_MODES), description="scaling and shifting", style=style),
        "k_shot": W.IntSlider(1, min=1, max=10, description="k_shot", style=style),
        "steps": W.IntSlider(mtl.inner_steps, min=0, max=100, description="inner steps", style=style),
        "lr": W.FloatLogSlider(mtl.inner_lr, base=10, min=-4, max=2, description="inner lr", style=style),
        "seed": W.IntText(0, description="seed", layout=W.Layout(width="140px")),
    }
    return Explorer(mtl_figure, controls, extras=[new_episode_button(controls["seed"])], mtl=mtl, datasets=datasets,
                    episodes=episodes)
