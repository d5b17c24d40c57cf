"""Every committed checkpoint (data/checkpoints/*.pt) loads strictly into the architecture its code
builds, and the metric few-shot ones beat chance by far on fixed glyph episodes (issue 22). A load
failure is a test failure here, never the silent retrain ``train_or_load`` falls back to.

The floor covers the checkpoints that classify without adapting (fit_support: a forward pass) on 10
episodes, and the gradient-based ones of notebooks 03 and 06 (family-*, metaaug-aug-*), which adapt
with inner steps on every episode (about a second each on the 2-core CPU), on the first 4 of them.
metaaug-nme-maml is trained on non-mutually-exclusive tasks and memorises (notebook 06's point):
near chance is its expected result, not a floor to hold."""

import pytest
import torch

from metakit.checkpoints import CHECKPOINTS, load_weights
from metakit.compare import episode_accuracy
from metakit.continual.oml import ANML, OnlineLearner
from metakit.episodes import EpisodeSampler
from metakit.gan.dagan import DAGANGenerator
from metakit.gan.dcgan import DCGANGenerator
from metakit.gradient.family import make_algorithm
from metakit.gradient.maml import MAML
from metakit.gradient.sinusoid import sinusoid_mlp
from metakit.meta_augmentation.learned import make_augmented
from metakit.meta_augmentation.nme import make_nme_learner
from metakit.metadata.encoder import ColumnPrototypes
from metakit.metric.experiments import make_model
from metakit.models import Conv4
from metakit.transfer.mtl import make_mtl

FAMILY = ["maml", "fomaml", "reptile", "anil", "metasgd", "mamlpp"]
NME = ["maml", "maml_inter", "maml_intra", "proto", "protobias", "protobias_intra"]

#: file -> a fresh model of the architecture the file was saved from, and whether the floor test runs it
BUILDERS = {
    **{f"family-{n}.pt": (lambda n=n: make_algorithm(n), False) for n in FAMILY},
    "family-fomaml-5steps.pt": (lambda: make_algorithm("fomaml", inner_steps=5, inner_lr=0.1), False),
    **{f"proto-{s}.pt": (lambda: make_model("proto"), True) for s in ("5way-60000img", "20way-60000img",
                                                                       "40way", "60way-60000img")},
    "matching-40way.pt": (lambda: make_model("matching"), True),
    "metaopt-20way.pt": (lambda: make_model("metaopt"), True),
    "transfer-proto-300s.pt": (lambda: make_model("proto"), True),
    **{f"metaaug-aug-{arm}.pt": (lambda arm=arm: make_augmented(arm), False) for arm in ("none", "fixed", "learned")},
    **{f"metaaug-nme-{n}.pt": (lambda n=n: make_nme_learner(n.split("_")[0]), n == "proto") for n in NME},
    "transfer-baseline-300s.pt": (lambda: Conv4(hidden=64), False),
    "transfer-baselinepp-300s.pt": (lambda: Conv4(hidden=64), False),
    "transfer-mtl-300s.pt": (lambda: make_mtl(), True),    # its inner loop runs on features computed once
    "transfer-maml-rot-300s.pt": (lambda: make_algorithm("maml"), False),
    "oml-3000steps.pt": (lambda: OnlineLearner(1).frozen(), False),
    "pretrain-3000steps.pt": (lambda: OnlineLearner(1).frozen(), False),
    "anml-3000steps.pt": (lambda: ANML(1).frozen(), False),
    "dcgan-glyphs.pt": (lambda: DCGANGenerator(), False),
    "dagan-glyphs.pt": (lambda: DAGANGenerator(), False),
    "dagan-balanced-glyphs.pt": (lambda: DAGANGenerator(), False),
    "sinusoid-maml-150s.pt": (lambda: MAML(sinusoid_mlp()), False),
    "sinusoid-pretrained-16825steps.pt": (lambda: sinusoid_mlp(), False),   # as many iterations as MAML
    "columns-proto.pt": (lambda: ColumnPrototypes(), False),
}
FLOOR = 0.5   # 5-way 1-shot: chance is 0.2


def test_every_committed_checkpoint_has_a_builder():
    assert sorted(p.name for p in CHECKPOINTS.glob("*.pt")) == sorted(BUILDERS)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_loads_strictly_with_finite_weights(name):
    build, _ = BUILDERS[name]
    torch.manual_seed(0)
    model = build()
    load_weights(model, name)          # load_state_dict is strict: a missing, extra or misshapen tensor raises
    saved = torch.load(CHECKPOINTS / name, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
        assert not value.is_floating_point() or torch.isfinite(value).all(), key


@pytest.fixture(scope="module")
def episodes(glyphs_evaluation):
    torch.manual_seed(0)
    sampler = EpisodeSampler(glyphs_evaluation, n_way=5, k_shot=1, n_query=5)
    return [sampler.sample() for _ in range(10)]


def accuracy(name, episodes) -> float:
    """The committed checkpoint ``name``, loaded into a fresh model, scored on ``episodes``."""
    build, _ = BUILDERS[name]
    torch.manual_seed(0)
    model = build()
    load_weights(model, name)
    model.eval()
    return sum(episode_accuracy(model, *e) for e in episodes) / len(episodes)


@pytest.mark.parametrize("name", sorted(n for n, (_, few_shot) in BUILDERS.items() if few_shot))
def test_beats_chance_by_far_on_fixed_episodes(name, episodes):
    acc = accuracy(name, episodes)
    assert acc >= FLOOR, f"{name}: {acc:.2f} on 10 fixed 5-way 1-shot glyph episodes (chance 0.2)"


GRADIENT = ([f"family-{n}.pt" for n in FAMILY] + ["family-fomaml-5steps.pt"]
            + [f"metaaug-aug-{arm}.pt" for arm in ("none", "fixed", "learned")] + ["transfer-maml-rot-300s.pt"])


@pytest.mark.parametrize("name", GRADIENT)
def test_gradient_checkpoints_beat_chance_by_far_after_adapting(name, episodes):
    acc = accuracy(name, episodes[:4])
    assert acc >= FLOOR, f"{name}: {acc:.2f} after adapting on 4 fixed 5-way 1-shot glyph episodes (chance 0.2)"


def test_a_broken_checkpoint_is_an_error(tmp_path):
    """What the tests above rely on: load_weights raises on a truncated or mismatched file."""
    path = tmp_path / "broken.pt"
    path.write_bytes((CHECKPOINTS / "proto-40way.pt").read_bytes()[:1000])
    with pytest.raises(Exception):
        load_weights(make_model("proto"), path)
    with pytest.raises(RuntimeError, match="size mismatch|Missing|Unexpected"):
        load_weights(make_model("proto", hidden=32), CHECKPOINTS / "proto-40way.pt")
