"""Continual and meta-continual learning (notebook 07).

- ``stream``: a task stream of glyphs, the learner contract (``observe``/``predict``), a memory,
  the training loop and the accuracy matrix's metrics (ACC, BWT, FWT).
- ``methods``: EWC, replay, GEM and A-GEM.
- ``oml``: OML and ANML, which meta-learn a representation for learning online.
- ``experiments``: notebook 07's tables (every strategy on the same stream; OML, ANML and the
  pretrained network on a stream of new classes), which ``benchmarks/continual.py`` runs too.
- ``widgets``: notebook 07's controls and figures.
"""

from .methods import AGEM, EWC, GEM, Replay
from .oml import ANML, OnlineLearner
from .stream import ContinualLearner, TaskMemory, continual_metrics, glyph_stream, run_stream

__all__ = ["ContinualLearner", "TaskMemory", "continual_metrics", "glyph_stream", "run_stream", "EWC", "Replay",
           "GEM", "AGEM", "OnlineLearner", "ANML"]
