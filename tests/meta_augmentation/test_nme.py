import pytest
import torch
from torch import nn

import metakit
from metakit.datasets import ImageClassDataset
from metakit.episodes import EpisodeSampler
from metakit.meta_augmentation.nme import (
    BiasedPrototypicalNetwork,
    NMESampler,
    make_nme_learner,
    probe,
    relabel,
    shift_labels,
    train_nme,
)
from metakit.metric.protonet import PrototypicalNetwork


def coded_dataset(classes=30, per_class=6, seed=0):
    """Every class one random binary pattern (all its examples alike); pixel (0, 0) codes the class."""
    g = torch.Generator().manual_seed(seed)
    patterns = (torch.rand(classes, 28, 28, generator=g) > 0.5).to(torch.uint8) * 255
    patterns[:, 0, 0] = torch.arange(classes, dtype=torch.uint8)
    images = patterns.repeat_interleave(per_class, 0)
    labels = torch.arange(classes).repeat_interleave(per_class)
    return ImageClassDataset(images, labels, [f"a/{c}" for c in range(classes)])


def class_of(x):
    """Decode the class from pixel (0, 0) of images served as ink = 1 - value / 255."""
    return torch.round((1 - x[:, 0, 0, 0]) * 255).long()


def check_valid(episode, n_way, k_shot, n_query):
    x_support, y_support, x_query, y_query = episode
    assert x_support.shape == (n_way * k_shot, 1, 28, 28) and x_query.shape == (n_way * n_query, 1, 28, 28)
    assert y_support.tolist() == torch.arange(n_way).repeat_interleave(k_shot).tolist()
    assert y_query.tolist() == torch.arange(n_way).repeat_interleave(n_query).tolist()
    cs, cq = class_of(x_support).reshape(n_way, k_shot), class_of(x_query).reshape(n_way, n_query)
    assert (cs == cs[:, :1]).all() and (cq == cs[:, :1]).all(), "support and query of a label share one class"
    assert len(set(cs[:, 0].tolist())) == n_way, "one class per label"
    return cs[:, 0]


@pytest.mark.parametrize("shuffle", ["none", "intra", "inter"])
def test_episodes_stay_valid(shuffle):
    data = coded_dataset()
    sampler = NMESampler(data, n_way=5, k_shot=2, n_query=3, shuffle=shuffle, classes_per_label=4)
    for _ in range(20):
        classes = check_valid(sampler.sample(), 5, 2, 3)
        assert set(classes.tolist()) <= set(sampler.classes), "only the chosen training classes"


def test_the_nme_family_keeps_every_class_on_its_label():
    sampler = NMESampler(coded_dataset(), n_way=5, k_shot=1, n_query=2, classes_per_label=4)
    assert sorted(sampler.slot.values()) == sorted(list(range(5)) * 4)
    for _ in range(20):
        *episode, classes = sampler.sample(return_classes=True)
        decoded = check_valid(episode, 5, 1, 2)
        assert decoded.tolist() == classes.tolist()
        assert [sampler.slot[c] for c in classes.tolist()] == list(range(5))


def test_shuffling_breaks_the_fixed_mapping():
    data = coded_dataset()
    for shuffle in ("intra", "inter"):
        sampler = NMESampler(data, n_way=5, k_shot=1, n_query=2, shuffle=shuffle, classes_per_label=4)
        torch.manual_seed(0)
        moved = 0
        for _ in range(20):
            classes = check_valid(sampler.sample(), 5, 1, 2)
            moved += sum(sampler.slot[c] != label for label, c in enumerate(classes.tolist()))
        assert moved > 20, shuffle
    intra = NMESampler(data, n_way=5, k_shot=1, n_query=2, shuffle="intra", classes_per_label=4)
    for _ in range(10):  # intra keeps one class of every slot in each episode
        classes = check_valid(intra.sample(), 5, 1, 2)
        assert sorted(intra.slot[c] for c in classes.tolist()) == list(range(5))


