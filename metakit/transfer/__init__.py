"""Transfer learning against meta-learning (notebook 08).

- ``finetune``: pretraining on every background class, and Baseline / Baseline++ fine-tuning of a
  new head (and optionally more layers) on each episode's support set.
- ``experiments``: the four methods trained for the same CPU time, their comparison on the same
  episodes, the choice of layers to fine-tune and the fine-tuning curve (notebook 08's tables and
  ``benchmarks/transfer.py``).
- ``widgets``: notebook 08's controls and figures.
"""

from .finetune import CosineClassifier, FineTuner

__all__ = ["CosineClassifier", "FineTuner"]
