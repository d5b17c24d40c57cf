import math

import pytest
import torch
from matplotlib.figure import Figure

from metakit.datasets import ImageClassDataset
from metakit.models import Conv4
from metakit.transfer import experiments as transfer_experiments
from metakit.transfer import finetune as transfer
from metakit.transfer import widgets as transfer_widgets
from metakit.widgets import run_safely


def tiny_dataset(classes=8, per_class=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = (torch.rand(classes * per_class, 28, 28, generator=g) * 255).to(torch.uint8)
    targets = torch.arange(classes).repeat_interleave(per_class)
    return ImageClassDataset(images, targets, [f"a/c{c}" for c in range(classes)], name="tiny")


def call(setup, **values):
    backbones, datasets, references = setup
    args = dict(dataset="tiny", method="baselinepp", n_way=5, k_shot=1, steps=20, lr=0.01, layers="head",
                episodes=2) | values
    return run_safely(transfer_widgets.finetune_figure, backbones=backbones, datasets=datasets,
                      references=references, **args)


@pytest.mark.parametrize("layers", transfer.LAYERS)
def test_finetune_figure_draws_for_every_choice_of_layers(setup, layers):
    fig, error = call(setup, layers=layers, method="baseline")
    assert error is None and isinstance(fig, Figure)


@pytest.mark.parametrize("values, match", [
    ({"n_way": 9}, "Choose n_way <= 8"),                      # more ways than classes
    ({"k_shot": 15}, "k_shot \\+ n_query"),                   # 15 shots + 10 queries > 20 drawings
    ({"lr": 0.0}, "positive"),
    ({"lr": math.nan}, "positive"),
    ({"layers": "first block"}, "layers must be one of"),
    ({"method": "svm"}, "method must be one of"),
    ({"dataset": "mnist"}, "dataset must be one of"),
])
def test_bad_values_give_a_message_not_a_traceback(setup, values, match):
    fig, error = call(setup, **values)
    assert fig is None and error is not None
    import re
    assert re.search(match, error), error


def test_a_diverging_learning_rate_gives_a_message(setup):
    fig, error = call(setup, lr=1e3, steps=100, method="baseline", layers="all")
    assert fig is None and "diverged" in error


def test_zero_steps_draws_the_untrained_head(setup):
    fig, error = call(setup, steps=0)
    assert error is None and isinstance(fig, Figure)


def test_explorer_wires_the_callback(setup):
    backbones, datasets, references = setup
    explorer = transfer_widgets.finetune_explorer(backbones, datasets, references, episodes=1)
    assert explorer.message.value == "" and explorer.image.value
    explorer.controls["n_way"].value = 30  # impossible on 8 classes: a message, the last plot kept
    assert "Not possible" in explorer.message.value and explorer.image.value
    explorer.controls["n_way"].value = 5
    assert explorer.message.value == ""


def test_comparison_and_layers_figures():
    data = tiny_dataset(classes=6)
    backbone = Conv4(hidden=4).eval()
    methods = {"baseline": transfer.FineTuner(backbone, steps=3),
               "baselinepp": transfer.FineTuner(backbone, "cosine", steps=3)}
    results = transfer_experiments.compare_methods(methods, {"tiny": data}, episodes=2, progress=False)
    assert isinstance(transfer_widgets.comparison_figure(results), Figure)
    table = transfer_experiments.layers_table(backbone, {"tiny": data}, "linear", episodes=2, progress=False, steps=3)
    assert set(table) == {(layers, "tiny") for layers in transfer.LAYERS}
    assert all(0 <= acc <= 1 for acc, _ in table.values())
    assert isinstance(transfer_widgets.layers_figure(table), Figure)
