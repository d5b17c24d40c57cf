"""Data columns by semantic type, generated offline with Faker, for metadata enhancement (notebook 09).

A column is a list of strings, the values of one table column (an email column, a column of
German postcodes, ...). Each semantic type is a class; an episode's support items are labelled
example columns. Every column is a pure function of ``(type, seed)``: the seed picks the locale,
the number of values and seeds Faker's generator, and Faker's "now" is pinned to :data:`NOW`, so
the same seed gives the same column on any machine and any day with the pinned Faker (40.54.0).

The split: :data:`HELD_OUT_TYPES` never appear in meta-training (:data:`BACKGROUND_TYPES`). Near
duplicates stay on the same side (every date format, every name, latitude with longitude, IPv4 with
IPv6, ISBN with EAN barcodes, file paths with file names, MD5 and SHA-1 with UUID, hex with RGB
colours), so a held-out type is new;
each held-out type still has values with a visible structure (a MAC address, a MIME type, a time
zone), so the task is possible from a few examples.
"""

from __future__ import annotations

import contextlib
import datetime
import random
import string
from functools import lru_cache

import faker.providers.date_time as faker_dates
import torch
from faker import Faker

from ..episodes import EpisodeSampler

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL", "sv_SE", "ja_JP")
MIN_VALUES, MAX_VALUES = 10, 30


def _amount(f, r):
    x = r.choice([r.uniform(0, 100), r.uniform(0, 10000)])
    sym = r.choice(["$", "€", "£", "¥", "CHF "])
    return f"{sym}{x:,.2f}" if r.random() < 0.6 else f"{x:.2f} {sym.strip()}"


def _boolean_column_words(r):
    return r.choice([("yes", "no"), ("true", "false"), ("True", "False"), ("Y", "N"), ("ja", "nein"),
                     ("oui", "non"), ("sí", "no"), ("T", "F"), ("TRUE", "FALSE")])


# type -> generator(faker, rng) of one value. Faker draws from the instance's own seeded random.
GENERATORS = {
    "email": lambda f, r: f.email(),
    "date_iso": lambda f, r: f.date(),
    "date_dmy": lambda f, r, fmt: f.date(pattern=fmt),
    "date_long": lambda f, r, fmt: f.date(pattern=fmt),
    "datetime": lambda f, r: f.iso8601(),
    "year": lambda f, r: f.year(),
    "phone": lambda f, r: f.phone_number(),
    "postcode": lambda f, r: f.postcode(),
    "currency_amount": _amount,
    "person_name": lambda f, r: f.name(),
    "first_name": lambda f, r: f.first_name(),
    "last_name": lambda f, r: f.last_name(),
    "city": lambda f, r: f.city(),
    "country": lambda f, r: f.country(),
    "region": lambda f, r: f.administrative_unit(),
    "street_address": lambda f, r: f.street_address(),
    "url": lambda f, r: f.url(),
    "domain": lambda f, r: f.domain_name(),
    "username": lambda f, r: f.user_name(),
    "ipv4": lambda f, r: f.ipv4(),
    "ipv6": lambda f, r: f.ipv6(),
    "uuid": lambda f, r: f.uuid4(),
    "md5": lambda f, r: f.md5(),
    "credit_card": lambda f, r: f.credit_card_number(),
    "isbn": lambda f, r: f.isbn13(),
    "ean_barcode": lambda f, r: f.ean13(),
    "hex_colour": lambda f, r: f.hex_color(),
    "latitude": lambda f, r: str(f.latitude()),
    "longitude": lambda f, r: str(f.longitude()),
    "ssn": lambda f, r: f.ssn(),
    "file_path": lambda f, r: f.file_path(),
    "file_name": lambda f, r: f.file_name(),
    "integer_count": lambda f, r: str(r.choice([r.randint(0, 50), r.randint(0, 5000)])),
    "free_text": lambda f, r: f.sentence(),
    "language_code": lambda f, r: f.language_code(),
    "currency_code": lambda f, r: f.currency_code(),
    "word": lambda f, r: f.word(),
    "boolean": None,  # see generate_column: the column's pair of words is drawn first
    "street_name": lambda f, r: f.street_name(),
    "building_number": lambda f, r: f.building_number(),
    "month_name": lambda f, r: f.month_name(),
    "weekday": lambda f, r: f.day_of_week(),
    "passport_number": lambda f, r: f.passport_number(),
    "catch_phrase": lambda f, r: f.catch_phrase(),
    "currency_name": lambda f, r: f.currency_name(),
    "emoji": lambda f, r: f.emoji(),
    "hostname": lambda f, r: f.hostname(),
    "port_number": lambda f, r: str(f.port_number()),
    "http_method": lambda f, r: f.http_method(),
    "uri_path": lambda f, r: f.uri_path(),
    "slug": lambda f, r: f.slug(),
    "sha1": lambda f, r: f.sha1(),
    "password": lambda f, r: f.password(),
    "unix_time": lambda f, r: str(int(f.unix_time())),
    "rgb_colour": lambda f, r: f.rgb_css_color(),
    "file_extension": lambda f, r: f.file_extension(),
    "country_code": lambda f, r: f.country_code(),
    "age": lambda f, r: str(r.randint(18, 95)),
    # held out below
    "iban": lambda f, r: f.iban(),
    "mac_address": lambda f, r: f.mac_address(),
    "percentage": lambda f, r, fmt: f"{r.uniform(0, 100):.{fmt}f}%",
    "time": lambda f, r, fmt: f.time(pattern=fmt),
    "licence_plate": lambda f, r: f.license_plate(),
    "job_title": lambda f, r: f.job(),
    "company": lambda f, r: f.company(),
    "user_agent": lambda f, r: f.user_agent(),
    "time_zone": lambda f, r: f.timezone(),
    "mime_type": lambda f, r: f.mime_type(),
    "swift_bic": lambda f, r: f.swift(),
    "colour_name": lambda f, r: f.color_name(),
}

