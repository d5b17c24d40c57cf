"""Figures the notebooks show. Each function returns a ``matplotlib.figure.Figure`` without
touching pyplot's global state, so widget callbacks can redraw many times without leaking."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure


def _image_grid(ax, images, n_rows, n_cols, title=None):
    """Tile (n_rows*n_cols, 1, 28, 28) ink images into one picture, dark ink on white as on paper."""
    imgs = images.detach().cpu().reshape(n_rows, n_cols, *images.shape[-2:])
    pad = torch.zeros(n_rows, n_cols, imgs.shape[-2] + 2, imgs.shape[-1] + 2)
    pad[:, :, 1:-1, 1:-1] = imgs
    tiled = pad.permute(0, 2, 1, 3).reshape(n_rows * pad.shape[2], n_cols * pad.shape[3])
    ax.imshow(1 - tiled.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks((np.arange(n_rows) + 0.5) * pad.shape[2])
    ax.set_yticklabels([f"class {i}" for i in range(n_rows)], fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)


def plot_episode(x_support, y_support, x_query, y_query, max_query: int = 8, title: str | None = None) -> Figure:
    """Support set (one row per class, k_shot columns) beside the first queries of each class."""
    n_way = int(y_support.max()) + 1
    k_shot = len(y_support) // n_way
    n_query = len(y_query) // n_way
    shown = min(n_query, max_query)
    queries = x_query.reshape(n_way, n_query, *x_query.shape[1:])[:, :shown].reshape(-1, *x_query.shape[1:])
    rows = min(n_way, 20)
    height = 0.45 * rows + 0.9
    fig = Figure(figsize=(0.5 * (k_shot + shown) + 2.2, height), layout="constrained")
    ax_s, ax_q = fig.subplots(1, 2, width_ratios=[max(k_shot, 1), max(shown, 1)])
    per_row = lambda x, cols: x[: rows * cols]
    _image_grid(ax_s, per_row(x_support, k_shot), rows, k_shot, f"support: {k_shot} shot")
    _image_grid(ax_q, per_row(queries, shown), rows, shown,
                f"query: {shown} of {n_query} per class" if shown < n_query else f"query: {n_query} per class")
    ax_q.set_yticklabels([])
    suptitle = title or f"{n_way}-way {k_shot}-shot episode"
    if rows < n_way:
        suptitle += f" (first {rows} classes shown)"
    fig.suptitle(suptitle, fontsize=11)
    return fig


def plot_characters(dataset, classes, renderings: int = 10, title: str | None = None) -> Figure:
    """Several renderings of each chosen class, one row per class, labelled with its name."""
    rows = [torch.stack([dataset[i][0] for i in dataset.labels_to_indices[c][:renderings]]) for c in classes]
    images = torch.cat(rows)
    fig = Figure(figsize=(0.55 * renderings + 2.5, 0.5 * len(classes) + 0.6), layout="constrained")
    ax = fig.subplots()
    _image_grid(ax, images, len(classes), renderings, title)
    ax.set_yticklabels([dataset.class_names[c] for c in classes], fontsize=7)
    return fig


def plot_curves(x, curves: dict, xlabel: str, ylabel: str, title: str | None = None, chance=None) -> Figure:
    """Line plot of named curves; each value is a sequence of means or (means, half-widths)."""
    fig = Figure(figsize=(5.5, 3.4), layout="constrained")
    ax = fig.subplots()
    for name, values in curves.items():
        if isinstance(values, tuple):
            mean, half = map(np.asarray, values)
            ax.plot(x, mean, marker="o", label=name)
            ax.fill_between(x, mean - half, mean + half, alpha=0.2)
        else:
            ax.plot(x, values, marker="o", label=name)
    if chance is not None:
        ax.axhline(chance, color="gray", ls=":", label="chance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
