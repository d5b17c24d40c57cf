import math

import pytest
import torch

from metakit.datasets import ImageClassDataset
from metakit.metric.handwriting import TESTS, format_report, handwriting_experiment, merge


def test_the_experiment_beats_raw_pixels_and_reports_a_missing_set(glyphs_background, glyphs_evaluation):
    result = handwriting_experiment(glyphs_background, {"glyph": glyphs_evaluation, "omniglot": None}, steps=3,
                                    episodes=4, progress=False)
    assert result["history"]["steps"] == 3
    assert set(result["ours"]) == {f"{s}_{k}" for s in ("glyph", "omniglot") for k in TESTS}
    assert all(math.isnan(v) for v in result["ours"]["omniglot_5w1s"])
    acc, _ = result["ours"]["glyph_5w1s"]
    assert 0.2 < acc <= 1.0  # three episodes of training already embed drawings above chance
    report = format_report(result, {"glyph": glyphs_evaluation, "omniglot": None}, 4)
    assert "omniglot (not found)" in report and "pixels, " in report


def test_merge_keeps_the_classes_and_refuses_other_ones():
    a = ImageClassDataset(torch.zeros(2, 28, 28), [0, 1], ["x/a", "x/b"])
    b = ImageClassDataset(torch.ones(2, 28, 28), [1, 0], ["x/a", "x/b"])
    both = merge(a, b, "both")
    assert len(both) == 4 and both.targets.tolist() == [0, 1, 1, 0]
    with pytest.raises(ValueError, match="same classes"):
        merge(a, ImageClassDataset(torch.zeros(1, 28, 28), [0], ["y/c"]), "no")
