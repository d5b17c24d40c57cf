"""Notebook 06's views: the NME probes as bars and a Run button that meta-trains MAML on NME
tasks with a chosen label shuffling, the learned policy's trajectories and samples, an inspector
of any policy on chosen images, and a Run button that meta-trains the policy.

The figure functions are plain callbacks of control values (tests call them directly); bad
values raise ``ValueError`` or ``FloatingPointError``, which the widgets show as messages.
"""

from __future__ import annotations

import copy
import math

import ipywidgets as W
import torch
from matplotlib.figure import Figure

from ..runtime import seed_everything
from ..widgets import Explorer, RunPanel, figure_png
from .learned import HAND_TUNED, LIMITS, NAMES, Augmentation, make_augmented, train_policy, trajectory_lists
from .nme import NME, SHUFFLES, nme_run

UNITS = {"rotation": "degrees", "scale": "fraction", "shear": "fraction", "translate": "of half-width",
         "thickness": "share of 3x3 dilation", "noise": "pixel std"}


def nme_figure(results: dict) -> Figure:
    """Bars of the NME probes: ``results[row] = {"acc", "acc_shifted", "acc_0_steps"?, "new"}``, each
    ``(mean, ci95)``; one group per row (learner and training tasks)."""
    keys = [("acc", "training classes"), ("acc_shifted", "training classes, support labels shifted"),
            ("acc_0_steps", "training classes, no adaptation"), ("new", "new classes")]
    fig = Figure(figsize=(10, 3.6))
    ax = fig.subplots()
    rows, width = list(results), 0.2
    for j, (key, label) in enumerate(keys):
        xs = [i + (j - 1.5) * width for i, r in enumerate(rows) if key in results[r]]
        vals = [results[r][key] for r in rows if key in results[r]]
        ax.bar(xs, [v[0] for v in vals], width, yerr=[v[1] for v in vals], label=label, capsize=2)
    ax.axhline(0.2, color="k", ls=":", lw=0.8)
    ax.set_xticks(range(len(rows)), rows, fontsize=8)
    ax.set(ylabel="query accuracy (dotted: chance at 5 ways)", ylim=(0, 1.05))
    ax.legend(fontsize=7, ncols=2, loc="upper right", bbox_to_anchor=(1, 1.25))
    fig.tight_layout()
    return fig


def policy_from(trajectory: dict, i: int) -> Augmentation:
    """The policy at meta-iteration ``i`` of a recorded trajectory (``traj_<name>`` lists)."""
    m = {n: trajectory[f"traj_{n}"][i] for n in NAMES}
    m["rotation"] = math.radians(m["rotation"])
    return Augmentation({n: min(v, 0.999 * LIMITS[n]) for n, v in m.items()}, learnable=False)


