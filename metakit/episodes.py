"""N-way K-shot episodes, drawn with learn2learn's Taskset (its TaskDataset, renamed in 0.2) and task transforms."""

from __future__ import annotations

import contextlib
import io
import warnings

import torch

from .datasets import ImageClassDataset

ROTATIONS = (0, 1, 2, 3)  # multiples of 90 degrees


def import_learn2learn():
    """Import learn2learn without the gym deprecation chatter it prints on import."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        import learn2learn
    return learn2learn


class RotatedClasses(torch.utils.data.Dataset):
    """Each class at 0, 90, 180 and 270 degrees becomes a class of its own (the Omniglot convention
    of Santoro et al., 2016), so a dataset of C classes offers 4C."""

    def __init__(self, dataset: ImageClassDataset):
        self.dataset = dataset
        n, c = len(dataset), dataset.num_classes
        self.name = f"{dataset.name} with rotations"
        self.class_names = [f"{name}@{90 * r}" for r in ROTATIONS for name in dataset.class_names]
        self.labels_to_indices = {
            label + r * c: [i + r * n for i in ix]
            for r in ROTATIONS for label, ix in dataset.labels_to_indices.items()}

    def __len__(self):
        return 4 * len(self.dataset)

    def __getitem__(self, i):
        r, j = divmod(i, len(self.dataset))
        x, y = self.dataset[j]
        return torch.rot90(x, r, dims=(-2, -1)), y + r * self.dataset.num_classes


def check_episode(dataset, n_way, k_shot, n_query, rotations=False) -> None:
    """Raise ``ValueError`` saying what is possible when an episode cannot be drawn from ``dataset``."""
    for name, value in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number; {name}={value!r} was asked.")
    classes = dataset.num_classes * (4 if rotations else 1)
    where = getattr(dataset, "name", "this dataset")
    if n_way > classes:
        alphabets = getattr(dataset, "alphabets", [])
        detail = f"{dataset.num_classes} characters" + (f" in {len(alphabets)} alphabet" + "s" * (len(alphabets) != 1)
                                                        + (f" ({alphabets[0]})" if len(alphabets) == 1 else "")
                                                        if alphabets else "")
        if rotations:
            detail += f", {classes} classes with the four rotations"
        raise ValueError(f"{where} has {detail}; n_way={n_way} was asked. Choose n_way <= {classes}.")
    counts = [len(ix) for ix in dataset.labels_to_indices.values()]
    fewest = min(counts)
    if k_shot + n_query > fewest:
        raise ValueError(
            f"{where} has {fewest} examples of its smallest class; k_shot + n_query = {k_shot} + {n_query} "
            f"= {k_shot + n_query} were asked. Choose k_shot + n_query <= {fewest}.")


class EpisodeSampler:
    """Draws N-way K-shot episodes with Q queries per class from an image dataset.

    The classes and examples are chosen by learn2learn's ``Taskset`` (formerly ``TaskDataset``) with the ``NWays``,
    ``KShots``, ``LoadData``, ``RemapLabels`` and ``ConsecutiveLabels`` transforms; this class
    only checks the request, splits each task into support and query, and moves it to ``device``.

    Args:
        dataset: an :class:`~metakit.datasets.ImageClassDataset`.
        n_way, k_shot, n_query: classes per episode, support and query examples per class.
        rotations: add each class rotated by 90, 180 and 270 degrees as new classes.
        device: where the tensors go (default: CPU).
        num_tasks: -1 draws fresh tasks forever; a positive number cycles through a fixed set.
    """

    def __init__(self, dataset, n_way: int, k_shot: int, n_query: int = 15, rotations: bool = False,
                 device=None, num_tasks: int = -1):
        check_episode(dataset, n_way, k_shot, n_query, rotations)
        l2l = import_learn2learn()
        self.n_way, self.k_shot, self.n_query = n_way, k_shot, n_query
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._move = device is not None   # without device=, the tensors stay where the dataset made them
        source = RotatedClasses(dataset) if rotations else dataset
        meta = l2l.data.MetaDataset(source, labels_to_indices=source.labels_to_indices)
        transforms = [
            l2l.data.transforms.NWays(meta, n_way),
            l2l.data.transforms.KShots(meta, k_shot + n_query),
            l2l.data.transforms.LoadData(meta),
            l2l.data.transforms.RemapLabels(meta),
            l2l.data.transforms.ConsecutiveLabels(meta),
        ]
        self.taskset = l2l.data.Taskset(meta, task_transforms=transforms, num_tasks=num_tasks)

    def sample(self):
        """One episode.

        Returns:
            x_support (n_way*k_shot, 1, 28, 28), y_support (n_way*k_shot,),
            x_query (n_way*n_query, 1, 28, 28), y_query (n_way*n_query,), on ``device``;
            labels run 0..n_way-1 and both sets are ordered by label.
        """
        x, y = self.taskset.sample()  # (n_way*(k_shot+n_query), 1, 28, 28), labels 0..n_way-1
        return split_support_query(x, y, self.k_shot, device=self.device if self._move else None)

    def __iter__(self):
        while True:
            yield self.sample()


def split_support_query(x, y, k_shot: int, device=None):
    """Split a task into the first ``k_shot`` examples of each class and the rest (the queries)."""
    y = torch.as_tensor(y)
    order = torch.argsort(y, stable=True)
    x, y = x[order], y[order]
    first = torch.zeros_like(y, dtype=torch.bool)
    for c in torch.unique(y):
        first[torch.nonzero(y == c).flatten()[:k_shot]] = True
    out = x[first], y[first], x[~first], y[~first]
    return tuple(t.to(device) for t in out) if device is not None else out


def sample_episode(dataset, n_way: int, k_shot: int, n_query: int = 15, rotations: bool = False, device=None):
    """One N-way K-shot episode: ``(x_support, y_support, x_query, y_query)`` (see :class:`EpisodeSampler`)."""
    return EpisodeSampler(dataset, n_way, k_shot, n_query, rotations=rotations, device=device).sample()
