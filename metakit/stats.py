"""The one confidence interval every comparison in the kit reports."""

from __future__ import annotations

import math

import torch

Z95 = 1.96
SMALL = 30  # below this many values, Student's t replaces the normal quantile


def mean_ci(values) -> tuple[float, float]:
    """The mean of per-episode values and the half-width of its 95% confidence interval.

    From 30 values on, the half-width is ``1.96 * std / sqrt(n)`` with the population standard
    deviation (divided by n), the convention of the few-shot papers' evaluation code (600 test
    episodes, ``np.std`` and 1.96), so the kit's intervals read like theirs. Below 30 values
    (seeds, a handful of runs) it is ``t * s / sqrt(n)`` with the sample standard deviation
    (divided by n - 1) and Student's t quantile for n - 1 degrees of freedom, which is wider and
    honest for small samples; a single value has no interval (NaN).

    For a paired comparison pass the per-episode differences, so the interval is the difference's.

    Args:
        values: ``(n,)`` per-episode accuracies or differences (a tensor or a list of floats).
    Returns:
        ``(mean, half_width)`` as floats, so a result reads ``mean ± half_width``.
    """
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = len(v)
    if n == 0:
        raise ValueError("mean_ci needs at least one value.")
    if n == 1:
        return v.item(), math.nan
    if n >= SMALL:
        return v.mean().item(), Z95 * v.std(correction=0).item() / math.sqrt(n)
    return v.mean().item(), t95(n - 1) * v.std(correction=1).item() / math.sqrt(n)


def t95(dof: int) -> float:
    """The two-sided 95% quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t  # scipy is a dependency; imported here to keep `import metakit` light

    return float(t.ppf(0.975, dof))


def format_ci(mean: float, half_width: float, digits: int = 4) -> str:
    """``"0.9862±0.0025"``: the one way the kit's tables print a mean and its interval."""
    return f"{mean:.{digits}f}±{half_width:.{digits}f}"
