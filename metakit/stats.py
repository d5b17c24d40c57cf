"""The one confidence interval every comparison in the kit reports."""

from __future__ import annotations

import math

import torch


def mean_ci(values, correction: int = 0) -> tuple[float, float]:
    """``(mean, 1.96 * std / sqrt(n))``: the mean of per-episode values and its 95% half-width.

    For a paired comparison pass the per-episode differences, so the interval is the difference's.

    Args:
        values: ``(n,)`` per-episode accuracies or differences (a tensor or a list of floats).
        correction: 0 for the population standard deviation, 1 for the sample one (whose
            half-width is NaN for a single value).
    """
    v = torch.as_tensor(values, dtype=torch.float64)
    if correction and len(v) <= correction:
        return v.mean().item(), float("nan")
    return v.mean().item(), 1.96 * v.std(correction=correction).item() / math.sqrt(len(v))
