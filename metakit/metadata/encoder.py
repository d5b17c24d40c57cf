"""A character-level encoder of columns and the prototypical network over it (notebook 09).

Each value is a string of characters; a small CNN over characters embeds it, and a column is the
pooled (mean and max) embedding of its values. The prototypical network (Snell et al., 2017) of
:mod:`metakit.metric.protonet` then classifies a column by its nearest type prototype, so a new type
needs only a few labelled example columns.
"""

from __future__ import annotations

import time
import unicodedata

import torch
import torch.nn.functional as F
from torch import nn

from ..episodes import EpisodeSampler
from ..metric.protonet import PrototypicalNetwork
from ..runtime import Budget, seed_everything

PAD, BOS, UNK = 0, 1, 2
_ASCII0 = 3  # printable ASCII 32..126 -> 3..97
_BUCKETS = {"Lu": 98, "Ll": 99, "L": 100, "N": 101, "P": 102, "S": 102, "Z": 103}
VOCAB_SIZE = 104
MAX_VALUES, MAX_LENGTH = 32, 40


def char_index(c: str) -> int:
    """A character's index: printable ASCII has its own; any other character falls in a bucket by
    its Unicode category (upper- or lower-case letter, other letter, digit, punctuation or symbol,
    space), and control characters in UNK. Deterministic, unlike Python's salted ``hash``."""
    o = ord(c)
    if 32 <= o < 127:
        return _ASCII0 + o - 32
    cat = unicodedata.category(c)
    return _BUCKETS.get(cat, _BUCKETS.get(cat[0], UNK))


def encode_column(values, max_values: int = MAX_VALUES, max_length: int = MAX_LENGTH) -> torch.Tensor:
    """Character indices of a column's first ``max_values`` values.

    Args:
        values: a list of strings (an empty string is a value too).
        max_values, max_length: values beyond the first ``max_values`` are dropped, and characters
            beyond ``max_length - 1`` are cut (a long string keeps its beginning).
    Returns:
        (max_values, max_length) int64: each value row starts with BOS, rows past the last value
        are all PAD.
    """
    values = list(values)
    if not values:
        raise ValueError("not enough values: the column is empty.")
    x = torch.zeros(max_values, max_length, dtype=torch.long)
    for i, v in enumerate(values[:max_values]):
        idx = [BOS] + [char_index(c) for c in str(v)[: max_length - 1]]
        x[i, : len(idx)] = torch.tensor(idx)
    return x


def encode_columns(columns, max_values: int = MAX_VALUES, max_length: int = MAX_LENGTH) -> torch.Tensor:
    """(len(columns), max_values, max_length) int64, :func:`encode_column` of each column."""
    return torch.stack([encode_column(c, max_values, max_length) for c in columns])


