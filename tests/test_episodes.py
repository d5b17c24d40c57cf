import contextlib
import io
import types

import pytest
import torch

import metakit
from metakit.datasets import ImageClassDataset
from metakit.episodes import EpisodeSampler, RotatedClasses, check_episode, import_learn2learn, split_support_query


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


# Behaviour pinned on a tiny dataset of random images: each image unique, none equal to another turned.

def tiny_dataset(counts=(6, 6, 6), alphabets=("Alpha", "Beta"), name="tiny set", seed=0):
    """Random 28x28 images, class c has ``counts[c]`` of them; classes interleaved (0 1 2 0 1 2 ...)."""
    g = torch.Generator().manual_seed(seed)
    targets = [c for i in range(max(counts)) for c in range(len(counts)) if i < counts[c]]
    images = torch.randint(0, 256, (len(targets), 28, 28), generator=g, dtype=torch.uint8)
    names = [f"{alphabets[c % len(alphabets)]}/char{c}" for c in range(len(counts))]
    return ImageClassDataset(images, targets, names, name=name)


def is_one_of(x, images):
    return any(torch.equal(x, other) for other in images)


def test_rotated_classes_index_every_image_at_each_quarter_turn():
    dataset = tiny_dataset(counts=(2, 2, 2))                 # images 0..5, labels 0 1 2 0 1 2
    rotated = RotatedClasses(dataset)
    assert len(rotated) == 24 and rotated.name == "tiny set with rotations"
    assert rotated.class_names[:4] == ["Alpha/char0@0", "Beta/char1@0", "Alpha/char2@0", "Alpha/char0@90"]
    assert rotated.class_names[-1] == "Alpha/char2@270" and len(rotated.class_names) == 12
    assert rotated.labels_to_indices == {0: [0, 3], 1: [1, 4], 2: [2, 5], 3: [6, 9], 4: [7, 10], 5: [8, 11],
                                         6: [12, 15], 7: [13, 16], 8: [14, 17], 9: [18, 21], 10: [19, 22],
                                         11: [20, 23]}
    for i in range(24):
        x, y = rotated[i]
        turns, j = divmod(i, 6)
        x0, y0 = dataset[j]
        assert torch.equal(x, torch.rot90(x0, turns, dims=(-2, -1))) and y == y0 + 3 * turns
        assert i in rotated.labels_to_indices[y]


def test_check_episode_counts_four_classes_per_character_only_with_rotations():
    dataset = tiny_dataset()
    check_episode(dataset, 3, 1, 1)                          # every class is allowed
    with pytest.raises(ValueError, match="n_way <= 3"):
        check_episode(dataset, 4, 1, 1)                      # rotations are off by default
    check_episode(dataset, 12, 1, 1, rotations=True)
    with pytest.raises(ValueError) as e:
        check_episode(dataset, 13, 1, 1, rotations=True)
    assert str(e.value) == ("tiny set has 3 characters in 2 alphabets, 12 classes with the four rotations; "
                            "n_way=13 was asked. Choose n_way <= 12.")


def test_too_many_ways_message_names_the_dataset_and_its_alphabets():
    with pytest.raises(ValueError) as e:
        check_episode(tiny_dataset(), 4, 1, 1)
    assert str(e.value) == "tiny set has 3 characters in 2 alphabets; n_way=4 was asked. Choose n_way <= 3."
    with pytest.raises(ValueError) as e:
        check_episode(tiny_dataset(alphabets=("Alpha",)), 4, 1, 1)
    assert str(e.value) == "tiny set has 3 characters in 1 alphabet (Alpha); n_way=4 was asked. Choose n_way <= 3."
    # any object with num_classes and labels_to_indices will do: no name, no alphabets
    bare = types.SimpleNamespace(num_classes=3, labels_to_indices={0: [0], 1: [1], 2: [2]})
    with pytest.raises(ValueError) as e:
        check_episode(bare, 4, 1, 1)
    assert str(e.value) == "this dataset has 3 characters; n_way=4 was asked. Choose n_way <= 3."


@pytest.mark.parametrize("name", ["n_way", "k_shot", "n_query"])
def test_a_bad_value_message_names_the_argument(name):
    values = {"n_way": 2, "k_shot": 1, "n_query": 1, name: 0}
    with pytest.raises(ValueError, match=rf"^{name} must be a positive whole number; {name}=0 was asked\.$"):
        check_episode(tiny_dataset(), **values)


