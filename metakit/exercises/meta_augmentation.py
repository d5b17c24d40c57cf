"""Notebook 06's exercises: intra-task label shuffling, a support set with augmented copies, and the
augmentation's meta-gradient through the inner step. The references are the kit's own code in
metakit.meta_augmentation (the sampler's relabelling, ``AugmentedMAML.augment_support``) and the
vector-Jacobian product that notebook 06 checks against autograd and finite differences."""
from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from metakit.exercises.core import _call, check_prediction, compare, report  # noqa: F401 (check_prediction: for the notebook)
from metakit.meta_augmentation.learned import AugmentedMAML


def shuffle_labels(y_support, y_query, n_way: int, generator=None):
    """Reference: one random permutation ``perm`` of the labels 0..n_way-1 for the whole task, label
    ``l`` becoming ``perm[l]`` in the support and the query alike (intra-task shuffling)."""
    perm = torch.randperm(n_way, generator=generator)
    return perm[y_support], perm[y_query]


def augment_support(x_support, y_support, augment, copies: int):
    """Reference: the support set followed by ``copies`` augmented copies of it, each from its own
    call of ``augment`` (new random transformations), with the labels repeated to match."""
    return AugmentedMAML.augment_support(SimpleNamespace(augment=augment, copies=copies), x_support, y_support)


def augmentation_hypergradient(support_loss, theta, rho, query_grads, alpha: float):
    """Reference: the outer gradient that reaches the augmentation's parameters ``rho`` through one
    inner step, ``-alpha * (d/d rho grad_theta L^s(theta, rho)) . grad_theta' L^q``.

    Args: support_loss(theta) -> scalar, a function of the list of tensors ``theta`` that also depends
    on ``rho``; theta: list of tensors (requires_grad); rho: the augmentation's parameters (requires_grad);
    query_grads: list like theta, the query loss's gradient at the adapted parameters; alpha: the inner rate.
    """
    inner = torch.autograd.grad(support_loss(theta), theta, create_graph=True)
    return -alpha * torch.autograd.grad(sum((g * v).sum() for g, v in zip(inner, query_grads)), rho)[0]


# ---------------------------------------------------------------------------------------------------
# Exercise 1: intra-task label shuffling


def _label_cases():
    """(y_support, y_query, n_way, description): ordered and unordered labels, one shot, several
    shots, two ways, queries in another order than the support."""
    yield torch.arange(5), torch.arange(5).repeat_interleave(3), 5, "a 5-way 1-shot task"
    yield torch.arange(3).repeat_interleave(4), torch.arange(3).repeat(2), 3, "a 3-way 4-shot task"
    yield torch.tensor([1, 0]), torch.tensor([0, 1, 1, 0]), 2, "a 2-way task, labels not in order"
    yield torch.tensor([4, 2, 0, 3, 1, 5]), torch.tensor([5, 5, 0, 1, 2, 3, 4]), 6, "a 6-way task, labels not in order"


def _mapping(old, new) -> dict | None:
    """The map old label -> new label if it is one (every old label gets a single new one), else None."""
    seen: dict = {}
    for o, n in zip(old.tolist(), new.tolist()):
        if seen.setdefault(o, n) != n:
            return None
    return seen


def _shuffle_problem(fn, y_support, y_query, n_way, generator) -> tuple[str | None, dict | None]:
    answer, problem = _call(fn, (y_support.clone(), y_query.clone(), n_way, generator))
    if problem:
        return problem, None
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        return f"It should return two tensors (the new support and query labels), got {type(answer).__name__}.", None
    for got, old, what in ((answer[0], y_support, "support"), (answer[1], y_query, "query")):
        if not isinstance(got, torch.Tensor) or got.shape != old.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return (f"The new {what} labels should have the shape of the old ones, {tuple(old.shape)}; "
                    f"got {shape}.", None)
        if got.is_floating_point():
            return f"The new {what} labels are floats; labels index classes, so keep them integers (long).", None
        if got.min() < 0 or got.max() >= n_way:
            return f"Some new {what} labels are outside 0..{n_way - 1}.", None
    support, query = _mapping(y_support, answer[0]), _mapping(y_query, answer[1])
    if support is None or query is None:
        return ("Two examples of the same class got different new labels: relabel classes, not examples "
                "(a permutation of the labels, applied to every example of a class).", None)
    if len(set(support.values())) < len(support):
        return ("Two different classes got the same new label: the new labels must be a permutation "
                "of the old ones.", None)
    if support != {k: v for k, v in query.items() if k in support}:
        return ("The support and the query were relabelled differently: a query of class l must get the same new "
                "label as the support examples of class l, or no learner can tell its class from the support.", None)
    return None, support


