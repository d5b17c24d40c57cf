"""Notebook 09's experiments, which ``benchmarks/metadata.py`` runs at full size: the prototypical
network over columns trained (or loaded), and the three methods (rules, hand-made features, the
prototypical network) compared on the same held-out episodes (:func:`metakit.compare.compare`)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints import train_or_load
from ..compare import compare, paired
from ..runtime import recipe_clock, seed_everything
from .columns import ColumnEpisodeSampler
from .encoder import ColumnPrototypes, train_column_prototypes, training_summary

CHECKPOINT = "columns-proto.pt"
TRAINING = dict(n_way=15, k_shot=5, n_query=5, meta_lr=1e-3)  # meta-training episodes and Adam's rate
PATTERNS = 100  # synthetic template types added to the 58 background types for meta-training
SHOTS = (1, 3, 5)


def trained_model(background, seconds: float, folder, *, retrain: bool = False, clock=None,
                  seed: int = 0, progress: bool = True, device=None):
    """The prototypical network over columns, meta-trained on ``background`` for ``seconds`` of
    ``clock`` (:func:`~metakit.runtime.recipe_clock` by default: CPU time on the CPU) in the
    :data:`TRAINING` regime, or loaded from ``folder / columns-proto.pt``, on ``device`` (None: the
    CPU). Returns ``(model, info)``: info holds ``steps``, ``clock_seconds``, the loss curve and
    ``loaded``."""
    torch.manual_seed(seed)
    model = ColumnPrototypes().to(device)
    clock = clock or recipe_clock(device)
    info = train_or_load(model, Path(folder) / CHECKPOINT, lambda m: {
        **training_summary(train_column_prototypes(m, background, seconds=seconds, clock=clock, seed=seed,
                                                   progress=progress, **TRAINING)),
        "types": background.num_classes, "columns_per_type": len(background) // background.num_classes},
        retrain=retrain)
    return model.eval(), info


def compare_methods(methods: dict, held_out, shots=SHOTS, n_way: int = 5, n_query: int = 5, episodes: int = 600,
                    seed: int = 0, progress: bool = True) -> dict:
    """Every method on the same ``n_way``-way episodes of ``held_out`` at each ``k_shot`` in ``shots``.

    Returns:
        :func:`metakit.compare.compare`'s results, ``{(method, "held-out", k_shot): {"acc", "ci95",
        "accs", "ms"}}``.
    """
    settings = {k: dict(n_way=n_way, k_shot=k, n_query=n_query) for k in shots}
    return compare(methods, {"held-out": held_out}, settings, episodes=episodes, seed=seed,
                   make_sampler=ColumnEpisodeSampler, progress=progress)


def comparison_table(results: dict, baselines=("rules", "knn"), ours: str = "proto") -> str:
    """Accuracy ± 95% half-width per method and k_shot, then ``ours`` minus each baseline on the same
    episodes (the paired difference and its interval)."""
    methods = list(dict.fromkeys(k[0] for k in results))
    test_set = next(iter(results))[1]
    shots = list(dict.fromkeys(k[2] for k in results))
    lines = [f"{'method':<12}" + "".join(f"{f'{k}-shot':>17}" for k in shots)]
    for name in methods:
        lines.append(f"{name:<12}" + "".join("{:>17}".format("%.3f +- %.3f" % (results[name, test_set, k]["acc"],
                                                                              results[name, test_set, k]["ci95"]))
                                             for k in shots))
    for other in baselines:
        lines.append(f"{ours + '-' + other:<12}" + "".join(
            "{:>17}".format("%+.3f +- %.3f" % paired(results, ours, other, test_set, k)) for k in shots))
    return "\n".join(lines)


def episode_predictions(methods: dict, dataset, n_way: int, k_shot: int, n_query: int = 1, seed: int = 0):
    """One episode of ``dataset`` (drawn from ``seed``) and every method's predicted classes.

    Returns:
        ``(query columns, y_query, type names of the episode's classes, {method: (n_query_total,) predictions})``,
        the predictions on the CPU whatever device a method computes on.
    """
    seed_everything(seed)
    i_support, y_support, i_query, y_query = ColumnEpisodeSampler(dataset, n_way, k_shot, n_query).sample_indices()
    x_support, x_query = dataset.lookup(i_support), dataset.lookup(i_query)
    names = [dataset.class_names[int(dataset.targets[i])] for i in i_support[::k_shot]]
    preds = {}
    for name, m in methods.items():
        with torch.no_grad():
            m.fit_support(x_support, y_support)
            preds[name] = m(x_query).argmax(1).cpu()
    return x_query, y_query, names, preds
