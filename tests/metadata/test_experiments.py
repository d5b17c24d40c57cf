import pytest
import torch

from metakit.compare import paired
from metakit.metadata import experiments
from metakit.metadata.columns import BACKGROUND_TYPES, ColumnDataset, ColumnEpisodeSampler
from metakit.metadata.rules import RuleSignatureClassifier
from metakit.runtime import seed_everything


class FirstClass(torch.nn.Module):
    def fit_support(self, x_support, y_support):
        assert all(isinstance(c, list) for c in x_support)  # columns, not indices
        self.n_way = int(y_support.max()) + 1

    def forward(self, x_query):
        return torch.eye(self.n_way)[torch.zeros(len(x_query), dtype=torch.long)]


def test_compare_methods_is_paired_and_repeats():
    data = ColumnDataset(["email", "url", "ipv4"], columns_per_type=4)
    methods = {"first": FirstClass(), "again": FirstClass()}
    a = experiments.compare_methods(methods, data, shots=(1, 2), n_way=3, n_query=2, episodes=5, seed=1,
                                    progress=False)
    b = experiments.compare_methods(methods, data, shots=(1, 2), n_way=3, n_query=2, episodes=5, seed=1,
                                    progress=False)
    assert set(a) == {(m, "held-out", k) for m in methods for k in (1, 2)}
    assert a["first", "held-out", 1]["accs"] == pytest.approx([1 / 3] * 5)
    assert a["first", "held-out", 2]["accs"] == b["first", "held-out", 2]["accs"]
    assert paired(a, "first", "again", "held-out", 1) == (0.0, 0.0)


def test_the_comparison_is_the_old_one_episode_at_a_time_loop():
    # what columns.compare_on_episodes did: seed once, draw each episode, every method on it in turn
    data = ColumnDataset(["email", "url", "ipv4", "year"], columns_per_type=6)
    results = experiments.compare_methods({"rules": RuleSignatureClassifier(seed=3)}, data, shots=(1, 2), n_way=3,
                                          n_query=2, episodes=4, seed=5, progress=False)
    rules = RuleSignatureClassifier(seed=3)
    for k in (1, 2):
        seed_everything(5)
        sampler = ColumnEpisodeSampler(data, 3, k, 2)
        accs = []
        for _ in range(4):
            x_support, y_support, x_query, y_query = sampler.sample()
            rules.fit_support(x_support, y_support)
            accs.append((rules(x_query).argmax(1) == y_query).float().mean().item())
        assert results["rules", "held-out", k]["accs"] == accs


def test_comparison_table_rows_and_paired_differences():
    accs = {"rules": [0.2, 0.4, 0.6], "knn": [0.4, 0.4, 0.4], "proto": [0.6, 0.8, 1.0]}
    results = {(m, "held-out", k): {"acc": sum(a) / 3, "ci95": 0.01, "accs": a} for m, a in accs.items()
               for k in (1, 5)}
    lines = experiments.comparison_table(results).splitlines()
    assert lines[0].split() == ["method", "1-shot", "5-shot"]
    assert lines[1].split()[:4] == ["rules", "0.400", "+-", "0.010"]
    assert lines[4].startswith("proto-rules") and "+0.400 +- 0.000" in lines[4]
    assert lines[5].startswith("proto-knn") and "+0.400" in lines[5]


def test_trained_model_trains_then_loads(tmp_path):
    data = ColumnDataset(BACKGROUND_TYPES[:15], columns_per_type=10)  # the regime's 15-way 5-shot, 5 queries
    model, info = experiments.trained_model(data, 0.2, tmp_path, progress=False)
    assert not info["loaded"] and info["steps"] >= 1 and info["types"] == 15 and info["columns_per_type"] == 10
    assert {"steps", "seconds", "clock_seconds", "loss_curve"} <= set(info) and not model.training
    again, info2 = experiments.trained_model(data, 0.2, tmp_path, progress=False)
    assert info2["loaded"] and info2["steps"] == info["steps"]
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_episode_predictions_name_the_episode_types():
    data = ColumnDataset(["email", "ipv4", "year", "url"], columns_per_type=4)
    x_query, y_query, names, preds = experiments.episode_predictions({"rules": RuleSignatureClassifier()}, data,
                                                                     3, 2, 1, seed=0)
    assert len(x_query) == 3 and len(names) == 3 and set(names) <= set(data.class_names)
    assert preds["rules"].shape == (3,)
    with pytest.raises(ValueError, match="Choose n_way"):
        experiments.episode_predictions({}, data, 5, 1, 1)


def test_the_shipped_checkpoint_info_uses_the_kits_budget_keys():
    from metakit.checkpoints import CHECKPOINTS

    path = CHECKPOINTS / experiments.CHECKPOINT
    if not path.exists():
        pytest.skip("no shipped checkpoint")
    info = torch.load(path, weights_only=True)["info"]
    assert {"steps", "clock_seconds", "loss_curve", "loss_every"} <= set(info) and "episodes" not in info
