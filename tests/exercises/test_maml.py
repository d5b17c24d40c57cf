"""metakit.exercises.maml (notebook 02): first-order MAML's gradient and Reptile's direction (the
inner-step check itself is covered in test_core.py)."""
import pytest
import torch
import torch.nn.functional as F

from metakit.exercises import maml as ex
from metakit.exercises.core import ExerciseError
from helpers import assert_falls_back


def _ce(p, x, y):
    return F.cross_entropy(ex.linear_forward(p, x), y)


def _grad(p, x, y, create_graph=False):
    return dict(zip(p, torch.autograd.grad(_ce(p, x, y), list(p.values()), create_graph=create_graph)))


def fomaml_full_maml(params, xs, ys, xq, yq, inner_lr, steps):  # keeps the graph: MAML's meta-gradient
    p = params
    for _ in range(steps):
        g = _grad(p, xs, ys, create_graph=True)
        p = {k: p[k] - inner_lr * g[k] for k in p}
    return dict(zip(params, torch.autograd.grad(_ce(p, xq, yq), list(params.values()))))


def fomaml_not_adapted(params, xs, ys, xq, yq, inner_lr, steps):
    return _grad(params, xq, yq)


def fomaml_one_step(params, xs, ys, xq, yq, inner_lr, steps):
    return ex.fomaml_gradient(params, xs, ys, xq, yq, inner_lr, 1)


def fomaml_support_gradient(params, xs, ys, xq, yq, inner_lr, steps):  # the support loss at the end
    p = {k: v.detach() for k, v in params.items()}
    for _ in range(steps):
        g = _grad({k: v.requires_grad_(True) for k, v in p.items()}, xs, ys)
        p = {k: (p[k] - inner_lr * g[k]).detach() for k in p}
    return _grad({k: v.requires_grad_(True) for k, v in p.items()}, xs, ys)


def reptile_flipped(params, batches, inner_lr):
    return {k: -v for k, v in ex.reptile_direction(params, batches, inner_lr).items()}


def reptile_not_divided(params, batches, inner_lr):
    return {k: inner_lr * v for k, v in ex.reptile_direction(params, batches, inner_lr).items()}


def reptile_gradients_at_start(params, batches, inner_lr):
    grads = [_grad(params, x, y) for x, y in batches]
    return {k: sum(g[k] for g in grads) for k in params}


def missing(*args):  # the student stub: `pass`
    return None


def test_references_pass(capsys):
    assert ex.check_fomaml(ex.fomaml_gradient) is ex.fomaml_gradient
    assert ex.check_reptile_direction(ex.reptile_direction) is ex.reptile_direction
    assert capsys.readouterr().out.count("correct.") == 2


def test_reference_fomaml_is_the_query_gradient_after_adapting():
    case = next(ex._task_cases(0))
    params, xs, ys, xq, yq, lr, steps = case[:7]
    p = {k: v.clone() for k, v in params.items()}
    for _ in range(steps):
        g = _grad({k: v.requires_grad_(True) for k, v in p.items()}, xs, ys)
        p = {k: (p[k] - lr * g[k]).detach() for k in p}
    want = _grad({k: v.requires_grad_(True) for k, v in p.items()}, xq, yq)
    got = ex.fomaml_gradient(params, xs, ys, xq, yq, lr, steps)
    assert all(torch.allclose(got[k], want[k], atol=1e-6) for k in want)


def test_reptile_direction_is_the_sum_of_gradients_to_first_order():
    case = next(ex._task_cases(0))
    params, xs, ys, xq, yq = case[:5]
    params, xs, xq = {k: v.double() for k, v in params.items()}, xs.double(), xq.double()  # no float32 cancellation
    leaves = ex._leaves(params)
    at_start = {k: _grad(leaves, xs, ys)[k] + _grad(leaves, xq, yq)[k] for k in params}
    for lr, bound in [(1e-3, 1e-2), (1e-5, 1e-4)]:  # the remainder shrinks like inner_lr
        d = ex.reptile_direction(params, [(xs, ys), (xq, yq)], lr)
        assert max((d[k] - at_start[k]).abs().max().item() for k in params) < bound


@pytest.mark.parametrize("wrong, words", [
    (fomaml_full_maml, "full meta-gradient"), (fomaml_not_adapted, "INITIAL parameters"),
    (fomaml_one_step, "took one inner step"), (fomaml_support_gradient, "off by"), (missing, "returned None")])
def test_fomaml_catches(wrong, words, capsys):
    assert_falls_back(ex.check_fomaml, wrong, ex.fomaml_gradient, capsys, words)


@pytest.mark.parametrize("wrong, words", [
    (reptile_flipped, "wrong sign"), (reptile_not_divided, "inner_lr times too small"),
    (reptile_gradients_at_start, "gradients of every batch at theta_0"), (missing, "returned None")])
def test_reptile_catches(wrong, words, capsys):
    assert ex.check_reptile_direction(wrong) is ex.reptile_direction
    out = capsys.readouterr().out
    assert "not yet" in out and words in out and "Hint:" in out


@pytest.mark.parametrize("check, wrong", [(ex.check_fomaml, fomaml_full_maml), (ex.check_fomaml, missing),
                                          (ex.check_reptile_direction, reptile_gradients_at_start)])
def test_grading_raises(monkeypatch, check, wrong):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="not yet"):
        check(wrong)
