"""Transfer learning against meta-learning (notebook 08).

- ``finetune``: pretraining on every background class, and Baseline / Baseline++ fine-tuning of a
  new head (and optionally more layers) on each episode's support set.
- ``mtl``: meta-transfer learning (Sun et al. 2019), a meta-learned scaling and shifting of a
  frozen pretrained Conv-4 with a head adapted per task.
- ``experiments``: the five methods trained for the same CPU time, their comparison on the same
  episodes, what MAML's test-time steps and class pool are worth, the choice of layers to fine-tune,
  the fine-tuning curve and MTL's inner loop (notebook 08's tables and ``benchmarks/transfer.py``).
- ``widgets``: notebook 08's controls and figures.
"""

from .finetune import CosineClassifier, FineTuner
from .mtl import MetaTransfer, ScaledConv4

__all__ = ["CosineClassifier", "FineTuner", "MetaTransfer", "ScaledConv4"]
