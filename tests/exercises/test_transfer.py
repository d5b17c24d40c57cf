"""metakit.exercises.transfer: each check passes the reference, names realistic wrong answers
(a missing temperature or normalisation, a gradient not divided by n, a transposed gradient, a
prototype head without its factor 2), gives the "not yet" path to a missing answer, and raises
under nbgrader's autograde."""
import pytest
import torch
import torch.nn.functional as F

from metakit.exercises import ExerciseError
from metakit.exercises import transfer as ex
from helpers import assert_falls_back


def no_scale(z, weight, scale):
    return F.normalize(z, dim=-1) @ F.normalize(weight, dim=-1).T


def weights_not_normalised(z, weight, scale):
    return scale * F.normalize(z, dim=-1) @ weight.T


def features_not_normalised(z, weight, scale):
    return scale * z @ F.normalize(weight, dim=-1).T


def transposed_logits(z, weight, scale):
    return ex.cosine_logits(z, weight, scale).T


def closed_form_gradient(Z, W, b, y):
    P = torch.softmax(Z @ W.T + b, 1) - F.one_hot(y, len(W)).float()
    return P.T @ Z / len(Z), P.mean(0)


def summed_not_averaged(Z, W, b, y):
    P = torch.softmax(Z @ W.T + b, 1) - F.one_hot(y, len(W)).float()
    return P.T @ Z, P.sum(0)


def transposed_gradient(Z, W, b, y):
    P = torch.softmax(Z @ W.T + b, 1) - F.one_hot(y, len(W)).float()
    return Z.T @ P / len(Z), P.mean(0)


def no_one_hot(Z, W, b, y):
    P = torch.softmax(Z @ W.T + b, 1)
    return P.T @ Z / len(Z), P.mean(0)


def means_as_weights(Z, y, n_way):
    c = torch.stack([Z[y == k].mean(0) for k in range(n_way)])
    return c, -c.pow(2).sum(1)


def plus_norm(Z, y, n_way):
    c = torch.stack([Z[y == k].mean(0) for k in range(n_way)])
    return 2 * c, c.pow(2).sum(1)


def stub(*args):
    pass


def test_references_pass(capsys):
    assert ex.check_cosine_logits(ex.cosine_logits) is ex.cosine_logits
    assert ex.check_head_gradient(ex.head_gradient) is ex.head_gradient
    assert ex.check_head_gradient(closed_form_gradient) is closed_form_gradient
    assert ex.check_prototype_head(ex.prototype_head) is ex.prototype_head
    assert capsys.readouterr().out.count("correct.") == 4


def test_prototype_head_gives_the_prototype_probabilities():
    Z, _, _, y = next(ex._gradient_cases(seed=6))
    W, b = ex.prototype_head(Z, y, 5)
    zq = torch.randn(7, Z.shape[1])
    c = W / 2
    assert torch.allclose((zq @ W.T + b).softmax(1), (-torch.cdist(zq, c).pow(2)).softmax(1), atol=1e-5)


@pytest.mark.parametrize("check, wrong, reference, words", [
    (ex.check_cosine_logits, no_scale, ex.cosine_logits, "without the temperature"),
    (ex.check_cosine_logits, weights_not_normalised, ex.cosine_logits, "class vectors are not normalised"),
    (ex.check_cosine_logits, features_not_normalised, ex.cosine_logits, "features z are not normalised"),
    (ex.check_cosine_logits, transposed_logits, ex.cosine_logits, "transpose"),
    (ex.check_cosine_logits, stub, ex.cosine_logits, "returned None"),
    (ex.check_head_gradient, summed_not_averaged, ex.head_gradient, "divide by n"),
    (ex.check_head_gradient, transposed_gradient, ex.head_gradient, "transpose"),
    (ex.check_head_gradient, no_one_hot, ex.head_gradient, "off by"),
    (ex.check_head_gradient, stub, ex.head_gradient, "pair"),
    (ex.check_prototype_head, means_as_weights, ex.prototype_head, "half"),
    (ex.check_prototype_head, plus_norm, ex.prototype_head, "wrong sign"),
    (ex.check_prototype_head, stub, ex.prototype_head, "pair"),
])
def test_checks_catch(check, wrong, reference, words, capsys):
    assert_falls_back(check, wrong, reference, capsys, words)


def test_grading_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="temperature"):
        ex.check_cosine_logits(no_scale)
    with pytest.raises(ExerciseError, match="divide by n"):
        ex.check_head_gradient(summed_not_averaged)
    with pytest.raises(ExerciseError, match="not yet"):
        ex.check_prototype_head(stub)
    assert ex.check_head_gradient(closed_form_gradient) is closed_form_gradient
