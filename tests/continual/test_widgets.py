import pytest
from matplotlib.figure import Figure

import metakit
from metakit.continual import experiments
from metakit.continual import stream as continual
from metakit.continual import widgets as continual_widgets


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
