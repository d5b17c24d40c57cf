import numpy as np
import torch
from matplotlib.figure import Figure

from metakit.plots import plot_characters, plot_curves, plot_episode


def test_an_episode_shows_its_support_and_the_first_queries():
    x_support, y_support = torch.rand(6, 1, 28, 28), torch.arange(3).repeat_interleave(2)   # 3-way 2-shot
    x_query, y_query = torch.rand(30, 1, 28, 28), torch.arange(3).repeat_interleave(10)
    fig = plot_episode(x_support, y_support, x_query, y_query, max_query=4)
    ax_s, ax_q = fig.axes
    assert ax_s.get_title() == "support: 2 shot" and ax_q.get_title() == "query: 4 of 10 per class"
    assert fig._suptitle.get_text() == "3-way 2-shot episode"


def test_a_wide_episode_shows_its_first_twenty_classes():
    y = torch.arange(25)
    fig = plot_episode(torch.rand(25, 1, 28, 28), y, torch.rand(25, 1, 28, 28), y)
    assert "first 20 classes shown" in fig._suptitle.get_text()


def test_characters_are_labelled_with_their_names(glyphs_evaluation):
    fig = plot_characters(glyphs_evaluation, [0, 1], renderings=3, title="two")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [glyphs_evaluation.class_names[0], glyphs_evaluation.class_names[1]]


def test_curves_with_intervals_and_chance():
    fig = plot_curves([1, 2, 3], {"a": [0.2, 0.5, 0.9], "b": ([0.3, 0.4, 0.5], [0.1, 0.1, 0.1])}, "x", "acc",
                      chance=0.2)
    ax = fig.axes[0]
    assert isinstance(fig, Figure) and [line.get_label() for line in ax.get_lines()] == ["a", "b", "chance"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [0.3, 0.4, 0.5])
    assert len(ax.collections) == 1  # the band of b's interval
