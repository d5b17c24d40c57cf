"""Notebook 09's classifier of pasted columns: the known semantic types, one prototype each, and a
radius beyond which an answer is "low confidence"; new types are added from a few example columns."""

from __future__ import annotations

import random

import torch

from ..training import model_device
from .columns import generate_column
from .encoder import encode_columns

MIN_VALUES = 2  # the fewest values a column may have


class TypeLibrary:
    """The known semantic types, one prototype each (the mean embedding of its example columns),
    and a distance radius beyond which an answer is "low confidence".

    The radius is calibrated on fresh columns of the generated types, cut to 2 to 30 values: 95% of
    them lie closer than it to their own type's prototype.

    Args:
        model: a trained :class:`~metakit.metadata.encoder.ColumnPrototypes`.
        types: type names; each gets ``k_shot`` generated example columns.
        k_shot: example columns per type.
        seed: the examples' seeds are ``10**6 + seed + i``, the calibration columns' ``2 * 10**6 + ...``,
            outside the benchmark's.
    """

    def __init__(self, model, types=(), k_shot: int = 5, seed: int = 0, calibration_columns: int = 3):
        self.model = model.eval()
        self.names: list[str] = []
        self.prototypes = torch.zeros(0, 0)
        self.spread: list[float] = []
        for t in types:
            self.add_type(t, [generate_column(t, 10**6 + seed + i) for i in range(k_shot)])
        self.calibration = self._own_distances(types, seed, calibration_columns)

    def _own_distances(self, types, seed: int, per_type: int) -> torch.Tensor:
        """Squared distances of fresh columns (2 to 30 values) to their own type's prototype."""
        r = random.Random(seed)
        cols, own = [], []
        for t in types:
            for i in range(per_type):
                cols.append(generate_column(t, 2 * 10**6 + seed + i)[: r.randint(MIN_VALUES, 30)])
                own.append(self.names.index(t))
        if not cols:
            return torch.zeros(0)
        return (self.embed(cols) - self.prototypes[own]).pow(2).sum(1)  # (len(types) * per_type,)

    @torch.no_grad()
    def embed(self, columns) -> torch.Tensor:
        return self.model.backbone(encode_columns(columns).to(model_device(self.model)))  # (N, D)

    def add_type(self, name: str, columns: list[list[str]]) -> None:
        """Add (or replace) type ``name`` from its example columns."""
        name = (name or "").strip()
        if not name:
            raise ValueError("give the new type a name.")
        if not columns:
            raise ValueError("not enough values: give at least one example column.")
        z = self.embed(columns)  # (K, D)
        proto = z.mean(0)
        # how far this type's own examples lie from its prototype; one example column gives none
        spread = float((z - proto).pow(2).sum(1).mean()) if len(z) > 1 else float("nan")
        if name in self.names:
            i = self.names.index(name)
            self.prototypes[i], self.spread[i] = proto, spread
            return
        self.names.append(name)
        self.spread.append(spread)
        self.prototypes = proto[None] if self.prototypes.numel() == 0 else torch.cat([self.prototypes, proto[None]])

    @property
    def radius(self) -> float:
        """The 95th percentile of the calibration columns' squared distances to their own prototype
        (or, without calibration, four times the median spread of the example columns)."""
        if len(self.calibration) >= 2:
            return float(self.calibration.quantile(0.95))
        known = torch.tensor([s for s in self.spread if s == s])
        return 4.0 * float(known.median()) if len(known) else float("inf")

    def predict(self, column: list[str]) -> tuple[list[tuple[str, float]], float]:
        """Types by confidence (a softmax over minus the squared distances) and the distance to the nearest."""
        if not self.names:
            raise ValueError("no types known yet: add one first.")
        d = (self.embed([column])[0] - self.prototypes).pow(2).sum(1)  # (T,)
        p = torch.softmax(-d, 0)
        order = torch.argsort(p, descending=True)
        return [(self.names[i], float(p[i])) for i in order], float(d.min())
