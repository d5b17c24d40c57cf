import warnings

import numpy as np
import pytest
import torch
from torch import nn

from metakit import seed_everything
from metakit.datasets import ImageClassDataset, SinusoidTasks
from metakit.episodes import EpisodeSampler
from metakit.gradient.maml import MAML
from metakit.gradient.reptile import Reptile
from metakit.gradient.training import meta_evaluate, meta_train, sample_tasks
from metakit.models import Conv4


def sine_mlp(hidden=40):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def sine_task_fn(seed=0):
    g, tasks = torch.Generator().manual_seed(seed), SinusoidTasks()
    return lambda meta_batch_size: tasks.sample(meta_batch_size, 10, 10, generator=g)


def blob_sampler(classes=8, per_class=4):
    rng = np.random.default_rng(0)
    patterns = rng.random((classes, 28, 28)) < 0.2
    ink = (patterns[:, None] ^ (rng.random((classes, per_class, 28, 28)) < 0.1)).reshape(-1, 28, 28)
    dataset = ImageClassDataset(np.where(ink, 0, 255).astype(np.uint8), np.repeat(np.arange(classes), per_class),
                                [f"a/c{c}" for c in range(classes)])
    seed_everything(0)
    return EpisodeSampler(dataset, n_way=5, k_shot=1, n_query=2)


def test_meta_train_on_sinusoids_lowers_the_query_loss():
    maml = MAML(sine_mlp(), inner_lr=0.01, inner_steps=1)
    history = meta_train(maml, sine_task_fn(), meta_lr=1e-3, meta_batch_size=10, steps=60, progress=False)
    assert history["steps"] == 60 and len(history["loss"]) == len(history["mse"]) == 60
    assert history["seconds"] > 0
    assert np.mean(history["loss"][-15:]) < np.mean(history["loss"][:15])


def test_meta_train_and_evaluate_on_episodes():
    sampler = blob_sampler()
    tasks = sample_tasks(sampler, 3)
    assert [tuple(t.shape) for t in tasks] == [(3, 5, 1, 28, 28), (3, 5), (3, 10, 1, 28, 28), (3, 10)]
    torch.manual_seed(0)
    maml = MAML(Conv4(hidden=4, out_features=5, track_running_stats=False), inner_lr=0.4)
    history = meta_train(maml, sampler, meta_lr=1e-3, meta_batch_size=2, steps=3, progress=False)
    assert all(0.0 <= a <= 1.0 for a in history["acc"])
    acc, ci95 = meta_evaluate(maml, sampler, episodes=4, steps=2)
    assert 0.0 <= acc <= 1.0 and ci95 >= 0.0
    assert maml.training  # evaluation restores the mode


def test_reptile_trains_with_sgd_as_the_outer_optimiser():
    reptile = Reptile(sine_mlp(hidden=8), inner_lr=0.01, inner_steps=3)
    history = meta_train(reptile, sine_task_fn(), meta_lr=0.1, meta_batch_size=4, steps=3, progress=False,
                         optimizer=torch.optim.SGD)
    assert history["steps"] == 3


def test_divergence_and_missing_budget_raise_clear_errors():
    maml = MAML(sine_mlp(), inner_lr=0.01)
    with pytest.raises(FloatingPointError, match=r"meta-iteration \d+ \(meta_lr=1e\+08\)"):
        meta_train(maml, sine_task_fn(), meta_lr=1e8, meta_batch_size=4, steps=20, progress=False)
    with pytest.raises(ValueError, match="budget"):
        meta_train(maml, sine_task_fn(), meta_lr=1e-3, meta_batch_size=4)
    with pytest.raises(TypeError, match="pass a function"):
        meta_train(maml, SinusoidTasks(), meta_lr=1e-3, meta_batch_size=4, steps=1, progress=False)
    with pytest.raises(ValueError, match="episodes"):
        meta_evaluate(maml, blob_sampler(), episodes=0)


def test_a_fractional_seconds_budget_keeps_the_progress_bar_within_its_total():
    # the bar's total was round(seconds): a 1.4 s budget showed 1.4 of 1 and tqdm warned "clamping frac"
    maml = MAML(sine_mlp(), inner_lr=0.01, inner_steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = meta_train(maml, sine_task_fn(), meta_lr=1e-3, meta_batch_size=2, seconds=1.4, progress=True)
    assert history["steps"] > 0