class ColumnEncoder(nn.Module):
    """Characters -> value embeddings (a two-layer CNN, max over characters) -> column embedding
    (mean and max over the column's values, then a linear map).

    Args:
        dim: the width of character embeddings and convolutions; the output has ``dim`` features.
    """

    def __init__(self, dim: int = 64):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, dim // 2, padding_idx=PAD)
        self.conv1 = nn.Conv1d(dim // 2, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, padding=1)
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (N, V, L) character indices from :func:`encode_columns`.
        Returns:
            (N, dim) column embeddings.
        """
        n, v, _ = x.shape
        present = x[:, :, 0] == BOS  # (N, V): which rows hold a value
        chars = x[present]  # (P, L): only the values, cut to the longest one (the CNN is the cost)
        chars = chars[:, : max(int((chars != PAD).sum(1).max()), 1)] if len(chars) else chars
        e = self.embed(chars).transpose(1, 2)  # (P, E, L')
        pad = (chars == PAD)[:, None, :]  # (P, 1, L')
        # zeroed past a value's end, so a value's embedding is the same however long its neighbours are
        e = F.relu(self.conv1(e)).masked_fill(pad, 0.0)  # (P, D, L')
        e = F.relu(self.conv2(e)).masked_fill(pad, float("-inf")).amax(-1)  # (P, D)
        h = torch.zeros(n, v, e.shape[1], dtype=e.dtype, device=e.device)
        h[present] = e  # (N, V, D), zeros where there is no value
        count = present.sum(1, keepdim=True).clamp_min(1)  # (N, 1)
        mean = h.sum(1) / count  # (N, D)
        top = h.masked_fill(~present[:, :, None], float("-inf")).amax(1)  # (N, D)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        return self.out(torch.cat([mean, top], -1))


class ColumnPrototypes(PrototypicalNetwork):
    """The prototypical network on columns: ``fit_support`` and ``forward`` take lists of columns
    (lists of strings) or their :func:`encode_columns` tensors.

    Args:
        encoder: a :class:`ColumnEncoder` (a fresh one by default).
    """

    def __init__(self, encoder: nn.Module | None = None):
        super().__init__(encoder if encoder is not None else ColumnEncoder())

    def _tensor(self, x):
        """Columns encoded (when given as lists of strings) and moved to the encoder's device."""
        x = x if torch.is_tensor(x) else encode_columns(x)
        return x.to(next(self.parameters()).device)

    def fit_support(self, x_support, y_support: torch.Tensor) -> None:
        x_support = self._tensor(x_support)
        super().fit_support(x_support, y_support.to(x_support.device))

    def forward(self, x_query) -> torch.Tensor:
        return super().forward(self._tensor(x_query))


def drop_values(x: torch.Tensor, generator: torch.Generator, min_values: int = 2) -> torch.Tensor:
    """Keep a random number (at least ``min_values``) of each column's values, so the encoder
    learns from short columns as well as long ones. x: (N, V, L); returns the same shape."""
    present = x[:, :, 0] == BOS  # (N, V)
    counts = present.sum(1)
    keep_n = (torch.rand(len(x), generator=generator) * (counts - min_values + 1).clamp_min(1)).long() + min_values
    rank = present.cumsum(1)  # values are stored first, so the rank is the position + 1
    keep = present & (rank <= keep_n[:, None])
    return x * keep[:, :, None]


def train_column_prototypes(model: ColumnPrototypes, dataset, *, n_way: int = 15, k_shot: int = 5,
                            n_query: int = 5, meta_lr: float = 1e-3, steps: int | None = None,
                            seconds: float | None = 180.0, clock=time.perf_counter, seed: int = 0,
                            progress: bool = True) -> dict:
    """Episodic training on ``dataset``'s types for a :class:`~metakit.runtime.Budget` of ``steps``
    episodes and/or ``seconds`` of ``clock`` time (wall clock by default; notebook 09 and the
    benchmark pass ``time.process_time``, CPU time).

    Episodes come from learn2learn's Taskset (:class:`~metakit.episodes.EpisodeSampler`); each
    support column keeps a random subset of its values. Returns the history: ``loss`` (one per
    episode), ``steps``, ``seconds`` (wall clock) and ``clock_seconds``.
    """
    seed_everything(seed)
    g = torch.Generator().manual_seed(seed)
    encoded = encode_columns(dataset.columns)  # (num_columns, V, L), once
    sampler = EpisodeSampler(dataset, n_way, k_shot, n_query)
    opt = torch.optim.Adam(model.parameters(), lr=meta_lr)
    device = next(model.parameters()).device
    budget = Budget(steps, seconds, clock=clock, device=device, desc="meta-training", progress=progress)
    model.train()
    for _ in budget:
        i_support, y_support, i_query, y_query = sampler.sample()
        y_support, y_query = y_support.to(device), y_query.to(device)
        model.fit_support(drop_values(encoded[i_support], g), y_support)
        loss = F.cross_entropy(model(drop_values(encoded[i_query], g)), y_query)
        if not torch.isfinite(loss):
            budget.close()
            raise FloatingPointError(f"the loss became {loss.item()}; lower meta_lr (now {meta_lr}).")
        opt.zero_grad()
        loss.backward()
        opt.step()
        budget.log(loss=loss.item())
    model.eval()
    return {"loss": [], **budget.history, **budget.summary()}


def training_summary(history: dict, every: int = 25) -> dict:
    """What a checkpoint keeps of a training history: ``steps``, ``seconds``, ``clock_seconds``, and
    the loss averaged over blocks of ``every`` episodes (``loss_curve``, ``loss_every``)."""
    losses = history["loss"]
    curve = [sum(losses[i:i + every]) / len(losses[i:i + every]) for i in range(0, len(losses), every)]
    return {"steps": history["steps"], "seconds": history["seconds"], "clock_seconds": history["clock_seconds"],
            "loss_curve": curve, "loss_every": every}
