"""metakit.exercises.metadata: each check passes the reference, names realistic wrong answers
(counts instead of fractions, an Euclidean distance, mean and max swapped, the last value instead
of the max), gives the "not yet" path to a missing answer, and raises under nbgrader's autograde."""
import pytest
import torch

from metakit.exercises import ExerciseError
from metakit.exercises import metadata as ex
from metakit.metadata.columns import generate_column
from metakit.metadata.encoder import ColumnEncoder, encode_columns
from metakit.metadata.rules import RuleSignatureClassifier, rule_signature, value_rules
from helpers import assert_falls_back


def counts(column):
    return torch.tensor([value_rules(v) for v in column], dtype=torch.float32).sum(0)


def any_value(column):
    return torch.tensor([value_rules(v) for v in column], dtype=torch.float32).amax(0)


def euclidean(s_s, y, s_q, n_way):
    means = torch.stack([s_s[y == k].mean(0) for k in range(n_way)])
    return -torch.cdist(s_q, means)


def plus_distance(s_s, y, s_q, n_way):
    return -ex.signature_logits(s_s, y, s_q, n_way)


def first_support(s_s, y, s_q, n_way):
    firsts = torch.stack([s_s[y == k][0] for k in range(n_way)])
    return -(s_q[:, None] - firsts[None]).abs().sum(-1)


def max_then_mean(e, A, b):
    return A @ torch.cat([e.amax(0), e.mean(0)]) + b


def last_value(e, A, b):
    return A @ torch.cat([e.mean(0), e[-1]]) + b


def mean_only_twice(e, A, b):
    return A @ torch.cat([e.mean(0), e.mean(0)]) + b


def stub(*args):
    pass


def test_references_pass(capsys):
    assert ex.check_rule_signature(rule_signature) is rule_signature
    assert ex.check_signature_logits(ex.signature_logits) is ex.signature_logits
    assert ex.check_pool_column(ex.pool_column) is ex.pool_column
    assert capsys.readouterr().out.count("correct.") == 3


def test_references_agree_with_the_library():
    """The signature logits are RuleSignatureClassifier's (up to its tie noise); the pooling and the
    value embeddings rebuild ColumnEncoder's output."""
    cols = [generate_column(t, s) for t in ("email", "time", "iban") for s in range(2)]
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    clf = RuleSignatureClassifier(seed=0)
    clf.fit_support(cols, y)
    queries = [generate_column(t, 9) for t in ("iban", "email")]
    s = torch.stack([rule_signature(c) for c in cols])
    q = torch.stack([rule_signature(c) for c in queries])
    assert torch.allclose(clf(queries), ex.signature_logits(s, y, q, 3), atol=1e-5)
    torch.manual_seed(0)
    encoder = ColumnEncoder(16).eval()
    col = generate_column("mac_address", 3)[:20]
    with torch.no_grad():
        e = ex.value_embeddings(encoder, col)
        full = encoder(encode_columns([col]))[0]
    assert e.shape == (len(col), 16) and isinstance(encoder.out, torch.nn.Linear)
    assert torch.allclose(ex.pool_column(e, encoder.out.weight, encoder.out.bias), full, atol=1e-5)


@pytest.mark.parametrize("check, wrong, reference, words", [
    (ex.check_rule_signature, counts, rule_signature, "times too large"),
    (ex.check_rule_signature, any_value, rule_signature, "ANY value"),
    (ex.check_rule_signature, stub, rule_signature, "returned None"),
    (ex.check_signature_logits, euclidean, ex.signature_logits, "Euclidean"),
    (ex.check_signature_logits, plus_distance, ex.signature_logits, "wrong sign"),
    (ex.check_signature_logits, first_support, ex.signature_logits, "off by"),
    (ex.check_signature_logits, stub, ex.signature_logits, "returned None"),
    (ex.check_pool_column, max_then_mean, ex.pool_column, "wrong order"),
    (ex.check_pool_column, last_value, ex.pool_column, "not the maximum"),
    (ex.check_pool_column, mean_only_twice, ex.pool_column, "off by"),
    (ex.check_pool_column, stub, ex.pool_column, "returned None"),
])
def test_checks_catch(check, wrong, reference, words, capsys):
    assert_falls_back(check, wrong, reference, capsys, words)


def test_grading_raises(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="fraction"):
        ex.check_rule_signature(counts)
    with pytest.raises(ExerciseError, match="L1"):
        ex.check_signature_logits(euclidean)
    with pytest.raises(ExerciseError, match="not yet"):
        ex.check_pool_column(stub)
    assert ex.check_pool_column(ex.pool_column) is ex.pool_column
