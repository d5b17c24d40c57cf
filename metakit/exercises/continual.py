"""Notebook 07's exercises: ACC/BWT/FWT from an accuracy matrix, A-GEM's projection, and OML's
online step on the linear head written in closed form."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from metakit.continual.oml import online_head_step
from metakit.continual.stream import continual_metrics
from metakit.exercises.core import _call, check_prediction, compare, report  # noqa: F401 (check_prediction: for the notebook)


def _metrics_cases(seed: int = 7):
    rng = np.random.default_rng(seed)
    for T in (3, 2, 6, 4):
        yield rng.uniform(0, 1, (T, T)).round(2), rng.uniform(0, 0.3, T).round(2)


def _metric_problem(answer, R, b) -> str | None:
    if answer is None:
        return "It returned None instead of a dict (is the `return` missing?)."
    if not isinstance(answer, dict) or not {"acc", "bwt", "fwt"} <= set(answer):
        return f"It should return a dict with the keys 'acc', 'bwt' and 'fwt', got {answer!r:.80}."
    expected = continual_metrics(R, b)
    T = len(R)
    # the slips we expect, each named in words
    slips = {"bwt": {"divides by T instead of T-1 (or includes the last task, whose difference is 0)":
                     float(np.mean(R[-1] - np.diag(R))),
                     "has the wrong sign (it is R[T-1, j] - R[j, j]: the end minus the time it was learned)":
                     -expected["bwt"]},
             "fwt": {"uses R[j, j] (after training on task j) instead of R[j-1, j] (just before)":
                     float(np.mean([R[j, j] - b[j] for j in range(1, T)])),
                     "includes task 0, which has no earlier task to learn from":
                     float(np.mean([R[max(j - 1, 0), j] - b[j] for j in range(T)]))},
             "acc": {"averages the diagonal R[j, j] instead of the last row R[T-1, j]": float(np.diag(R).mean())}}
    for key in ("acc", "bwt", "fwt"):
        try:
            got = float(answer[key])
        except (TypeError, ValueError):
            return f"'{key}' is a {type(answer[key]).__name__}, not a number."
        if math.isclose(got, expected[key], abs_tol=1e-6):
            continue
        for words, value in slips[key].items():
            if math.isclose(got, value, abs_tol=1e-6):
                return f"{key.upper()} {words}: got {got:.4f}, expected {expected[key]:.4f}."
        return f"{key.upper()} is {got:.4f}, expected {expected[key]:.4f} (off by {abs(got - expected[key]):.3g})."
    return None


def check_metrics(fn: Callable) -> Callable:
    """Check ``fn(R, b) -> {"acc", "bwt", "fwt"}``; return the function the notebook should use."""
    problem = None
    for R, b in _metrics_cases():
        answer, problem = _call(fn, (R.copy(), b.copy()))
        problem = problem or _metric_problem(answer, R, b)
        if problem:
            problem = f"On a {len(R)}-task accuracy matrix: {problem}"
            break
    ok = report("ACC, BWT and FWT", problem,
                "with T = len(R): acc = R[T-1].mean(); bwt = the mean over j = 0..T-2 of R[T-1, j] - R[j, j]; "
                "fwt = the mean over j = 1..T-1 of R[j-1, j] - b[j].")
    return fn if ok else continual_metrics


def agem_project(g: torch.Tensor, g_ref: torch.Tensor) -> torch.Tensor:
    """Reference: A-GEM's projection (as in :class:`metakit.continual.methods.AGEM`).

    Args: g (P,) the current batch's gradient, g_ref (P,) the memories' gradient.
    Returns: (P,) ``g`` when ``g . g_ref >= 0``, else ``g - (g . g_ref) / (g_ref . g_ref) * g_ref``.
    """
    dot = g @ g_ref
    return g if dot >= 0 else g - dot / (g_ref @ g_ref) * g_ref


def _agem_cases(seed: int = 11):
    gen = torch.Generator().manual_seed(seed)
    for dim, conflict in [(5, True), (5, False), (1, True), (40, True), (3, False)]:
        g = torch.randn(dim, generator=gen, dtype=torch.float64)
        g_ref = torch.randn(dim, generator=gen, dtype=torch.float64)
        if (g @ g_ref < 0) != conflict:
            g_ref = -g_ref
        yield g, g_ref, conflict


def check_agem_projection(fn: Callable) -> Callable:
    """Check ``fn(g, g_ref) -> projected gradient`` on conflicting and non-conflicting pairs."""
    problem = None
    for g, g_ref, conflict in _agem_cases():
        answer, problem = _call(fn, (g.clone(), g_ref.clone()))
        expected = agem_project(g, g_ref)
        problem = problem or compare(answer, expected, "The projected gradient")
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            answer = answer.detach().to(g.dtype)
            if not conflict:
                problem = ("When g and g_ref do not conflict (g . g_ref >= 0), A-GEM keeps g as it is; "
                           f"yours changed it by up to {(answer - g).abs().max().item():.3g}.")
            elif torch.allclose(answer, g):
                problem = "When g . g_ref < 0 the gradient must be projected; yours returned g unchanged."
            elif abs((answer @ g_ref).item()) > 1e-6 * g.norm().item() * g_ref.norm().item():
                problem += (f" After a projection g~ . g_ref should be 0, yours gives {(answer @ g_ref).item():+.3g}"
                            " (divide by g_ref . g_ref, the squared norm, and subtract).")
        if problem:
            problem = f"With {len(g)} weight(s), {'conflicting' if conflict else 'agreeing'} gradients: {problem}"
            break
    ok = report("A-GEM projection", problem,
                "dot = g @ g_ref; if dot < 0 return g - dot / (g_ref @ g_ref) * g_ref, else return g.")
    return fn if ok else agem_project


def online_step(W, b, z, y, lr):
    """Reference: one online SGD step of the head, through autograd (:func:`metakit.continual.oml.online_head_step`).

    Args: W (C, D), b (C,), z (D,) features, y an int class, lr float. Returns: the new (W, b).
    """
    W, b = W.detach().requires_grad_(True), b.detach().requires_grad_(True)
    with torch.enable_grad():
        W1, b1 = online_head_step(W, b, z.detach(), int(y), lr)
    return W1.detach(), b1.detach()


def _online_cases(seed: int = 5):
    gen = torch.Generator().manual_seed(seed)
    for n_classes, dim, y in [(5, 8, 3), (2, 3, 0), (1, 4, 0), (7, 1, 6)]:
        yield (torch.randn(n_classes, dim, generator=gen), torch.randn(n_classes, generator=gen),
               torch.randn(dim, generator=gen), y, 0.3)


def check_online_step(fn: Callable) -> Callable:
    """Check ``fn(W, b, z, y, lr) -> (W_new, b_new)``, the closed-form step, against autograd."""
    problem = None
    for W, b, z, y, lr in _online_cases():
        answer, problem = _call(fn, (W.clone(), b.clone(), z.clone(), y, lr))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = f"It should return the pair (W_new, b_new), got {type(answer).__name__}."
        if problem is None:
            expected = online_step(W, b, z, y, lr)
            problem = compare(answer[0], expected[0], "The new W") or compare(answer[1], expected[1], "The new b")
        if problem:
            problem = f"With {len(b)} class(es), {len(z)} feature(s) and label {y}: {problem}"
            break
    ok = report("Online step on the head", problem,
                "p = torch.softmax(W @ z + b, 0); subtract 1 from p[y] (a copy: p - e_y); return "
                "W - lr * outer(p - e_y, z), shape (C, D), and b - lr * (p - e_y).")
    return fn if ok else online_step
