import pytest
import torch
from matplotlib.figure import Figure

import metakit
from metakit.continual import experiments
from metakit.continual import stream as continual
from metakit.continual import widgets as continual_widgets
from metakit.widgets import run_safely


@pytest.fixture(scope="module")
def evaluation():
    return metakit.load_glyphs("evaluation")


def test_the_figures(evaluation):
    r = experiments.train_strategy(evaluation, "agem", n_tasks=2, epochs=1, n_classes=4, progress=False)
    fig = continual_widgets.accuracy_matrices_figure({"agem": r, "naive": r})
    assert isinstance(fig, Figure) and len(fig.axes) >= 4
    stream = continual.glyph_stream(evaluation, "rotations", n_tasks=3, n_classes=4)
    assert isinstance(continual_widgets.stream_figure(stream, n_classes=3), Figure)
    curves = {"oml": {10: 0.5, 100: 0.4}, "pretrain": {10: 0.3, 100: 0.2}}
    assert isinstance(continual_widgets.online_curves_figure(curves, reference=(600, 0.638, "paper")), Figure)
    with pytest.raises(ValueError, match="press Run"):
        continual_widgets.accuracy_matrices_figure({})


def test_trainer_runs_and_shows_bad_settings_as_messages(evaluation):
    trainer = continual_widgets.ContinualTrainer(evaluation, n_classes=4)
    trainer.controls["n_tasks"].value = 2
    trainer.controls["epochs"].value = 1
    trainer.controls["strategy"].value = "gem"
    trainer.controls["memory_per_task"].value = 0
    assert trainer.run() is None
    assert "Not possible" in trainer.message.value and "memory" in trainer.message.value
    assert trainer.image.value == b""
    trainer.controls["memory_per_task"].value = 10
    result = trainer.run()
    assert result is not None and "gem" in trainer.results and trainer.image.value
    assert "average accuracy" in trainer.message.value
    picture = trainer.image.value
    trainer.controls["strategy"].value = "naive"
    trainer.controls["lr"].value = 100.0
    assert trainer.run() is None
    assert "too large" in trainer.message.value and trainer.image.value == picture   # the last plot stays
    assert not trainer.button.disabled


def test_trainer_runs_on_the_chosen_stream(evaluation):
    trainer = continual_widgets.ContinualTrainer(evaluation, n_classes=4)
    assert trainer.controls["kind"].options == ("rotations", "permutations")
    for name, value in dict(kind="permutations", strategy="naive", n_tasks=2, epochs=1).items():
        trainer.controls[name].value = value
    result = trainer.run()
    assert result is not None and "naive, permutations" in trainer.results
    assert "on permutations: average accuracy" in trainer.message.value
    trainer.controls["kind"].value = "rotations"
    assert trainer.run() is not None and set(trainer.results) == {"naive", "naive, permutations"}


def test_a_bad_stream_kind_is_a_message(evaluation):
    result, error = run_safely(experiments.train_strategy, dataset=evaluation, strategy="naive",
                                                 kind="spirals", n_tasks=2, epochs=1, n_classes=4, progress=False)
    assert result is None and "rotations" in error


@pytest.fixture(scope="module")
def online_models():
    from metakit.continual.oml import ANML, OnlineLearner

    torch.manual_seed(0)
    return {"oml": (OnlineLearner(10).eval(), {}), "anml": (ANML(10).eval(), {})}


def test_head_lr_explorer_draws_and_rejects_bad_values(evaluation, online_models):
    small = evaluation.subset(evaluation.alphabets[:2])
    curves = {"oml": {10: 0.5, 20: 0.4}}
    fig = continual_widgets.head_lr_figure(online_models, small, "anml", 1e-3, 20, curves=curves)
    assert isinstance(fig, Figure) and "after 20 classes" in fig.axes[0].get_title()
    explorer = continual_widgets.head_lr_explorer(online_models, small, curves=curves, n_classes=20)
    assert explorer.message.value == "" and explorer.image.value
    picture = explorer.image.value
    for values, match in [(dict(lr=0.0), "learning rate must be a positive"),
                          (dict(lr=float("nan")), "learning rate must be a positive"),
                          (dict(n_classes=10_000), "n_classes must be between"),
                          (dict(model="resnet"), "no model")]:
        result, error = run_safely(explorer.fn, **explorer.fixed, **(explorer.values | values))
        assert result is None and match in error, error
    explorer.controls["lr"].value = 1e-7          # a slider move redraws
    assert explorer.message.value == "" and explorer.image.value != picture
