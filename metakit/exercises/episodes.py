"""Notebook 01's exercises: the nearest-mean classifier on an episode."""
from __future__ import annotations

from collections.abc import Callable

import torch

from metakit.exercises.core import _call, compare, report


def nearest_mean_logits(x_support, y_support, x_query, n_way: int) -> torch.Tensor:
    """Reference: logits = minus the squared Euclidean distance to each class mean.

    Args: x_support (N*K, D), y_support (N*K,) in 0..n_way-1, x_query (Q, D).
    Returns: (Q, n_way) logits; the predicted class is their argmax.
    """
    means = torch.stack([x_support[y_support == c].mean(0) for c in range(n_way)])  # (N, D)
    return -torch.cdist(x_query, means).pow(2)


def _nearest_mean_cases(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, n_query, dim in [(5, 3, 7, 4), (5, 1, 5, 6), (1, 2, 3, 2), (3, 4, 2, 1)]:
        y = torch.arange(n_way).repeat_interleave(k_shot)
        yield torch.randn(n_way * k_shot, dim, generator=g), y, torch.randn(n_query, dim, generator=g), n_way


def check_nearest_mean(fn: Callable) -> Callable:
    """Check ``fn(x_support, y_support, x_query, n_way) -> (Q, n_way) logits``; return the one to use."""
    problem = None
    for case in _nearest_mean_cases():
        answer, problem = _call(fn, case)
        expected = nearest_mean_logits(*case)
        problem = problem or compare(answer, expected, "The logits tensor")
        if problem:
            n_way, k = case[3], len(case[1]) // case[3]
            problem = f"On a {n_way}-way {k}-shot episode with {case[0].shape[1]} feature(s): {problem}"
            break
    ok = report("Nearest-mean classifier", problem,
                "average the support examples of each class (one mean per class, shape (n_way, D)), then "
                "return MINUS the squared distance from each query to each mean, shape (n_query, n_way).")
    return fn if ok else nearest_mean_logits


