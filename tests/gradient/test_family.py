import math

import pytest
import torch
from helpers import image_tasks, random_episode
from matplotlib.figure import Figure

from metakit.gradient import family
from metakit.gradient.family import accuracy_vs_steps, compare, feature_reuse, linear_cka, make_algorithm
from metakit.gradient.training import meta_train
from metakit.gradient.widgets import (
    FamilyTrainer,
    adaptation_curve,
    adaptation_explorer,
    adaptation_figure,
    running_mean,
    steps_figure,
    training_figure,
)
from metakit.metric.experiments import format_table


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
    history = family.train(tiny("anil"), glyphs_background, iterations=3, progress=False,
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


def test_adaptation_figure_and_its_messages(glyphs_evaluation):
    algs = {"maml": tiny("maml"), "mamlpp": tiny("mamlpp"), "metasgd": tiny("metasgd")}
    curve = adaptation_curve(algs["maml"], glyphs_evaluation, k_shot=1, inner_steps=3, episodes=2)
    assert curve["acc"].shape == (2, 4) and curve["support_loss"].shape == (2, 3)
    assert algs["maml"].inner_lr == 0.4  # restored after a test-time override
    for name in algs:
        assert isinstance(adaptation_figure(algs, glyphs_evaluation, name, 1, 2, 0.1, episodes=2), Figure)
    explorer = adaptation_explorer(algs, glyphs_evaluation)
    assert explorer.message.value == "" and explorer.image.value
    picture = explorer.image.value
    explorer.controls["algorithm"].value = "mamlpp"
    explorer.controls["inner_steps"].value = 5
    assert "MAML++ learned one rate per step" in explorer.message.value and explorer.image.value  # last plot kept
    explorer.controls["algorithm"].value = "maml"
    explorer.controls["inner_lr"].value = 10 ** 1.5
    explorer.controls["inner_steps"].value = 10
    assert explorer.image.value != picture or "Not possible" in explorer.message.value
    with pytest.raises(ValueError, match="no trained"):
        adaptation_figure(algs, glyphs_evaluation, "reptile", 1, 1, 0.1)


def test_family_trainer_trains_plots_and_reports_errors(glyphs_background, glyphs_evaluation, monkeypatch):
    monkeypatch.setattr(family, "make_algorithm", lambda name, **kw: tiny(name, **kw))
    import metakit.gradient.widgets as fw
    monkeypatch.setattr(fw, "make_algorithm", lambda name, **kw: tiny(name, **kw))
    algorithms = {}
    trainer = FamilyTrainer(glyphs_background, glyphs_evaluation, algorithms, seconds=1.0, test_episodes=2)
    trainer.controls["algorithm"].value = "anil"
    trainer.controls["n_way"].value = 3
    history = trainer.run()
    assert history["steps"] >= 1 and trainer.image.value
    assert "anil (yours)" in algorithms and "test accuracy" in trainer.message.value
    trainer.controls["inner_lr"].value = 10 ** 1.5
    trainer.controls["inner_steps"].value = 5
    trainer.controls["algorithm"].value = "maml"
    monkeypatch.setattr(fw, "make_algorithm", lambda name, **kw: tiny(name, **{**kw, "inner_lr": 1e20}))
    assert trainer.run() is None and "Not possible" in trainer.message.value
    assert not trainer.button.disabled


def test_figures_from_histories():
    assert running_mean([1, 2, 3, 4], window=2) == [1, 1.5, 2.5, 3.5]
    history = {"loss": [1.0, 0.5, 0.25], "acc": [0.2, 0.5, 0.9], "seconds": 3.0}
    assert isinstance(training_figure({"maml": history, "empty": {"seconds": 0}}), Figure)


def test_format_summary_has_a_row_per_algorithm():
    results = {(n, "glyphs", s): {"acc": 0.9, "ci95": 0.01, "ms": 1.0} for n in ("maml", "anil") for s in ("5w1s", "5w5s")}
    histories = {"maml": {"steps": 10, "seconds": 5.0}, "anil": {"steps": 20, "seconds": 5.0}}
    lines = family.format_summary(results, histories).splitlines()
    assert len(lines) == 3 and "glyphs 5w5s" in lines[0] and lines[1].startswith("MAML") and "500" in lines[1]


def test_meta_train_can_count_cpu_time():
    import time
    alg = tiny("maml")
    history = meta_train(alg, lambda b: image_tasks(tasks=b, n_query=2), meta_lr=1e-3, meta_batch_size=2, seconds=0.2, progress=False,
                         clock=time.process_time)
    assert history["clock_seconds"] >= 0.2 and history["steps"] >= 1
