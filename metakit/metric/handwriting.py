"""How far the embedded glyphs carry a learner towards real handwriting: the default data's benchmark.

A Conv-4 prototypical network is trained on the background glyph alphabets (40-way 1-shot
episodes with 2 queries per class, rotations as classes, Adam 1e-3: many ways and few queries won
at equal wall clock) and tested, 1-shot, on unseen glyph alphabets and on real Omniglot, against a
reference on the very same episodes: the nearest class mean on raw pixels. ``benchmarks/glyphs.py``
prints this table; the glyph generator's options (``style``, ``sources``) are compared with it.
"""

from __future__ import annotations

import math
import tempfile
import time

import numpy as np
import torch

from ..datasets import ImageClassDataset, load_glyphs
from ..episodes import EpisodeSampler
from ..glyphs import load_or_build
from ..models import Conv4
from ..runtime import seed_everything
from ..training import evaluate, train_episodes
from .protonet import PrototypicalNetwork

TRAIN = dict(n_way=40, k_shot=1, n_query=2, rotations=True)
LR = 1e-3
TESTS = {"5w1s": dict(n_way=5, k_shot=1, n_query=15), "20w1s": dict(n_way=20, k_shot=1, n_query=5)}
# Snell, Swersky and Zemel (2017), Table 1: Conv-4 prototypical network trained on the 1200
# Omniglot training characters (x4 rotations) for hours on a GPU, tested on the other 423.
PAPER = {"5w1s": 0.988, "20w1s": 0.960}


def describe(dataset) -> str:
    return f"{dataset.name}: {len(dataset.alphabets)} alphabets, {dataset.num_classes} characters"


def fresh_build(seed: int = 0, style: str = "fonts", params: dict | None = None, sources: str = "matplotlib",
                progress: bool = True):
    """Build the glyphs in a throwaway folder (timed), so a benchmark measures and uses exactly this
    build and never touches the cache in ``data/``.

    Returns:
        ``(build seconds, the built arrays, background split, evaluation split)``.
    """
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        params = params if style != "fonts" else None
        data = load_or_build(root=root, seed=seed, rebuild=True, progress=progress, style=style,
                             params=params, sources=sources)
        build_s = time.perf_counter() - start
        splits = [load_glyphs(split, root=root, seed=seed, style=style, sources=sources, params=params)
                  for split in ("background", "evaluation")]
    return build_s, data, *splits


class AugmentedSampler:
    """An episode sampler whose every image is deformed afresh: random rotation, scale, shear, shift
    and pen width (:class:`metakit.meta_augmentation.Augmentation`, fixed magnitudes), applied to
    the training episodes only, so that the network meets more ways of drawing than the renderer
    made (domain randomisation). ``strength`` multiplies notebook 06's hand-set magnitudes.
    """

    def __init__(self, sampler, strength: float = 1.0, seed: int = 0):
        from ..meta_augmentation.learned import HAND_TUNED, LIMITS, Augmentation
        if not (strength > 0):
            raise ValueError(f"strength must be positive; got {strength!r}.")
        magnitudes = {k: v * strength for k, v in HAND_TUNED.items()}
        if too_big := [k for k, v in magnitudes.items() if v >= LIMITS[k]]:
            raise ValueError(f"strength {strength:g} takes {', '.join(too_big)} to its limit {LIMITS}; lower it.")
        self.sampler, self.augmentation = sampler, Augmentation(magnitudes, learnable=False)
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def sample(self):
        x_support, y_support, x_query, y_query = self.sampler.sample()
        n = len(x_support)
        x = self.augmentation(torch.cat([x_support, x_query]).cpu(), generator=self.generator)
        x = x.to(x_support.device)
        return x[:n], y_support, x[n:], y_query


def merge(a: ImageClassDataset, b: ImageClassDataset, name: str) -> ImageClassDataset:
    """The drawings of both datasets, class by class (two drawing styles keep the same classes)."""
    if a.class_names != b.class_names:
        raise ValueError("merge needs two drawings of the same classes.")
    return ImageClassDataset(torch.cat([a.images, b.images]), torch.cat([a.targets, b.targets]), a.class_names,
                             name=name)