# A column keeps one format throughout, as a real table does.
FORMATS = {"date_dmy": ["%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y"], "date_long": ["%d %B %Y", "%B %d, %Y", "%a %d %b %Y"],
           "percentage": [0, 1, 2], "time": ["%H:%M:%S", "%H:%M", "%I:%M %p"]}

HELD_OUT_TYPES = ("iban", "mac_address", "percentage", "time", "licence_plate", "job_title", "company",
                  "user_agent", "time_zone", "mime_type", "swift_bic", "colour_name")
BACKGROUND_TYPES = tuple(t for t in GENERATORS if t not in HELD_OUT_TYPES)
SEMANTIC_TYPES = BACKGROUND_TYPES + HELD_OUT_TYPES

# Locale-free types use en_US's provider, so a locale draw does not change them needlessly.
_LOCAL = {"phone", "postcode", "person_name", "first_name", "last_name", "city", "region", "street_address",
          "iban", "licence_plate", "job_title", "company", "colour_name", "ssn", "free_text", "word",
          "date_long", "email", "domain", "username", "country", "file_name", "file_path", "url", "street_name",
          "building_number", "month_name", "weekday", "catch_phrase", "currency_name"}


# Faker draws dates and times (and years, month names, weekdays) up to "now"; with now pinned, a
# column is the same on any day.
NOW = datetime.datetime(2026, 1, 1)


