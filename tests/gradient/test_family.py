import math

import pytest
import torch
from helpers import image_tasks, random_episode
from matplotlib.figure import Figure

from metakit.compare import compare, format_table
from metakit.gradient import family
from metakit.gradient.family import (
    accuracy_vs_steps,
    adaptation_curve,
    feature_reuse,
    linear_cka,
    make_algorithm,
)
from metakit.gradient.training import meta_train
from metakit.gradient.widgets import steps_figure


def tiny(name, **kw):
    torch.manual_seed(0)
    return make_algorithm(name, hidden=4, **kw)


def test_make_algorithm_configures_each_member_and_rejects_bad_values():
    for name, config in family.FAMILY.items():
        alg = tiny(name)
        assert isinstance(alg, config["cls"])
        assert alg.inner_steps == config["inner_steps"] and alg.model.head.out_features == 5
    assert tiny("fomaml").first_order and not tiny("maml").first_order
    assert tiny("maml", inner_steps=3, n_way=7).inner_steps == 3
    with pytest.raises(ValueError, match="one of maml"):
        make_algorithm("mamlx")
    with pytest.raises(ValueError, match="n_way"):
        make_algorithm("maml", n_way=1)
    with pytest.raises(ValueError, match="inner_lr"):
        make_algorithm("maml", inner_lr=float("nan"))


def test_compare_puts_every_algorithm_on_the_same_episodes(glyphs_evaluation):
    maml = tiny("maml")
    settings = {"5w1s": family.SETTINGS["5w1s"]}
    results = compare({"a": maml, "b": maml}, {"glyphs": glyphs_evaluation}, settings, episodes=4, progress=False)
    assert results["a", "glyphs", "5w1s"]["acc"] == results["b", "glyphs", "5w1s"]["acc"]
    assert 0 <= results["a", "glyphs", "5w1s"]["acc"] <= 1 and results["a", "glyphs", "5w1s"]["ms"] > 0
    assert "glyphs, MAML" in format_table({("maml", *k[1:]): v for k, v in results.items()}, family.NAMES)


def test_meta_train_calls_back_with_the_history(glyphs_background):
    seen = []
    history = family.train(tiny("anil"), glyphs_background, steps=3, progress=False,
                           callback=lambda h: seen.append(len(h["loss"])))
    assert history["steps"] == 3 and seen and seen[-1] == 3


def test_meta_train_callback_every_interval():
    alg = tiny("maml")
    calls = []
    meta_train(alg, lambda b: image_tasks(tasks=b, n_query=2), meta_lr=1e-3, meta_batch_size=2, steps=2, progress=False,
               callback=lambda h: calls.append(h["steps"]), callback_every=0.0)
    assert calls == [1, 2, 2]  # after each iteration, then once at the end


def test_accuracy_vs_steps_marks_what_cannot_be_run(glyphs_evaluation):
    algs = {"mamlpp": tiny("mamlpp"), "metasgd": tiny("metasgd")}
    with torch.no_grad():
        for lr in algs["metasgd"].lrs.values():
            lr.fill_(1e30)  # a learned rate that overflows when repeated
    curves = accuracy_vs_steps(algs, glyphs_evaluation, steps=(0, 1, 2, 3), episodes=2, progress=False)
    pp = curves["mamlpp"]
    assert [math.isnan(a) for a in pp["acc"]] == [False, False, False, True] and "steps <= 2" in pp["notes"][3]
    sgd = curves["metasgd"]
    assert not math.isnan(sgd["acc"][0]) and any(math.isnan(a) for a in sgd["acc"][1:])
    assert isinstance(steps_figure(curves, {"mamlpp": 2, "metasgd": 1}), Figure)


def test_linear_cka():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=g)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3 * x @ q + 1) == pytest.approx(1.0)  # rotation, scale and shift do not count
    assert linear_cka(x, torch.randn(200, 8, generator=g)) < 0.2


def test_feature_reuse_measures_both_inner_loops(glyphs_evaluation):
    out = feature_reuse(tiny("maml"), glyphs_evaluation, episodes=3, progress=False)
    assert set(out) == {"full", "head_only", "cka", "head_change", "body_change"}
    assert len(out["cka"]) == 4 and all(0 <= c <= 1 + 1e-9 for c in out["cka"])
    assert out["head_change"] > 0 and out["body_change"] > 0
    with pytest.raises(ValueError, match=r"MAML\+\+"):
        feature_reuse(tiny("mamlpp"), glyphs_evaluation, episodes=1, progress=False)


def test_adaptation_path_starts_at_theta_and_lowers_the_support_loss():
    alg = tiny("maml", inner_lr=0.1)
    x_support, y_support, _ = random_episode(n_way=5, k_shot=2, n_query=1)
    path, losses = alg.adaptation_path(x_support, y_support, steps=4)
    assert len(path) == 5 and losses.shape == (4,)
    for n, p in alg.init_params().items():
        assert torch.equal(path[0][n], p.detach())
    assert losses[-1] < losses[0]
    last = alg.adapt(x_support, y_support, steps=4)
    for n in last:
        torch.testing.assert_close(path[-1][n], last[n])
    with pytest.raises(FloatingPointError, match="lower inner_lr"):
        tiny("maml", inner_lr=1e20).adaptation_path(x_support, y_support, steps=4)


