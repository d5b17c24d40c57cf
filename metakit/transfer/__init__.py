"""Transfer learning against meta-learning (notebook 08).

- ``finetune``: pretraining on every background class, and Baseline / Baseline++ fine-tuning of a
  new head (and optionally more layers) on each episode's support set.
- ``widgets``: notebook 08's controls and figures.
"""

from .finetune import CosineClassifier, FineTuner

__all__ = ["CosineClassifier", "FineTuner"]
