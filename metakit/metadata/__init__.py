"""Few-shot tagging of data columns, metadata enhancement (notebook 09).

- ``columns``: columns of values by semantic type, generated offline with Faker.
- ``rules``: the traditional baselines (rules and dictionaries, hand-made features).
- ``encoder``: a character-level column encoder under a prototypical network.
- ``widgets``: notebook 09's controls and figures (annotate a pasted column, add a type).
"""

from .columns import ColumnDataset
from .encoder import ColumnEncoder, ColumnPrototypes
from .rules import HandFeatureNearestNeighbour, RuleSignatureClassifier

__all__ = ["ColumnDataset", "ColumnEncoder", "ColumnPrototypes", "RuleSignatureClassifier",
           "HandFeatureNearestNeighbour"]
