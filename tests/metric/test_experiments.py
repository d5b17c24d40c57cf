import time

import pytest
import torch
from torch import nn

from metakit.compare import compare, format_table
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


def test_metric_models_meet_the_same_episodes_in_the_one_comparison(glyphs_evaluation):
    pixels = PrototypicalNetwork(nn.Flatten())
    results = compare({"a": pixels, "b": pixels}, {"glyphs": glyphs_evaluation},
                      {"5w1s": dict(n_way=5, k_shot=1, n_query=3)}, episodes=5, progress=False)
    assert results["a", "glyphs", "5w1s"]["acc"] == results["b", "glyphs", "5w1s"]["acc"]
    table = format_table(results, metric.NAMES)
    assert "5w1s" in table and "glyphs, a" in table


def test_impossible_test_setting_raises_the_samplers_message(glyphs_evaluation):
    with pytest.raises(ValueError, match="Choose n_way"):
        compare({"a": PrototypicalNetwork(nn.Flatten())}, {"glyphs": glyphs_evaluation},
                {"huge": dict(n_way=5000, k_shot=1, n_query=1)}, episodes=1, progress=False)


def test_train_uses_the_methods_regime_and_the_budget(glyphs_background, monkeypatch):
    seen = {}

    def fake_train_episodes(model, sampler, **kwargs):
        seen.update(n_way=sampler.n_way, n_query=sampler.n_query, **kwargs)
        return {"steps": kwargs["steps"]}

    monkeypatch.setattr("metakit.metric.experiments.train_episodes", fake_train_episodes)
    model = metric.make_model("metaopt", hidden=8)
    assert metric.train(model, glyphs_background, steps=2, progress=False)["steps"] == 2
    assert seen["n_way"] == metric.TRAIN["metaopt"]["n_way"] and seen["n_query"] == metric.TRAIN["metaopt"]["n_query"]
    metric.train(model, glyphs_background, steps=1, n_way=7, progress=False)
    assert seen["n_way"] == 7 and seen["lr"] == 1e-3 and seen["seconds"] is None
    with pytest.raises(ValueError, match="not one of the metric methods"):
        metric.train(nn.Linear(2, 2), glyphs_background, steps=1)


def test_train_runs_a_few_real_steps(glyphs_background):
    torch.manual_seed(0)
    history = metric.train(metric.make_model("proto", hidden=8), glyphs_background, steps=2, n_way=5, progress=False)
    assert history["steps"] == 2 and len(history["loss"]) == 2 and "clock_seconds" in history


def test_episode_accuracies_match_the_comparison_and_restore_the_distance(glyphs_evaluation):
    torch.manual_seed(0)
    model = metric.make_model("proto", hidden=8).eval()
    accs = metric.episode_accuracies(model, glyphs_evaluation, 5, 1, n_query=3, episodes=4, seed=3, distance="cosine")
    assert len(accs) == 4 and model.distance == "euclidean"
    model.distance = "cosine"
    same = compare({"m": model}, {"t": glyphs_evaluation}, {"s": dict(n_way=5, k_shot=1, n_query=3)}, episodes=4,
                   seed=3, progress=False)["m", "t", "s"]["accs"]
    assert accs == same


def test_embedding_2d_shapes(glyphs_evaluation):
    torch.manual_seed(0)
    view = metric.embedding_2d(metric.make_model("matching", hidden=8), glyphs_evaluation, 4, 2, n_query=3)
    assert view["points"].shape == (4 * 2 + 4 * 3, 2) and view["prototypes"].shape == (4, 2)
    assert view["support"].shape == (8, 2) and view["wrong"].shape == (12,)


def test_matched_ways_trains_each_method_in_each_regime_from_the_same_seed(glyphs_evaluation, monkeypatch):
    calls = []

    def fake_train(model, dataset, **kwargs):
        calls.append((metric.method_of(model), kwargs["n_way"], kwargs["n_query"], kwargs["clock"]))
        return {"steps": 1, "clock_seconds": kwargs["seconds"]}

    monkeypatch.setattr(metric, "train", fake_train)
    models, histories = metric.train_matched_ways(glyphs_evaluation, 2.0, progress=False)
    assert list(models) == ["proto-20way", "proto-40way", "metaopt-20way", "metaopt-40way"] == list(histories)
    assert [c[:3] for c in calls] == [("proto", 20, 5), ("proto", 40, 2), ("metaopt", 20, 5), ("metaopt", 40, 2)]
    assert {c[3] for c in calls} == {time.process_time}   # CPU time: the same compute for all
    first = [p.detach().clone() for p in models["proto-20way"].parameters()]
    assert all(torch.equal(a, b) for a, b in zip(first, models["proto-40way"].parameters()))  # same seed
