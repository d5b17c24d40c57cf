"""Notebook 09's exercises: a column's rule signature, the nearest type by signature, and the
pooling that turns a column's value embeddings into one column embedding."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from metakit.exercises.core import _call, check_prediction, compare, report  # noqa: F401 (check_prediction: for the notebook)
from metakit.metadata.columns import generate_column
from metakit.metadata.encoder import encode_columns
from metakit.metadata.rules import RULES, rule_signature


def _signature_cases():
    for t, seed in [("email", 1), ("percentage", 2), ("time_zone", 3), ("date_iso", 4), ("iban", 5)]:
        yield generate_column(t, seed)
    yield ["42%"]  # a column of one value
    # a messy column: some values pass a rule, others do not
    yield generate_column("email", 6)[:4] + ["42%", "Paris", "2024-01-31", "not an email"]


def check_rule_signature(fn: Callable) -> Callable:
    """Check ``fn(column) -> (len(RULES),) signature``; return the function the notebook should use."""
    problem = None
    for column in _signature_cases():
        answer, problem = _call(fn, (list(column),))
        expected = rule_signature(column)
        problem = problem or compare(answer, expected, "The signature")
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            answer = answer.detach().float()
            if torch.allclose(answer, expected * len(column), atol=1e-4) and len(column) > 1:
                problem = (f"It counts the values each rule accepts ({len(column)} times too large): "
                           "divide by the number of values, so that a signature is a fraction.")
            elif torch.equal(answer, (expected > 0).float()):
                problem = "It says whether ANY value is accepted (0 or 1); the signature is the FRACTION of values."
        if problem:
            problem = f"On a column of {len(column)} value(s) starting {column[0]!r}: {problem}"
            break
    ok = report("Rule signature", problem,
                f"value_rules(v) is a list of {len(RULES)} booleans, one per rule; average them over the column's "
                "values: torch.tensor([value_rules(v) for v in column], dtype=torch.float32).mean(0).")
    return fn if ok else rule_signature


def signature_logits(s_support: torch.Tensor, y_support: torch.Tensor, s_query: torch.Tensor,
                     n_way: int) -> torch.Tensor:
    """Reference: minus the L1 distance of each query signature to each type's mean support signature
    (:class:`metakit.metadata.rules.RuleSignatureClassifier`'s rule, without its tie-breaking noise).

    Args: s_support (N*K, R), y_support (N*K,) in 0..n_way-1, s_query (Q, R).
    Returns: (Q, n_way) logits.
    """
    means = torch.stack([s_support[y_support == k].mean(0) for k in range(n_way)])  # (N, R)
    return -(s_query[:, None, :] - means[None]).abs().sum(-1)


def _logit_cases(seed: int = 9):
    gen = torch.Generator().manual_seed(seed)
    for n_way, k_shot, n_query in [(5, 3, 6), (5, 1, 4), (1, 2, 3), (3, 4, 1)]:
        y = torch.arange(n_way).repeat_interleave(k_shot)
        rules = len(RULES)
        yield (torch.rand(n_way * k_shot, rules, generator=gen), y, torch.rand(n_query, rules, generator=gen), n_way)


def check_signature_logits(fn: Callable) -> Callable:
    """Check ``fn(s_support, y_support, s_query, n_way) -> (Q, n_way) logits``."""
    problem = None
    for s_s, y, s_q, n_way in _logit_cases():
        answer, problem = _call(fn, (s_s.clone(), y.clone(), s_q.clone(), n_way))
        expected = signature_logits(s_s, y, s_q, n_way)
        problem = problem or compare(answer, expected, "The logits tensor")
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            means = torch.stack([s_s[y == k].mean(0) for k in range(n_way)])
            if torch.allclose(answer.detach().float(), -torch.cdist(s_q, means).pow(2), atol=1e-4) or \
                    torch.allclose(answer.detach().float(), -torch.cdist(s_q, means), atol=1e-4):
                problem = "It uses the Euclidean distance; the rule baseline uses the L1 distance, sum |s(q) - s_k|."
        if problem:
            problem = f"On a {n_way}-way {len(y) // n_way}-shot episode with {len(s_q)} query column(s): {problem}"
            break
    ok = report("Nearest signature", problem,
                "average the support signatures of each type, shape (n_way, R); the logits are MINUS the sum over "
                "rules of |s(q) - mean_k|, shape (n_query, n_way).")
    return fn if ok else signature_logits


def pool_column(e: torch.Tensor, A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reference: a column's embedding from its values', ``A [mean_v e(v); max_v e(v)] + b`` (the last
    step of :class:`metakit.metadata.encoder.ColumnEncoder`).

    Args: e (V, D) value embeddings, A (D_out, 2 D), b (D_out,). Returns: (D_out,).
    """
    return A @ torch.cat([e.mean(0), e.amax(0)]) + b


def value_embeddings(encoder: nn.Module, column: list[str]) -> torch.Tensor:
    """(V, D) the embedding ``e(v)`` of each value of ``column`` under a ColumnEncoder.

    A one-value column pools to [e(v); e(v)], so the encoder without its last linear map gives e(v).
    """
    out, encoder.out = encoder.out, nn.Identity()
    try:
        device = next(encoder.parameters()).device
        h = encoder(encode_columns([[v] for v in column]).to(device))  # (V, 2 D)
    finally:
        encoder.out = out
    return h[:, : h.shape[1] // 2]


def _pool_cases(seed: int = 2):
    gen = torch.Generator().manual_seed(seed)
    for values, dim, out in [(7, 4, 3), (1, 5, 2), (12, 1, 4), (3, 6, 6)]:
        yield (torch.relu(torch.randn(values, dim, generator=gen)), torch.randn(out, 2 * dim, generator=gen),
               torch.randn(out, generator=gen))


def check_pool_column(fn: Callable) -> Callable:
    """Check ``fn(e, A, b) -> (D_out,) column embedding``; also that it ignores the values' order."""
    problem = None
    for e, A, b in _pool_cases():
        answer, problem = _call(fn, (e.clone(), A.clone(), b.clone()))
        expected = pool_column(e, A, b)
        problem = problem or compare(answer, expected, "The column embedding")
        if problem and isinstance(answer, torch.Tensor) and answer.shape == expected.shape and len(e) > 1:
            D = e.shape[1]
            swapped = A[:, D:] @ e.mean(0) + A[:, :D] @ e.amax(0) + b
            if torch.allclose(answer.detach().float(), swapped, atol=1e-4):
                problem = "The mean and the max are in the wrong order: concatenate [mean, max], the order A expects."
            elif torch.allclose(answer.detach().float(), A @ torch.cat([e.mean(0), e[-1]]) + b, atol=1e-4) or \
                    torch.allclose(answer.detach().float(), A @ torch.cat([e.mean(0), e[0]]) + b, atol=1e-4):
                problem = "The second half is one value's embedding, not the maximum over the values (amax over dim 0)."
        if problem is None and len(e) > 1:
            flipped, error = _call(fn, (e.flip(0), A.clone(), b.clone()))
            if error or compare(flipped, expected, "x") is not None:
                problem = "Reversing the order of the values changes the result: a column has no order."
        if problem:
            problem = f"With {len(e)} value(s) of {e.shape[1]} feature(s): {problem}"
            break
    ok = report("Column pooling", problem,
                "pool over the values (dim 0): torch.cat([e.mean(0), e.amax(0)]), shape (2 D,); then A @ that + b.")
    return fn if ok else pool_column
