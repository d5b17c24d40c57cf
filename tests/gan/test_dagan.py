"""metakit.gan.dagan: shapes and ranges of the variations, the pair training loop, and that the trained
generator conditions on its input."""

import math

import pytest
import torch

from metakit.datasets import ImageClassDataset, load_glyphs
from metakit.gan.dagan import CHECKPOINT, DAGANGenerator, class_index, load_dagan, train_dagan
from metakit.gan.dcgan import DCGANDiscriminator, dataset_images


def tiny_dataset(classes=4, per_class=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(classes * per_class, 28, 28, generator=g) * 255).to(torch.uint8)
    return ImageClassDataset(images, torch.arange(classes).repeat_interleave(per_class),
                             [f"a/{c}" for c in range(classes)])


def test_generate_shapes_and_range():
    torch.manual_seed(0)
    g = DAGANGenerator(z_dim=4, hidden=4)
    x = torch.rand(3, 1, 28, 28)
    assert g(x, torch.randn(3, 4)).shape == (3, 1, 28, 28)
    v = g.generate(x, 5, noise_scale=0.5, generator=torch.Generator().manual_seed(0))
    assert v.shape == (3, 5, 1, 28, 28)
    assert v.min() >= 0 and v.max() <= 1
    assert g.training  # generate() restores the mode it found


def test_noise_scale_zero_gives_identical_variations():
    g = DAGANGenerator(z_dim=4, hidden=4)
    v = g.generate(torch.rand(2, 1, 28, 28), 3, noise_scale=0.0)
    assert torch.allclose(v[:, 0], v[:, 1]) and torch.allclose(v[:, 0], v[:, 2])


def test_generate_rejects_bad_values():
    g = DAGANGenerator(z_dim=4, hidden=4)
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match="n_samples"):
        g.generate(x, 0)
    with pytest.raises(ValueError, match="noise_scale"):
        g.generate(x, 2, noise_scale=-1.0)
    with pytest.raises(ValueError, match="noise_scale"):
        g.generate(x, 2, noise_scale=float("nan"))


def test_class_index_lists_each_class():
    ds = tiny_dataset()
    index = class_index(ds)
    assert index.shape == (4, 5)
    assert all((ds.targets[row] == c).all() for c, row in enumerate(index))


def test_training_runs_on_pairs():
    torch.manual_seed(0)
    g = DAGANGenerator(z_dim=4, hidden=4)
    h = train_dagan(g, tiny_dataset(), discriminator=DCGANDiscriminator(in_channels=2, hidden=4), steps=5,
                    batch_size=4, progress=False)
    assert h["steps"] == 5 and all(math.isfinite(v) for v in h["d_loss"] + h["g_loss"])
    assert not g.training


@pytest.fixture(scope="module")
def committed():
    return load_dagan(CHECKPOINT)


def test_committed_generator_conditions_on_its_input(committed):
    """Variations of a character are nearer to it than to the other characters, in a fixed
    embedding (the committed prototypical network's) and, on average, in pixels."""
    from metakit.gan.augmentation import conditioning

    evaluation = load_glyphs("evaluation")
    c = conditioning(committed, evaluation, n_chars=20)
    assert c["closer"] == 1.0 and c["nearest_own"] >= 0.7
    assert c["own"] < 0.5 * c["others"]
    p = conditioning(committed, evaluation, n_chars=20, embed="pixels")
    assert p["own"] < p["others"]


def test_an_untrained_generator_copies_its_input():
    """It starts at the identity (zero-initialised heads): a copy is nearest to its own input."""
    from metakit.gan.augmentation import conditioning

    c = conditioning(DAGANGenerator().eval(), load_glyphs("evaluation"), n_chars=10, embed="pixels")
    assert c["nearest_own"] == 1.0 and c["own"] == pytest.approx(0.0, abs=1e-4)


def test_committed_generator_is_not_a_copier(committed):
    evaluation = load_glyphs("evaluation")
    x = dataset_images(evaluation)[:10]
    v = committed.generate(x, 3, generator=torch.Generator().manual_seed(0))
    assert (v - x[:, None]).abs().mean() > 0.01


def test_pairs_the_discriminator_sees():
    """A real pair is two different drawings of one character; a fake pair is a drawing and a
    variation of that same drawing (issue 22: what the DAGAN's game is defined on)."""
    ds = tiny_dataset(classes=3, per_class=4)
    images = dataset_images(ds)
    seen = []

    class Spy(DCGANDiscriminator):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    g = DAGANGenerator(z_dim=4, hidden=4)
    train_dagan(g, ds, discriminator=Spy(in_channels=2, hidden=4), steps=1, batch_size=16, progress=False)
    real, fake = seen[0], seen[1]   # the discriminator's step sees the real pairs, then the fake ones
    label_of = {i: int(ds.targets[i]) for i in range(len(ds))}

    def which(img):
        return int(((images - img).abs().flatten(1).sum(1)).argmin())

    for a, b in zip(real[:, :1], real[:, 1:]):
        i, j = which(a), which(b)
        assert i != j and label_of[i] == label_of[j]
    assert torch.equal(fake[:, :1], real[:, :1])   # the generator varies the same drawings
