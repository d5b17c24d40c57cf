"""metakit.exercises.family (notebook 03): ANIL's step, Meta-SGD's step, Reptile's update."""
import pytest
import torch
import torch.nn.functional as F

from metakit.exercises import family as ex
from metakit.exercises.core import ExerciseError
from helpers import assert_falls_back


def _support_grads(params, x, y, names, create_graph=True):
    loss = F.cross_entropy(ex.two_layer_forward(params, x), y)
    return dict(zip(names, torch.autograd.grad(loss, [params[n] for n in names], create_graph=create_graph)))


def anil_adapts_everything(params, x, y, inner_lr):
    grads = _support_grads(params, x, y, list(params))
    return {n: p - inner_lr * grads[n] for n, p in params.items()}


def anil_no_create_graph(params, x, y, inner_lr):
    grads = _support_grads(params, x, y, list(ex.HEAD), create_graph=False)
    return {n: p - inner_lr * grads[n] if n in grads else p for n, p in params.items()}


def anil_detached_body(params, x, y, inner_lr):
    adapted = ex.anil_inner_step(params, x, y, inner_lr)
    return {n: v.detach() if n not in ex.HEAD else v for n, v in adapted.items()}


def anil_head_only_dict(params, x, y, inner_lr):
    adapted = ex.anil_inner_step(params, x, y, inner_lr)
    return {n: adapted[n] for n in ex.HEAD}


def metasgd_scalar_rate(params, lrs, x, y):
    grads = _support_grads(params, x, y, list(params))
    return {n: p - lrs[n].mean() * grads[n] for n, p in params.items()}


def metasgd_detached_rates(params, lrs, x, y):
    grads = _support_grads(params, x, y, list(params))
    return {n: p - lrs[n].detach() * grads[n] for n, p in params.items()}


def metasgd_no_create_graph(params, lrs, x, y):
    grads = _support_grads(params, x, y, list(params), create_graph=False)
    return {n: p - lrs[n] * grads[n] for n, p in params.items()}


def reptile_flipped(theta, adapted, epsilon):
    return {n: theta[n] - epsilon * (torch.stack([a[n] for a in adapted]).mean(0) - theta[n]) for n in theta}


def reptile_summed(theta, adapted, epsilon):
    return {n: theta[n] + epsilon * (torch.stack([a[n] for a in adapted]).sum(0) - theta[n]) for n in theta}


def reptile_no_epsilon(theta, adapted, epsilon):
    return {n: torch.stack([a[n] for a in adapted]).mean(0) for n in theta}


def missing(*args):  # the student stub: `pass`
    return None


def test_references_pass(capsys):
    assert ex.check_anil_step(ex.anil_inner_step) is ex.anil_inner_step
    assert ex.check_metasgd_step(ex.metasgd_inner_step) is ex.metasgd_inner_step
    assert ex.check_reptile_update(ex.reptile_update) is ex.reptile_update
    assert capsys.readouterr().out.count("correct.") == 3


def test_reference_anil_keeps_body_and_lets_gradients_through():
    params = {k: v.requires_grad_(True) for k, v in next(ex._cases(0))[0].items()}
    case = next(ex._cases(0))
    adapted = ex.anil_inner_step(params, case[1], case[2], 0.5)
    assert all(adapted[n] is params[n] for n in params if n not in ex.HEAD)
    F.cross_entropy(ex.two_layer_forward(adapted, case[3]), case[4]).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params.values())


@pytest.mark.parametrize("wrong, words", [
    (anil_adapts_everything, "changed in the inner loop"), (anil_no_create_graph, "create_graph"),
    (anil_detached_body, "detached"), (anil_head_only_dict, "keys"), (missing, "returned None")])
def test_anil_catches(wrong, words, capsys):
    assert_falls_back(ex.check_anil_step, wrong, ex.anil_inner_step, capsys, words)


@pytest.mark.parametrize("wrong, words", [
    (metasgd_scalar_rate, "off by"), (metasgd_detached_rates, "learning rates"),
    (metasgd_no_create_graph, "create_graph"), (missing, "returned None")])
def test_metasgd_catches(wrong, words, capsys):
    assert ex.check_metasgd_step(wrong) is ex.metasgd_inner_step
    out = capsys.readouterr().out
    assert "not yet" in out and words in out and "Hint:" in out


@pytest.mark.parametrize("wrong, words", [
    (reptile_flipped, "sign of the step"), (reptile_summed, "sums the adapted"),
    (reptile_no_epsilon, "epsilon is missing"), (missing, "returned None")])
def test_reptile_catches(wrong, words, capsys):
    assert ex.check_reptile_update(wrong) is ex.reptile_update
    out = capsys.readouterr().out
    assert "not yet" in out and words in out and "Hint:" in out


@pytest.mark.parametrize("check, wrong", [(ex.check_anil_step, anil_adapts_everything),
                                          (ex.check_metasgd_step, metasgd_detached_rates),
                                          (ex.check_reptile_update, reptile_flipped),
                                          (ex.check_reptile_update, missing)])
def test_grading_raises(monkeypatch, check, wrong):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="not yet"):
        check(wrong)
