import math

import pytest
import torch

from metakit.stats import mean_ci


def test_population_interval_fixed_value():
    mean, half = mean_ci([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(1.96 * 0.5 / math.sqrt(2))


def test_sample_interval_and_a_single_value():
    mean, half = mean_ci(torch.tensor([0.0, 1.0, 0.0, 1.0]), correction=1)
    assert mean == 0.5 and half == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)
    mean, half = mean_ci(torch.tensor([0.7]), correction=1)
    assert mean == pytest.approx(0.7) and math.isnan(half)
    assert mean_ci([0.7]) == (pytest.approx(0.7), 0.0)


def test_a_paired_difference_is_the_interval_of_the_differences():
    a, b = torch.tensor([0.8, 0.9, 1.0, 0.7]), torch.tensor([0.7, 0.8, 0.9, 0.6])
    assert mean_ci(a - b) == (pytest.approx(0.1), pytest.approx(0.0, abs=1e-6))
