import pytest

from metakit.metadata.columns import (
    BACKGROUND_TYPES,
    HELD_OUT_TYPES,
    SEMANTIC_TYPES,
    ColumnDataset,
    ColumnEpisodeSampler,
    column_locale,
    generate_column,
    split_datasets,
)


def test_many_types_and_a_disjoint_split():
    assert len(SEMANTIC_TYPES) >= 40 and len(set(SEMANTIC_TYPES)) == len(SEMANTIC_TYPES)
    assert not set(BACKGROUND_TYPES) & set(HELD_OUT_TYPES)
    assert len(HELD_OUT_TYPES) >= 10


def test_generator_is_deterministic_for_a_seed():
    for t in SEMANTIC_TYPES + ("pattern_3",):
        a, b = generate_column(t, 7), generate_column(t, 7)
        assert a == b and 10 <= len(a) <= 30 and all(isinstance(v, str) for v in a)
        # a column does not depend on what was generated before it
        generate_column(t, 8)
        assert generate_column(t, 7) == a
    assert generate_column("email", 1) != generate_column("email", 2)
    assert generate_column("iban", 3, n_values=5) == generate_column("iban", 3)[:5]


def test_a_column_is_the_same_on_any_day(monkeypatch):
    """Faker draws dates up to "now" unless told an end; every type must give the same column later."""
    import datetime

    import faker.providers.date_time as faker_dates

    today = {t: generate_column(t, 5) for t in SEMANTIC_TYPES}

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.now(tz) + datetime.timedelta(days=1000, seconds=12345)

    monkeypatch.setattr(faker_dates, "datetime", Later)
    later = {t: generate_column(t, 5) for t in SEMANTIC_TYPES}
    assert [t for t in SEMANTIC_TYPES if later[t] != today[t]] == []


def test_fixed_values():
    col = generate_column("mac_address", 0, n_values=3)
    assert all(len(v) == 17 and v.count(":") == 5 for v in col)
    assert all("@" in v for v in generate_column("email", 0))
    assert column_locale("phone", 0) == column_locale("phone", 0)
    assert {column_locale("city", s) for s in range(50)} > {"en_US"}  # several locales


def test_unknown_type_is_a_value_error():
    with pytest.raises(ValueError, match="unknown semantic type"):
        generate_column("shoe size", 0)


def test_types_do_not_leak_across_the_split():
    background, held_out = split_datasets(columns_per_type=3, patterns=4)
    assert not set(background.class_names) & set(held_out.class_names)
    assert set(held_out.class_names) == set(HELD_OUT_TYPES)
    assert not {tuple(c) for c in background.columns} & {tuple(c) for c in held_out.columns}
    # episodes drawn from the held-out set only ever hold held-out columns
    ids = {tuple(c) for c in held_out.columns}
    x_support, y_support, x_query, y_query = ColumnEpisodeSampler(held_out, 5, 2, 1).sample()
    assert all(tuple(c) in ids for c in x_support + x_query)
    assert y_support.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4] and len(x_query) == 5


def test_impossible_episode_is_a_value_error():
    data = ColumnDataset(["email", "url"], columns_per_type=3)
    with pytest.raises(ValueError, match="has 2 types; n_way=5"):
        ColumnEpisodeSampler(data, 5, 1, 1)
    with pytest.raises(ValueError, match="3 columns per type; k_shot"):
        ColumnEpisodeSampler(data, 2, 3, 1)
    with pytest.raises(ValueError, match="positive whole number"):
        ColumnEpisodeSampler(data, 2, 0, 1)
