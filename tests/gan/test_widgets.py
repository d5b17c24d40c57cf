"""metakit.gan.widgets: the callbacks called directly, including the bad-input paths."""

import pytest
import torch
from matplotlib.figure import Figure

from metakit.datasets import load_glyphs
from metakit.gan.augmentation import augmentation_run, load_pretrained
from metakit.gan.dagan import DAGANGenerator
from metakit.gan.dcgan import DCGANGenerator
from metakit.gan.widgets import (
    AugmentationRunner,
    LiveGANPlot,
    difference_figure,
    gan_progress_figure,
    variations_explorer,
    variations_figure,
)
from metakit.widgets import run_safely


class Constant(DAGANGenerator):
    def forward(self, x, z):
        return torch.full_like(x, 0.3)


class Jitter(DAGANGenerator):
    def forward(self, x, z):
        return (torch.roll(x, shifts=1, dims=-1) * 0.7 + 0.3 * torch.sigmoid(z[:, :1, None, None] + 0 * x)).clamp(0, 1)


@pytest.fixture(scope="module")
def evaluation():
    return load_glyphs("evaluation")


def test_progress_figure_and_live_plot():
    g = DCGANGenerator(z_dim=4, hidden=4)
    history = {"d_loss": [1.4, 1.3, 1.2], "g_loss": [0.7, 0.8, 0.9], "steps": 3, "clock_seconds": 0.5}
    assert isinstance(gan_progress_figure(history, torch.rand(5, 1, 28, 28)), Figure)
    live = LiveGANPlot(g, n_samples=6)
    live.update(history)
    live.update({"d_loss": [], "g_loss": [], "steps": 0})
    assert live.updates == 2 and live.image.value[:4] == b"\x89PNG"
    assert g.training  # sampling for the plot leaves a training generator training


def test_variations_figure_and_bad_character(evaluation):
    g = DAGANGenerator(z_dim=4, hidden=4)
    assert isinstance(variations_figure(g, evaluation, character=3, noise_scale=0.5, n_samples=4), Figure)
    _, error = run_safely(variations_figure, dagan=g, dataset=evaluation, character=evaluation.num_classes)
    assert "characters 0.." in error
    _, error = run_safely(variations_figure, dagan=g, dataset=evaluation, character=0, n_samples=0)
    assert "n_samples" in error


def test_variations_explorer_shows_messages(evaluation):
    ex = variations_explorer(DAGANGenerator(z_dim=4, hidden=4), evaluation)
    assert ex.message.value == "" and ex.image.value
    ex.controls["noise_scale"].value = 2.0
    assert ex.message.value == ""


def test_augmentation_run_and_figure(evaluation):
    summary = augmentation_run(Jitter(z_dim=4, hidden=4), evaluation, load_pretrained(), n_gen=1, episodes=2,
                               progress=False, plain_steps=5, head_steps=5)
    assert set(summary) == {"plain", "finetune", "proto"}
    assert isinstance(difference_figure(summary, "t"), Figure)


def test_runner_reports_a_collapsed_generator(evaluation):
    runner = AugmentationRunner(Constant(z_dim=4, hidden=4), evaluation, load_pretrained(), episodes=2)
    assert runner.run() is None
    assert "Not possible" in runner.message.value and "collapsed" in runner.message.value
    assert not runner.button.disabled


def test_augmentation_run_on_other_ways(evaluation):
    summary = augmentation_run(Jitter(z_dim=4, hidden=4), evaluation, load_pretrained(), n_gen=1, episodes=2,
                               progress=False, plain_steps=5, head_steps=5, n_way=3)
    assert set(summary) == {"plain", "finetune", "proto"}
    runner = AugmentationRunner(Jitter(z_dim=4, hidden=4), evaluation, load_pretrained(), episodes=2)
    runner.controls["n_way"].value = 3
    runner.controls["n_gen"].value = 1
    assert runner.run() is not None and "%" in runner.message.value


@pytest.mark.parametrize("n_way, match", [(1, "n_way must be at least 2"), (600, "Choose n_way <= 579")])
def test_augmentation_run_bad_ways_give_a_message(evaluation, n_way, match):
    result, error = run_safely(augmentation_run, dagan=Jitter(z_dim=4, hidden=4), dataset=evaluation,
                               pretrained=load_pretrained(), episodes=2, progress=False, n_way=n_way)
    assert result is None and match in error


def test_runner_chooses_among_generators(evaluation):
    """Given several generators, the panel has a dropdown and the Run button uses the one selected:
    the collapsed one is refused with a message, the healthy one runs."""
    generators = {"healthy": Jitter(z_dim=4, hidden=4), "collapsed": Constant(z_dim=4, hidden=4)}
    runner = AugmentationRunner(generators, evaluation, load_pretrained(), episodes=2)
    assert runner.controls["generator"].options == ("healthy", "collapsed") and runner.dagan is generators["healthy"]
    runner.controls["n_gen"].value = 1
    assert runner.run() is not None
    runner.controls["generator"].value = "collapsed"
    assert runner.dagan is generators["collapsed"]
    assert runner.run() is None and "collapsed" in runner.message.value
    assert "generator" not in AugmentationRunner(Jitter(z_dim=4, hidden=4), evaluation, load_pretrained()).controls
