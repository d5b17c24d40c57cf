import math

import numpy as np
import pytest
import torch
from torch import nn

import metakit
from metakit.continual import experiments
from metakit.continual.methods import EWC, make_strategy
from metakit.continual.stream import glyph_stream, mlp, run_stream

SMALL = dict(n_tasks=3, epochs=3, n_classes=4)   # small, and the network learns each task


@pytest.fixture(scope="module")
def evaluation():
    return metakit.load_glyphs("evaluation")


def test_strength_zero_is_naive_fine_tuning_and_a_diverging_run_is_a_row(evaluation):
    rows = experiments.ewc_sweep(evaluation, strengths=(0.0, 1e5), lrs=(0.1,), progress=False, **SMALL)
    assert [(r["lr"], r["strength"]) for r in rows] == [(0.1, 0.0), (0.1, 1e5)]
    naive = experiments.train_strategy(evaluation, "naive", progress=False, **SMALL)
    assert np.array_equal(rows[0]["result"]["R"], naive["R"])
    assert "result" not in rows[1] and "on task 1" in rows[1]["diverged"]   # task 0 has no penalty yet
    lines = experiments.sweep_table(rows).splitlines()
    assert lines[0].split() == ["lr", "lambda", "ACC", "BWT", "mean", "R[i,i]"]
    assert lines[1].split()[:3] == ["0.1", "0", f"{naive['acc']:.3f}"]
    assert lines[2].split() == ["0.1", "100000", "diverged", "on", "task", "1"]


def test_the_sweep_passes_each_strength_and_lr_on(evaluation):
    rows = experiments.ewc_sweep(evaluation, strengths=(3.0,), lrs=(0.05,), progress=False, **SMALL)
    by_hand = experiments.train_strategy(evaluation, "ewc", lr=0.05, ewc_strength=3.0, progress=False, **SMALL)
    assert np.array_equal(rows[0]["result"]["R"], by_hand["R"])
    assert rows[0]["result"]["losses"] == by_hand["losses"]


def test_stable_strength_is_two_over_lr_times_the_largest_summed_fisher():
    learner = EWC(nn.Linear(2, 1, bias=False), lr=0.1, strength=1.0)
    assert learner.anchors == [] and experiments.ewc_stable_strength(learner) == math.inf
    w = torch.zeros(1, 2)
    learner.anchors = [({"weight": torch.tensor([[0.5, 2.0]])}, {"weight": w}),
                       ({"weight": torch.tensor([[1.0, 0.5]])}, {"weight": w})]
    assert experiments.ewc_stable_strength(learner) == pytest.approx(2 / (0.1 * 2.5))   # 2.0 + 0.5 on weight 1
    assert experiments.ewc_stable_strength(learner, lr=0.5) == pytest.approx(2 / (0.5 * 2.5))


def test_the_stable_strength_separates_a_stable_run_from_a_diverging_one(evaluation):
    stream = glyph_stream(evaluation, "rotations", n_tasks=3, n_classes=4)
    torch.manual_seed(0)
    learner = make_strategy("ewc", mlp(4), lr=0.1, ewc_strength=1.0)
    run_stream(learner, stream, epochs=3, progress=False)
    limit = experiments.ewc_stable_strength(learner)
    assert 1.0 < limit < math.inf
    below, above = experiments.ewc_sweep(evaluation, strengths=(limit / 3, 3 * limit), lrs=(0.1,), progress=False,
                                         **SMALL)
    assert "result" in below and "diverged" in above
