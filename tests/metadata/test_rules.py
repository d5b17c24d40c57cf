import pytest
import torch

from metakit.metadata.columns import generate_column
from metakit.metadata.rules import (
    FEATURES,
    RULES,
    HandFeatureNearestNeighbour,
    RuleSignatureClassifier,
    hand_features,
    rule_signature,
    value_rules,
)


def fires(value):
    return {r for r, ok in zip(RULES, value_rules(value)) if ok}


def test_rules_recognise_common_values():
    assert "email" in fires("ada@example.org")
    assert "url" in fires("https://example.com/a")
    assert "ipv4" in fires("192.168.0.1") and "ipv4" not in fires("300.1.1.1")
    assert "date_iso" in fires("2024-02-29")
    assert "time" in fires("07:42 PM") and "ipv6" not in fires("10:59:59")
    assert "iban" in fires("DE28500080636083778353")
    assert "mac_address" in fires("ae:69:1d:f2:cb:11")
    assert "percentage" in fires("12.5%")
    assert "first_name_vocab" in fires("Mary Smith") and "last_name_vocab" in fires("Mary Smith")
    assert not fires("")


def test_signature_is_a_fraction_and_handles_an_empty_column():
    s = rule_signature(["a@b.com", "nope"])
    assert s.shape == (len(RULES),) and s[RULES.index("email")] == 0.5
    assert torch.all((s >= 0) & (s <= 1))
    assert torch.equal(rule_signature([]), torch.zeros(len(RULES)))


def test_hand_features_fixed_values_and_odd_input():
    f = hand_features(["ab", "12"])
    assert f.shape == (len(FEATURES),)
    assert f[FEATURES.index("digits")] == pytest.approx(0.5) and f[FEATURES.index("distinct values")] == 1.0
    assert torch.equal(hand_features([]), torch.zeros(len(FEATURES)))
    assert torch.equal(hand_features(["", " "]), torch.zeros(len(FEATURES)))
    assert torch.isfinite(hand_features(["東京", "x" * 10000])).all()


def episode(types, k_shot, seed=0):
    x_support = [generate_column(t, seed + i) for t in types for i in range(k_shot)]
    y_support = torch.arange(len(types)).repeat_interleave(k_shot)
    x_query = [generate_column(t, 100 + seed) for t in types]
    return x_support, y_support, x_query, torch.arange(len(types))


@pytest.mark.parametrize("method", [RuleSignatureClassifier(), HandFeatureNearestNeighbour()])
def test_baselines_tell_distinct_types_apart(method):
    x_support, y_support, x_query, y_query = episode(["email", "ipv4", "date_iso", "hex_colour"], 2)
    method.fit_support(x_support, y_support)
    logits = method(x_query)
    assert logits.shape == (4, 4)
    assert torch.equal(logits.argmax(1), y_query)


def test_rules_fall_to_chance_on_types_they_do_not_cover():
    # user agents and MIME types fire no rule: identical zero signatures, ties broken at random
    rules = RuleSignatureClassifier(seed=0)
    x_support, y_support, x_query, _ = episode(["user_agent", "mime_type", "time_zone"], 1)
    rules.fit_support(x_support, y_support)
    picks = torch.stack([rules(x_query).argmax(1) for _ in range(30)])
    assert len(picks.unique()) > 1


def test_nearest_neighbour_is_standardised_by_reference_columns():
    refs = [generate_column(t, 0) for t in ("email", "city", "year")]
    knn = HandFeatureNearestNeighbour(refs)
    assert knn.std.min() >= 1e-3 and knn.features([["a"]]).shape == (1, len(FEATURES))
