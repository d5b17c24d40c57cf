"""Notebook 01's exercises: splitting a task into support and query, the nearest-mean classifier, and
the same rule as a linear layer."""
from __future__ import annotations

from collections.abc import Callable

import torch

from metakit.episodes import split_support_query
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




def _split_cases(seed: int = 2):
    """Tasks as a sampler draws them: every class's examples, in a shuffled order, labels 0..n_way-1."""
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, n_query, shape in [(5, 1, 3, (1, 2, 2)), (3, 2, 2, (4,)), (1, 3, 1, (2,)), (4, 1, 1, (3,))]:
        y = torch.arange(n_way).repeat_interleave(k_shot + n_query)
        order = torch.randperm(len(y), generator=g)
        yield torch.randn(len(y), *shape, generator=g), y[order], k_shot


def _which_rows(found: torch.Tensor, x: torch.Tensor) -> list[int]:
    """For each row of ``found``, the index of the equal row of ``x`` (-1 when none)."""
    flat, rows = found.detach().reshape(len(found), -1).to(x.dtype), x.reshape(len(x), -1)
    return [int(m.nonzero()[0]) if m.any() else -1 for m in (flat[:, None] == rows[None]).all(-1)]


def _split_problem(answer, x, y, k_shot) -> str | None:
    expected = split_support_query(x, y, k_shot)
    names = ("x_support", "y_support", "x_query", "y_query")
    if answer is None:
        return "It returned None instead of the four tensors (is the `return` missing?)."
    if not isinstance(answer, (tuple, list)) or len(answer) != 4:
        return "It should return four tensors: x_support, y_support, x_query, y_query."
    for name, got, want in zip(names, answer, expected):
        if isinstance(got, torch.Tensor) and got.shape != want.shape:
            return compare(got, want.to(got.dtype), f"{name}")
    if all(isinstance(t, torch.Tensor) for t in answer):
        rows_s, rows_q = _which_rows(answer[0], x), _which_rows(answer[2], x)
        if -1 in rows_s + rows_q:
            return "Some returned images are not images of the task (were they changed or mixed?)."
        if set(rows_s) & set(rows_q):
            return "An image is in both the support and the query set: the query set must hold the other examples."
        for name, rows, labels in (("support", rows_s, answer[1]), ("query", rows_q, answer[3])):
            wrong = [i for i, r in enumerate(rows) if int(labels[i]) != int(y[r])]
            if wrong:
                i = wrong[0]
                return (f"The {name} set's correspondence is broken: its image {i} is an example of class "
                        f"{int(y[rows[i]])} but carries the label {int(labels[i])} "
                        "(images and labels must move together).")
        n_way = int(y.max()) + 1
        counts = torch.bincount(torch.as_tensor(answer[1]).long().flatten(), minlength=n_way).tolist()
        if counts != [k_shot] * n_way:
            return (f"The support set should hold k_shot = {k_shot} example(s) of every class; it holds "
                    f"{counts} of classes 0..{n_way - 1}.")
    for name, got, want in zip(names, answer, expected):
        problem = compare(got, want.to(got.dtype) if isinstance(got, torch.Tensor) else want, name)
        if problem:
            return problem + " (Both sets are ordered by label, and the support set holds the FIRST k_shot " \
                             "examples of each class in the task's order.)"
    return None


def check_split(fn: Callable) -> Callable:
    """Check ``fn(x, y, k_shot) -> (x_support, y_support, x_query, y_query)``; return the one to use."""
    problem = None
    for x, y, k_shot in _split_cases():
        answer, problem = _call(fn, (x.clone(), y.clone(), k_shot))
        problem = problem or _split_problem(answer, x, y, k_shot)
        if problem:
            n_way = int(y.max()) + 1
            queries = len(y) // n_way - k_shot
            problem = f"On a {n_way}-way {k_shot}-shot task with {queries} queries per class: {problem}"
            break
    ok = report("Support and query split", problem,
                "sort the examples by label (torch.argsort(y, stable=True)); for each class keep its first "
                "k_shot examples as the support set and the others as the query set, indexing x and y "
                "with the same positions.")
    return fn if ok else split_support_query


def nearest_mean_as_linear(means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the nearest-mean rule as a linear layer.

    Args: means (n_way, D), one mean per class.
    Returns: weight (n_way, D) = 2 mu_c and bias (n_way,) = -||mu_c||^2, so that
        x @ weight.T + bias = -||x - mu_c||^2 + ||x||^2: the same argmax as the nearest-mean logits.
    """
    return 2 * means, -(means ** 2).sum(1)


def check_linear(fn: Callable) -> Callable:
    """Check ``fn(means) -> (weight, bias)``; return the one to use."""
    g = torch.Generator().manual_seed(4)
    problem = None
    for n_way, dim in [(5, 4), (1, 3), (3, 1), (20, 7)]:
        means = torch.randn(n_way, dim, generator=g)
        answer, problem = _call(fn, (means.clone(),))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = ("It returned None instead of (weight, bias) (is the `return` missing?)." if answer is None
                       else "It should return two tensors: (weight, bias).")
        if problem is None:
            weight, bias = nearest_mean_as_linear(means)
            got_w, got_b = answer
            if isinstance(got_w, torch.Tensor) and got_w.shape == weight.shape and torch.allclose(got_w, means):
                problem = ("The weight is half of what it should be: expanding the square gives "
                           "2 mu_c^T x, so the factor 2 is missing.")
            problem = problem or compare(got_w, weight, "The weight") or compare(got_b, bias, "The bias")
        if problem:
            problem = f"With {n_way} class mean(s) of {dim} feature(s): {problem}"
            break
    ok = report("Nearest mean as a linear layer", problem,
                "expand -||x - mu_c||^2 = -||x||^2 + 2 mu_c^T x - ||mu_c||^2 and drop -||x||^2, which is the "
                "same for every class: weight = 2 * means (shape (n_way, D)), bias = -(means ** 2).sum(1).")
    return fn if ok else nearest_mean_as_linear
