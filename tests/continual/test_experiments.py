import numpy as np
import pytest
import torch

import metakit
from metakit.continual import experiments
from metakit.continual.methods import make_strategy
from metakit.continual.stream import glyph_stream, mlp, run_stream


@pytest.fixture(scope="module")
def evaluation():
    return metakit.load_glyphs("evaluation")


def test_train_strategy_is_the_stream_and_the_seeded_strategy(evaluation):
    r = experiments.train_strategy(evaluation, "agem", n_tasks=2, epochs=1, n_classes=4, progress=False)
    assert r["R"].shape == (2, 2) and r["tasks"] == ["0°", "90°"]
    stream = glyph_stream(evaluation, "rotations", n_tasks=2, n_classes=4)
    torch.manual_seed(0)
    by_hand = run_stream(make_strategy("agem", mlp(4), memory_per_task=75, ewc_strength=10.0), stream, epochs=1,
                         progress=False)
    assert np.array_equal(r["R"], by_hand["R"]) and r["losses"] == by_hand["losses"]
    with pytest.raises(ValueError, match="memory"):
        experiments.train_strategy(evaluation, "gem", n_tasks=2, epochs=1, n_classes=4, memory_per_task=0,
                                   progress=False)


def test_compare_strategies_and_its_table(evaluation):
    results = experiments.compare_strategies(evaluation, ["naive", "replay"], progress=False, n_tasks=2, epochs=1,
                                             n_classes=4)
    again = experiments.train_strategy(evaluation, "replay", n_tasks=2, epochs=1, n_classes=4, progress=False)
    assert list(results) == ["naive", "replay"] and np.array_equal(results["replay"]["R"], again["R"])
    lines = experiments.strategies_table(results).splitlines()
    assert lines[0].split() == ["strategy", "ACC", "BWT", "FWT", "mean", "R[i,i]", "seconds"]
    assert lines[1].startswith("naive fine-tuning") and lines[2].startswith("experience replay")
    assert f"{results['replay']['acc']:6.3f}" in lines[2]


def test_online_table():
    curves = {"oml": {10: 0.5, 50: 0.4, 100: 0.3, 659: 0.1}}
    table = {"oml": {"lr": 0.003}}
    lines = experiments.online_table(curves, table, 659).splitlines()
    assert lines[0].split()[:6] == ["model", "head", "lr", "10", "50", "100"]
    assert lines[1].split() == ["oml", "3e-03", "0.500", "0.400", "0.300", "0.100"]
