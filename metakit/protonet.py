"""Prototypical Networks (Snell, Swersky and Zemel, NeurIPS 2017)."""

from __future__ import annotations

import torch
from torch import nn


class PrototypicalNetwork(nn.Module):
    """Classify a query by its nearest class prototype, the mean embedding of that class's support
    examples, with logits the negative squared Euclidean distances (Snell et al., 2017).

    Args:
        backbone: maps (B, C, H, W) images to (B, D) embeddings, for example ``Conv4()``.
    """

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.prototypes: torch.Tensor | None = None

    def fit_support(self, x_support: torch.Tensor, y_support: torch.Tensor) -> None:
        """Store one prototype per class.

        Args:
            x_support: (n_way * k_shot, C, H, W) images.
            y_support: (n_way * k_shot,) labels in 0..n_way-1.
        """
        z = self.backbone(x_support)  # (n_way*k_shot, D)
        n_way = int(y_support.max()) + 1
        # index_add, not a reshape, so that any label order and unequal shots per class work
        sums = torch.zeros(n_way, z.shape[1], dtype=z.dtype, device=z.device).index_add(0, y_support, z)
        counts = torch.bincount(y_support, minlength=n_way).to(z.dtype)
        if (counts == 0).any():
            raise ValueError(f"y_support must hold every label 0..{n_way - 1}; counts per label are "
                             f"{counts.long().tolist()}.")
        # kept in the graph: during training the loss reaches the backbone through the prototypes
        self.prototypes = sums / counts[:, None]  # (n_way, D)

    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x_query: (n_query_total, C, H, W) images.
        Returns:
            (n_query_total, n_way) logits, minus the squared distance to each prototype.
        """
        if self.prototypes is None:
            raise RuntimeError("Call fit_support(x_support, y_support) before classifying queries.")
        z = self.backbone(x_query)  # (n_query_total, D)
        # the plain difference, not torch.cdist: exact, and its gradient is finite at distance 0
        return -(z[:, None, :] - self.prototypes[None, :, :]).pow(2).sum(-1)
