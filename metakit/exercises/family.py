"""Notebook 03's exercises: ANIL's head-only step, Meta-SGD's step and Reptile's outer update.

The inner steps run on a two-layer network written as a function of a parameter dict (body, then
head); the references are the kit's own :func:`metakit.gradient.functional.adapt`.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from metakit.exercises.core import _call, compare, report
from metakit.gradient.functional import adapt

HEAD = ("head.w", "head.b")


def two_layer_forward(params: dict, x: torch.Tensor) -> torch.Tensor:
    """The exercises' network: logits = tanh(x @ body.w + body.b) @ head.w + head.b.

    Args: params {"body.w": (D, H), "body.b": (H,), "head.w": (H, N), "head.b": (N,)}, x (B, D).
    Returns: (B, N) logits.
    """
    return torch.tanh(x @ params["body.w"] + params["body.b"]) @ params["head.w"] + params["head.b"]


def _forward(params, x, step=0):
    return two_layer_forward(params, x)


def anil_inner_step(params: dict, x_support, y_support, inner_lr: float) -> dict:
    """Reference: one differentiable gradient step on the head only; the body passes through."""
    return adapt(_forward, params, x_support, y_support, inner_lr=inner_lr, steps=1, only=list(HEAD))


def metasgd_inner_step(params: dict, lrs: dict, x_support, y_support) -> dict:
    """Reference: ``theta - lrs * grad L_S(theta)``, one rate per parameter element, differentiable in both."""
    return adapt(_forward, params, x_support, y_support, inner_lr=lrs, steps=1)


def reptile_update(theta: dict, adapted: list, epsilon: float) -> dict:
    """Reference: ``theta + epsilon * (mean over tasks of phi - theta)``.

    Args: theta {name: tensor}; adapted: one dict per task, same keys and shapes; epsilon float.
    """
    return {n: theta[n] + epsilon * (torch.stack([phi[n] for phi in adapted]).mean(0) - theta[n]) for n in theta}


def _cases(seed: int):
    """Random tasks on the two-layer network: (params, x_support, y_support, x_query, y_query, inner_lr)."""
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, dim, hidden in [(5, 2, 4, 6), (5, 1, 3, 4), (1, 3, 2, 3), (3, 1, 1, 2)]:
        params = {"body.w": torch.randn(dim, hidden, generator=g), "body.b": torch.randn(hidden, generator=g),
                  "head.w": torch.randn(hidden, n_way, generator=g), "head.b": torch.randn(n_way, generator=g)}
        x_s, x_q = torch.randn(n_way * k_shot, dim, generator=g), torch.randn(6, dim, generator=g)
        y_s = torch.arange(n_way).repeat_interleave(k_shot)
        yield params, x_s, y_s, x_q, torch.randint(n_way, (6,), generator=g), 0.5, f"{n_way}-way {k_shot}-shot"


def _leaves(tensors: dict) -> dict:
    return {k: v.detach().clone().requires_grad_(True) for k, v in tensors.items()}


def _dict_problem(answer, expected: dict, what: str) -> str | None:
    """Compare two dicts of tensors key by key, in words."""
    if answer is None:
        return "It returned None instead of a dict of tensors (is the `return` missing?)."
    if not isinstance(answer, dict):
        return f"It should return a dict with the keys {sorted(expected)}, got {type(answer).__name__}."
    if set(answer) != set(expected):
        return f"It returned the keys {sorted(answer)}; expected {sorted(expected)} (every parameter, adapted or not)."
    for name in expected:
        problem = compare(answer[name], expected[name].detach(), f"{what} '{name}'")
        if problem:
            return problem
    return None


def _meta_gradients(step: Callable, leaves: dict, x_q, y_q) -> tuple[dict | None, str | None]:
    """Gradients of the query loss after ``step()`` with respect to ``leaves`` (None where none flows)."""
    adapted, error = _call(step, ())
    if error:
        return None, error
    loss = F.cross_entropy(two_layer_forward(adapted, x_q), y_q)
    if not loss.requires_grad:
        return {k: None for k in leaves}, None
    return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()), allow_unused=True))), None


def _gradient_problem(got: dict, want: dict, what: str, hint_body: str) -> str | None:
    for name in want:
        if got[name] is None:
            return (f"No meta-gradient reaches {what} '{name}' (was something detached, or the step taken "
                    f"under torch.no_grad?). {hint_body}")
        diff = compare(got[name], want[name], f"The meta-gradient of {what} '{name}'")
        if diff:
            return diff + (" The adapted values are right, so part of the gradient through the step is lost: "
                           "was create_graph=True left out, or a tensor detached?")
    return None


def check_anil_step(fn: Callable) -> Callable:
    """Check ``fn(params, x_support, y_support, inner_lr) -> adapted params``; return the one to use."""
    problem = None
    for params, x_s, y_s, x_q, y_q, lr, label in _cases(seed=3):
        answer, problem = _call(fn, (_leaves(params), x_s, y_s, lr))
        expected = anil_inner_step(_leaves(params), x_s, y_s, lr)
        problem = problem or _dict_problem(answer, expected, "The adapted")
        if problem and isinstance(answer, dict) and set(answer) == set(params):
            changed = [n for n in params if n not in HEAD and isinstance(answer[n], torch.Tensor)
                       and answer[n].shape == params[n].shape and compare(answer[n], params[n], "") is not None]
            if changed:
                problem = (f"The body parameter '{changed[0]}' changed in the inner loop; ANIL adapts only "
                           f"the head {list(HEAD)} and passes the body through as it is.")
        if problem is None:
            leaves, leaves2 = _leaves(params), _leaves(params)
            want, _ = _meta_gradients(lambda: anil_inner_step(leaves, x_s, y_s, lr), leaves, x_q, y_q)
            got, error = _meta_gradients(lambda: fn(leaves2, x_s, y_s, lr), leaves2, x_q, y_q)
            problem = error or _gradient_problem(got, want, "the initial", "The body must keep its gradient too.")
        if problem:
            problem = f"On a {label} task: {problem}"
            break
    ok = report("ANIL's inner step", problem,
                "take the gradient of the support loss with respect to the head only, "
                "torch.autograd.grad(loss, [params['head.w'], params['head.b']], create_graph=True), "
                "step those two, and return every key: the body entries unchanged.")
    return fn if ok else anil_inner_step


def check_metasgd_step(fn: Callable) -> Callable:
    """Check ``fn(params, lrs, x_support, y_support) -> adapted params``; return the one to use."""
    problem = None
    g = torch.Generator().manual_seed(5)
    for params, x_s, y_s, x_q, y_q, _, label in _cases(seed=4):
        lrs = {n: 0.05 + 0.5 * torch.rand(p.shape, generator=g) for n, p in params.items()}
        answer, problem = _call(fn, (_leaves(params), _leaves(lrs), x_s, y_s))
        expected = metasgd_inner_step(_leaves(params), _leaves(lrs), x_s, y_s)
        problem = problem or _dict_problem(answer, expected, "The adapted")
        if problem is None:
            both = {**{("p", n): v for n, v in _leaves(params).items()},
                    **{("lr", n): v for n, v in _leaves(lrs).items()}}

            def split(leaves):
                return {n: leaves[("p", n)] for n in params}, {n: leaves[("lr", n)] for n in params}
            want, _ = _meta_gradients(lambda: metasgd_inner_step(*split(both), x_s, y_s), both, x_q, y_q)
            both2 = {k: v.detach().clone().requires_grad_(True) for k, v in both.items()}
            got, error = _meta_gradients(lambda: fn(*split(both2), x_s, y_s), both2, x_q, y_q)
            if error:
                problem = error
            else:
                lr_grads = {n: got[("lr", n)] for n in params}
                if any(v is None for v in lr_grads.values()):
                    problem = ("No meta-gradient reaches the learning rates: Meta-SGD learns them by backpropagating "
                               "through the step, so do not detach them (or use .item()).")
                else:
                    problem = (_gradient_problem({n: got[("p", n)] for n in params},
                                                 {n: want[("p", n)] for n in params}, "the initial", "")
                               or _gradient_problem(lr_grads, {n: want[("lr", n)] for n in params}, "the rate", ""))
        if problem:
            problem = f"On a {label} task: {problem}"
            break
    ok = report("Meta-SGD's inner step", problem,
                "grads = torch.autograd.grad(loss, list(params.values()), create_graph=True), then "
                "{name: p - lrs[name] * g}: each element steps by its own rate (an element-wise product), "
                "and the rates stay in the graph so that they get a meta-gradient.")
    return fn if ok else metasgd_inner_step


def check_reptile_update(fn: Callable) -> Callable:
    """Check ``fn(theta, adapted, epsilon) -> new theta``; return the one to use."""
    g = torch.Generator().manual_seed(6)
    problem = None
    for tasks, epsilon in [(4, 0.25), (1, 0.5), (3, 1.0), (2, 0.1)]:
        theta = {"w": torch.randn(3, 2, generator=g), "b": torch.randn(2, generator=g)}
        adapted = [{n: v + torch.randn(v.shape, generator=g) for n, v in theta.items()} for _ in range(tasks)]
        answer, problem = _call(fn, ({k: v.clone() for k, v in theta.items()},
                                     [{k: v.clone() for k, v in phi.items()} for phi in adapted], epsilon))
        expected = reptile_update(theta, adapted, epsilon)
        problem = problem or _dict_problem(answer, expected, "The new")
        if problem and isinstance(answer, dict) and set(answer) == set(theta):
            try:
                first = answer["w"].detach()
            except AttributeError:
                first = None
            mean_w = torch.stack([phi["w"] for phi in adapted]).mean(0)
            if first is not None and first.shape == theta["w"].shape:
                if torch.allclose(first, theta["w"] - epsilon * (mean_w - theta["w"]), atol=1e-5):
                    problem = "It moves theta AWAY from the adapted weights: the sign of the step is flipped."
                elif tasks > 1 and torch.allclose(first, theta["w"] + epsilon * (
                        torch.stack([phi["w"] for phi in adapted]).sum(0) - theta["w"]), atol=1e-5):
                    problem = "It sums the adapted weights over the tasks instead of averaging them."
                elif epsilon != 1.0 and torch.allclose(first, mean_w, atol=1e-5):
                    problem = ("It jumps all the way to the mean of the adapted weights: "
                               "the step size epsilon is missing.")
        if problem:
            problem = f"With {tasks} task(s) and epsilon={epsilon}: {problem}"
            break
    ok = report("Reptile's outer update", problem,
                "for each name, average the tasks' adapted tensors (torch.stack(...).mean(0)), subtract theta, "
                "and move theta by epsilon times that difference.")
    return fn if ok else reptile_update
