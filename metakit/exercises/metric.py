"""Notebook 04's exercises: the prototypical loss, matching-network attention, and the prototypes
read as a linear layer. The references are the kit's own classes, run on embeddings (an identity
backbone), so an exercise and the model it teaches cannot drift apart."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from metakit.exercises.core import _call, check_prediction, compare, report  # noqa: F401 (check_prediction: for the notebook)
from metakit.metric.matching import MatchingNetwork
from metakit.metric.protonet import PrototypicalNetwork


def prototypical_loss(z_support, y_support, z_query, y_query) -> torch.Tensor:
    """Reference: the query cross-entropy of a prototypical network, on embeddings.

    Args: z_support (N*K, D), y_support (N*K,) in 0..N-1, z_query (Q, D), y_query (Q,).
    Returns: a scalar tensor, differentiable with respect to both embeddings.
    """
    proto = PrototypicalNetwork(nn.Identity())
    proto.fit_support(z_support, y_support)
    return F.cross_entropy(proto(z_query), y_query)


def matching_probabilities(z_support, y_support, z_query, scale: float) -> torch.Tensor:
    """Reference: a matching network's class probabilities, attention summed per class.

    Args: z_support (N*K, D), y_support (N*K,) in 0..N-1, z_query (Q, D), scale: the temperature.
    Returns: (Q, N) probabilities; each row sums to 1.
    """
    matching = MatchingNetwork(nn.Identity(), scale=float(scale))
    matching.fit_support(z_support, y_support)
    return matching(z_query).exp()  # forward returns log-probabilities


def prototype_linear_layer(prototypes) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the linear layer equal to a prototypical network up to a per-query constant.

    Args: prototypes (N, D). Returns: (weight (N, D), bias (N,)), so that ``z @ weight.T + bias``
    equals ``-|z - c_k|^2 + |z|^2``.
    """
    return 2 * prototypes, -prototypes.pow(2).sum(1)


def _cases(seed: int):
    """Random episodes in embedding space, edge cases included: one shot, one class, one feature,
    labels not grouped by class."""
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, n_query, dim in [(5, 3, 4, 8), (5, 1, 3, 6), (1, 2, 3, 4), (3, 4, 2, 1), (4, 2, 3, 5)]:
        y_s = torch.arange(n_way).repeat_interleave(k_shot)
        if n_way == 4:
            y_s = y_s[torch.randperm(len(y_s), generator=g)]  # shuffled support: grouping by reshape fails
        y_q = torch.arange(n_way).repeat_interleave(n_query)
        yield (torch.randn(n_way * k_shot, dim, generator=g), y_s,
               torch.randn(n_way * n_query, dim, generator=g), y_q, f"a {n_way}-way {k_shot}-shot episode "
               f"with {dim} feature(s){' and shuffled support labels' if n_way == 4 else ''}")


def _leaves(*tensors):
    return [t.clone().requires_grad_(True) for t in tensors]


def check_prototypical_loss(fn: Callable) -> Callable:
    """Check ``fn(z_support, y_support, z_query, y_query) -> scalar loss`` (value and gradients)."""
    problem = None
    for z_s, y_s, z_q, y_q, where in _cases(seed=4):
        ls, lq = _leaves(z_s, z_q)
        answer, problem = _call(fn, (ls, y_s, lq, y_q))
        rs, rq = _leaves(z_s, z_q)
        expected = prototypical_loss(rs, y_s, rq, y_q)
        if problem is None and isinstance(answer, torch.Tensor) and answer.numel() == 1 and answer.dim() > 0:
            answer = answer.reshape(())
        problem = problem or compare(answer, expected.detach(), "The loss")
        if problem is None:
            if not answer.requires_grad:
                problem = ("The loss does not depend on the embeddings any more "
                           "(was it computed under torch.no_grad, or detached?).")
            else:
                got_s, got_q = torch.autograd.grad(answer, [ls, lq], allow_unused=True)
                ref_s, ref_q = torch.autograd.grad(expected, [rs, rq])
                if got_s is None or (got_s.abs().max() == 0 and ref_s.abs().max() > 0):
                    problem = ("The loss has the right value, but no gradient reaches the support embeddings: "
                               "the prototypes must stay in the graph (no .detach(), no torch.no_grad()).")
                else:
                    problem = (compare(got_s, ref_s, "The gradient with respect to the support embeddings")
                               or compare(got_q, ref_q, "The gradient with respect to the query embeddings"))
        if problem:
            problem = f"On {where}: {problem}"
            break
    ok = report("Prototypical loss", problem,
                "one prototype per class, the mean of its support embeddings (select them with y_support == k, "
                "labels need not be grouped); logits = MINUS the squared Euclidean distance from each query to "
                "each prototype, shape (n_query, n_way); then F.cross_entropy(logits, y_query).")
    return fn if ok else prototypical_loss


def check_matching_probabilities(fn: Callable) -> Callable:
    """Check ``fn(z_support, y_support, z_query, scale) -> (Q, N) probabilities``."""
    problem = None
    for (z_s, y_s, z_q, _, where), scale in zip(_cases(seed=5), (10.0, 5.0, 10.0, 3.0, 7.5)):
        answer, problem = _call(fn, (z_s, y_s, z_q, scale))
        expected = matching_probabilities(z_s, y_s, z_q, scale).detach()
        problem = problem or compare(answer, expected, "The probability matrix")
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            rows = answer.detach().sum(1)
            if not torch.allclose(rows, torch.ones_like(rows), atol=1e-4):
                problem += (f" Its rows sum to {rows.min().item():.3g}..{rows.max().item():.3g} instead of 1: "
                            "is the softmax over the support examples (dim=1 of the (Q, N*K) scores)?")
        if problem:
            problem = f"On {where} (scale {scale}): {problem}"
            break
    ok = report("Matching-network attention", problem,
                "cosine similarities between every query and every support example (normalise both, shape "
                "(n_query, n_support)), times scale; softmax over the support examples; then sum the attention "
                "of each class's examples: attention @ F.one_hot(y_support, n_way).float().")
    return fn if ok else matching_probabilities


def check_prototype_linear_layer(fn: Callable) -> Callable:
    """Check ``fn(prototypes) -> (weight (N, D), bias (N,))``."""
    problem = None
    for z_s, y_s, _, _, where in _cases(seed=6):
        protos = torch.stack([z_s[y_s == k].mean(0) for k in range(int(y_s.max()) + 1)])
        answer, problem = _call(fn, (protos,))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = f"It should return two tensors (weight, bias), got {type(answer).__name__}."
        if problem is None:
            weight, bias = prototype_linear_layer(protos)
            problem = compare(answer[0], weight, "The weight") or compare(answer[1], bias, "The bias")
            if problem and isinstance(answer[0], torch.Tensor) and answer[0].shape == protos.shape \
                    and torch.allclose(answer[0].detach(), protos):
                problem += " It equals the prototypes: expand |z - c|^2 and look at the factor in front of c^T z."
        if problem:
            problem = f"For the prototypes of {where}: {problem}"
            break
    ok = report("Prototypes as a linear layer", problem,
                "-|z - c_k|^2 = 2 c_k^T z - |c_k|^2 - |z|^2, and the last term is the same for every class; "
                "so weight = 2 * prototypes (n_way, D) and bias = -(prototypes ** 2).sum(1) (n_way,).")
    return fn if ok else prototype_linear_layer
