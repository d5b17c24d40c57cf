"""A seeded run repeats on the same machine: the same weights and the same numbers, to the bit."""
import torch

import metakit
from metakit.continual import oml


def test_meta_continual_training_repeats_to_the_bit(tmp_path):
    background = metakit.load_glyphs("background")
    runs = [oml.meta_continual_models(background, folder=tmp_path / str(i), steps=3, retrain=True, progress=False)
            for i in range(2)]
    for name in ("oml", "anml", "pretrain"):
        (a, info_a), (b, info_b) = runs[0][name], runs[1][name]
        assert info_a["loss"] == info_b["loss"]
        for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(p, q), (name, k)
