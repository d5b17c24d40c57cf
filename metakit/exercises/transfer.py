"""Notebook 08's exercises: Baseline++'s cosine head, the gradient of a new linear head on frozen
features, and the prototypical network written as a linear head."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from metakit.exercises.core import _call, check_prediction, compare, report  # noqa: F401 (check_prediction: for the notebook)
from metakit.metric.protonet import PrototypicalNetwork
from metakit.transfer.finetune import SCALE, CosineClassifier


def cosine_logits(z: torch.Tensor, weight: torch.Tensor, scale: float = SCALE) -> torch.Tensor:
    """Reference: Baseline++'s logits, through :class:`metakit.transfer.finetune.CosineClassifier`.

    Args: z (B, D) features, weight (C, D) one vector per class, scale the temperature s.
    Returns: (B, C) logits ``s * cos(z_i, w_c)``.
    """
    # its own generator: the check leaves the global random state (and the notebook's numbers) alone
    head = CosineClassifier(weight.shape[1], weight.shape[0], scale=scale, generator=torch.Generator())
    with torch.no_grad():
        head.weight.copy_(weight)
        return head(z)


def _cosine_cases(seed: int = 3):
    gen = torch.Generator().manual_seed(seed)
    for batch, dim, n_classes in [(6, 8, 5), (1, 4, 3), (4, 1, 2), (3, 6, 1)]:
        # rows of different lengths, not unit rows
        weight = torch.randn(n_classes, dim, generator=gen) * torch.rand(n_classes, 1, generator=gen) * 5
        yield torch.randn(batch, dim, generator=gen) * 3, weight, SCALE


def check_cosine_logits(fn: Callable) -> Callable:
    """Check ``fn(z, weight, scale) -> (B, C) logits``; return the function the notebook should use."""
    problem = None
    for z, weight, scale in _cosine_cases():
        answer, problem = _call(fn, (z.clone(), weight.clone(), scale))
        expected = cosine_logits(z, weight, scale)
        problem = problem or compare(answer, expected, "The logits tensor")
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            answer = answer.detach().float()
            if torch.allclose(answer * scale, expected, atol=1e-4):
                problem = "The logits are the cosines without the temperature: multiply by scale."
            elif torch.allclose(answer, scale * F.normalize(z, dim=-1) @ weight.T, atol=1e-4):
                problem = "The class vectors are not normalised: the norm of w_c still changes the logits."
            elif torch.allclose(answer, scale * z @ F.normalize(weight, dim=-1).T, atol=1e-4):
                problem = "The features z are not normalised: the norm of z still changes the logits."
        if problem:
            problem = f"With {len(z)} feature vector(s) of size {z.shape[1]} and {len(weight)} class(es): {problem}"
            break
    ok = report("Cosine head", problem,
                "normalise each row of z and each row of weight to length 1 (F.normalize(..., dim=-1)), "
                "take their dot products, shape (B, C), and multiply by scale.")
    return fn if ok else cosine_logits


def head_gradient(Z: torch.Tensor, W: torch.Tensor, b: torch.Tensor, y_support: torch.Tensor):
    """Reference: the gradient of the support cross-entropy of a linear head, by autograd.

    Args: Z (n, D) frozen features, W (N, D), b (N,), y_support (n,) in 0..N-1.
    Returns: (grad_W (N, D), grad_b (N,)).
    """
    W, b = W.detach().requires_grad_(True), b.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(Z @ W.T + b, y_support)
        return tuple(g.detach() for g in torch.autograd.grad(loss, (W, b)))


def _gradient_cases(seed: int = 4):
    gen = torch.Generator().manual_seed(seed)
    for n_way, k_shot, dim in [(5, 2, 6), (5, 1, 3), (1, 3, 4), (3, 4, 1)]:
        y = torch.arange(n_way).repeat_interleave(k_shot)
        yield (torch.randn(n_way * k_shot, dim, generator=gen), torch.randn(n_way, dim, generator=gen),
               torch.randn(n_way, generator=gen), y)


def check_head_gradient(fn: Callable) -> Callable:
    """Check ``fn(Z, W, b, y_support) -> (grad_W, grad_b)``, the closed form, against autograd."""
    problem = None
    for Z, W, b, y in _gradient_cases():
        answer, problem = _call(fn, (Z.clone(), W.clone(), b.clone(), y.clone()))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = f"It should return the pair (grad_W, grad_b), got {type(answer).__name__}."
        if problem is None:
            expected = head_gradient(Z, W, b, y)
            problem = compare(answer[0], expected[0], "grad_W") or compare(answer[1], expected[1], "grad_b")
            shapes_right = all(isinstance(a, torch.Tensor) and a.shape == e.shape for a, e in zip(answer, expected))
            if problem and shapes_right:
                if all(torch.allclose(a.detach().float(), len(Z) * e, atol=1e-4) for a, e in zip(answer, expected)):
                    problem = (f"It is {len(Z)} times too large: the loss is a mean over the n support examples, "
                               "divide by n.")
        if problem:
            problem = f"On a {len(W)}-way {len(y) // len(W)}-shot support set with {Z.shape[1]} feature(s): {problem}"
            break
    ok = report("Head gradient", problem,
                "P = softmax(Z @ W.T + b, dim=1) - F.one_hot(y_support, N), shape (n, N); grad_W = P.T @ Z / n, "
                "grad_b = P.mean(0).")
    return fn if ok else head_gradient


def prototype_head(Z: torch.Tensor, y_support: torch.Tensor, n_way: int):
    """Reference: the linear head ``(W, b) = (2 c, -|c|^2)`` of :class:`PrototypicalNetwork`'s class means ``c``.

    Args: Z (n, D) support features, y_support (n,) in 0..n_way-1. Returns: (W (n_way, D), b (n_way,)).
    """
    proto = PrototypicalNetwork(nn.Identity())
    with torch.no_grad():
        proto.fit_support(Z, y_support)
    c = proto.prototypes.detach()
    return 2 * c, -c.pow(2).sum(1)


def check_prototype_head(fn: Callable) -> Callable:
    """Check ``fn(Z, y_support, n_way) -> (W, b)``; return the function the notebook should use."""
    problem = None
    for Z, _, _, y in _gradient_cases(seed=6):
        n_way = int(y.max()) + 1
        answer, problem = _call(fn, (Z.clone(), y.clone(), n_way))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = f"It should return the pair (W, b), got {type(answer).__name__}."
        if problem is None:
            W, b = prototype_head(Z, y, n_way)
            problem = compare(answer[0], W, "W") or compare(answer[1], b, "b")
            if problem and isinstance(answer[0], torch.Tensor) and answer[0].shape == W.shape:
                if torch.allclose(answer[0].detach().float(), W / 2, atol=1e-4):
                    problem = "W is half what it should be: -|z - c|^2 = 2 z.c - |c|^2 - |z|^2, so w_k = 2 c_k."
        if problem:
            problem = f"On a {n_way}-way {len(y) // n_way}-shot support set with {Z.shape[1]} feature(s): {problem}"
            break
    ok = report("Prototypes as a linear head", problem,
                "c = the mean of Z over each class, shape (n_way, D); W = 2 c and b = -(c ** 2).sum(1). "
                "Expand -|z - c|^2 and drop |z|^2, the same for every class.")
    return fn if ok else prototype_head
