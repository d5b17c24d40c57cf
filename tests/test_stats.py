import math

import numpy as np
import pytest
import torch

from metakit.stats import format_ci, mean_ci, seed_summary, t95


def test_large_samples_use_the_papers_convention():
    """From 30 values: 1.96 * population std / sqrt(n), as the few-shot papers' code computes it."""
    values = np.random.default_rng(0).random(600)
    mean, half = mean_ci(values.tolist())
    assert mean == pytest.approx(values.mean())
    assert half == pytest.approx(1.96 * np.std(values) / math.sqrt(600))


def test_small_samples_use_student_t_with_the_sample_std():
    values = [0.0, 1.0, 0.0, 1.0]
    mean, half = mean_ci(torch.tensor(values))
    assert mean == 0.5
    assert half == pytest.approx(3.182446 * np.std(values, ddof=1) / 2, rel=1e-6)
    assert t95(2) == pytest.approx(4.302653, rel=1e-6)
    # a t interval is wider than the normal one for the same sample
    assert half > 1.96 * np.std(values, ddof=1) / 2


def test_a_single_value_has_no_interval_and_no_values_is_an_error():
    mean, half = mean_ci([0.7])
    assert mean == pytest.approx(0.7) and math.isnan(half)
    assert format_ci(mean, half) == "0.7000 (1 value)" and format_ci(0.7, 0.01, 2) == "0.70±0.01"
    with pytest.raises(ValueError, match="at least one"):
        mean_ci([])


def test_a_paired_difference_is_the_interval_of_the_differences():
    a, b = torch.tensor([0.8, 0.9, 1.0, 0.7]), torch.tensor([0.7, 0.8, 0.9, 0.6])
    assert mean_ci(a - b) == (pytest.approx(0.1), pytest.approx(0.0, abs=1e-6))


def test_format_ci():
    assert format_ci(0.98621, 0.00251) == "0.9862±0.0025"
    assert format_ci(0.5, 0.25, digits=2) == "0.50±0.25"


def test_the_boundaries_between_the_three_cases():
    """Two values already have a (t) interval; exactly 30 already use the papers' convention (issue 22:
    mutation testing left these boundaries unchecked)."""
    mean, half = mean_ci([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(t95(1) * math.sqrt(0.5) / math.sqrt(2))
    values = np.random.default_rng(1).random(30)
    assert mean_ci(values.tolist())[1] == pytest.approx(1.96 * np.std(values) / math.sqrt(30))
    assert mean_ci(values[:29].tolist())[1] == pytest.approx(t95(28) * np.std(values[:29], ddof=1) / math.sqrt(29))


def test_computes_in_float64():
    """A list of Python floats is not rounded to float32 (which would lose the 1 in 1e8 + 1)."""
    mean, half = mean_ci([1e8 + 1, 1e8 + 2, 1e8 + 3])
    assert mean == 1e8 + 2 and half == pytest.approx(t95(2) / math.sqrt(3))


def test_seed_summary_pairs_the_seeds():
    a, b = [0.90, 0.80, 0.85], [0.92, 0.825, 0.865]  # b wins by 0.02, 0.025, 0.015 on every seed
    r = seed_summary(a, b)
    assert r["a_mean"] == pytest.approx(0.85) and r["b_mean"] == pytest.approx(0.87)
    assert r["a_std"] == pytest.approx(np.std(a, ddof=1)) and r["a_range"] == pytest.approx(0.10)
    assert r["b_range"] == pytest.approx(0.095)
    assert r["diff"] == pytest.approx(0.02)
    assert r["diff_ci"] == pytest.approx(t95(2) * 0.005 / math.sqrt(3))
    assert r["excludes_zero"]  # the spread across seeds (0.10) is large, the paired gap is steady
    # unpaired, the same figures would not tell the methods apart: the interval is the pairs'
    assert not seed_summary([0.90, 0.80, 0.85], [0.80, 0.90, 0.91])["excludes_zero"]


def test_seed_summary_with_one_seed_has_no_interval_and_bad_input_says_so():
    r = seed_summary([0.7], [0.8])
    assert r["diff"] == pytest.approx(0.1) and math.isnan(r["diff_ci"]) and math.isnan(r["a_std"])
    assert not r["excludes_zero"]
    with pytest.raises(ValueError, match="one value per seed"):
        seed_summary([0.7, 0.8], [0.8])
    with pytest.raises(ValueError, match="one value per seed"):
        seed_summary([], [])
