import time

import pytest
import torch
from torch import nn

import metakit
from metakit.datasets import ImageClassDataset
from metakit.episodes import EpisodeSampler
from metakit.gradient.maml import MAML
from metakit.meta_augmentation.nme import (
    BiasedPrototypicalNetwork,
    NMESampler,
    make_nme_learner,
    nme_run,
    predict_episode,
    probe,
    relabel,
    shift_labels,
    train_nme,
)
from metakit.metric.protonet import PrototypicalNetwork
from metakit.models import Conv4
from metakit.runtime import seed_everything


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


# --- behaviour pinned after the mutation run (issue 22) ------------------------------------------

def test_make_nme_learner_builds_each_kind_as_asked():
    maml = make_nme_learner("maml")
    assert isinstance(maml, MAML) and (maml.inner_lr, maml.inner_steps) == (0.4, 1)
    assert maml.model.embedding_dim == 32 and maml.model.head.out_features == 5
    maml = make_nme_learner("maml", n_way=3, hidden=4, inner_lr=0.1, inner_steps=2)
    assert (maml.inner_lr, maml.inner_steps) == (0.1, 2)
    assert maml.model.embedding_dim == 4 and maml.model.head.out_features == 3
    proto = make_nme_learner("proto", hidden=4)
    assert type(proto) is PrototypicalNetwork and proto.backbone.embedding_dim == 4
    assert make_nme_learner("proto").backbone.embedding_dim == 32
    bias = make_nme_learner("protobias", n_way=3, hidden=4)
    assert bias.backbone.embedding_dim == 4 and (bias.head.in_features, bias.head.out_features) == (4, 3)
    assert BiasedPrototypicalNetwork(Conv4(hidden=4)).head.out_features == 5


def test_biased_prototypes_fixed_values():
    """logits = -|z - c_k|^2 + w_k . z + b_k, by hand on 2-D embeddings."""
    backbone = nn.Flatten()
    backbone.embedding_dim = 2
    learner = BiasedPrototypicalNetwork(backbone, n_way=2)
    with torch.no_grad():
        learner.head.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        learner.head.bias.copy_(torch.tensor([0.5, -1.0]))
    learner.fit_support(torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0, 1]))  # c = (1,0), (0,3)
    logits = learner(torch.tensor([[1.0, 1.0], [0.0, 2.0]]))
    # z = (1, 1): -1 + 1.5 = 0.5 and -5 + 1 = -4;  z = (0, 2): -5 + 0.5 = -4.5 and -1 + 3 = 2
    torch.testing.assert_close(logits, torch.tensor([[0.5, -4.0], [-4.5, 2.0]]))


class FixedEpisodes:
    """Hands out the given episodes in turn, counting the draws."""

    def __init__(self, episodes):
        self.episodes, self.draws = episodes, 0

    def sample(self):
        self.draws += 1
        return self.episodes[(self.draws - 1) % len(self.episodes)]


class LabelRecorder(nn.Module):
    """A metric learner that notes every support label set it is shown and answers label 0."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def fit_support(self, x_support, y_support):
        self.seen.append(y_support.tolist())

    def forward(self, x_query):
        return torch.zeros(len(x_query), 5).index_fill_(1, torch.tensor([0]), 1.0)


def test_probe_shifts_the_support_labels_by_one_and_counts_episodes():
    data = coded_dataset()
    episodes = [EpisodeSampler(data, 5, 2, 3).sample() for _ in range(2)]
    learner, sampler = LabelRecorder(), FixedEpisodes(episodes)
    scores = probe(learner, sampler)
    assert set(scores) == {"acc", "acc_shifted"} and sampler.draws == 100       # the defaults
    y = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert learner.seen[:2] == [y, [1, 1, 2, 2, 3, 3, 4, 4, 0, 0]]             # true, then (l + 1) % 5
    assert scores["acc"][0] == pytest.approx(0.2)                              # label 0 is one query in five
    sampler = FixedEpisodes(episodes)
    assert probe(learner, sampler, episodes=1)["acc"][0] == pytest.approx(0.2) and sampler.draws == 1


def test_probe_scores_maml_with_and_without_its_inner_steps():
    """acc adapts with the learner's own inner steps, acc_0_steps scores the unadapted network."""
    data = coded_dataset()
    seed_everything(0)  # learn2learn draws the classes with Python's random
    maml = make_nme_learner("maml", hidden=4, inner_lr=0.3, inner_steps=2)
    episodes = [EpisodeSampler(data, 5, 1, 2).sample() for _ in range(4)]

    def accuracy(labels_of, steps):
        accs = []
        for x_support, y_support, x_query, y_query in episodes:
            params = maml.adapt(x_support, labels_of(y_support), steps=steps)
            with torch.no_grad():
                accs.append((maml.predict(params, x_query).argmax(-1) == y_query).float().mean().item())
        return sum(accs) / len(accs)

    maml.eval()
    want = {"acc": accuracy(lambda y: y, 2), "acc_shifted": accuracy(lambda y: shift_labels(y, 5), 2),
            "acc_0_steps": accuracy(lambda y: y, 0)}
    one_step = accuracy(lambda y: y, 1)
    assert len({want["acc"], one_step, want["acc_0_steps"]}) == 3, "0, 1 and 2 steps must score apart to bite"
    maml.train()
    got = probe(maml, FixedEpisodes(episodes), episodes=4, zero_steps=True)
    assert {k: v[0] for k, v in got.items()} == pytest.approx(want)
    assert maml.training, "probe restores training mode"


