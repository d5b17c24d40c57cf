"""Exercise checks: a learner's function against the reference, answered in words.

A check runs the learner's function and the reference on several random inputs and edge cases
(a single shot, one class, one feature), and prints "correct" or what is wrong (the shape, a sign,
how far off, a gradient that does not flow) with a hint. Under nbgrader's autograde or validate
(it sets ``NBGRADER_EXECUTION``) a wrong answer raises ``ExerciseError`` instead, so the graded
cell scores zero; a learner only sees the message. Every check returns the function the rest of
the notebook should use: the learner's when it is right, the reference otherwise.
"""
from __future__ import annotations

import os
from typing import Callable

import torch
import torch.nn.functional as F


class ExerciseError(AssertionError):
    """A wrong or missing answer while nbgrader grades the notebook."""


def grading() -> bool:
    """True under ``nbgrader autograde`` or ``nbgrader validate`` (nbgrader FAQ)."""
    return os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")


def report(name: str, problem: str | None, hint: str = "") -> bool:
    """Print (or, when grading, raise) the verdict of one check; True when correct."""
    if problem is None:
        print(f"{name}: correct.")
        return True
    message = f"{name}: not yet. {problem}" + (f"\nHint: {hint}" if hint else "")
    if grading():
        raise ExerciseError(message)
    print(message + "\nThe rest of the notebook uses the reference implementation.")
    return False


def _call(fn, args) -> tuple[object, str | None]:
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "The function is not written yet (it raises NotImplementedError)."
    except Exception as error:  # the learner's bug, shown as a sentence instead of a traceback
        return None, f"It raised {type(error).__name__}: {error}."


def compare(answer, expected: torch.Tensor, what: str, atol: float = 1e-4) -> str | None:
    """Describe how ``answer`` differs from ``expected`` in words, or None when they agree."""
    if answer is None:
        return f"It returned None instead of {what[0].lower() + what[1:]} (is the `return` missing?)."
    if not isinstance(answer, torch.Tensor):
        return f"It returned a {type(answer).__name__} where {what[0].lower() + what[1:]} should be a tensor."
    if answer.shape != expected.shape:
        hint = ""
        if answer.dim() == 2 and answer.shape == expected.shape[::-1]:
            hint = " (the transpose of the expected shape: are rows and columns swapped?)"
        return f"{what} has shape {tuple(answer.shape)}, expected {tuple(expected.shape)}{hint}."
    answer = answer.detach().to(expected.dtype)
    if not torch.isfinite(answer).all():
        return f"{what} contains NaN or infinity."
    if torch.allclose(answer, expected, atol=atol, rtol=1e-4):
        return None
    if torch.allclose(answer, -expected, atol=atol, rtol=1e-4):
        return f"{what} has the right size but the wrong sign."
    off = (answer - expected).abs().max().item()
    return f"{what} is off by up to {off:.3g} (largest entry of the expected value: {expected.abs().max().item():.3g})."


# ---------------------------------------------------------------- notebook 01: nearest mean
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


# ---------------------------------------------------------------- notebook 02: one inner step
def linear_forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """The model of the exercise: logits = x @ w + b, with params {'w': (D, N), 'b': (N,)}."""
    return x @ params["w"] + params["b"]


def inner_step(params: dict, x_support, y_support, inner_lr: float) -> dict:
    """Reference: one gradient step on the support loss, kept differentiable (create_graph=True)."""
    loss = F.cross_entropy(linear_forward(params, x_support), y_support)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {name: p - inner_lr * g for (name, p), g in zip(params.items(), grads)}


def _inner_cases(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, dim in [(5, 2, 4), (5, 1, 3), (1, 3, 2), (3, 1, 1)]:
        params = {"w": torch.randn(dim, n_way, generator=g), "b": torch.randn(n_way, generator=g)}
        x_s, x_q = torch.randn(n_way * k_shot, dim, generator=g), torch.randn(6, dim, generator=g)
        y_s = torch.arange(n_way).repeat_interleave(k_shot)
        y_q = torch.randint(n_way, (6,), generator=g)
        yield params, x_s, y_s, x_q, y_q, 0.5


def meta_gradient(step: Callable, params: dict, x_s, y_s, x_q, y_q, inner_lr: float):
    """Gradient of the query loss after one ``step`` with respect to the initial parameters."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    adapted = step(leaves, x_s, y_s, inner_lr)
    loss = F.cross_entropy(linear_forward(adapted, x_q), y_q)
    grads = torch.autograd.grad(loss, list(leaves.values()), allow_unused=True)
    return dict(zip(leaves, grads))


def check_inner_step(fn: Callable) -> Callable:
    """Check ``fn(params, x_support, y_support, inner_lr) -> adapted params`` (values and meta-gradient)."""
    problem = None
    for params, x_s, y_s, x_q, y_q, lr in _inner_cases():
        leaves = {k: v.clone().requires_grad_(True) for k, v in params.items()}
        answer, problem = _call(fn, (leaves, x_s, y_s, lr))
        if problem is None and not (isinstance(answer, dict) and set(answer) == set(params)):
            problem = f"It should return a dict with the keys {sorted(params)}, got {type(answer).__name__}."
        if problem is None:
            fresh = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            expected = inner_step(fresh, x_s, y_s, lr)
            for name in params:
                problem = problem or compare(answer[name], expected[name].detach(), f"The adapted '{name}'")
        if problem is None:
            reference = meta_gradient(inner_step, params, x_s, y_s, x_q, y_q, lr)
            got, error = _call(meta_gradient, (fn, params, x_s, y_s, x_q, y_q, lr))
            if error or any(got[k] is None for k in params):
                problem = ("The meta-gradient does not flow back to the initial parameters "
                           "(was something detached, or torch.no_grad used?).")
            else:
                for name in params:
                    diff = compare(got[name], reference[name], f"The meta-gradient of '{name}'")
                    if diff:
                        problem = diff + " The adapted values are right, so the second-order term is missing."
                        break
        if problem:
            break
    ok = report("One inner step", problem,
                "loss = F.cross_entropy(linear_forward(params, x_support), y_support); take "
                "torch.autograd.grad(loss, list(params.values()), create_graph=True) and return "
                "{name: p - inner_lr * g}. create_graph=True keeps the step differentiable.")
    return fn if ok else inner_step


# ---------------------------------------------------------------- predict, then verify
def check_prediction(name: str, answer, expected, hint: str = "", tolerance: float = 0.0) -> bool:
    """A "predict, then verify" answer: compare the learner's prediction with what the widget shows."""
    if answer is None or answer is ...:
        return report(name, "No prediction given yet.", hint)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            wrong = abs(float(answer) - expected) > tolerance
        except (TypeError, ValueError):
            return report(name, f"Expected a number, got {answer!r}.", hint)
    else:
        wrong = str(answer).strip().lower() != str(expected).strip().lower()
    return report(name, f"The prediction {answer!r} is not what the widget shows." if wrong else None, hint)