def check_shuffle_labels(fn: Callable) -> Callable:
    """Check ``fn(y_support, y_query, n_way, generator) -> (new_y_support, new_y_query)``: one permutation
    per task, the same for support and query, a different one from task to task, every one possible."""
    problem = None
    for y_support, y_query, n_way, where in _label_cases():
        generator = torch.Generator().manual_seed(n_way)
        maps = []
        for _ in range(60 if n_way <= 3 else 200):
            problem, mapping = _shuffle_problem(fn, y_support, y_query, n_way, generator)
            if problem:
                break
            maps.append(tuple(sorted(mapping.items())))
        if problem is None:
            if len(set(maps)) == 1:
                problem = ("It relabels every task the same way. Draw a new random permutation for each task "
                           "(torch.randperm(n_way, generator=generator)), or a learner can still memorise.")
            elif n_way >= 3 and len(set(maps)) <= n_way:
                problem = (f"Only {len(set(maps))} different relabellings came out of {len(maps)} tasks, as from a "
                           f"shift of every label by a random amount; {n_way} labels have {math.factorial(n_way)} "
                           "permutations, and each should be possible (a shift can never swap two labels alone).")
            else:
                pairs = {(o, n) for m in maps for o, n in m}
                missing = [(o, n) for o in {o for o, _ in maps[0]} for n in range(n_way) if (o, n) not in pairs]
                if missing:
                    o, n = missing[0]
                    problem = (f"Some new labels never occur: in {len(maps)} tasks class {o} never got label {n}. "
                               "Every permutation should be possible.")
        if problem:
            problem = f"On {where}: {problem}"
            break
    ok = report("Label shuffling", problem,
                "perm = torch.randperm(n_way, generator=generator) draws one permutation for the task; "
                "perm[y_support] and perm[y_query] then relabel both sets with it.")
    return fn if ok else shuffle_labels


def slot_share(fn: Callable, n_way: int = 5, k_shot: int = 1, tasks: int = 1000, seed: int = 0) -> float:
    """The share of labels that ``fn`` leaves equal to the fixed slot of an NME episode (label ``l``
    holds a class of slot ``l``), over ``tasks`` tasks; it draws from its own generator."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n_way).repeat_interleave(k_shot)
    kept = sum((fn(y, y.clone(), n_way, generator)[0] == y).float().mean().item() for _ in range(tasks))
    return kept / tasks


# ---------------------------------------------------------------------------------------------------
# Exercise 2: the support set with augmented copies


class _CountingAugmentation:
    """Stands in for a random augmentation: its k-th call returns x + 10 k, so every copy is told apart."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x + 10.0 * self.calls


def _support_cases():
    g = torch.Generator().manual_seed(11)
    for n_way, k_shot, copies in [(5, 1, 2), (3, 2, 1), (2, 3, 3), (1, 1, 2)]:
        x = torch.rand(n_way * k_shot, 1, 4, 4, generator=g)
        y = torch.arange(n_way).repeat_interleave(k_shot)
        if n_way == 3:
            y = y.flip(0)
        yield x, y, copies, f"a {n_way}-way {k_shot}-shot support set with {copies} cop{'y' if copies == 1 else 'ies'}"


