"""metakit.exercises.continual: each check passes the reference, names realistic wrong answers
(an off-by-one in BWT, FWT from the diagonal, a projection applied always, a missing e_y), gives
the "not yet" path to a missing answer, and raises under nbgrader's autograde."""
import numpy as np
import pytest
import torch

from metakit.exercises import ExerciseError
from metakit.exercises import continual as ex
from helpers import assert_falls_back


def bwt_over_all_tasks(R, b):
    T = len(R)
    return {"acc": R[-1].mean(), "bwt": np.mean(R[-1] - np.diag(R)),
            "fwt": np.mean([R[j - 1, j] - b[j] for j in range(1, T)])}


def fwt_from_diagonal(R, b):
    T = len(R)
    return {"acc": R[-1].mean(), "bwt": np.mean(R[-1, :-1] - np.diag(R)[:-1]),
            "fwt": np.mean([R[j, j] - b[j] for j in range(1, T)])}


def acc_from_diagonal(R, b):
    return {**ex.continual_metrics(R, b), "acc": np.diag(R).mean()}


def always_project(g, g_ref):
    return g - (g @ g_ref) / (g_ref @ g_ref) * g_ref


def norm_not_squared(g, g_ref):
    dot = g @ g_ref
    return g if dot >= 0 else g - dot / g_ref.norm() * g_ref


def never_project(g, g_ref):
    return g


def plus_e_y(W, b, z, y, lr):
    p = torch.softmax(W @ z + b, 0)
    p[y] += 1
    return W - lr * torch.outer(p, z), b - lr * p


def logits_not_softmax(W, b, z, y, lr):
    p = (W @ z + b).clone()
    p[y] -= 1
    return W - lr * torch.outer(p, z), b - lr * p


def transposed(W, b, z, y, lr):
    p = torch.softmax(W @ z + b, 0)
    p[y] -= 1
    return W - lr * torch.outer(z, p), b - lr * p


def closed_form(W, b, z, y, lr):
    p = torch.softmax(W @ z + b, 0)
    p[y] -= 1
    return W - lr * torch.outer(p, z), b - lr * p


def stub(*args):
    pass


def test_references_pass(capsys):
    assert ex.check_metrics(ex.continual_metrics) is ex.continual_metrics
    assert ex.check_agem_projection(ex.agem_project) is ex.agem_project
    assert ex.check_online_step(ex.online_step) is ex.online_step
    assert ex.check_online_step(closed_form) is closed_form
    assert capsys.readouterr().out.count("correct.") == 4


def test_agem_reference_matches_the_class():
    """The reference is the projection AGEM.observe applies; its result agrees with g_ref."""
    for g, g_ref, conflict in ex._agem_cases():
        out = ex.agem_project(g, g_ref)
        assert (out @ g_ref).item() >= -1e-9
        assert torch.equal(out, g) != conflict


@pytest.mark.parametrize("check, wrong, reference, words", [
    (ex.check_metrics, bwt_over_all_tasks, ex.continual_metrics, "divides by T instead of T-1"),
    (ex.check_metrics, fwt_from_diagonal, ex.continual_metrics, "uses R[j, j]"),
    (ex.check_metrics, acc_from_diagonal, ex.continual_metrics, "averages the diagonal"),
    (ex.check_metrics, stub, ex.continual_metrics, "returned None"),
    (ex.check_agem_projection, always_project, ex.agem_project, "keeps g as it is"),
    (ex.check_agem_projection, norm_not_squared, ex.agem_project, "should be 0"),
    (ex.check_agem_projection, never_project, ex.agem_project, "returned g unchanged"),
    (ex.check_agem_projection, stub, ex.agem_project, "returned None"),
    (ex.check_online_step, plus_e_y, ex.online_step, "off by"),
    (ex.check_online_step, logits_not_softmax, ex.online_step, "off by"),
    (ex.check_online_step, transposed, ex.online_step, "raised RuntimeError"),
    (ex.check_online_step, stub, ex.online_step, "pair"),
])
def test_checks_catch(check, wrong, reference, words, capsys):
    assert_falls_back(check, wrong, reference, capsys, words)


def test_grading_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="T-1"):
        ex.check_metrics(bwt_over_all_tasks)
    with pytest.raises(ExerciseError, match="keeps g"):
        ex.check_agem_projection(always_project)
    with pytest.raises(ExerciseError, match="not yet"):
        ex.check_online_step(stub)
    assert ex.check_online_step(closed_form) is closed_form
