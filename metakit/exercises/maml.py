"""Notebook 02's exercises: one differentiable inner step and the meta-gradient through it."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from metakit.exercises.core import _call, compare, report


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


