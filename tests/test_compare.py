import pytest
import torch

from metakit.compare import compare, episode_accuracy, format_table, paired
from metakit.metric.protonet import PrototypicalNetwork
from metakit.models import Conv4


class Constant(torch.nn.Module):
    """Always answers ``label`` (a learner that ignores its support set)."""

    def __init__(self, label):
        super().__init__()
        self.label = label

    def fit_support(self, x_support, y_support):
        self.n_way = int(y_support.max()) + 1

    def forward(self, x_query):
        return torch.nn.functional.one_hot(torch.full((len(x_query),), self.label), self.n_way).float()


def test_every_method_meets_the_same_episodes(glyphs_evaluation):
    seen = {}

    def record(method, x_support, y_support, x_query, y_query):
        seen.setdefault(method.label, []).append(x_query.sum().item())
        return episode_accuracy(method, x_support, y_support, x_query, y_query)

    settings = {"5w1s": dict(n_way=5, k_shot=1, n_query=3)}
    results = compare({"zero": Constant(0), "one": Constant(1)}, {"glyphs": glyphs_evaluation}, settings,
                      episodes=6, evaluate=record, progress=False)
    assert seen[0] == seen[1]  # the same query images, episode by episode
    # a constant answer is right on exactly one class in five
    assert results["zero", "glyphs", "5w1s"]["acc"] == pytest.approx(0.2)
    assert results["zero", "glyphs", "5w1s"]["accs"] == pytest.approx([0.2] * 6)
    assert paired(results, "zero", "one", "glyphs", "5w1s") == (pytest.approx(0.0), pytest.approx(0.0))
    table = format_table(results, names={"zero": "always 0"})
    assert "glyphs, always 0" in table and "0.2000±0.0000" in table


def test_a_trained_prototype_rule_beats_chance_and_leaves_the_mode_alone(glyphs_evaluation):
    torch.manual_seed(0)
    model = PrototypicalNetwork(Conv4(hidden=8)).train()
    results = compare({"proto": model}, {"g": glyphs_evaluation}, {"s": dict(n_way=5, k_shot=1, n_query=5)},
                      episodes=20, progress=False)
    # even an untrained Conv-4 embeds drawings well above chance (0.2)
    assert results["proto", "g", "s"]["acc"] > 0.3
    assert model.training  # compare evaluates in eval mode and restores the mode


def test_gradient_methods_adapt_with_the_steps_asked(glyphs_evaluation):
    calls = []

    class Adapter(torch.nn.Module):
        def adapt(self, x_support, y_support, steps=None):
            calls.append(steps)
            return {}

        def predict(self, params, x):
            return torch.zeros(len(x), 5)

    x = glyphs_evaluation
    episode = next(iter(__import__("metakit").EpisodeSampler(x, 5, 1, 2)))
    assert episode_accuracy(Adapter(), *episode) == pytest.approx(0.2)
    episode_accuracy(Adapter(), *episode, steps=3)
    assert calls == [None, 3]


def test_bad_requests():
    with pytest.raises(ValueError, match="episodes"):
        compare({}, {}, {}, episodes=0)