def test_adaptation_curve_restores_the_rate(glyphs_evaluation):
    alg = tiny("maml")
    curve = adaptation_curve(alg, glyphs_evaluation, k_shot=1, inner_steps=3, inner_lr=0.1, episodes=2)
    assert curve["acc"].shape == (2, 4) and curve["support_loss"].shape == (2, 3)
    assert alg.inner_lr == 0.4  # restored after a test-time override
    with pytest.raises(ValueError, match="inner_steps"):
        adaptation_curve(alg, glyphs_evaluation, k_shot=1, inner_steps=51)


def test_format_summary_has_a_row_per_algorithm():
    results = {(n, "glyphs", s): {"acc": 0.9, "ci95": 0.01, "ms": 1.0}
               for n in ("maml", "anil") for s in ("5w1s", "5w5s")}
    histories = {"maml": {"steps": 10, "seconds": 5.0}, "anil": {"steps": 20, "seconds": 5.0}}
    lines = family.format_summary(results, histories).splitlines()
    assert len(lines) == 3 and "glyphs 5w5s" in lines[0] and lines[1].startswith("MAML") and "500" in lines[1]


def test_meta_train_can_count_cpu_time():
    import time
    alg = tiny("maml")
    history = meta_train(alg, lambda b: image_tasks(tasks=b, n_query=2), meta_lr=1e-3, meta_batch_size=2,
                         seconds=0.2, progress=False, clock=time.process_time)
    assert history["clock_seconds"] >= 0.2 and history["steps"] >= 1


def test_train_and_test_checks_the_episodes_before_training(glyphs_background, glyphs_evaluation, monkeypatch):
    monkeypatch.setattr(family, "make_algorithm", lambda name, **kw: tiny(name, **kw))
    with pytest.raises(ValueError, match="k_shot"):
        family.train_and_test("maml", glyphs_background, glyphs_evaluation, n_way=5, k_shot=15, seconds=1.0)
    algorithm, history, (acc, ci95) = family.train_and_test("anil", glyphs_background, glyphs_evaluation, n_way=3,
                                                            seconds=0.5, test_episodes=2)
    assert algorithm.model.head.out_features == 3 and history["steps"] >= 1 and 0 <= acc <= 1


def test_with_ways_keeps_the_first_rows_of_the_head():
    for name in ("maml", "metasgd", "anil"):
        alg = tiny(name)
        three = family.with_ways(alg, 3)
        assert three.model.head.out_features == 3 and alg.model.head.out_features == 5
        assert torch.equal(three.model.head.weight, alg.model.head.weight[:3])
        if name == "metasgd":
            assert three.learning_rates()["head.weight"].shape == (3, alg.model.head.in_features)
        assert family.with_ways(alg, 5) is alg
    with pytest.raises(ValueError, match="5-way head"):
        family.with_ways(tiny("maml"), 6)
    with pytest.raises(ValueError, match="n_way=1"):
        family.with_ways(tiny("maml"), 1)


def test_train_family_and_target_run_train_on_the_device_given(monkeypatch):
    # "meta" tensors carry no data, so only where each algorithm is when its training starts is checked
    seen = []
    monkeypatch.setattr(family, "train", lambda a, *args, **kw: seen.append(next(a.parameters()).device) or {})
    monkeypatch.setattr(family, "compare", lambda *args, **kw: {("maml", "glyphs", "5w1s"): {"acc": 0.0}})
    algorithms, _ = family.train_family(["maml", "anil"], None, 1.0, progress=False, device="meta")
    family.target_run(None, None, 1.0, progress=False, device="meta")
    assert [d.type for d in seen] == ["meta"] * 3 and next(algorithms["anil"].parameters()).is_meta


def test_first_order_gap_vanishes_with_the_inner_step():
    """FOMAML drops alpha * H_S * grad L_Q: its meta-gradient tends to MAML's as alpha -> 0, and is
    far from it for a large step; the batch figures are of the summed gradients."""
    torch.manual_seed(0)
    tasks = image_tasks(3, n_way=5, k_shot=1, n_query=2)
    small = family.first_order_gap(tasks, inner_lr=1e-4, hidden=8)
    large = family.first_order_gap(tasks, inner_lr=5.0, hidden=8)
    assert small["per_task"] < 1e-2 and small["batch"] < 1e-2 and small["cosine"] > 0.999
    assert large["per_task"] > 10 * small["per_task"] and large["cosine"] < small["cosine"]
    for gap in (small, large):
        assert -1.0 <= gap["cosine"] <= 1.0 and gap["per_task"] >= 0


def test_first_order_gap_uses_the_weights_given():
    torch.manual_seed(0)
    tasks = image_tasks(2, n_way=5, k_shot=1, n_query=2)
    weights = family.make_algorithm("maml", hidden=8).state_dict()
    same = family.first_order_gap(tasks, weights, hidden=8)
    assert same == family.first_order_gap(tasks, weights, hidden=8)
    other = {k: v + 0.05 * torch.randn_like(v) for k, v in weights.items()}
    assert family.first_order_gap(tasks, other, hidden=8) != same
