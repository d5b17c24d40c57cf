"""Prototypical Networks (Snell, Swersky and Zemel, NeurIPS 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fewshot import FewShotClassifier

DISTANCES = ("euclidean", "cosine")


class PrototypicalNetwork(FewShotClassifier):
    """Classify a query by its nearest class prototype, the mean embedding of that class's support
    examples, with logits the negative squared Euclidean distances (Snell et al., 2017).

    Args:
        backbone: maps (B, C, H, W) images to (B, D) embeddings, for example ``Conv4()``.
        distance: ``"euclidean"`` (the paper's: logits ``-|z - c_k|^2``) or ``"cosine"`` (logits
            ``scale * cos(z, c_k)``). It can be changed after training, to test an embedding
            learned with one under the other.
        scale: the cosine logits' initial temperature, learned in training.
    """

    def __init__(self, backbone: nn.Module, distance: str = "euclidean", scale: float = 10.0):
        super().__init__(backbone)
        self.distance = distance
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.prototypes: torch.Tensor | None = None

    @property
    def distance(self) -> str:
        return self._distance

    @distance.setter
    def distance(self, value: str) -> None:
        if value not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}; got {value!r}.")
        self._distance = value

    def fit_support(self, x_support: torch.Tensor, y_support: torch.Tensor) -> None:
        """Store one prototype per class.

        Args:
            x_support: (n_way * k_shot, C, H, W) images.
            y_support: (n_way * k_shot,) labels in 0..n_way-1.
        """
        n_way = self.check_support(y_support)
        z = self.backbone(x_support)  # (n_way*k_shot, D)
        # index_add, not a reshape, so that any label order and unequal shots per class work
        sums = torch.zeros(n_way, z.shape[1], dtype=z.dtype, device=z.device).index_add(0, y_support, z)
        counts = torch.bincount(y_support, minlength=n_way).to(z.dtype)
        # kept in the graph: during training the loss reaches the backbone through the prototypes
        self.prototypes = sums / counts[:, None]  # (n_way, D)
        self.n_way = n_way

    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x_query: (n_query_total, C, H, W) images.
        Returns:
            (n_query_total, n_way) logits: minus the squared distance to each prototype, or the
            scaled cosine similarity to it.
        """
        self._check_fitted()
        z = self.backbone(x_query)  # (n_query_total, D)
        if self.distance == "cosine":
            return self.scale * F.normalize(z, dim=-1) @ F.normalize(self.prototypes, dim=-1).T
        # the plain difference, not torch.cdist: exact, and its gradient is finite at distance 0
        return -(z[:, None, :] - self.prototypes[None, :, :]).pow(2).sum(-1)