def handwriting_experiment(background, test_sets: dict, *, steps: int | None = None, seconds: float | None = None,
                           episodes: int = 600, seed: int = 0, device=None, progress: bool = True,
                           augment: float = 0.0) -> dict:
    """Train the prototypical network on ``background`` and test it and the raw-pixel reference on
    every test set, at 5-way and 20-way 1-shot, on the same episodes.

    Args:
        test_sets: name -> dataset; a name mapped to None is reported as NaN (a missing set).
        steps, seconds: the training budget (wall clock, see :class:`~metakit.runtime.Budget`).
        augment: when positive, the training episodes' images are deformed by an
            :class:`AugmentedSampler` of this strength; the test episodes never are.
    Returns:
        ``{"history": train_episodes' history, "ours": {f"{set}_{test}": (acc, ci95)},
        "pixels": the same for the reference}``.
    """
    device = torch.device(device or "cpu")
    seed_everything(seed)
    model = PrototypicalNetwork(Conv4()).to(device)
    sampler = EpisodeSampler(background, **TRAIN, device=device)
    if augment:
        sampler = AugmentedSampler(sampler, augment, seed)
    history = train_episodes(model, sampler, lr=LR, steps=steps, seconds=seconds, progress=progress, device=device)
    pixels = PrototypicalNetwork(torch.nn.Flatten()).to(device)  # nearest class mean on raw pixels
    ours, reference = {}, {}
    for name, dataset in test_sets.items():
        for key, setting in TESTS.items():
            for m, out in ((model, ours), (pixels, reference)):
                if dataset is None:
                    out[f"{name}_{key}"] = (math.nan, math.nan)
                    continue
                seed_everything(seed)  # the same test episodes whatever was trained
                out[f"{name}_{key}"] = evaluate(m, EpisodeSampler(dataset, **setting, device=device),
                                                episodes=episodes, progress=progress)
    return {"history": history, "ours": ours, "pixels": reference}


def format_report(result: dict, test_sets: dict, episodes: int) -> str:
    """The training line, the accuracy table and the references (pixels, the paper) as text."""
    h, ours, pixels = result["history"], result["ours"], result["pixels"]
    last = slice(-min(50, h["steps"]), None)
    lines = [f"training: {TRAIN['n_way']}-way 1-shot, {TRAIN['n_query']} queries per class, rotations, Adam "
             f"lr={LR:g}: {h['steps']} episodes in {h['seconds']:.0f} s, last 50 loss {np.mean(h['loss'][last]):.3f} "
             f"acc {np.mean(h['acc'][last]):.3f}",
             f"\ntest accuracy over {episodes} episodes, mean +- 95% interval (1-shot; 15 queries per class for "
             "5-way, 5 for 20-way):"]
    labels = {n: describe(d) if d is not None else f"{n} (not found)" for n, d in test_sets.items()}
    wide = max(map(len, labels.values())) + len("pixels, ")
    lines.append(f"{'test set':<{wide}}  {'5-way 1-shot':>16}  {'20-way 1-shot':>16}")
    for n, label in labels.items():
        cells = [f"{ours[f'{n}_{k}'][0]:.4f} +- {ours[f'{n}_{k}'][1]:.4f}" for k in TESTS]
        lines.append(f"{label:<{wide}}  {cells[0]:>16}  {cells[1]:>16}")
    lines.append("\nreferences, same episodes (in brackets: ours / reference): nearest class mean on raw pixels; "
                 "Snell et al. (2017) trained on full Omniglot")
    for n, label in labels.items():
        cells = [f"{pixels[f'{n}_{k}'][0]:.4f} (x{ours[f'{n}_{k}'][0] / pixels[f'{n}_{k}'][0]:.2f})" for k in TESTS]
        lines.append(f"{'pixels, ' + label:<{wide}}  {cells[0]:>16}  {cells[1]:>16}")
    if "omniglot" in test_sets:
        cells = [f"{PAPER[k]:.4f} (x{ours[f'omniglot_{k}'][0] / PAPER[k]:.2f})" for k in TESTS]
        lines.append(f"{'paper, Omniglot test split':<{wide}}  {cells[0]:>16}  {cells[1]:>16}")
    return "\n".join(lines)
