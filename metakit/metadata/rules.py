"""The traditional baselines for annotating columns: rules and dictionaries, and nearest neighbour
on hand-made features.

Both follow the metric-method contract on columns (lists of strings): ``fit_support(x_support,
y_support)`` then ``forward(x_query) -> logits (n_query, n_way)``.

The rules are regular expressions and vocabularies written once for common types (email, URL,
dates, times, phone numbers, postcodes, amounts, percentages, IBANs, IP and MAC addresses, names,
countries, booleans ...), as a data-cleaning tool ships them, whichever side of the type split of
:mod:`metakit.metadata.columns` they fall on: four held-out types (IBAN, MAC address, percentage, time)
have a rule of their own, the other eight do not. A column's *rule signature* is the fraction of its values each rule
accepts; a query column goes to the support class with the nearest signature, ties broken at
random, so a type the rules do not cover falls to chance among the classes that look alike.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata

import torch
from torch import nn

_MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday|mon|tue|wed|thu|fri|sat|sun"

PATTERNS = {
    "email": r"[\w.+-]+@[\w-]+(\.[\w-]+)+",
    "url": r"(https?://|www\.)[^\s]+",
    "ipv4": r"((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)",
    "ipv6": r"[0-9a-fA-F]{0,4}(:[0-9a-fA-F]{0,4}){3,7}",
    "mac_address": r"([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}",
    "iban": r"[A-Z]{2}\d{2}\s?([A-Z0-9]{4}\s?){2,7}[A-Z0-9]{1,4}",
    "percentage": r"[+-]?\d+([.,]\d+)?\s?%",
    "time": r"([01]?\d|2[0-3]):[0-5]\d(:[0-5]\d)?(\s?[AaPp]\.?[Mm]\.?)?",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "date_iso": r"\d{4}-\d{2}-\d{2}",
    "date_numeric": r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}",
    "date_words": rf"((?:{_DAYS}),?\s+)?(\d{{1,2}}\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
                  rf"|(?:{_MONTHS})\.?\s+\d{{1,2}},?\s+\d{{4}})",
    "datetime_iso": r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?",
    "year": r"(1[89]|20)\d{2}",
    "integer": r"[+-]?\d+",
    "decimal": r"[+-]?\d{1,3}(,\d{3})*(\.\d+)?|[+-]?\d+[.,]\d+",
    "currency": r"([$€£¥]|USD|EUR|GBP|CHF)\s?[\d.,]+|[\d.,]+\s?([$€£¥]|USD|EUR|GBP|CHF)",
    "phone": r"\+?[\d\s().-]{7,20}(x\d+)?",
    "postcode": r"\d{5}(-\d{4})?|\d{4}\s?[A-Z]{2}|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"
                r"|\d{2}-\d{3}|\d{3}\s?\d{2}|\d{3}-\d{4}|\d{5}-\d{3}",
    "credit_card": r"(\d{4}[\s-]?){3}\d{1,7}",
    "hex_colour": r"#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}",
    "coordinate": r"[+-]?\d{1,3}\.\d{3,}",
    "isbn": r"97[89][\s-]?\d{1,5}[\s-]?\d+[\s-]?\d+[\s-]?\d",
    "file_path": r"(/[^/\s]+)+/?|[A-Za-z]:\\[^\s]*",
    "capitalised_words": r"[A-ZÀ-Þ][\w'’.-]*(\s+[A-ZÀ-Þ][\w'’.-]*)*",
    "single_word": r"[^\W\d_]+",
    "sentence": r"[^\W\d_][\w\s,'’-]*[.!?]",
    "code_upper": r"[A-Z0-9]{2,12}",
}
BOOLEAN_WORDS = {"yes", "no", "true", "false", "y", "n", "t", "f", "0", "1", "ja", "nein", "oui", "non", "sí", "si"}
_REGEXES = {name: re.compile(p, re.IGNORECASE if name in ("date_words",) else 0) for name, p in PATTERNS.items()}


def _vocabularies() -> dict[str, frozenset[str]]:
    """Dictionaries of a traditional tool: English first and last names, countries, month and day
    names, booleans (Faker's en_US word lists stand in for a gazetteer)."""
    from faker.providers.address.en_US import Provider as Address
    from faker.providers.person.en_US import Provider as Person

    lower = lambda words: frozenset(w.lower() for w in words)  # noqa: E731
    return {
        "first_name_vocab": lower(list(Person.first_names_male) + list(Person.first_names_female)),
        "last_name_vocab": lower(Person.last_names),
        "country_vocab": lower(Address.countries),
        "month_or_day_vocab": frozenset(_MONTHS.split("|") + _DAYS.split("|")),
        "boolean_vocab": frozenset(BOOLEAN_WORDS),
    }


VOCABULARIES = _vocabularies()
RULES = tuple(PATTERNS) + tuple(VOCABULARIES)


def value_rules(value: str) -> list[bool]:
    """Which of :data:`RULES` accept one value (stripped; the name rules accept full names too)."""
    v = value.strip()
    out = [bool(rx.fullmatch(v)) for rx in _REGEXES.values()]
    low = v.lower()
    for name, vocab in VOCABULARIES.items():
        if name == "last_name_vocab" and " " in low:
            low_word = low.split()[-1]
        elif name == "first_name_vocab" and " " in low:
            low_word = low.split()[0]
        else:
            low_word = low
        out.append(low_word in vocab)
    return out


def rule_signature(column: list[str]) -> torch.Tensor:
    """(len(RULES),) the fraction of the column's values each rule accepts (zeros for no values)."""
    if not column:
        return torch.zeros(len(RULES))
    return torch.tensor([value_rules(v) for v in column], dtype=torch.float32).mean(0)


class RuleSignatureClassifier(nn.Module):
    """The rule-and-dictionary baseline: nearest class by the L1 distance between rule signatures
    (the mean signature of each class's support columns), ties broken at random.

    Args:
        seed: seeds the tie-breaking noise, so a run repeats.
    """

    def __init__(self, seed: int = 0):
        super().__init__()
        self.generator = torch.Generator().manual_seed(seed)
        self.prototypes = None

    def fit_support(self, x_support: list[list[str]], y_support: torch.Tensor) -> None:
        """x_support: n_way*k_shot columns; y_support: (n_way*k_shot,) labels 0..n_way-1."""
        s = torch.stack([rule_signature(c) for c in x_support])  # (N*K, R)
        n_way = int(y_support.max()) + 1
        self.prototypes = torch.zeros(n_way, s.shape[1]).index_add(0, y_support, s) / torch.bincount(
            y_support, minlength=n_way)[:, None]

    def forward(self, x_query: list[list[str]]) -> torch.Tensor:
        """Returns (n_query, n_way) logits: minus the L1 distance, plus noise far below any real gap."""
        q = torch.stack([rule_signature(c) for c in x_query])  # (Q, R)
        logits = -(q[:, None, :] - self.prototypes[None]).abs().sum(-1)
        return logits + 1e-6 * torch.rand(logits.shape, generator=self.generator)


FEATURES = ("log mean length", "length std / mean", "log tokens per value", "digits", "letters", "upper case",
            "lower case", "spaces", "punctuation", "non-ASCII", "@", ".", "-", "/", ":", ",", "+", "#", "%",
            "distinct values", "values that parse as numbers", "starts with a digit", "starts upper case")


def hand_features(column: list[str]) -> torch.Tensor:
    """(len(FEATURES),) hand-made features of a column: length statistics, character-class
    fractions, a few telling characters, distinctness (zeros for a column without characters)."""
    values = [v.strip() for v in column]
    text = "".join(values)
    if not text:
        return torch.zeros(len(FEATURES))
    lengths = torch.tensor([len(v) for v in values], dtype=torch.float32)
    mean = float(lengths.mean())
    std = float(lengths.std()) if len(values) > 1 else 0.0
    n = len(text)
    frac = lambda pred: sum(map(pred, text)) / n  # noqa: E731

    def number(v):
        try:
            float(v.replace(",", ""))
            return True
        except ValueError:
            return False

    out = [math.log1p(mean), std / max(mean, 1.0), math.log1p(sum(len(v.split()) for v in values) / len(values)),
           frac(str.isdigit), frac(str.isalpha), frac(str.isupper), frac(str.islower), frac(str.isspace),
           frac(lambda c: c in string.punctuation or unicodedata.category(c).startswith(("P", "S"))),
           frac(lambda c: ord(c) > 127)]
    out += [text.count(c) / n for c in "@.-/:,+#%"]
    out += [len(set(values)) / len(values), sum(map(number, values)) / len(values),
            sum(v[:1].isdigit() for v in values) / len(values), sum(v[:1].isupper() for v in values) / len(values)]
    return torch.tensor(out, dtype=torch.float32)


class HandFeatureNearestNeighbour(nn.Module):
    """Nearest neighbour on :func:`hand_features`, standardised with statistics of reference
    (background) columns; a class's logit is minus the distance to its nearest support column.

    Args:
        reference_columns: columns whose feature mean and spread set the scale (none: unscaled).
    """

    def __init__(self, reference_columns=None):
        super().__init__()
        if reference_columns:
            f = torch.stack([hand_features(c) for c in reference_columns])
            self.register_buffer("mean", f.mean(0))
            self.register_buffer("std", f.std(0).clamp_min(1e-3))
        else:
            self.register_buffer("mean", torch.zeros(len(FEATURES)))
            self.register_buffer("std", torch.ones(len(FEATURES)))

    def features(self, columns) -> torch.Tensor:
        return (torch.stack([hand_features(c) for c in columns]) - self.mean) / self.std

    def fit_support(self, x_support: list[list[str]], y_support: torch.Tensor) -> None:
        self.support, self.y_support = self.features(x_support), y_support
        self.n_way = int(y_support.max()) + 1

    def forward(self, x_query: list[list[str]]) -> torch.Tensor:
        """Returns (n_query, n_way) logits, minus the distance to each class's nearest support column."""
        d = torch.cdist(self.features(x_query), self.support)  # (Q, N*K)
        logits = torch.full((d.shape[0], self.n_way), -math.inf)
        for c in range(self.n_way):
            logits[:, c] = -d[:, self.y_support == c].min(1).values
        return logits
