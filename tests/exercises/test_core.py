"""metakit.exercises: each check passes the reference, catches realistic wrong answers in words,
never shows a traceback to a learner, and raises under nbgrader's autograde."""
import pytest
import torch
import torch.nn.functional as F

from metakit import exercises as ex
from helpers import assert_falls_back


def transposed_distance(x_support, y_support, x_query, n_way):
    return ex.nearest_mean_logits(x_support, y_support, x_query, n_way).T


def plus_distance(x_support, y_support, x_query, n_way):
    return -ex.nearest_mean_logits(x_support, y_support, x_query, n_way)


def unsquared(x_support, y_support, x_query, n_way):
    means = torch.stack([x_support[y_support == c].mean(0) for c in range(n_way)])
    return -torch.cdist(x_query, means)


def first_example_not_mean(x_support, y_support, x_query, n_way):
    means = torch.stack([x_support[y_support == c][0] for c in range(n_way)])
    return -torch.cdist(x_query, means).pow(2)


def stub(*args):
    raise NotImplementedError()


def crashes(*args):
    return torch.zeros(2, 3) @ torch.zeros(4, 5)


def no_create_graph(params, x, y, inner_lr):
    loss = F.cross_entropy(ex.linear_forward(params, x), y)
    grads = torch.autograd.grad(loss, list(params.values()))
    return {k: p - inner_lr * g for (k, p), g in zip(params.items(), grads)}


def detached(params, x, y, inner_lr):
    return {k: v.detach() for k, v in ex.inner_step(params, x, y, inner_lr).items()}


def ascent(params, x, y, inner_lr):
    loss = F.cross_entropy(ex.linear_forward(params, x), y)
    grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
    return {k: p + inner_lr * g for (k, p), g in zip(params.items(), grads)}


def test_references_pass(capsys):
    assert ex.check_nearest_mean(ex.nearest_mean_logits) is ex.nearest_mean_logits
    assert ex.check_inner_step(ex.inner_step) is ex.inner_step
    assert capsys.readouterr().out.count("correct.") == 2


@pytest.mark.parametrize("wrong, words", [
    (transposed_distance, "transpose"), (plus_distance, "wrong sign"), (unsquared, "off by"),
    (first_example_not_mean, "off by"), (stub, "not written yet"), (crashes, "raised RuntimeError")])
def test_nearest_mean_catches(wrong, words, capsys):
    assert_falls_back(ex.check_nearest_mean, wrong, ex.nearest_mean_logits, capsys, words)


@pytest.mark.parametrize("wrong, words", [
    (no_create_graph, "second-order term is missing"), (detached, "does not flow"),
    (ascent, "off by"), (stub, "not written yet")])
def test_inner_step_catches(wrong, words, capsys):
    assert ex.check_inner_step(wrong) is ex.inner_step
    out = capsys.readouterr().out
    assert "not yet" in out and words in out and "create_graph=True" in out


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_grading_raises(monkeypatch, mode):
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    with pytest.raises(ex.ExerciseError, match="wrong sign"):
        ex.check_nearest_mean(plus_distance)
    with pytest.raises(ex.ExerciseError, match="second-order"):
        ex.check_inner_step(no_create_graph)
    assert ex.check_nearest_mean(ex.nearest_mean_logits) is ex.nearest_mean_logits


def test_prediction(capsys, monkeypatch):
    assert ex.check_prediction("Q", 3, 3)
    assert not ex.check_prediction("Q", 2, 3, hint="count again")
    assert not ex.check_prediction("Q", ..., 3)
    assert not ex.check_prediction("Q", "many", 3)
    assert ex.check_prediction("Q", "Higher ", "higher")
    assert ex.check_prediction("Q", 0.52, 0.5, tolerance=0.05)
    out = capsys.readouterr().out
    assert "count again" in out and "No prediction" in out and "Expected a number" in out
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ex.ExerciseError):
        ex.check_prediction("Q", ..., 3)
