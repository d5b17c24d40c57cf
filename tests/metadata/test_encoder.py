import time

import pytest
import torch

import metakit
from metakit.metadata.columns import ColumnDataset
from metakit.metadata.encoder import (
    BOS,
    MAX_LENGTH,
    PAD,
    UNK,
    VOCAB_SIZE,
    ColumnEncoder,
    ColumnPrototypes,
    char_index,
    drop_values,
    encode_column,
    encode_columns,
    train_column_prototypes,
)


def test_char_index_maps_everything_into_the_vocabulary():
    assert char_index("a") != char_index("b")
    assert char_index("ü") == char_index("é")  # lower-case non-ASCII letters share a bucket
    assert char_index("東") != char_index("ü") and char_index("٣") == char_index("५")  # other digits
    assert char_index("\x00") == UNK
    assert all(0 < char_index(chr(o)) < VOCAB_SIZE for o in range(0, 70000, 7))


def test_encode_handles_empty_long_and_non_ascii_strings():
    x = encode_column(["", "x" * 500, "Zürich 東京 ☃"], max_values=4, max_length=MAX_LENGTH)
    assert x.shape == (4, MAX_LENGTH) and x.dtype == torch.long
    assert x[0].tolist() == [BOS] + [PAD] * (MAX_LENGTH - 1)  # an empty value is still a value
    assert (x[1] != PAD).all()  # the long value is cut, not dropped
    assert (x[2] != PAD).sum() == 1 + len("Zürich 東京 ☃")
    assert (x[3] == PAD).all()
    assert encode_column([str(i) for i in range(100)], max_values=8).shape[0] == 8


def test_an_empty_column_is_a_value_error():
    with pytest.raises(ValueError, match="not enough values"):
        encode_column([])


def test_encoder_pools_over_values_whatever_their_number_or_order():
    torch.manual_seed(0)
    enc = ColumnEncoder(dim=16).eval()
    cols = [["a@b.com", "c@d.org"], ["", "x" * 1000, "東京"], ["1"]]
    z = enc(encode_columns(cols))
    assert z.shape == (3, 16) and torch.isfinite(z).all()
    swapped = enc(encode_columns([["c@d.org", "a@b.com"]]))
    assert torch.allclose(z[0], swapped[0], atol=1e-6)
    # padding rows and the cut to the longest value change nothing
    alone = enc(encode_columns([cols[2]], max_values=2))
    assert torch.allclose(alone[0], z[2], atol=1e-5)


def test_drop_values_keeps_at_least_two_and_only_real_values():
    x = encode_columns([["a", "b", "c", "d"], ["e", "f"]], max_values=5)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = drop_values(x, g)
        kept = (y[:, :, 0] == BOS).sum(1)
        assert (kept >= 2).all() and kept[1] == 2 and (y[:, 4] == PAD).all()


def test_prototypes_on_columns_and_a_short_training_lowers_the_loss():
    data = ColumnDataset(["email", "ipv4", "year", "hex_colour", "city"], columns_per_type=8)
    torch.manual_seed(0)
    model = ColumnPrototypes(ColumnEncoder(dim=16))
    hist = train_column_prototypes(model, data, n_way=3, k_shot=2, n_query=2, seconds=30, steps=40,
                                   clock=time.process_time, meta_lr=3e-3, progress=False)
    assert hist["steps"] == 40 and set(hist) == {"loss", "steps", "seconds", "clock_seconds"}
    assert sum(hist["loss"][-10:]) < sum(hist["loss"][:10])
    model.fit_support(data.lookup([0, 8]), torch.tensor([0, 1]))
    logits = model([["x@y.com", "z@w.net"], ["10.0.0.1"]])
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_a_diverging_learning_rate_is_a_floating_point_error():
    data = ColumnDataset(["email", "ipv4"], columns_per_type=4)
    model = ColumnPrototypes(ColumnEncoder(dim=8))
    with torch.no_grad():
        model.backbone.out.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="meta_lr"):
        train_column_prototypes(model, data, n_way=2, k_shot=1, n_query=1, steps=3, progress=False)


def test_training_takes_the_kits_time_budget_on_any_clock():
    data = ColumnDataset(["email", "ipv4"], columns_per_type=4)
    clock = iter(range(1000)).__next__  # one "second" per reading
    hist = train_column_prototypes(ColumnPrototypes(ColumnEncoder(dim=8)), data, n_way=2, k_shot=1, n_query=1,
                                   seconds=3, clock=clock, progress=False)
    assert hist["steps"] == len(hist["loss"]) >= 1 and hist["clock_seconds"] >= 3
    with pytest.raises(ValueError, match="budget"):
        train_column_prototypes(ColumnPrototypes(ColumnEncoder(dim=8)), data, n_way=2, k_shot=1, n_query=1,
                                seconds=None, progress=False)


def test_training_summary_averages_blocks():
    from metakit.metadata.encoder import training_summary

    s = training_summary({"loss": [1.0, 3.0, 5.0], "steps": 3, "seconds": 2.5, "clock_seconds": 1.5}, every=2)
    assert s == {"steps": 3, "seconds": 2.5, "clock_seconds": 1.5, "loss_curve": [2.0, 5.0], "loss_every": 2}


def test_quick_benchmark_prints_the_result_line():
    from helpers import run_quick

    stdout, result = run_quick("metadata.py")
    assert list(result) == ["rules_5w1s", "knn_5w1s", "proto_5w1s", "proto_5w5s"]
    assert all(0.0 <= float(v) <= 1.0 for v in result.values())
    assert float(result["rules_5w1s"]) > 0.3 and float(result["knn_5w1s"]) > 0.5  # well above chance (0.2)
    assert "proto-rules" in stdout and "the issue's target" in stdout
    assert f"device: {metakit.device()}" in stdout.splitlines()
