import pytest
import torch
from torch import nn

from metakit.metric import experiments as metric
from metakit.metric.protonet import PrototypicalNetwork


@pytest.mark.parametrize("method", list(metric.METHODS))
@pytest.mark.parametrize("n_way,k_shot", [(5, 1), (3, 2)])
def test_every_method_returns_n_query_by_n_way_logits(method, n_way, k_shot, glyphs_evaluation):
    from metakit import sample_episode

    model = metric.make_model(method, hidden=8).eval()
    x_support, y_support, x_query, y_query = sample_episode(glyphs_evaluation, n_way, k_shot, 4)
    with torch.no_grad():
        model.fit_support(x_support, y_support)
        assert model(x_query).shape == (n_way * 4, n_way)


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="proto, matching, metaopt"):
        metric.make_model("siamese")


def test_training_episodes_have_the_same_size_for_every_method():
    sizes = {m: t["n_way"] * (t["k_shot"] + t["n_query"]) for m, t in metric.TRAIN.items()}
    assert len(set(sizes.values())) == 1, sizes


def test_compare_uses_the_same_episodes_for_every_model(glyphs_evaluation):
    pixels = PrototypicalNetwork(nn.Flatten())
    results = metric.compare({"a": pixels, "b": pixels}, {"glyphs": glyphs_evaluation},
                             {"5w1s": dict(n_way=5, k_shot=1, n_query=3)}, episodes=5, progress=False)
    assert results["a", "glyphs", "5w1s"]["acc"] == results["b", "glyphs", "5w1s"]["acc"]
    table = metric.format_table(results)
    assert "5w1s" in table and "glyphs, a" in table


def test_impossible_test_setting_raises_the_samplers_message(glyphs_evaluation):
    with pytest.raises(ValueError, match="Choose n_way"):
        metric.compare({"a": PrototypicalNetwork(nn.Flatten())}, {"glyphs": glyphs_evaluation},
                       {"huge": dict(n_way=5000, k_shot=1, n_query=1)}, episodes=1, progress=False)
