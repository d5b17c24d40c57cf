"""metakit.gan.low_data: the DAGAN paper's own protocol (one classifier over many new classes, a
few real drawings each, with and without generated ones); plus the quick run of
benchmarks/dagan_protocol.py."""

import math

import pytest
import torch

from metakit.datasets import load_glyphs
from metakit.gan.dagan import DAGANGenerator
from metakit.gan.low_data import format_low_data, low_data_experiment, low_data_run, split_classes

SMALL = dict(n_classes=6, n_test=3, steps=4, hidden=8)


class Shift(DAGANGenerator):
    """A generator that moves the drawing one pixel to the right."""

    def forward(self, x, z):
        return torch.roll(x, 1, dims=-1)


@pytest.fixture(scope="module")
def evaluation():
    return load_glyphs("evaluation")


def test_split_gives_disjoint_drawings_of_one_class_per_row(evaluation):
    train, test = split_classes(evaluation, n_classes=7, k_shot=3, n_test=5, seed=1)
    assert train.shape == (7, 3) and test.shape == (7, 5)
    labels = {i: c for c, ix in evaluation.labels_to_indices.items() for i in ix}
    for row_train, row_test in zip(train, test):
        both = torch.cat([row_train, row_test])
        assert len(set(both.tolist())) == 8                        # no drawing both learnt and tested
        assert len({labels[int(i)] for i in both}) == 1             # all of one class
    assert len({labels[int(r[0])] for r in train}) == 7             # seven different classes
    again = split_classes(evaluation, n_classes=7, k_shot=3, n_test=5, seed=1)
    assert torch.equal(train, again[0]) and torch.equal(test, again[1])
    assert not torch.equal(train, split_classes(evaluation, n_classes=7, k_shot=3, n_test=5, seed=2)[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_classes=10_000, k_shot=1, n_test=5), "classes"),
    (dict(n_classes=5, k_shot=15, n_test=10), "smallest class"),
    (dict(n_classes=1, k_shot=1, n_test=5), "n_classes"),
    (dict(n_classes=5, k_shot=0, n_test=5), "k_shot"),
    (dict(n_classes=5, k_shot=1.5, n_test=5), "k_shot"),
    (dict(n_classes=5, k_shot=1, n_test=0), "n_test"),
])
def test_split_rejects_impossible_requests(evaluation, kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_classes(evaluation, **kwargs)


def test_run_is_paired_and_reports_accuracies(evaluation):
    """The arm without generated images cannot depend on the generator: the same classes,
    drawings, initial weights and batches."""
    a = low_data_run(DAGANGenerator(), evaluation, k_shot=2, seed=3, **SMALL)
    b = low_data_run(Shift(), evaluation, k_shot=2, seed=3, **SMALL)
    assert set(a) == {"base", "aug", "train_base", "train_aug"}
    assert a["base"] == b["base"] and a["train_base"] == b["train_base"]
    for v in a.values():
        assert 0.0 <= v <= 1.0 and v * SMALL["n_classes"] * 2 == pytest.approx(round(v * SMALL["n_classes"] * 2))


def test_run_learns_when_trained(evaluation):
    """Enough steps fit the real drawings: the run is a working classifier, not noise."""
    r = low_data_run(DAGANGenerator(), evaluation, k_shot=2, n_classes=5, n_test=3, steps=60, n_gen=1, seed=0)
    assert r["train_base"] == 1.0 and r["base"] > 0.5


def test_run_refuses_no_generated_images(evaluation):
    with pytest.raises(ValueError, match="n_gen"):
        low_data_run(DAGANGenerator(), evaluation, n_gen=0, **SMALL)


def test_experiment_summary_is_over_paired_runs(evaluation):
    out = low_data_experiment(Shift(), evaluation, shots=(1, 2), runs=2, progress=False, **SMALL)
    assert list(out) == [1, 2]
    for d in out.values():
        assert d["base"].shape == (2,) and d["aug"].shape == (2,)
        assert d["summary"]["diff"] == pytest.approx((d["aug"] - d["base"]).mean().item())
        assert math.isfinite(d["summary"]["diff_ci"])
    table = format_low_data({"glyphs, shift": out}, n_classes=SMALL["n_classes"])
    assert "glyphs, shift" in table and "6-class" in table and "2 run(s)" in table
    with pytest.raises(ValueError, match="runs"):
        low_data_experiment(Shift(), evaluation, runs=0, progress=False, **SMALL)


def test_quick_benchmark():
    from helpers import run_quick

    stdout, result = run_quick("dagan_protocol.py")
    assert "d_loss_committed" in result and "d_loss_balanced" in result
    assert "lowdata_glyphs_balanced_1shot_diff" in result and "balanced_plain_5w1s_diff" in result
    assert "lowdata_glyphs_handset_1shot_diff" in result and "handset_plain_5w1s_diff" in result
    # the augmenters' arms without augmentation are the same runs: same classes, drawings and weights
    assert result["lowdata_glyphs_handset_1shot_base"] == result["lowdata_glyphs_balanced_1shot_base"]
    for key, value in result.items():
        if "_base" in key or "generated_only" in key:
            assert 0.0 <= float(value) <= 1.0, (key, value)
    assert "the DAGAN paper's protocol" in stdout and "glyphs, hand-set" in stdout


def test_a_single_run_prints_no_interval(evaluation):
    out = low_data_experiment(Shift(), evaluation, shots=(1,), runs=1, progress=False, **SMALL)
    table = format_low_data({"one run": out}, n_classes=SMALL["n_classes"])
    assert "nan" not in table and "one run has no interval" in table
