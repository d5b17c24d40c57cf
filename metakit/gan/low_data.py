"""The DAGAN paper's own test of augmentation (Antoniou, Storkey and Edwards, 2017, Sec. 5.1): one
plain classifier over many new classes at once, trained from scratch on a few real drawings of
each class, with and without generated drawings, and tested on drawings of those classes it was
not given.

This is not an episode. A 5-way episode asks which of five characters a query is; here the
classifier tells ``n_classes`` characters apart (100 by default), all learnt from ``k_shot`` real
drawings each, and no other knowledge: its weights start at random. That is the setting of the
paper's better-known gain on Omniglot, where the classes were the held-out characters and the
generator had never seen them.

A run draws ``n_classes`` classes of the dataset, and for each class ``k_shot`` drawings to learn
from and ``n_test`` others to test on. The same classes, drawings and initial weights are used
with and without augmentation ("base" and "aug"), so the two accuracies of a run are paired; the
runs of an experiment differ in their seed, and the difference is reported with the Student-t
interval over runs (:func:`~metakit.gan.augmentation.paired_summary`).
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from ..models import Conv4
from ..stats import format_ci
from ..training import model_device
from .augmentation import augment, fit_classifier, paired_summary
from .dcgan import dataset_images

#: the benchmark's protocol: 100 classes, 1 and 5 real drawings each, 10 test drawings per class,
#: 5 generated images per real one, a Conv-4 of 32 channels trained for 300 Adam steps on batches
#: of 64, three runs (seeds) per setting
PROTOCOL = dict(n_classes=100, shots=(1, 5), n_test=10, n_gen=5, steps=300, lr=1e-3, batch_size=64, hidden=32,
                runs=3)


def split_classes(dataset, n_classes: int, k_shot: int, n_test: int, seed: int = 0):
    """``n_classes`` random classes of ``dataset``, and in each ``k_shot`` drawings to train on and
    ``n_test`` others to test on, chosen at random with ``seed``.

    Returns:
        ``(train_index, test_index)``: image indices of shapes (n_classes, k_shot) and (n_classes, n_test);
        row ``c`` is the new class ``c``.
    Raises:
        ValueError: when the dataset has fewer than ``n_classes`` classes, or a class has fewer than
            ``k_shot + n_test`` drawings.
    """
    for name, value, low in (("n_classes", n_classes, 2), ("k_shot", k_shot, 1), ("n_test", n_test, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be a whole number of at least {low}; got {value!r}.")
    if n_classes > dataset.num_classes:
        raise ValueError(f"{dataset.name} has {dataset.num_classes} classes; a {n_classes}-class classifier "
                         "cannot be built from it. Lower n_classes.")
    smallest = min(len(dataset.labels_to_indices[c]) for c in dataset.labels_to_indices)
    if k_shot + n_test > smallest:
        raise ValueError(f"{dataset.name}'s smallest class has {smallest} drawings, fewer than k_shot + n_test = "
                         f"{k_shot} + {n_test}. Lower one of them.")
    g = torch.Generator().manual_seed(seed)
    labels = sorted(dataset.labels_to_indices)
    classes = [labels[i] for i in torch.randperm(len(labels), generator=g)[:n_classes].tolist()]
    rows = []
    for c in classes:
        drawings = torch.tensor(dataset.labels_to_indices[c])
        rows.append(drawings[torch.randperm(len(drawings), generator=g)[:k_shot + n_test]])
    rows = torch.stack(rows)                                   # (n_classes, k_shot + n_test)
    return rows[:, :k_shot], rows[:, k_shot:]


@torch.no_grad()
def _test_accuracy(model, x, y, batch_size: int = 500) -> float:
    model.eval()
    correct = sum((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    return correct / len(x)


def low_data_run(dagan, dataset, k_shot: int = 1, n_classes: int = PROTOCOL["n_classes"],
                 n_test: int = PROTOCOL["n_test"], n_gen: int = PROTOCOL["n_gen"], noise_scale: float = 1.0,
                 steps: int = PROTOCOL["steps"], lr: float = PROTOCOL["lr"], batch_size: int = PROTOCOL["batch_size"],
                 hidden: int = PROTOCOL["hidden"], seed: int = 0) -> dict:
    """One run of the protocol: the same classifier trained with and without augmentation.

    Args:
        dagan: a trained :class:`~metakit.gan.dagan.DAGANGenerator`; the run computes on its device.
        n_gen: generated images per real drawing in the "aug" arm (0 is refused: there would be no
            second arm).
        steps, lr, batch_size: Adam steps on random batches (the same number of steps in both arms,
            so augmentation buys no extra training).
        hidden: channels of the Conv-4 classifier.
    Returns:
        ``{"base": accuracy, "aug": accuracy, "train_base": ..., "train_aug": ...}``: accuracy on the
        ``n_classes * n_test`` test drawings, and on the real training drawings after training.
    """
    if isinstance(n_gen, bool) or not isinstance(n_gen, int) or n_gen < 1:
        raise ValueError(f"n_gen (generated images per real drawing) must be a positive whole number; got {n_gen!r}.")
    train_index, test_index = split_classes(dataset, n_classes, k_shot, n_test, seed)
    device = model_device(dagan)
    images = dataset_images(dataset)
    y_train = torch.arange(n_classes).repeat_interleave(k_shot).to(device)
    x_train = images[train_index.flatten()].to(device)          # (n_classes * k_shot, 1, 28, 28)
    x_test = images[test_index.flatten()].to(device)
    y_test = torch.arange(n_classes).repeat_interleave(n_test).to(device)
    x_aug, y_aug = augment(dagan, x_train, y_train, n_gen, noise_scale, seed=seed)
    out = {}
    for arm, (x, y) in (("base", (x_train, y_train)), ("aug", (x_aug, y_aug))):
        torch.manual_seed(seed)                                 # the same initial weights and batches' seed
        model = Conv4(hidden=hidden, out_features=n_classes).to(device)
        fit_classifier(model, x, y, steps, lr, batch_size)
        out[arm] = _test_accuracy(model, x_test, y_test)
        out[f"train_{arm}"] = _test_accuracy(model, x_train, y_train)
    return out


def low_data_experiment(dagan, dataset, shots=PROTOCOL["shots"], runs: int = PROTOCOL["runs"], seed: int = 0,
                        progress: bool = True, **kwargs) -> dict:
    """:func:`low_data_run` for every ``k_shot`` in ``shots``, ``runs`` times (seeds ``seed``,
    ``seed + 1``, ...).

    Returns:
        ``{k_shot: {"base", "aug", "train_base", "train_aug": (runs,) float64 tensors,
        "summary": {base, base_ci, aug, aug_ci, diff, diff_ci}}}``; the difference is paired by run.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a positive whole number; got {runs!r}.")
    out = {}
    bar = tqdm(total=len(shots) * runs, desc="low-data classifiers", disable=not progress)
    for k in shots:
        rows = []
        for r in range(runs):
            rows.append(low_data_run(dagan, dataset, k_shot=k, seed=seed + r, **kwargs))
            bar.update()
        d = {key: torch.tensor([row[key] for row in rows], dtype=torch.float64) for key in rows[0]}
        d["summary"] = paired_summary(d["base"], d["aug"])
        out[k] = d
    bar.close()
    return out


def format_low_data(results: dict, n_classes: int = PROTOCOL["n_classes"]) -> str:
    """``results``: name (a generator, a test set) -> :func:`low_data_experiment`'s output. One row
    per name and shot count; intervals are Student-t over the runs (none for a single run)."""
    def cell(mean, ci):
        return format_ci(mean, ci) if math.isfinite(ci) else f"{mean:.4f}".ljust(len(format_ci(mean, 0.0)))

    lines = [f"{'':<28} {'real/class':>10} {'without GAN':>15} {'with GAN':>15} {'difference':>19}"]
    runs = 0
    for name, result in results.items():
        for k, d in result.items():
            s, runs = d["summary"], len(d["base"])
            diff = f"{100 * s['diff']:+8.2f}" + (f"±{100 * s['diff_ci']:.2f}" if math.isfinite(s["diff_ci"]) else "")
            lines.append(f"{name:<28} {k:>10} {cell(s['base'], s['base_ci'])}  {cell(s['aug'], s['aug_ci'])}  "
                         f"{diff} pts")
    lines.append(f"({n_classes}-class classifiers from scratch, {runs} run(s) each"
                 + (", intervals over runs)" if runs > 1 else "; one run has no interval)"))
    return "\n".join(lines)