def check_augment_support(fn: Callable) -> Callable:
    """Check ``fn(x_support, y_support, augment, copies) -> (x, y)``."""
    problem = None
    for x, y, copies, where in _support_cases():
        counter = _CountingAugmentation()
        answer, problem = _call(fn, (x, y, counter, copies))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = f"It should return two tensors (x, y), got {type(answer).__name__}."
        if problem is None:
            x_ref, y_ref = augment_support(x, y, _CountingAugmentation(), copies)
            got = answer[0]
            problem = compare(got, x_ref, "The image tensor")
            if problem is not None and isinstance(got, torch.Tensor) and got.shape == x_ref.shape:
                n = len(x)
                blocks = [got[i * n:(i + 1) * n] for i in range(1 + copies)]
                if not torch.equal(blocks[0], x):
                    problem += " The real support images should come first, unchanged."
                elif counter.calls < copies:
                    problem += (f" augment was called {counter.calls} time(s) for {copies} copies: call it once per "
                                "copy, so that each copy gets its own random transformations.")
            if problem is None:
                problem = compare(answer[1], y_ref, "The label tensor")
                if problem is not None and isinstance(answer[1], torch.Tensor) and answer[1].shape == y_ref.shape:
                    problem = ("The images are right, but some copies carry the wrong labels: the copies are in the "
                               "order of the support, so their labels are y_support again, once per copy "
                               "(torch.cat or repeat, not repeat_interleave).")
        if problem:
            problem = f"On {where}: {problem}"
            break
    ok = report("Augmented support set", problem,
                "torch.cat([x_support] + [augment(x_support) for _ in range(copies)]) for the images and "
                "torch.cat([y_support] * (1 + copies)) for the labels.")
    return fn if ok else augment_support


# ---------------------------------------------------------------------------------------------------
# Exercise 3: the augmentation's meta-gradient through the inner step


def _hypergradient_problem(seed: int, features: int, classes: int, examples: int):
    """A linear learner on inputs scaled and shifted by ``rho``: the support loss depends on both."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(examples, features, generator=g, dtype=torch.float64)
    y = torch.arange(examples) % classes
    noise = torch.randn(examples, features, generator=g, dtype=torch.float64)
    rho = (0.3 * torch.randn(2, generator=g, dtype=torch.float64)).requires_grad_()
    theta = [(0.5 * torch.randn(classes, features, generator=g, dtype=torch.float64)).requires_grad_(),
             (0.1 * torch.randn(classes, generator=g, dtype=torch.float64)).requires_grad_()]
    query_grads = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in theta]

    def support_loss(params):
        augmented = torch.cat([x, x * (1 + torch.tanh(rho[0])) + rho[1] * noise])
        return F.cross_entropy(augmented @ params[0].T + params[1], y.repeat(2))

    return support_loss, theta, rho, query_grads


def check_augmentation_hypergradient(fn: Callable) -> Callable:
    """Check ``fn(support_loss, theta, rho, query_grads, alpha) -> tensor shaped like rho``."""
    problem = None
    for seed, (features, classes, examples), alpha, where in [
            (0, (4, 3, 6), 0.5, "a 3-class task, alpha = 0.5"),
            (1, (2, 2, 2), 0.1, "a 2-class task with one example per class, alpha = 0.1"),
            (2, (5, 4, 8), 1.0, "a 4-class task, alpha = 1")]:
        support_loss, theta, rho, query_grads = _hypergradient_problem(seed, features, classes, examples)
        expected = augmentation_hypergradient(support_loss, theta, rho, query_grads, alpha).detach()
        answer, problem = _call(fn, (support_loss, theta, rho, query_grads, alpha))
        if problem and "does not require grad" in problem:
            problem += (" The inner gradient must stay differentiable: compute it with create_graph=True, "
                        "or it has no path back to rho.")
        problem = problem or compare(answer, expected, "The gradient for rho", atol=1e-8)
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            answer = answer.detach().to(expected.dtype)
            if torch.allclose(answer, 0 * expected):
                problem += " It is zero: the first-order shortcut cuts the only path from the query loss to rho."
            elif torch.allclose(answer, expected / -alpha, rtol=1e-6, atol=1e-10):
                problem += " It is the right product without the factor -alpha of the inner step."
        if problem:
            problem = f"On {where}: {problem}"
            break
    ok = report("Augmentation meta-gradient", problem,
                "inner = torch.autograd.grad(support_loss(theta), theta, create_graph=True); then the gradient "
                "with respect to rho of sum((g * v).sum() for g, v in zip(inner, query_grads)), times -alpha.")
    return fn if ok else augmentation_hypergradient