def trajectory_figure(trajectories: dict) -> Figure:
    """Each magnitude against the meta-iteration, one line per run, the hand-set value dashed.

    Args:
        trajectories: run name -> ``traj_<name>`` lists (from
            :func:`~metakit.meta_augmentation.learned.train_augmented`).
    """
    fig = Figure(figsize=(10, 4.6))
    axes = fig.subplots(2, 3).flatten()
    for ax, n in zip(axes, NAMES):
        for run, t in trajectories.items():
            ax.plot(t[f"traj_{n}"], label=run)
        hand = math.degrees(HAND_TUNED[n]) if n == "rotation" else HAND_TUNED[n]
        ax.axhline(hand, color="k", ls="--", lw=0.8, label="hand-set (fixed arm)")
        ax.set_title(f"{n} ({UNITS[n]})", fontsize=9)
        ax.set_xlabel("meta-iteration", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle("the learned augmentation policy during meta-training", fontsize=10)
    fig.tight_layout()
    return fig


def samples_figure(policies: dict, images: torch.Tensor, samples: int = 6, strength: float = 1.0,
                   seed: int = 0) -> Figure:
    """One row per (policy, image): the image, then ``samples`` augmented versions of it.

    Args:
        policies: name -> :class:`~metakit.meta_augmentation.learned.Augmentation` (None: no augmentation).
        images: (B, 1, 28, 28) images.

    The draws are made on the CPU (a copy of each policy goes there), so a figure looks the same
    whichever device the policy was trained on.
    """
    images = images.cpu()
    policies = {name: None if p is None else copy.deepcopy(p).cpu() for name, p in policies.items()}
    rows = [(name, i) for name in policies for i in range(len(images))]
    fig = Figure(figsize=(1.0 * (samples + 1) + 1.2, 1.0 * len(rows) + 0.3))
    axes = fig.subplots(len(rows), samples + 1, squeeze=False)
    g = torch.Generator().manual_seed(seed)
    for r, (name, i) in enumerate(rows):
        x = images[i:i + 1]
        augment = policies[name]
        with torch.no_grad():
            out = [x] + [x if augment is None else augment(x, strength=strength, generator=g) for _ in range(samples)]
        for c, y in enumerate(out):
            ax = axes[r, c]
            ax.imshow(y[0, 0].numpy(), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=8, rotation=0, ha="right", va="center")
    axes[0, 0].set_title("original", fontsize=8)
    for c in range(1, samples + 1):
        axes[0, c].set_title(f"sample {c}", fontsize=8)
    fig.tight_layout()
    return fig


def parse_indices(text: str, n: int) -> list[int]:
    """``"0, 5, 12"`` -> ``[0, 5, 12]``; a ``ValueError`` naming the problem otherwise."""
    parts = [p for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError(f"type one or more image numbers between 0 and {n - 1}, separated by commas.")
    if len(parts) > 6:
        raise ValueError(f"at most 6 images at a time; {len(parts)} were asked.")
    try:
        out = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"{text!r} is not a list of whole numbers; type, for example, 0, 5, 12.") from None
    bad = [i for i in out if not 0 <= i < n]
    if bad:
        raise ValueError(f"image number(s) {bad} out of range; choose between 0 and {n - 1}.")
    return out


def inspect_figure(policies: dict, images: torch.Tensor, policy: str, indices: str, strength: float,
                   seed: int = 0) -> Figure:
    """The inspector's callback: the chosen images under one policy at ``strength`` times its magnitudes."""
    if policy not in policies:
        raise ValueError(f"no policy {policy!r}; choose one of {', '.join(policies)}.")
    if not (0 <= strength <= 3 and math.isfinite(strength)):
        raise ValueError(f"strength must be between 0 and 3; got {strength!r}.")
    chosen = images[parse_indices(indices, len(images))]
    return samples_figure({policy: policies[policy]}, chosen, strength=strength, seed=seed)


def inspector(policies: dict, images: torch.Tensor):
    """Explorer over :func:`inspect_figure`: policy, image numbers (text), strength, seed."""
    return Explorer(inspect_figure, {
        "policy": W.Dropdown(options=list(policies), value=list(policies)[-1], description="policy"),
        "indices": W.Text("0, 1, 2", description="images", continuous_update=False),
        "strength": W.FloatSlider(1.0, min=0.0, max=3.0, step=0.25, description="strength"),
        "seed": W.IntSlider(0, min=0, max=20, description="seed"),
    }, policies=policies, images=images)


class PolicyTrainer(RunPanel):
    """Run button: meta-train a learned augmentation with the chosen outer learning rates and CPU
    budget, with a progress bar, the policy's trajectories redrawn as it trains, and the test
    accuracy at the end. The result goes into ``results`` under ``"yours"``. It trains on ``device``
    (None: the CPU); notebook 06 passes ``metakit.device()``."""

    def __init__(self, background, evaluation, seconds: int = 20, test_episodes: int = 50, device=None):
        self.background, self.evaluation, self.test_episodes = background, evaluation, test_episodes
        self.device = device
        self.results: dict = {}
        super().__init__({
            "meta_lr": W.FloatLogSlider(1e-3, base=10, min=-4, max=0, description="meta_lr"),
            "aug_lr": W.FloatLogSlider(0.05, base=10, min=-3, max=1, description="aug_lr"),
            "seconds": W.IntSlider(int(seconds), min=2, max=300, description="CPU seconds"),
        })

    def run(self):
        """Train with the current control values; a learner's error becomes a message."""
        self.message.value = "Training..."
        seed_everything(0)
        alg = make_augmented("learned").to(self.device)

        def redraw(history):
            if alg.trajectory:
                self.image.value = figure_png(trajectory_figure({"yours": trajectory_lists(alg.trajectory)}))

        result = self.call(train_policy, background=self.background, evaluation=self.evaluation, callback=redraw,
                           test_episodes=self.test_episodes, algorithm=alg, **self.values)
        if result is None:
            return None
        alg, history, (acc, ci95) = result
        self.results["yours"] = {"algorithm": alg, "history": history, "acc": (acc, ci95)}
        self.image.value = figure_png(trajectory_figure({"yours": history}))
        self.message.value = (f"{history['steps']} meta-iterations in {history['clock_seconds']:.0f} CPU-seconds; "
                              f"test accuracy <b>{acc:.3f} ± {ci95:.3f}</b> on {self.test_episodes} 5-way 1-shot "
                              "episodes of the evaluation alphabets.")
        return history


class NMETrainer(RunPanel):
    """Run button: MAML meta-trained on non-mutually-exclusive tasks with the chosen label shuffling
    (none, intra, inter), inner learning rate, ways, shots and CPU budget, then probed as in the
    table (:func:`~metakit.meta_augmentation.nme.nme_run`); the bars join the earlier runs'. The
    results go into ``results`` under ``"yours (<shuffle>)"``. It trains on ``device`` (None: the CPU)."""

    def __init__(self, background, evaluation, results: dict | None = None, seconds: int = 20,
                 test_episodes: int = 50, device=None):
        self.background, self.evaluation, self.test_episodes = background, evaluation, test_episodes
        self.device = device
        self.results = {} if results is None else results
        super().__init__({
            "shuffle": W.Dropdown(options=list(SHUFFLES), value="none", description="shuffle"),
            "inner_lr": W.FloatLogSlider(NME["inner_lr"], base=10, min=-3, max=1, description="inner_lr"),
            "n_way": W.IntSlider(NME["n_way"], min=2, max=20, description="n_way"),
            "k_shot": W.IntSlider(NME["k_shot"], min=1, max=15, description="k_shot"),
            "seconds": W.IntSlider(int(seconds), min=2, max=300, description="CPU seconds"),
        }, rows=[["shuffle", "inner_lr", "seconds"], ["n_way", "k_shot"]])

    def run(self):
        """Train with the current control values; a learner's error becomes a message."""
        values = self.values
        self.message.value = f"Training MAML on NME tasks, shuffle={values['shuffle']}..."
        result = self.call(nme_run, background=self.background, evaluation=self.evaluation,
                           test_episodes=self.test_episodes, device=self.device, **values)
        if result is None:
            return None
        _, row = result
        self.results[f"yours ({values['shuffle']})"] = row
        self.image.value = figure_png(nme_figure(self.results))
        self.message.value = (
            f"{values['n_way']}-way {values['k_shot']}-shot, shuffle={values['shuffle']}, "
            f"inner_lr={values['inner_lr']:g}: {row['steps']} meta-iterations in {row['cpu_s']:.0f} CPU-seconds. "
            f"Training classes <b>{row['acc'][0]:.3f}</b> after adapting, {row['acc_0_steps'][0]:.3f} without, "
            f"{row['acc_shifted'][0]:.3f} with the support labels shifted; new classes <b>{row['new'][0]:.3f} ± "
            f"{row['new'][1]:.3f}</b> (chance {1 / values['n_way']:.3f}), on {self.test_episodes} episodes each.")
        return row
