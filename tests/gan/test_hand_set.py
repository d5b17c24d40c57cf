"""metakit.gan.augmentation.HandSet: hand-set deformations behind a generator's interface, the
baseline that generated images are compared with in the DAGAN paper's protocol."""

import pytest
import torch

from metakit.datasets import load_glyphs
from metakit.gan.augmentation import HandSet, augment
from metakit.gan.dagan import DAGANGenerator
from metakit.gan.low_data import low_data_run
from metakit.meta_augmentation.learned import HAND_TUNED

SMALL = dict(n_classes=6, n_test=3, steps=4, hidden=8)


def drawings(n=3):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0   # a vertical bar: ink 1 on 0
    x[:, :, 10:12, 6:22] = 1.0   # and a crossbar
    return x


def test_generate_deforms_each_drawing_within_its_range():
    x = drawings()
    out = HandSet().generate(x, 4, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 4, 1, 28, 28)
    assert 0.0 <= out.min() and out.max() <= 1.0
    moved = (out - x[:, None]).abs().flatten(2).mean(-1)        # (3, 4) mean change per copy
    assert bool((moved > 0.01).all())                            # every copy is deformed
    assert not torch.allclose(out[:, 0], out[:, 1])              # and the copies differ
    # ink stays roughly as much as it was (a warp and a pen width, not a new drawing)
    ink = out.flatten(2).sum(-1) / x[:, None].flatten(2).sum(-1)
    assert bool(((ink > 0.5) & (ink < 1.8)).all()), ink


def test_generate_repeats_with_the_generator_and_zero_strength_gives_copies():
    x = drawings()
    a = HandSet().generate(x, 2, generator=torch.Generator().manual_seed(5))
    b = HandSet().generate(x, 2, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    same = HandSet().generate(x, 2, noise_scale=0.0)
    assert torch.allclose(same, x[:, None].expand_as(same), atol=1e-5)


def test_magnitudes_default_to_notebook_06s_hand_set_policy_and_can_be_changed():
    policy = HandSet().augmentation.policy()
    assert policy["rotation"] == pytest.approx(10.0, rel=1e-3)          # degrees
    assert policy["thickness"] == pytest.approx(HAND_TUNED["thickness"], rel=1e-3)
    assert HandSet({"rotation": 0.0}).augmentation.policy()["rotation"] == pytest.approx(0.0, abs=1e-2)
    with pytest.raises(ValueError, match="unknown augmentation parameter"):
        HandSet({"colour": 0.1})


@pytest.mark.parametrize("n_samples, scale, match", [(0, 1.0, "n_samples"), (1.5, 1.0, "n_samples"),
                                                     (True, 1.0, "n_samples"), (2, -1.0, "noise_scale"),
                                                     (2, float("nan"), "noise_scale")])
def test_generate_refuses_bad_requests(n_samples, scale, match):
    with pytest.raises(ValueError, match=match):
        HandSet().generate(drawings(), n_samples, scale)


def test_it_takes_a_generators_place_in_augment_and_in_the_papers_protocol():
    x, y = drawings(), torch.tensor([0, 1, 2])
    xa, ya = augment(HandSet(), x, y, 2, seed=1)
    assert xa.shape == (9, 1, 28, 28) and torch.equal(xa[:3], x) and ya.tolist() == [0, 1, 2, 0, 0, 1, 1, 2, 2]
    evaluation = load_glyphs("evaluation")
    hand = low_data_run(HandSet(), evaluation, k_shot=1, seed=2, **SMALL)
    gan = low_data_run(DAGANGenerator(), evaluation, k_shot=1, seed=2, **SMALL)
    assert hand["base"] == gan["base"] and hand["train_base"] == gan["train_base"]  # paired across augmenters
    assert 0.0 <= hand["aug"] <= 1.0
