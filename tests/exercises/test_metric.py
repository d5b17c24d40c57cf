"""metakit.exercises.metric (notebook 04): each check passes the reference, catches realistic wrong
answers in words, sends a missing answer down the "not yet" path, and raises under autograde."""
import pytest
import torch
import torch.nn.functional as F

from metakit.exercises import metric as ex
from metakit.exercises.core import ExerciseError
from helpers import assert_falls_back


def _means(z_support, y_support):
    return torch.stack([z_support[y_support == k].mean(0) for k in range(int(y_support.max()) + 1)])


def loss_plus_distance(z_support, y_support, z_query, y_query):
    return F.cross_entropy(torch.cdist(z_query, _means(z_support, y_support)).pow(2), y_query)


def loss_unsquared(z_support, y_support, z_query, y_query):
    return F.cross_entropy(-torch.cdist(z_query, _means(z_support, y_support)), y_query)


def loss_detached_prototypes(z_support, y_support, z_query, y_query):
    protos = _means(z_support, y_support).detach()
    return F.cross_entropy(-(z_query[:, None] - protos[None]).pow(2).sum(-1), y_query)


def loss_reshape_grouping(z_support, y_support, z_query, y_query):  # assumes labels come grouped by class
    n_way = int(y_support.max()) + 1
    protos = z_support.reshape(n_way, -1, z_support.shape[1]).mean(1)
    return F.cross_entropy(-(z_query[:, None] - protos[None]).pow(2).sum(-1), y_query)


def loss_no_grad(z_support, y_support, z_query, y_query):
    with torch.no_grad():
        return ex.prototypical_loss(z_support, y_support, z_query, y_query)


def _scores(z_support, z_query, scale):
    return scale * F.normalize(z_query, dim=-1) @ F.normalize(z_support, dim=-1).T


def matching_softmax_over_queries(z_support, y_support, z_query, scale):
    return _scores(z_support, z_query, scale).softmax(0) @ F.one_hot(y_support).float()


def matching_dot_product(z_support, y_support, z_query, scale):
    return (scale * z_query @ z_support.T).softmax(1) @ F.one_hot(y_support).float()


def matching_no_scale(z_support, y_support, z_query, scale):
    return _scores(z_support, z_query, 1.0).softmax(1) @ F.one_hot(y_support).float()


def matching_transposed(z_support, y_support, z_query, scale):
    return ex.matching_probabilities(z_support, y_support, z_query, scale).T


def linear_forgot_two(prototypes):
    return prototypes, -prototypes.pow(2).sum(1)


def linear_bias_sign(prototypes):
    return 2 * prototypes, prototypes.pow(2).sum(1)


def linear_transposed(prototypes):
    return 2 * prototypes.T, -prototypes.pow(2).sum(1)


def stub(*args):  # the student version: `pass  # YOUR CODE HERE`
    return None


CHECKS = [(ex.check_prototypical_loss, ex.prototypical_loss),
          (ex.check_matching_probabilities, ex.matching_probabilities),
          (ex.check_prototype_linear_layer, ex.prototype_linear_layer)]


@pytest.mark.parametrize("check, reference", CHECKS)
def test_reference_passes(check, reference, capsys):
    assert check(reference) is reference
    assert capsys.readouterr().out.strip().endswith("correct.")


def test_references_match_the_models():
    g = torch.Generator().manual_seed(0)
    z_s, z_q, y_s = torch.randn(6, 4, generator=g), torch.randn(5, 4, generator=g), torch.arange(3).repeat(2)
    assert torch.allclose(ex.matching_probabilities(z_s, y_s, z_q, 10.0).sum(1), torch.ones(5))
    w, b = ex.prototype_linear_layer(_means(z_s, y_s))
    exact = -torch.cdist(z_q, _means(z_s, y_s)).pow(2)
    assert torch.allclose((z_q @ w.T + b).softmax(1), exact.softmax(1), atol=1e-5)


def _caught(check, reference, wrong, words, capsys):
    assert_falls_back(check, wrong, reference, capsys, words)


@pytest.mark.parametrize("wrong, words", [
    (loss_plus_distance, "The loss is off by"), (loss_unsquared, "The loss is off by"),
    (loss_detached_prototypes, "no gradient reaches the support embeddings"),
    (loss_reshape_grouping, "shuffled support labels"), (loss_no_grad, "does not depend on the embeddings"),
    (stub, "returned None")])
def test_prototypical_loss_catches(wrong, words, capsys):
    _caught(ex.check_prototypical_loss, ex.prototypical_loss, wrong, words, capsys)


@pytest.mark.parametrize("wrong, words", [
    (matching_softmax_over_queries, "rows sum to"), (matching_dot_product, "off by"),
    (matching_no_scale, "off by"), (matching_transposed, "transpose"), (stub, "returned None")])
def test_matching_catches(wrong, words, capsys):
    _caught(ex.check_matching_probabilities, ex.matching_probabilities, wrong, words, capsys)


@pytest.mark.parametrize("wrong, words", [
    (linear_forgot_two, "It equals the prototypes"),
    (linear_bias_sign, "The bias has the right size but the wrong sign"),
    (linear_transposed, "The weight has shape"), (stub, "should return two tensors")])
def test_linear_layer_catches(wrong, words, capsys):
    _caught(ex.check_prototype_linear_layer, ex.prototype_linear_layer, wrong, words, capsys)


@pytest.mark.parametrize("check, reference", CHECKS)
def test_grading_raises(check, reference, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="not yet"):
        check(stub)
    assert check(reference) is reference
