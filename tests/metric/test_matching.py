import pytest
import torch
import torch.nn.functional as F
from helpers import random_episode
from torch import nn

from metakit.metric.matching import MatchingNetwork
from metakit.models import Conv4


def episode(n_way=4, k_shot=3, n_query=2, seed=0):
    return random_episode(n_way, k_shot, n_query, seed)


def test_logits_shape_and_they_are_log_probabilities():
    x_support, y_support, x_query = episode()
    model = MatchingNetwork(Conv4(hidden=8))
    model.fit_support(x_support, y_support)
    logits = model(x_query)
    assert logits.shape == (8, 4)
    torch.testing.assert_close(logits.exp().sum(1), torch.ones(8))


def test_attention_over_the_support_by_hand():
    # P(y=k|x) = sum over support items of class k of softmax_i(scale * cos(x, x_i))
    x_support, y_support, x_query = episode(n_way=3, k_shot=2, n_query=1)
    model = MatchingNetwork(nn.Flatten(), scale=7.0)
    model.fit_support(x_support, y_support)
    cos = F.cosine_similarity(x_query.flatten(1)[:, None], x_support.flatten(1)[None], dim=-1)
    attention = (7.0 * cos).softmax(1)                       # (n_query_total, n_support)
    expected = attention @ F.one_hot(y_support, 3).float()   # (n_query_total, n_way)
    torch.testing.assert_close(model(x_query).exp(), expected, atol=1e-5, rtol=1e-5)


def test_gradient_reaches_the_backbone_and_the_scale():
    x_support, y_support, x_query = episode()
    model = MatchingNetwork(Conv4(hidden=8))
    model.fit_support(x_support, y_support)
    F.cross_entropy(model(x_query), torch.arange(4).repeat_interleave(2)).backward()
    assert model.scale.grad is not None
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_bad_support_and_order_of_calls():
    with pytest.raises(RuntimeError, match="fit_support"):
        MatchingNetwork(nn.Flatten())(torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="every label"):
        MatchingNetwork(nn.Flatten()).fit_support(torch.rand(2, 1, 28, 28), torch.tensor([1, 1]))
