"""Gradient-based meta-learning, the MAML family (notebooks 02 and 03).

- ``functional``: the ``torch.func`` core (``adapt``, ``meta_loss``) every member shares;
  ``vmap_batchnorm``: the batch norm that ``vmap`` differentiates twice.
- ``maml``, ``reptile``, ``anil``, ``metasgd``, ``mamlpp``: one algorithm each.
- ``training``: ``meta_train`` and ``meta_evaluate``.
- ``sinusoid``: notebook 02's regression experiments; ``family``: notebook 03's experiments (factory,
  training regime, test settings for :func:`metakit.compare.compare`, the benchmark's training and
  target run, accuracy against inner steps, feature reuse, the Run button's train-and-test).
- ``widgets``: notebook 03's controls and figures (they call ``family``).
"""

from .anil import ANIL
from .maml import MAML
from .mamlpp import MAMLPlusPlus
from .metasgd import MetaSGD
from .reptile import Reptile
from .training import meta_evaluate, meta_train

__all__ = ["MAML", "Reptile", "ANIL", "MetaSGD", "MAMLPlusPlus", "meta_train", "meta_evaluate"]
