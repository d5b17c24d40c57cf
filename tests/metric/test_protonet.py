import pytest
import torch
from helpers import random_episode
from torch import nn

from metakit.metric.protonet import PrototypicalNetwork
from metakit.models import Conv4


def episode(n_way=3, k_shot=4, n_query=2, seed=0):
    return random_episode(n_way, k_shot, n_query, seed)


def test_logits_shape():
    x_support, y_support, x_query = episode(n_way=3, n_query=2)
    model = PrototypicalNetwork(Conv4(hidden=8))
    model.fit_support(x_support, y_support)
    assert model(x_query).shape == (6, 3)


def test_prototypes_are_class_means_in_any_label_order():
    x_support, y_support, _ = episode(n_way=3, k_shot=4)
    order = torch.randperm(len(y_support), generator=torch.Generator().manual_seed(1))
    model = PrototypicalNetwork(nn.Flatten())  # the identity embedding: prototypes are mean images
    model.fit_support(x_support[order], y_support[order])
    expected = x_support.flatten(1).view(3, 4, -1).mean(1)
    torch.testing.assert_close(model.prototypes, expected)


def test_queries_equal_to_the_support_get_their_own_labels():
    torch.manual_seed(0)
    x_support, y_support, _ = episode(n_way=5, k_shot=1)
    model = PrototypicalNetwork(Conv4(hidden=8)).eval()
    model.fit_support(x_support, y_support)
    logits = model(x_support)
    assert torch.equal(logits.argmax(1), y_support)
    torch.testing.assert_close(logits.diagonal(), torch.zeros(5), atol=1e-4, rtol=0)


def test_nearest_mean_is_a_linear_classifier():
    # -||z - mu_c||^2 = 2 mu_c.z - ||mu_c||^2 - ||z||^2, and the last term is the same for every class
    torch.manual_seed(0)
    x_support, y_support, x_query = episode()
    model = PrototypicalNetwork(Conv4(hidden=8)).eval()
    model.fit_support(x_support, y_support)
    with torch.no_grad():
        logits, z, mu = model(x_query), model.backbone(x_query), model.prototypes
    linear = 2 * z @ mu.T - (mu ** 2).sum(1)  # (n_query_total, n_way)
    gap = logits - linear
    torch.testing.assert_close(gap, gap[:, :1].expand_as(gap), atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(gap[:, 0], -(z ** 2).sum(1), atol=1e-3, rtol=1e-5)


def test_loss_reaches_the_backbone_through_the_prototypes():
    x_support, y_support, _ = episode()
    model = PrototypicalNetwork(Conv4(hidden=8))
    model.fit_support(x_support, y_support)
    model.prototypes.sum().backward()
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_forward_before_fit_support_raises():
    with pytest.raises(RuntimeError, match="fit_support"):
        PrototypicalNetwork(nn.Flatten())(torch.rand(2, 1, 28, 28))


def test_a_missing_label_raises():
    with pytest.raises(ValueError, match="every label"):
        PrototypicalNetwork(nn.Flatten()).fit_support(torch.rand(2, 1, 28, 28), torch.tensor([0, 2]))


def test_cosine_distance_is_scaled_cosine_similarity():
    x_support, y_support, x_query = episode()
    model = PrototypicalNetwork(nn.Flatten(), distance="cosine", scale=5.0)
    model.fit_support(x_support, y_support)
    expected = 5.0 * torch.nn.functional.cosine_similarity(
        x_query.flatten(1)[:, None], model.prototypes[None], dim=-1)
    torch.testing.assert_close(model(x_query), expected, atol=1e-5, rtol=1e-5)


def test_distance_can_be_switched_after_fitting_but_not_to_nonsense():
    model = PrototypicalNetwork(nn.Flatten())
    model.distance = "cosine"
    with pytest.raises(ValueError, match="euclidean, cosine"):
        model.distance = "manhattan"
