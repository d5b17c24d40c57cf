import matplotlib.figure
import pytest
import torch

from metakit.metric import widgets


@pytest.fixture(scope="module")
def datasets(glyphs_background, glyphs_evaluation):
    return {"glyphs (background)": glyphs_background, "glyphs (evaluation)": glyphs_evaluation}


@pytest.fixture(scope="module")
def metric_models():
    from metakit.metric import experiments as metric

    torch.manual_seed(0)
    return {("proto", 40): metric.make_model("proto", hidden=8).eval(),
            ("metaopt", 20): metric.make_model("metaopt", hidden=8).eval()}


def test_metric_accuracy_figure_and_its_messages(metric_models, datasets):
    fig = widgets.metric_accuracy_figure(metric_models, datasets, "proto", 40, "glyphs (evaluation)",
                                         n_way=5, k_shot=1, distance="cosine", episodes=3)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert metric_models["proto", 40].distance == "euclidean"       # the test-time switch is undone
    _, message = widgets.run_safely(widgets.metric_accuracy_figure, models=metric_models, datasets=datasets,
                                    method="matching", train_ways=40, dataset="glyphs (evaluation)",
                                    n_way=5, k_shot=1, episodes=3)
    assert "no matching model trained with 40 ways" in message and "Run button" in message
    _, message = widgets.run_safely(widgets.metric_accuracy_figure, models=metric_models, datasets=datasets,
                                    method="proto", train_ways=40, dataset="glyphs (evaluation)",
                                    n_way=5, k_shot=19, episodes=3)
    assert "Choose k_shot + n_query <= 20" in message


def test_embedding_figure_for_each_method(metric_models, datasets):
    for method, ways in metric_models:
        fig = widgets.embedding_figure(metric_models, datasets, method, "glyphs (evaluation)",
                                       n_way=4, k_shot=2, train_ways=ways)
        assert isinstance(fig, matplotlib.figure.Figure)


def test_metric_explorers_and_the_run_button(metric_models, datasets, glyphs_background, monkeypatch):
    models = dict(metric_models)
    accuracy, embedding, trainer = widgets.metric_explorers(models, datasets, glyphs_background, episodes=2)
    assert accuracy.message.value == "" and embedding.message.value == ""
    trainer.controls["method"].value, trainer.controls["train_ways"].value = "matching", 5
    trainer.controls["seconds"].value = 1.0
    history = trainer.run()
    assert ("matching", 5) in models and history["steps"] >= 1
    assert 5 in accuracy.controls["train_ways"].options
    accuracy.controls["method"].value = "matching"
    accuracy.controls["train_ways"].value = 5
    assert accuracy.message.value == ""

    def diverge(*args, **kwargs):
        raise FloatingPointError("The loss became nan at episode 3 with lr=10. "
                                 "Training diverged: lower the learning rate.")

    monkeypatch.setattr("metakit.metric.experiments.train_episodes", diverge)
    trainer.controls["method"].value, trainer.controls["train_ways"].value = "proto", 7
    assert trainer.run() is None                       # a message, not a traceback
    assert "Training diverged" in trainer.message.value and ("proto", 7) not in models
    assert not trainer.button.disabled
