"""Notebook 02's exercises: one differentiable inner step and the meta-gradient through it, first-order
MAML's gradient, and Reptile's update direction."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from metakit.exercises.core import _call, compare, report
from metakit.gradient.functional import adapt


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




def _leaves(params: dict) -> dict:
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def _gradient_of(loss_fn: Callable, params: dict) -> dict:
    """Plain gradient of ``loss_fn(params)`` with respect to (a detached copy of) ``params``."""
    leaves = _leaves(params)
    return dict(zip(leaves, torch.autograd.grad(loss_fn(leaves), list(leaves.values()))))


def _ce(params: dict, x, y) -> torch.Tensor:
    return F.cross_entropy(linear_forward(params, x), y)


def fomaml_gradient(params: dict, x_support, y_support, x_query, y_query, inner_lr: float, steps: int) -> dict:
    """Reference: first-order MAML's meta-gradient, the query gradient at the adapted parameters.

    The kit's ``adapt(..., first_order=True)`` treats every inner gradient as a constant, so the
    adapted parameters depend on the initial ones through the identity only.
    Returns: {name: gradient} with the shapes of ``params``.
    """
    leaves = _leaves(params)
    adapted = adapt(lambda p, x, step=0: linear_forward(p, x), leaves, x_support, y_support,
                    inner_lr=inner_lr, steps=steps, first_order=True)
    return dict(zip(leaves, torch.autograd.grad(_ce(adapted, x_query, y_query), list(leaves.values()))))


def reptile_direction(params: dict, batches: list, inner_lr: float) -> dict:
    """Reference: Reptile's update direction ``(theta_0 - theta_K) / inner_lr`` after one SGD step per batch.

    Args: params {name: tensor}; batches [(x, y), ...] the K mini-batches of one task, in order.
    Returns: {name: tensor} with the shapes of ``params``.
    """
    theta = {k: v.detach() for k, v in params.items()}
    for x, y in batches:
        grads = _gradient_of(lambda p: _ce(p, x, y), theta)
        theta = {k: theta[k] - inner_lr * grads[k] for k in theta}
    return {k: (params[k].detach() - theta[k]) / inner_lr for k in params}


def _dict_problem(answer, expected: dict, what: str) -> str | None:
    if answer is None:
        return "It returned None instead of a dict of tensors (is the `return` missing?)."
    if not isinstance(answer, dict) or set(answer) != set(expected):
        return f"It should return a dict with the keys {sorted(expected)}, got {type(answer).__name__}" + (
            f" with the keys {sorted(answer)}." if isinstance(answer, dict) else ".")
    for name in expected:
        problem = compare(answer[name], expected[name], f"{what} '{name}'")
        if problem:
            return problem
    return None


def _same(answer: dict, other: dict) -> bool:
    try:
        return all(torch.allclose(answer[k].detach(), other[k], atol=1e-5, rtol=1e-4) for k in other)
    except Exception:
        return False


def _task_cases(seed: int):
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, dim, steps in [(5, 2, 4, 2), (3, 1, 2, 1), (1, 3, 2, 3), (4, 2, 1, 3)]:
        params = {"w": torch.randn(dim, n_way, generator=g), "b": torch.randn(n_way, generator=g)}
        x_s, x_q = torch.randn(n_way * k_shot, dim, generator=g), torch.randn(6, dim, generator=g)
        y_s = torch.arange(n_way).repeat_interleave(k_shot)
        yield params, x_s, y_s, x_q, torch.randint(n_way, (6,), generator=g), 0.5, steps, f"{n_way}-way {k_shot}-shot"


def check_fomaml(fn: Callable) -> Callable:
    """Check ``fn(params, x_support, y_support, x_query, y_query, inner_lr, steps) -> {name: gradient}``."""
    problem = None
    for params, x_s, y_s, x_q, y_q, lr, steps, label in _task_cases(seed=7):
        answer, problem = _call(fn, (_leaves(params), x_s, y_s, x_q, y_q, lr, steps))
        expected = fomaml_gradient(params, x_s, y_s, x_q, y_q, lr, steps)
        problem = problem or _dict_problem(answer, expected, "The gradient of")
        if problem and isinstance(answer, dict) and set(answer) == set(params):
            def maml_step(p, x, y, a):  # `steps` differentiable steps
                for _ in range(steps):
                    p = inner_step(p, x, y, a)
                return p
            if _same(answer, meta_gradient(maml_step, params, x_s, y_s, x_q, y_q, lr)):
                problem = ("This is MAML's full meta-gradient, Hessian terms included. First-order MAML treats the "
                           "adapted parameters as constants: take the query gradient at theta_K and stop there.")
            elif _same(answer, _gradient_of(lambda p: _ce(p, x_q, y_q), params)):
                problem = ("This is the query gradient at the INITIAL parameters: adapt first (the inner steps on "
                           "the support set), then take the query gradient at the adapted parameters.")
            elif steps > 1 and _same(answer, fomaml_gradient(params, x_s, y_s, x_q, y_q, lr, 1)):
                problem = f"It took one inner step; steps={steps} were asked."
        if problem:
            problem = f"On a {label} task with {steps} inner step(s): {problem}"
            break
    ok = report("First-order MAML's gradient", problem,
                "run `steps` plain gradient steps on the support loss (no create_graph), then return the "
                "gradient of the query loss with respect to those adapted parameters, as a dict.")
    return fn if ok else fomaml_gradient


def check_reptile_direction(fn: Callable) -> Callable:
    """Check ``fn(params, batches, inner_lr) -> {name: (theta_0 - theta_K) / inner_lr}``."""
    problem = None
    for params, x_s, y_s, x_q, y_q, lr, steps, label in _task_cases(seed=8):
        batches = [(x_s, y_s), (x_q, y_q), (x_s.flip(0), y_s.flip(0))][:steps]
        answer, problem = _call(fn, (_leaves(params), batches, lr))
        expected = reptile_direction(params, batches, lr)
        problem = problem or _dict_problem(answer, expected, "The direction of")
        if problem and isinstance(answer, dict) and set(answer) == set(params):
            at_start = {k: sum(_gradient_of(lambda p: _ce(p, x, y), params)[k] for x, y in batches) for k in params}
            if _same(answer, {k: lr * v for k, v in expected.items()}):
                problem = "It is inner_lr times too small: divide theta_0 - theta_K by inner_lr."
            elif steps > 1 and _same(answer, at_start):
                problem = ("It adds up the gradients of every batch at theta_0. Each SGD step takes its gradient "
                           "where the previous step left the parameters; that difference is what Reptile learns from.")
        if problem:
            problem = f"With {steps} batch(es) of a {label} task: {problem}"
            break
    ok = report("Reptile's direction", problem,
                "start from theta_0 (detached), take one SGD step per batch in order, theta <- theta - inner_lr * "
                "grad, and return {name: (theta_0 - theta_K) / inner_lr}.")
    return fn if ok else reptile_direction
