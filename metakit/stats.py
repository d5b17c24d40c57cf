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
    """``"0.9862±0.0025"``: the one way the kit's tables print a mean and its interval; a single
    value, which has none (NaN from :func:`mean_ci`), prints as ``"0.9862 (1 value)"``."""
    if math.isnan(half_width):
        return f"{mean:.{digits}f} (1 value)"
    return f"{mean:.{digits}f}±{half_width:.{digits}f}"


def seed_summary(a, b) -> dict:
    """Two methods measured once per seed, paired by seed: how far the gap ``b - a`` is a finding.

    Args:
        a, b: ``(n_seeds,)`` accuracies of the two methods, entry ``i`` of each from seed ``i``
            (the same training seed and the same test episodes for both).
    Returns:
        ``{"a_mean", "a_std", "a_range", "b_mean", "b_std", "b_range", "diff", "diff_ci", "excludes_zero"}``:
        each method's mean, sample standard deviation (n - 1) and range (max - min, how far a
        single-seed table can move), and the mean paired difference ``b - a`` with its 95%
        half-width from :func:`mean_ci` (Student's t below 30 seeds). ``excludes_zero`` is
        False when the interval holds 0 or there is none (one seed).
    """
    a, b = (torch.as_tensor(v, dtype=torch.float64).flatten() for v in (a, b))
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"seed_summary needs one value per seed for both methods; got {len(a)} and {len(b)}.")
    out = {}
    for name, v in (("a", a), ("b", b)):
        out |= {f"{name}_mean": v.mean().item(), f"{name}_std": v.std(correction=1).item() if len(v) > 1 else math.nan,
                f"{name}_range": (v.max() - v.min()).item()}
    out["diff"], out["diff_ci"] = mean_ci(b - a)
    out["excludes_zero"] = bool(abs(out["diff"]) > out["diff_ci"])  # False for a NaN half-width
    return out
