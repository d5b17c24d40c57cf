import math

import numpy as np
import pytest
import torch
from torch import nn

from metakit import seed_everything
from metakit.datasets import ImageClassDataset
from metakit.episodes import EpisodeSampler
from metakit.metric.protonet import PrototypicalNetwork
from metakit.models import Conv4
from metakit.training import evaluate, train_episodes


def blob_dataset(classes=12, per_class=10, noise=0.35, seed=0):
    """Each class is a random ink pattern; its examples are that pattern with pixels flipped at random."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((classes, 28, 28)) < 0.2
    flips = rng.random((classes, per_class, 28, 28)) < noise
    ink = (patterns[:, None] ^ flips).reshape(-1, 28, 28)
    images = np.where(ink, 0, 255).astype(np.uint8)  # Omniglot polarity: dark ink on white
    targets = np.repeat(np.arange(classes), per_class)
    return ImageClassDataset(images, targets, [f"alpha/char{c}" for c in range(classes)])


@pytest.fixture
def sampler():
    seed_everything(0)
    return EpisodeSampler(blob_dataset(), n_way=5, k_shot=1, n_query=5)


def test_training_lowers_the_loss(sampler):
    model = PrototypicalNetwork(Conv4(hidden=16))
    history = train_episodes(model, sampler, lr=3e-3, steps=60, progress=False)
    assert history["steps"] == len(history["loss"]) == len(history["acc"]) == 60
    first, last = np.mean(history["loss"][:15]), np.mean(history["loss"][-15:])
    assert last < 0.7 * first, (first, last)


def test_a_time_budget_stops_training(sampler):
    history = train_episodes(PrototypicalNetwork(Conv4(hidden=8)), sampler, seconds=0.3, progress=False)
    assert history["steps"] >= 1 and history["seconds"] >= 0.3


def test_a_budget_on_another_clock(sampler):
    ticks = iter(range(1000))  # a clock that advances one "second" per reading
    history = train_episodes(PrototypicalNetwork(Conv4(hidden=8)), sampler, seconds=3.5, progress=True,
                             clock=lambda: next(ticks))
    assert history["steps"] >= 1 and history["clock_seconds"] >= 3.5
    assert history["seconds"] < 60  # the wall clock is still recorded beside it


def test_the_first_budget_reached_wins(sampler):
    history = train_episodes(PrototypicalNetwork(Conv4(hidden=8)), sampler, seconds=600, steps=3,
                             progress=False)
    assert history["steps"] == 3


def test_a_budget_is_required(sampler):
    with pytest.raises(ValueError, match="budget"):
        train_episodes(PrototypicalNetwork(Conv4(hidden=8)), sampler, progress=False)


def test_a_non_finite_loss_raises_and_asks_for_a_lower_learning_rate(sampler):
    backbone = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 4))
    with torch.no_grad():
        backbone[1].weight.fill_(float("nan"))  # what a diverged step leaves behind
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train_episodes(PrototypicalNetwork(backbone), sampler, steps=5, progress=False)


def test_evaluate_gives_an_accuracy_and_an_interval(sampler):
    model = PrototypicalNetwork(Conv4(hidden=8)).train()
    mean, ci = evaluate(model, sampler, episodes=10, progress=False)
    assert 0.0 <= mean <= 1.0 and 0.0 <= ci < 1.0 and math.isfinite(ci)
    assert model.training  # evaluate restores the mode it found


def test_evaluate_interval_is_zero_when_every_episode_scores_the_same():
    # queries equal to their prototypes when every image of a class is identical
    seed_everything(0)
    same = blob_dataset(noise=0.0)
    mean, ci = evaluate(PrototypicalNetwork(nn.Flatten()), EpisodeSampler(same, 5, 1, 5), episodes=5,
                        progress=False)
    assert (mean, ci) == (1.0, 0.0)
