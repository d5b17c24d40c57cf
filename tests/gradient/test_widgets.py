import pytest
from matplotlib.figure import Figure

from metakit.gradient import family
from metakit.gradient.widgets import (
    FamilyTrainer,
    adaptation_explorer,
    adaptation_figure,
    running_mean,
    training_figure,
)

from metakit.widgets import run_safely

from .test_family import tiny


def test_adaptation_figure_and_its_messages(glyphs_evaluation):
    algs = {"maml": tiny("maml"), "mamlpp": tiny("mamlpp"), "metasgd": tiny("metasgd")}
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
    monkeypatch.setattr(family, "make_algorithm", lambda name, **kw: tiny(name, **{**kw, "inner_lr": 1e20}))
    assert trainer.run() is None and "Not possible" in trainer.message.value
    assert not trainer.button.disabled


def test_figures_from_histories():
    assert running_mean([1, 2, 3, 4], window=2) == [1, 1.5, 2.5, 3.5]
    history = {"loss": [1.0, 0.5, 0.25], "acc": [0.2, 0.5, 0.9], "seconds": 3.0}
    assert isinstance(training_figure({"maml": history, "empty": {"seconds": 0}}), Figure)


def test_explorer_adapts_to_fewer_ways_and_refuses_more(glyphs_evaluation):
    algs = {"maml": tiny("maml"), "metasgd": tiny("metasgd")}
    for name in algs:
        fig = adaptation_figure(algs, glyphs_evaluation, name, 1, 1, 0.1, episodes=2, n_way=3)
        assert "3-way 1-shot" in fig.axes[0].get_title()
    assert algs["maml"].model.head.out_features == 5          # the trained model is left as it was
    explorer = adaptation_explorer(algs, glyphs_evaluation)
    assert explorer.controls["n_way"].value == 5 and explorer.message.value == ""
    explorer.controls["n_way"].value = 12
    assert "5-way head" in explorer.message.value and "n_way=12" in explorer.message.value
    explorer.controls["n_way"].value = 4
    assert explorer.message.value == ""


def test_trainer_passes_meta_lr_and_meta_batch_size(glyphs_background, glyphs_evaluation, monkeypatch):
    seen = {}
    real_train = family.train

    def spy(algorithm, dataset, **kw):
        seen.update(kw)
        return real_train(algorithm, dataset, **kw)

    monkeypatch.setattr(family, "make_algorithm", lambda name, **kw: tiny(name, **kw))
    monkeypatch.setattr(family, "train", spy)
    trainer = FamilyTrainer(glyphs_background, glyphs_evaluation, {}, seconds=1.0, test_episodes=2)
    trainer.controls["meta_lr"].value = 1e-2
    trainer.controls["meta_batch_size"].value = 2
    assert trainer.run() is not None
    assert seen["meta_lr"] == pytest.approx(1e-2) and seen["meta_batch_size"] == 2


@pytest.mark.parametrize("values, match", [
    (dict(meta_lr=0.0), "meta_lr must be a positive number"),
    (dict(meta_lr=float("inf")), "meta_lr must be a positive number"),
    (dict(meta_batch_size=0), "meta_batch_size must be a whole number"),
    (dict(meta_batch_size=2.5), "meta_batch_size must be a whole number"),
])
def test_bad_outer_settings_give_a_message_before_training(glyphs_background, glyphs_evaluation, values, match):
    result, error = run_safely(family.train_and_test, name="maml", background=glyphs_background,
                               evaluation=glyphs_evaluation, seconds=1.0, test_episodes=2, **values)
    assert result is None and match in error
