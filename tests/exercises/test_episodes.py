"""metakit.exercises.episodes (notebook 01): the support/query split and the nearest-mean rule as a
linear layer (the nearest-mean check itself is covered in test_core.py)."""
import pytest
import torch

from metakit.episodes import split_support_query
from metakit.exercises import episodes as ex
from metakit.exercises.core import ExerciseError
from helpers import assert_falls_back


def split_sorts_x_only(x, y, k_shot):  # x reordered, y not: images and labels no longer match
    xs, ys, xq, yq = split_support_query(x, y, k_shot)
    return xs, y[: len(ys)], xq, y[len(ys):]


def split_first_rows(x, y, k_shot):  # the first n_way*k_shot rows, whatever their class
    n_way = int(y.max()) + 1
    return x[: n_way * k_shot], y[: n_way * k_shot], x[n_way * k_shot:], y[n_way * k_shot:]


def split_query_keeps_support(x, y, k_shot):  # off by k_shot: the queries include the support examples
    xs, ys, _, _ = split_support_query(x, y, k_shot)
    order = torch.argsort(y, stable=True)
    return xs, ys, x[order], y[order]


def split_unsorted(x, y, k_shot):  # the right examples, in the task's order instead of by label
    first = torch.zeros_like(y, dtype=torch.bool)
    for c in torch.unique(y):
        first[torch.nonzero(y == c).flatten()[:k_shot]] = True
    return x[first], y[first], x[~first], y[~first]


def linear_no_two(means):
    return means, -(means ** 2).sum(1)


def linear_plus_bias(means):
    return 2 * means, (means ** 2).sum(1)


def linear_transposed(means):
    return 2 * means.T, -(means ** 2).sum(1)


def linear_norm_not_squared(means):
    return 2 * means, -means.norm(dim=1)


def missing(*args):  # the student stub: `pass`
    return None


def test_references_pass(capsys):
    assert ex.check_split(split_support_query) is split_support_query
    assert ex.check_linear(ex.nearest_mean_as_linear) is ex.nearest_mean_as_linear
    assert capsys.readouterr().out.count("correct.") == 2


def test_linear_form_has_the_nearest_mean_argmax():
    g = torch.Generator().manual_seed(0)
    x_s, x_q = torch.randn(15, 6, generator=g), torch.randn(9, 6, generator=g)
    y_s = torch.arange(5).repeat_interleave(3)
    means = torch.stack([x_s[y_s == c].mean(0) for c in range(5)])
    weight, bias = ex.nearest_mean_as_linear(means)
    logits = ex.nearest_mean_logits(x_s, y_s, x_q, 5)
    assert torch.allclose(x_q @ weight.T + bias, logits + (x_q ** 2).sum(1, keepdim=True), atol=1e-4)


@pytest.mark.parametrize("wrong, words", [
    (split_sorts_x_only, "correspondence is broken"), (split_first_rows, "example(s) of every class"),
    (split_query_keeps_support, "x_query has shape"), (split_unsorted, "ordered by label"),
    (missing, "returned None")])
def test_split_catches(wrong, words, capsys):
    assert_falls_back(ex.check_split, wrong, split_support_query, capsys, words)


def test_split_catches_overlap(capsys):
    def overlap(x, y, k_shot):  # right shapes, but the first query of each class is a support example
        xs, ys, xq, yq = split_support_query(x, y, k_shot)
        xq = xq.clone()
        xq[0] = xs[0]
        return xs, ys, xq, yq
    ex.check_split(overlap)
    assert "both the support and the query" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (linear_no_two, "factor 2"), (linear_plus_bias, "wrong sign"), (linear_transposed, "transpose"),
    (linear_norm_not_squared, "off by"), (missing, "returned None")])
def test_linear_catches(wrong, words, capsys):
    assert ex.check_linear(wrong) is ex.nearest_mean_as_linear
    out = capsys.readouterr().out
    assert "not yet" in out and words in out and "Hint:" in out


@pytest.mark.parametrize("check, wrong", [(ex.check_split, split_first_rows), (ex.check_split, missing),
                                          (ex.check_linear, linear_no_two)])
def test_grading_raises(monkeypatch, check, wrong):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="not yet"):
        check(wrong)
