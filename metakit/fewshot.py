"""The base of the metric methods: fit the support set once, then score queries."""

from __future__ import annotations

import torch
from torch import nn


class FewShotClassifier(nn.Module):
    """A backbone plus a rule that turns support embeddings into a classifier (the metric-method
    contract: ``fit_support(x_support, y_support)``, then ``forward(x_query) -> logits``).

    Subclasses implement :meth:`fit_support` and :meth:`forward`; both run the backbone, so the
    loss on the queries reaches it through what was fitted on the support set.

    Args:
        backbone: maps (B, C, H, W) images to (B, D) embeddings, for example ``Conv4()``.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.n_way: int | None = None

    @staticmethod
    def check_support(y_support: torch.Tensor) -> int:
        """The number of classes in ``y_support``; a ``ValueError`` if a label in 0..n_way-1 is missing."""
        if y_support.ndim != 1 or len(y_support) == 0:
            raise ValueError(f"y_support must be a non-empty 1-D tensor of labels; got shape {tuple(y_support.shape)}.")
        n_way = int(y_support.max()) + 1
        counts = torch.bincount(y_support, minlength=n_way)
        if (counts == 0).any():
            raise ValueError(f"y_support must hold every label 0..{n_way - 1}; counts per label are {counts.tolist()}.")
        return n_way

    def _check_fitted(self):
        if self.n_way is None:
            raise RuntimeError("Call fit_support(x_support, y_support) before classifying queries.")

    def fit_support(self, x_support: torch.Tensor, y_support: torch.Tensor) -> None:
        raise NotImplementedError

    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