class _PinnedNow(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return NOW if tz is None else NOW.replace(tzinfo=tz)


@contextlib.contextmanager
def _pinned_now():
    saved = faker_dates.datetime
    faker_dates.datetime = _PinnedNow
    try:
        yield
    finally:
        faker_dates.datetime = saved


@lru_cache(maxsize=None)
def _faker(locale: str) -> Faker:
    return Faker(locale)


def _pattern_generator(k: int):
    """Synthetic type ``pattern_k``: values filled in from a random template of 1 to 4 segments
    (runs of digits, capitals, small letters, or any ASCII punctuation mark), for more meta-training
    types, and so that every punctuation mark's embedding is trained."""
    t = random.Random(f"pattern/{k}")
    segments = []
    for _ in range(t.randint(1, 4)):
        kind = t.choice(["digits", "upper", "lower", "punct"])
        lo = t.randint(1, 6)
        segments.append((kind, lo, lo + t.choice([0, 0, 1, 3]), t.choice(string.punctuation + " ")))

    def gen(f, r):
        out = []
        for kind, lo, hi, mark in segments:
            n = r.randint(lo, hi)
            pool = {"digits": string.digits, "upper": string.ascii_uppercase, "lower": string.ascii_lowercase}
            out.append(mark if kind == "punct" else "".join(r.choice(pool[kind]) for _ in range(n)))
        return "".join(out)

    return gen


def generate_column(semantic_type: str, seed: int, n_values: int | None = None) -> list[str]:
    """One column of ``semantic_type`` values, a pure function of the arguments.

    Args:
        semantic_type: a name in :data:`SEMANTIC_TYPES`.
        seed: picks the locale and the number of values, and seeds Faker.
        n_values: how many values; by default 10 to 30, drawn from the seed.
    Returns:
        A list of ``n_values`` strings.
    """
    if semantic_type.startswith("pattern_") and semantic_type[8:].isdigit():
        r = random.Random(f"{semantic_type}/{seed}")
        n = r.randint(MIN_VALUES, MAX_VALUES)
        n = n_values if n_values is not None else n
        gen = _pattern_generator(int(semantic_type[8:]))
        return [gen(None, r) for _ in range(n)]
    if semantic_type not in GENERATORS:
        raise ValueError(f"unknown semantic type {semantic_type!r}; choose one of {', '.join(SEMANTIC_TYPES)}.")
    r = random.Random(f"{semantic_type}/{seed}")  # a string seed is hashed the same way on every run
    locale = r.choice(LOCALES) if semantic_type in _LOCAL else "en_US"
    n = r.randint(MIN_VALUES, MAX_VALUES)  # drawn even when n_values is given, so the values agree
    n = n_values if n_values is not None else n
    f = _faker(locale)
    f.seed_instance(r.getrandbits(32))
    if semantic_type == "boolean":  # one pair of words per column, as a real table would have
        pair = _boolean_column_words(r)
        return [r.choice(pair) for _ in range(n)]
    gen = GENERATORS[semantic_type]
    with _pinned_now():
        if semantic_type in FORMATS:
            fmt = r.choice(FORMATS[semantic_type])
            return [str(gen(f, r, fmt)) for _ in range(n)]
        return [str(gen(f, r)) for _ in range(n)]


def column_locale(semantic_type: str, seed: int) -> str:
    """The locale :func:`generate_column` uses for this type and seed."""
    r = random.Random(f"{semantic_type}/{seed}")
    return r.choice(LOCALES) if semantic_type in _LOCAL else "en_US"


class ColumnDataset(torch.utils.data.Dataset):
    """Labelled example columns, ``columns_per_type`` of each type, for learn2learn's Taskset.

    An item is ``(index, label)``: the episode sampler (:class:`ColumnEpisodeSampler`) draws
    indices, and :meth:`lookup` turns them back into columns, so every method (rules, nearest
    neighbour, the prototypical network) sees the same episodes.

    Args:
        types: the semantic types, one class each, labelled in this order.
        columns_per_type: columns generated per type.
        seed: the base seed; column ``i`` of type ``t`` uses seed ``seed * 100003 + i``.
        name: what error messages call this dataset.
    """

    def __init__(self, types, columns_per_type: int = 40, seed: int = 0, name: str = "columns"):
        self.class_names = list(types)
        self.name = name
        self.columns, labels = [], []
        for label, t in enumerate(self.class_names):
            for i in range(columns_per_type):
                self.columns.append(generate_column(t, seed * 100003 + i))
                labels.append(label)
        self.targets = torch.tensor(labels)
        self.labels_to_indices = {c: list(range(c * columns_per_type, (c + 1) * columns_per_type))
                                  for c in range(len(self.class_names))}

    def __len__(self):
        return len(self.columns)

    def __getitem__(self, i):
        return torch.tensor(i), int(self.targets[i])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def lookup(self, indices) -> list[list[str]]:
        """The columns at ``indices`` (a tensor or list of dataset indices)."""
        return [self.columns[int(i)] for i in indices]


def check_column_episode(dataset: ColumnDataset, n_way: int, k_shot: int, n_query: int) -> None:
    """Raise ``ValueError`` saying what is possible when the episode cannot be drawn (in words about
    types and columns; :func:`~metakit.episodes.check_episode` speaks of characters)."""
    for name, value in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive whole number; {name}={value!r} was asked.")
    if n_way > dataset.num_classes:
        raise ValueError(f"{dataset.name} has {dataset.num_classes} types; n_way={n_way} was asked. "
                         f"Choose n_way <= {dataset.num_classes}.")
    fewest = min(len(ix) for ix in dataset.labels_to_indices.values())
    if k_shot + n_query > fewest:
        raise ValueError(f"{dataset.name} has {fewest} columns per type; k_shot + n_query = {k_shot} + {n_query} "
                         f"were asked. Choose k_shot + n_query <= {fewest}.")


class ColumnEpisodeSampler:
    """Episodes of columns, ``sample() -> (support columns, y_support, query columns, y_query)``,
    drawn by learn2learn's Taskset through :class:`~metakit.episodes.EpisodeSampler` and looked up
    as columns; the ``make_sampler`` of :func:`metakit.compare.compare` for column methods.

    An impossible episode raises ``ValueError`` when the sampler is made, in words about types and
    columns (:func:`check_column_episode`).
    """

    def __init__(self, dataset: ColumnDataset, n_way: int, k_shot: int, n_query: int = 5):
        check_column_episode(dataset, n_way, k_shot, n_query)
        self.dataset = dataset
        self.sampler = EpisodeSampler(dataset, n_way, k_shot, n_query)

    def sample_indices(self):
        """The episode as dataset indices: ``(i_support, y_support, i_query, y_query)``."""
        return self.sampler.sample()

    def sample(self):
        i_support, y_support, i_query, y_query = self.sample_indices()
        return self.dataset.lookup(i_support), y_support, self.dataset.lookup(i_query), y_query


def split_datasets(columns_per_type: int = 40, seed: int = 0, patterns: int = 0):
    """The background (meta-training) and held-out (meta-test) column sets, with disjoint types
    and disjoint seeds; ``patterns`` synthetic template types (``pattern_0``, ...) join the background."""
    types = BACKGROUND_TYPES + tuple(f"pattern_{k}" for k in range(patterns))
    background = ColumnDataset(types, columns_per_type, seed=2 * seed, name="background column types")
    held_out = ColumnDataset(HELD_OUT_TYPES, columns_per_type, seed=2 * seed + 1, name="held-out column types")
    return background, held_out
