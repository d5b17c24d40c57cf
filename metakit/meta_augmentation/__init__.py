"""Meta-augmentation (notebook 06).

- ``nme``: non-mutually-exclusive tasks that MAML memorises, label shuffling that repairs it,
  and the probes that tell memorising from adapting.
- ``learned``: a differentiable augmentation whose magnitudes MAML's meta-gradient learns, its
  comparison with no and with a fixed augmentation, and the Run button's training.
- ``widgets``: notebook 06's controls and figures, calling ``nme`` and ``learned``.
"""

from .learned import Augmentation, AugmentedMAML
from .nme import NMESampler

__all__ = ["NMESampler", "Augmentation", "AugmentedMAML"]