def test_relabel_keeps_images_with_their_labels():
    data = coded_dataset()
    episode = EpisodeSampler(data, 5, 2, 3).sample()
    before = {int(y): int(c) for y, c in zip(episode[1], class_of(episode[0]))}
    perm = torch.tensor([2, 0, 4, 1, 3])
    after = relabel(episode, perm)
    check_valid(after, 5, 2, 3)
    carried = {int(y): int(c) for y, c in zip(after[1], class_of(after[0]))}
    assert carried == {int(perm[y]): c for y, c in before.items()}


def test_shift_labels_moves_every_label():
    y = torch.arange(5).repeat_interleave(2)
    assert shift_labels(y, 5).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 0, 0]
    assert (shift_labels(y, 5, 3) != y).all()
    with pytest.raises(ValueError, match="shift"):
        shift_labels(y, 5, 5)


class Memoriser(nn.Module):
    """Answers from the query image alone: the label its class has in the NME family."""

    def __init__(self, slot):
        super().__init__()
        self.slot = slot

    def fit_support(self, x_support, y_support):
        pass

    def forward(self, x_query):
        return nn.functional.one_hot(torch.tensor([self.slot[int(c)] for c in class_of(x_query)]), 5).float()


def test_probe_tells_a_memoriser_from_a_support_reader():
    data = coded_dataset()
    sampler = NMESampler(data, n_way=5, k_shot=1, n_query=2, classes_per_label=4)
    memo = probe(Memoriser(sampler.slot), sampler, episodes=10)
    assert memo["acc"][0] == 1.0 and memo["acc_shifted"][0] == 1.0
    reader = probe(PrototypicalNetwork(nn.Flatten()), sampler, episodes=10)
    assert reader["acc"][0] == 1.0 and reader["acc_shifted"][0] == 0.0
    with pytest.raises(ValueError, match="episodes"):
        probe(reader, sampler, episodes=0)


def test_maml_probe_has_a_zero_step_score_and_train_nme_runs():
    data = coded_dataset()
    sampler = NMESampler(data, n_way=5, k_shot=1, n_query=2, classes_per_label=4)
    torch.manual_seed(0)
    maml = make_nme_learner("maml", hidden=4)
    history = train_nme(maml, sampler, steps=2, meta_batch_size=2, progress=False)
    assert history["steps"] == 2 and history["clock_seconds"] > 0
    scores = probe(maml, sampler, episodes=3, zero_steps=True)
    assert set(scores) == {"acc", "acc_shifted", "acc_0_steps"}
    assert all(0 <= m <= 1 for m, _ in scores.values())


def test_metric_learners_and_bad_input():
    data = coded_dataset()
    sampler = NMESampler(data, n_way=5, k_shot=1, n_query=2, classes_per_label=4)
    learner = make_nme_learner("protobias", hidden=4)
    assert isinstance(learner, BiasedPrototypicalNetwork)
    history = train_nme(learner, sampler, steps=2, progress=False)
    assert history["steps"] == 2
    learner.fit_support(*sampler.sample()[:2])
    assert learner(sampler.sample()[2]).shape == (10, 5)
    history = train_nme(learner, sampler, seconds=0.0, progress=False)  # metric learners take a time budget too
    assert history["steps"] == 0
    with pytest.raises(ValueError, match="budget"):
        train_nme(learner, sampler)
    with pytest.raises(ValueError, match="kind"):
        make_nme_learner("snail")
    with pytest.raises(ValueError, match="shuffle"):
        NMESampler(data, 5, 1, 2, shuffle="sometimes")
    with pytest.raises(ValueError, match="classes_per_label"):
        NMESampler(data, 5, 1, 2, classes_per_label=7)
    with pytest.raises(ValueError, match="k_shot"):
        NMESampler(data, 5, 4, 4)


def test_quick_benchmark_prints_the_result_line():
    from helpers import run_quick

    stdout, result = run_quick("meta_augmentation.py")
    assert list(result) == ["nme_maml", "nme_maml_shuffled", "aug_none", "aug_fixed", "aug_learned",
                            "aug_learned_omniglot"]
    for key, value in result.items():
        assert value == "nan" and key == "aug_learned_omniglot" or 0.0 <= float(value) <= 1.0, (key, value)
    assert "part 1" in stdout and "part 2" in stdout and "Rajendran" in stdout
    assert f"device: {metakit.device()}" in stdout.splitlines()
