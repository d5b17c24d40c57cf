"""Backbones shared by the metric and gradient methods."""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int, track_running_stats: bool = True) -> nn.Sequential:
    """conv3x3 - BatchNorm - ReLU - MaxPool2: one block of the Conv4 backbone; halves H and W."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels, track_running_stats=track_running_stats),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Conv4(nn.Module):
    """The four-block convolutional network of Vinyals et al. (2016), used by MAML (Finn et al., 2017)
    and Prototypical Networks (Snell et al., 2017) on Omniglot.

    A 28x28 image shrinks to 14, 7, 3 and 1 pixels through the four blocks, so the embedding is
    ``hidden`` numbers (64 by default).

    Args:
        in_channels: image channels (1 for Omniglot).
        hidden: channels of every block, and so the embedding size.
        out_features: size of a linear head on the embedding (MAML's classifier); None returns the
            embedding itself (metric methods).
        track_running_stats: passed to BatchNorm. False normalises with the statistics of the batch
            at hand in training and evaluation alike, which is what MAML-style inner loops need
            (a task's support set must not leak into running averages shared across tasks).
    """

    def __init__(self, in_channels: int = 1, hidden: int = 64, out_features: int | None = None,
                 track_running_stats: bool = True):
        super().__init__()
        self.features = nn.Sequential(
            conv_block(in_channels, hidden, track_running_stats),
            *[conv_block(hidden, hidden, track_running_stats) for _ in range(3)],
            nn.Flatten(),
        )
        self.embedding_dim = hidden
        self.head = nn.Linear(hidden, out_features) if out_features is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: (B, in_channels, 28, 28) images.
        Returns:
            (B, hidden) embeddings, or (B, out_features) logits when there is a head.
        """
        z = self.features(x)  # (B, hidden): the spatial size is 1x1 after four poolings of 28x28
        return self.head(z) if self.head is not None else z
