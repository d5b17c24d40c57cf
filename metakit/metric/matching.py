"""Matching Networks (Vinyals, Blundell, Lillicrap, Kavukcuoglu and Wierstra, NeurIPS 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fewshot import FewShotClassifier


class MatchingNetwork(FewShotClassifier):
    """A query's class distribution is attention over the support set: a softmax of its cosine
    similarities to every support example, summed per class (Vinyals et al., 2016; without the
    optional full-context embeddings).

    ``P(y = k | x) = sum_{i: y_i = k} softmax_i(scale * cos(f(x), f(x_i)))``; ``forward`` returns
    its logarithm, so that ``F.cross_entropy`` (which applies ``log_softmax`` again, a no-op on
    log-probabilities) trains it as usual.

    Args:
        backbone: maps (B, C, H, W) images to (B, D) embeddings, for example ``Conv4()``.
        scale: the cosine similarities' initial temperature, learned in training (without one,
            similarities in [-1, 1] give nearly uniform attention).
    """

    def __init__(self, backbone: nn.Module, scale: float = 10.0):
        super().__init__(backbone)
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.support: torch.Tensor | None = None
        self.y_support: torch.Tensor | None = None

    def fit_support(self, x_support: torch.Tensor, y_support: torch.Tensor) -> None:
        """Keep the normalised support embeddings and their labels.

        Args:
            x_support: (n_way * k_shot, C, H, W) images.
            y_support: (n_way * k_shot,) labels in 0..n_way-1.
        """
        n_way = self.check_support(y_support)
        self.support = F.normalize(self.backbone(x_support), dim=-1)  # (n_support, D)
        self.y_support = y_support
        self.n_way = n_way

    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x_query: (n_query_total, C, H, W) images.
        Returns:
            (n_query_total, n_way) log-probabilities.
        """
        self._check_fitted()
        q = F.normalize(self.backbone(x_query), dim=-1)
        scores = self.scale * q @ self.support.T  # (n_query_total, n_support)
        # log sum_{i in class k} exp(score_i), by masking the other classes' columns with -inf
        mask = F.one_hot(self.y_support, self.n_way).T.bool()  # (n_way, n_support)
        per_class = scores[:, None, :].masked_fill(~mask[None], float("-inf")).logsumexp(-1)
        return per_class - scores.logsumexp(-1, keepdim=True)
