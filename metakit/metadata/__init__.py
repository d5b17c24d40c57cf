"""Few-shot tagging of data columns, metadata enhancement (notebook 09).

- ``columns``: columns of values by semantic type, generated offline with Faker.
- ``rules``: the traditional baselines (rules and dictionaries, hand-made features).
- ``encoder``: a character-level column encoder under a prototypical network.
- ``library``: notebook 09's classifier of pasted columns (a prototype per known type, new types
  from a few example columns, "low confidence" beyond a calibrated radius).
- ``experiments``: notebook 09's comparison of the three methods on the same held-out episodes and
  the trained prototypical network, which ``benchmarks/metadata.py`` runs too.
- ``widgets``: notebook 09's controls and figures (annotate a pasted column, add a type).
"""

from .columns import ColumnDataset
from .encoder import ColumnEncoder, ColumnPrototypes
from .rules import HandFeatureNearestNeighbour, RuleSignatureClassifier

__all__ = ["ColumnDataset", "ColumnEncoder", "ColumnPrototypes", "RuleSignatureClassifier",
           "HandFeatureNearestNeighbour"]