def test_shots_plus_queries_may_use_every_example_of_the_smallest_class():
    dataset = tiny_dataset(counts=(7, 6, 8))
    check_episode(dataset, 3, 4, 2)                          # 4 + 2 = 6, the smallest class
    with pytest.raises(ValueError) as e:
        check_episode(dataset, 3, 4, 3)
    assert str(e.value) == ("tiny set has 6 examples of its smallest class; k_shot + n_query = 4 + 3 = 7 were asked. "
                            "Choose k_shot + n_query <= 6.")


def test_documented_defaults_fifteen_queries_and_no_rotations():
    dataset = tiny_dataset(counts=(16, 16, 16))
    xs, ys, xq, yq = metakit.sample_episode(dataset, 2, 1)
    assert xs.shape[0] == 2 and xq.shape[0] == 30 and torch.bincount(yq).tolist() == [15, 15]
    sampler = EpisodeSampler(dataset, 3, 1)
    assert sampler.n_query == 15 and sampler.device == torch.device("cpu")
    images = [dataset[i][0] for i in range(len(dataset))]
    for _ in range(3):                                       # without rotations, only the dataset's own images
        xs, _, xq, _ = sampler.sample()
        assert all(is_one_of(x, images) for x in torch.cat([xs, xq]))
    with pytest.raises(ValueError, match="n_way <= 3"):
        EpisodeSampler(dataset, 4, 1, 1)


def test_rotations_reach_the_episode():
    dataset = tiny_dataset()
    images = [dataset[i][0] for i in range(len(dataset))]
    for episode in (metakit.sample_episode(dataset, 12, 1, 1, rotations=True),
                    EpisodeSampler(dataset, 12, 1, 1, rotations=True).sample()):
        xs, ys, xq, yq = episode
        assert ys.tolist() == list(range(12)) and yq.tolist() == list(range(12))
        assert sum(not is_one_of(x, images) for x in xs) == 9  # 3 classes unturned, 9 turned


def test_the_episode_moves_to_the_given_device_and_stays_put_without_one():
    dataset = tiny_dataset()                                 # "meta" tensors: a move that a CPU machine can see
    sampler = EpisodeSampler(dataset, 2, 1, 1, device="meta")
    assert sampler.device == torch.device("meta")
    assert all(t.device.type == "meta" for t in sampler.sample())
    assert all(t.device.type == "meta" for t in metakit.sample_episode(dataset, 2, 1, 1, device="meta"))
    assert all(t.device.type == "cpu" for t in EpisodeSampler(dataset, 2, 1, 1).sample())
    x, y = torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])
    assert all(t.device.type == "meta" for t in split_support_query(x, y, 1, device="meta"))
    assert all(t.device.type == "cpu" for t in split_support_query(x, y, 1))


def test_support_is_the_first_k_shot_examples_of_each_class_in_task_order():
    x = torch.arange(30.0)                                   # example i is the number i
    y = torch.arange(5).repeat(6)                            # labels 0 1 2 3 4 0 1 2 3 4 ...
    xs, ys, xq, yq = split_support_query(x, y, 2)
    assert ys.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and yq.tolist() == [c for c in range(5) for _ in range(4)]
    assert xs.tolist() == [c + 5.0 * i for c in range(5) for i in range(2)]
    assert xq.tolist() == [c + 5.0 * i for c in range(5) for i in range(2, 6)]


def test_a_fixed_number_of_tasks_cycles_through_the_same_episodes():
    dataset = tiny_dataset()
    fixed = EpisodeSampler(dataset, 2, 1, 1, num_tasks=2)
    fresh = EpisodeSampler(dataset, 2, 1, 1)
    seen = lambda sampler: {sampler.sample()[0].numpy().tobytes() for _ in range(20)}  # noqa: E731
    assert len(seen(fixed)) <= 2 and len(seen(fresh)) > 2


def test_building_a_sampler_reads_no_image():
    class Counting(ImageClassDataset):
        reads = 0

        def __getitem__(self, i):
            Counting.reads += 1
            return super().__getitem__(i)

    base = tiny_dataset()
    dataset = Counting(base.images, base.targets, base.class_names, name=base.name)
    EpisodeSampler(dataset, 3, 1, 1)
    EpisodeSampler(dataset, 12, 1, 1, rotations=True)
    assert Counting.reads == 0                               # labels come from labels_to_indices, not a pass