def test_predict_episode_takes_the_inner_steps_asked_for():
    x_support, y_support, x_query, _ = EpisodeSampler(coded_dataset(), 5, 1, 2).sample()
    torch.manual_seed(0)
    maml = make_nme_learner("maml", hidden=4, inner_lr=1.0, inner_steps=1)
    for steps in (0, 3):
        want = maml.predict(maml.adapt(x_support, y_support, steps=steps), x_query)
        torch.testing.assert_close(predict_episode(maml, x_support, y_support, x_query, steps=steps), want)
    torch.testing.assert_close(predict_episode(maml, x_support, y_support, x_query, steps=0), maml(x_query).detach())


def record_trainers(monkeypatch):
    import metakit.meta_augmentation.nme as nme
    calls = []
    monkeypatch.setattr(nme, "meta_train", lambda learner, sampler, **kw: calls.append(("meta_train", kw)) or {})
    monkeypatch.setattr(nme, "train_episodes", lambda learner, sampler, **kw: calls.append(("episodes", kw)) or {})
    return calls


def test_train_nme_hands_its_budget_and_rates_to_the_right_trainer(monkeypatch):
    calls = record_trainers(monkeypatch)
    sampler = NMESampler(coded_dataset(), n_way=5, k_shot=1, n_query=2, classes_per_label=4)
    maml, proto = make_nme_learner("maml", hidden=4), make_nme_learner("proto", hidden=4)
    clock, callback = (lambda: 0.0), (lambda history: None)
    for learner in (maml, proto):
        train_nme(learner, sampler, steps=3, seconds=2.0, meta_lr=0.01, meta_batch_size=2, clock=clock,
                  progress=False, callback=callback)
        train_nme(learner, sampler, steps=1)
    (k1, a), (k2, b), (k3, c), (k4, d) = calls
    assert (k1, k2, k3, k4) == ("meta_train", "meta_train", "episodes", "episodes")
    assert a == dict(meta_lr=0.01, meta_batch_size=2, steps=3, seconds=2.0, progress=False, callback=callback,
                     clock=clock)
    assert b == dict(meta_lr=1e-3, meta_batch_size=4, steps=1, seconds=None, progress=True, callback=None,
                     clock=time.perf_counter)
    assert c == dict(lr=0.01, steps=3, seconds=2.0, progress=False, clock=clock)
    assert d == dict(lr=1e-3, steps=1, seconds=None, progress=True, clock=time.perf_counter)


def test_relabel_keeps_the_order_of_examples_within_a_label():
    y = torch.arange(5).repeat(8)                  # labels interleaved: 0 1 2 3 4 0 1 ...
    x = torch.arange(40)                           # each "image" its position
    perm = torch.tensor([3, 1, 4, 0, 2])
    xs, ys, xq, yq = relabel((x, y, x + 100, y), perm)
    assert ys.tolist() == torch.arange(5).repeat_interleave(8).tolist()
    for xx, offset in ((xs, 0), (xq, 100)):
        for label in range(5):
            block = xx[label * 8:(label + 1) * 8] - offset
            old = int(torch.argsort(perm)[label])
            assert block.tolist() == list(range(old, 40, 5)), "examples of a label keep their order"


