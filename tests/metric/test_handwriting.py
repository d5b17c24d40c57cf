import math

import pytest
import torch
from helpers import small_glyph_builds

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


def test_augmented_sampler_deforms_every_training_image_and_keeps_the_labels(glyphs_background):
    from metakit.episodes import EpisodeSampler
    from metakit.metric.handwriting import AugmentedSampler

    plain = EpisodeSampler(glyphs_background, n_way=5, k_shot=1, n_query=2).sample()

    class Fixed:  # the same episode every time, to compare with and without deformation
        def sample(self):
            return tuple(t.clone() for t in plain)

    out = AugmentedSampler(Fixed(), strength=1.0, seed=3).sample()
    assert [t.shape for t in out] == [t.shape for t in plain]
    assert torch.equal(out[1], plain[1]) and torch.equal(out[3], plain[3])            # labels untouched
    changed = (out[0] - plain[0]).abs().flatten(1).mean(1)
    assert bool((changed > 0.005).all()) and 0.0 <= out[0].min() and out[0].max() <= 1.0
    again = AugmentedSampler(Fixed(), strength=1.0, seed=3).sample()
    assert all(torch.equal(a, b) for a, b in zip(out, again))                         # repeats with its seed
    with pytest.raises(ValueError, match="positive"):
        AugmentedSampler(Fixed(), strength=0.0)
    with pytest.raises(ValueError, match="limit"):
        AugmentedSampler(Fixed(), strength=5.0)


def test_the_experiment_trains_on_deformed_episodes_when_asked(glyphs_background, glyphs_evaluation):
    result = handwriting_experiment(glyphs_background, {"glyph": glyphs_evaluation}, steps=2, episodes=2,
                                    progress=False, augment=1.5)
    assert result["history"]["steps"] == 2 and 0.0 <= result["ours"]["glyph_5w1s"][0] <= 1.0


def test_fresh_build_returns_the_splits_of_the_stroke_parameters_it_was_given(monkeypatch):
    from metakit.metric.handwriting import fresh_build
    small_glyph_builds(monkeypatch, ["Ogham", "Old_Italic"])
    _, data, background, evaluation = fresh_build(style="strokes", params={"bend": 1.5}, progress=False)
    _, plain, *_ = fresh_build(style="strokes", progress=False)
    assert not torch.equal(torch.as_tensor(data["images"]), torch.as_tensor(plain["images"]))
    # the splits are the bent drawings just built, not a default build made when reading them back
    split = torch.as_tensor(data["class_split"] == "background")[torch.as_tensor(data["targets"])]
    assert torch.equal(background.images, torch.as_tensor(data["images"])[split])
    assert len(evaluation) and torch.equal(evaluation.images, torch.as_tensor(data["images"])[~split])
