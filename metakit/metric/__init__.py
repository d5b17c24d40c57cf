"""Metric methods (notebook 04): classify queries by comparing embeddings with the support set.

- ``protonet``, ``matching``, ``metaoptnet``: one method each, on
  :class:`~metakit.fewshot.FewShotClassifier`.
- ``experiments``: notebook 04's factory, training regime, test settings for
  :func:`metakit.compare.compare`, live accuracy and 2-D embedding view.
- ``widgets``: notebook 04's controls and figures (they call ``experiments``).
"""

from .matching import MatchingNetwork
from .metaoptnet import MetaOptNet
from .protonet import PrototypicalNetwork

__all__ = ["PrototypicalNetwork", "MatchingNetwork", "MetaOptNet"]