def test_shift_labels_message_says_which_shifts_work():
    with pytest.raises(ValueError, match=r"choose 1\.\.4\."):
        shift_labels(torch.arange(5), 5, 10)


def test_nme_sampler_defaults_and_seeded_slots():
    data = coded_dataset(classes=32)
    sampler = NMESampler(data, n_way=5, k_shot=1)
    assert sampler.n_query == 5 and sampler.sample()[2].shape[0] == 25
    assert len(sampler.classes) == 30 and sorted(sampler.slot.values()) == sorted(list(range(5)) * 6)
    torch.manual_seed(1)
    again = NMESampler(data, n_way=5, k_shot=1, seed=0)
    torch.manual_seed(2)
    other = NMESampler(data, n_way=5, k_shot=1, seed=1)
    assert again.slot == sampler.slot and other.slot != sampler.slot, "the slots depend on seed alone"
    for per in (1, 6):  # the edges: one class per label, every class used
        assert len(NMESampler(coded_dataset(), 5, 1, 2, classes_per_label=per).classes) == 5 * per


def test_nme_sampler_draws_fresh_classes_of_each_slot():
    sampler = NMESampler(coded_dataset(), n_way=5, k_shot=1, n_query=1, classes_per_label=4)
    torch.manual_seed(0)
    seen = {tuple(sampler.sample(return_classes=True)[4].tolist()) for _ in range(10)}
    assert len(seen) > 1


@pytest.mark.parametrize("per, message", [(0, "needs 0"), (True, "needs 5"), (2.5, r"needs \?"),
                                          (7, r"needs 35\. Choose classes_per_label <= 6\.$")])
def test_nme_sampler_refuses_classes_per_label(per, message):
    data = coded_dataset()
    with pytest.raises(ValueError, match=rf"^{data.name} has 30 classes; .*{message}"):
        NMESampler(data, 5, 1, 2, classes_per_label=per)


@pytest.mark.parametrize("shuffle", ["none", "intra", "inter"])
def test_sampler_on_a_named_device_and_its_classes(shuffle):
    sampler = NMESampler(coded_dataset(), n_way=5, k_shot=1, n_query=2, shuffle=shuffle, classes_per_label=4,
                         device="cpu")
    assert sampler.device == torch.device("cpu")
    *episode, classes = sampler.sample(return_classes=True)
    decoded = check_valid(episode, 5, 1, 2)
    if shuffle == "inter":
        assert classes.tolist() == [-1] * 5
        assert sampler.pool.name == f"{coded_dataset().name}, 20 classes"
    else:
        assert classes.tolist() == decoded.tolist()


def record_nme_run(monkeypatch):
    """Replace train_nme and probe inside nme by recorders; each notes the global RNG's next draw."""
    import metakit.meta_augmentation.nme as nme
    calls = []

    def fake_train(learner, sampler, **kwargs):
        calls.append(dict(what="train", learner=learner, sampler=sampler, rng=float(torch.rand(())), **kwargs))
        return {"steps": 12, "clock_seconds": 3.5}

    def fake_probe(learner, sampler, episodes, zero_steps=False):
        calls.append(dict(what="probe", learner=learner, sampler=sampler, episodes=episodes, zero_steps=zero_steps,
                          rng=float(torch.rand(()))))
        if zero_steps:
            return {"acc": (0.9, 0.01), "acc_shifted": (0.8, 0.02), "acc_0_steps": (0.7, 0.03)}
        return {"acc": (0.4, 0.04), "acc_shifted": (0.1, 0.05)}

    monkeypatch.setattr(nme, "train_nme", fake_train)
    monkeypatch.setattr(nme, "probe", fake_probe)
    return calls


def rng_after(seed, **learner):
    """The global RNG's next draw after seeding (and building the learner, when its settings are given)."""
    torch.manual_seed(seed)
    if learner:
        make_nme_learner("maml", **learner)
    return float(torch.rand(()))


