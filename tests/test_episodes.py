import contextlib
import io

import pytest
import torch

import metakit
from metakit.episodes import EpisodeSampler, RotatedClasses, check_episode, import_learn2learn


def test_episode_shapes_and_labels(glyphs_evaluation):
    xs, ys, xq, yq = metakit.sample_episode(glyphs_evaluation, n_way=5, k_shot=2, n_query=3)
    assert xs.shape == (10, 1, 28, 28) and xq.shape == (15, 1, 28, 28)
    assert ys.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert yq.tolist() == sorted(yq.tolist()) and torch.bincount(yq).tolist() == [3] * 5


def test_support_and_query_do_not_share_images(glyphs_evaluation):
    xs, ys, xq, yq = metakit.sample_episode(glyphs_evaluation, 20, 5, 15)
    same = (xs.flatten(1)[:, None] == xq.flatten(1)[None]).all(-1)
    assert not same.any()


def test_classes_in_an_episode_are_distinct(glyphs_evaluation):
    xs, ys, _, _ = metakit.sample_episode(glyphs_evaluation, 30, 1, 1)
    assert len(torch.unique(xs.flatten(1), dim=0)) == 30


def test_episode_goes_to_the_device(glyphs_evaluation):
    dev = metakit.device()
    episode = metakit.sample_episode(glyphs_evaluation, 3, 1, 1, device=dev)
    assert all(t.device.type == dev.type for t in episode)


def test_sampler_is_learn2learns_taskset(glyphs_evaluation):
    l2l = import_learn2learn()
    sampler = EpisodeSampler(glyphs_evaluation, 5, 1, 1)
    assert isinstance(sampler.taskset, l2l.data.Taskset)
    assert len(next(iter(sampler))) == 4


def test_learn2learn_imports_quietly():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        import_learn2learn()
    assert "Gym" not in err.getvalue()


def test_rotations_make_new_classes(omniglot):
    alphabet = omniglot.subset(omniglot.alphabets[0])
    rotated = RotatedClasses(alphabet)
    assert len(rotated.labels_to_indices) == 4 * alphabet.num_classes
    x0, y0 = rotated[0]
    x1, y1 = rotated[len(alphabet)]            # the same image at 90 degrees
    assert torch.equal(x1, torch.rot90(x0, 1, dims=(-2, -1)))
    assert y1 == y0 + alphabet.num_classes
    # more ways than characters is possible only with rotations
    n = alphabet.num_classes + 1
    with pytest.raises(ValueError):
        metakit.sample_episode(alphabet, n, 1, 1)
    xs, *_ = metakit.sample_episode(alphabet, n, 1, 1, rotations=True)
    assert xs.shape[0] == n


def test_too_many_ways_says_what_is_possible(glyphs_evaluation):
    alphabet = glyphs_evaluation.subset("Tifinagh")
    with pytest.raises(ValueError) as e:
        metakit.sample_episode(alphabet, 40, 1, 1)
    message = str(e.value)
    assert f"has {alphabet.num_classes} characters in 1 alphabet (Tifinagh)" in message
    assert "n_way=40 was asked" in message and f"n_way <= {alphabet.num_classes}" in message


def test_too_many_shots_says_what_is_possible(omniglot):
    with pytest.raises(ValueError, match=r"20 examples.*k_shot \+ n_query = 15 \+ 10 = 25.*<= 20"):
        metakit.sample_episode(omniglot, 5, 15, 10)


@pytest.mark.parametrize("n_way, k_shot, n_query", [(0, 1, 1), (5, -1, 1), (5, 1, 0), (2.5, 1, 1), (True, 1, 1)])
def test_zero_negative_or_fractional_values_are_rejected(glyphs_evaluation, n_way, k_shot, n_query):
    with pytest.raises(ValueError, match="positive whole number"):
        check_episode(glyphs_evaluation, n_way, k_shot, n_query)
