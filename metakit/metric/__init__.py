"""Metric methods (notebook 04): classify queries by comparing embeddings with the support set.

- ``protonet``, ``matching``, ``metaoptnet``: one method each, on
  :class:`~metakit.fewshot.FewShotClassifier`.
- ``experiments``: the factory, training regime and comparison table of notebook 04.
- ``widgets``: notebook 04's controls and figures.
"""

from .matching import MatchingNetwork
from .metaoptnet import MetaOptNet
from .protonet import PrototypicalNetwork

__all__ = ["PrototypicalNetwork", "MatchingNetwork", "MetaOptNet"]