def test_nme_run_trains_a_fresh_maml_then_probes_training_and_new_classes(monkeypatch):
    calls = record_nme_run(monkeypatch)
    background, evaluation = coded_dataset(), coded_dataset(classes=12, seed=1)
    callback = lambda history: None  # noqa: E731
    learner, row = nme_run(background, evaluation, shuffle="intra", inner_lr=0.2, n_way=4, k_shot=2, seconds=7.0,
                           classes_per_label=3, test_episodes=9, n_query=3, progress=False, callback=callback, seed=4)
    train, on_train, on_new = calls
    assert (train["what"], on_train["what"], on_new["what"]) == ("train", "probe", "probe")
    assert isinstance(learner, MAML) and learner.inner_lr == 0.2 and learner.model.head.out_features == 4
    assert train["learner"] is learner and on_train["learner"] is learner and on_new["learner"] is learner
    s = train["sampler"]
    assert (s.n_way, s.k_shot, s.n_query, s.shuffle, len(s.classes)) == (4, 2, 3, "intra", 12)
    assert s.slot == NMESampler(background, 4, 2, 3, classes_per_label=3, seed=4).slot
    assert (train["seconds"], train["progress"], train["callback"], train["clock"]) == (7.0, False, callback,
                                                                                      time.process_time)
    p = on_train["sampler"]   # the NME family itself, unshuffled, the same classes and slots
    assert (p.n_way, p.k_shot, p.n_query, p.shuffle, p.slot) == (4, 2, 3, "none", s.slot)
    assert on_train["episodes"] == 9 and on_train["zero_steps"] is True
    e = on_new["sampler"]     # ordinary episodes of the new classes
    assert isinstance(e, EpisodeSampler) and (e.n_way, e.k_shot, e.n_query) == (4, 2, 3)
    assert set(class_of(e.sample()[0]).tolist()) <= set(range(12))
    assert on_new["episodes"] == 9 and on_new["zero_steps"] is False
    assert (train["rng"], on_train["rng"], on_new["rng"]) == (rng_after(4, n_way=4, inner_lr=0.2),
                                                             rng_after(5), rng_after(6))
    assert row == {"acc": (0.9, 0.01), "acc_shifted": (0.8, 0.02), "acc_0_steps": (0.7, 0.03), "new": (0.4, 0.04),
                   "new_shifted": (0.1, 0.05), "steps": 12, "cpu_s": 3.5}
    torch.manual_seed(4)
    fresh = make_nme_learner("maml", n_way=4, inner_lr=0.2)
    assert all(torch.equal(a, b) for a, b in zip(learner.parameters(), fresh.parameters())), "seeded, then built"


def test_nme_run_defaults_are_the_experiments(monkeypatch):
    calls = record_nme_run(monkeypatch)
    learner, _ = nme_run(coded_dataset(), coded_dataset(seed=1))
    train, on_train, on_new = calls
    assert learner.inner_lr == 0.1 and learner.model.head.out_features == 5          # NME's inner rate, 5-way
    s = train["sampler"]
    assert (s.n_way, s.k_shot, s.n_query, s.shuffle, len(s.classes)) == (5, 1, 5, "none", 25)
    assert train["seconds"] == 20.0 and train["progress"] is True and train["callback"] is None
    assert on_train["episodes"] == on_new["episodes"] == 50 and train["rng"] == rng_after(0, inner_lr=0.1)
    assert (on_new["sampler"].k_shot, on_new["sampler"].n_query) == (1, 5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(shuffle="some"), "^shuffle must be one of none, intra, inter"), (dict(inner_lr=True), "^inner_lr"),
    (dict(inner_lr="0.1"), "^inner_lr"), (dict(inner_lr=0.0), "^inner_lr"), (dict(inner_lr=10.5), "^inner_lr"),
    (dict(inner_lr=float("nan")), "^inner_lr"), (dict(n_way=1), "^n_way must be at least 2"),
    (dict(seconds=0), "^seconds"), (dict(seconds=600.5), "^seconds"), (dict(seconds="5"), "^seconds"),
    (dict(k_shot=6), "k_shot"), (dict(classes_per_label=7), "classes_per_label")])
def test_nme_run_refuses_before_training(monkeypatch, kwargs, match):
    calls = record_nme_run(monkeypatch)
    with pytest.raises(ValueError, match=match):
        nme_run(coded_dataset(), coded_dataset(seed=1), **kwargs)
    assert calls == []


def test_nme_run_accepts_the_edges(monkeypatch):
    calls = record_nme_run(monkeypatch)
    nme_run(coded_dataset(), coded_dataset(seed=1), inner_lr=10, n_way=2, seconds=600, classes_per_label=1)
    assert calls[0]["seconds"] == 600 and calls[0]["learner"].inner_lr == 10
    nme_run(coded_dataset(), coded_dataset(seed=1), seconds=0.5)
    assert calls[3]["seconds"] == 0.5
