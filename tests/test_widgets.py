import ipywidgets as W
import matplotlib.figure
import pytest

from metakit import widgets


@pytest.fixture(scope="module")
def datasets(glyphs_background, glyphs_evaluation):
    return {"glyphs (background)": glyphs_background, "glyphs (evaluation)": glyphs_evaluation}


def test_callback_returns_a_figure(datasets):
    fig = widgets.episode_figure(datasets, "glyphs (evaluation)", n_way=3, k_shot=2, n_query=1)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(fig.axes) >= 2   # support and query grids


def test_same_seed_same_episode(datasets):
    a = widgets.figure_png(widgets.episode_figure(datasets, "glyphs (evaluation)", 3, 1, 1, seed=5))
    b = widgets.figure_png(widgets.episode_figure(datasets, "glyphs (evaluation)", 3, 1, 1, seed=5))
    assert a == b


def test_run_safely_turns_user_errors_into_messages(datasets):
    fig, message = widgets.run_safely(widgets.episode_figure, datasets=datasets,
                                      dataset="glyphs (evaluation)", n_way=5000, k_shot=1, n_query=1)
    assert fig is None and "n_way=5000" in message and "Choose n_way <=" in message
    with pytest.raises(KeyError):   # a bug, not a learner's choice: still raised
        widgets.run_safely(widgets.episode_figure, datasets=datasets, dataset="nope", n_way=5, k_shot=1, n_query=1)


def test_explorer_shows_the_message_and_keeps_the_last_plot(datasets):
    ex = widgets.episode_explorer(datasets)
    assert ex.message.value == "" and len(ex.image.value) > 1000
    ex.controls["n_way"].value = 60
    ex.controls["dataset"].value = "glyphs (evaluation)"
    good = ex.image.value
    ex.controls["k_shot"].value = 20                     # 20 + 3 queries > 20 drawers
    assert "Not possible" in ex.message.value and "k_shot + n_query" in ex.message.value
    assert ex.image.value == good                         # the last good plot stays
    ex.controls["k_shot"].value = 1
    ex.controls["n_way"].value = 5
    assert ex.message.value == "" and ex.image.value != good   # a valid change redraws


def test_zero_shots_is_explained(datasets):
    ex = widgets.episode_explorer(datasets)
    ex.controls["k_shot"].value = 0
    assert "k_shot must be a positive whole number" in ex.message.value


def test_run_panel_shows_a_learners_error_as_a_message_and_frees_the_button():
    class Panel(widgets.RunPanel):
        def run(self):
            return self.call(self.work, **self.values)

        def work(self, k_shot, n_way):
            print("progress goes to the output area")
            if k_shot > 3:
                raise ValueError(f"k_shot={k_shot} is more than the 3 drawings there are")
            return k_shot * 2

    panel = Panel({"k_shot": W.IntSlider(2), "n_way": W.IntSlider(5)}, rows=[["k_shot"], ["n_way"]])
    assert [len(row.children) for row in panel.ui.children[:2]] == [1, 2]  # the button ends the last row
    assert panel.run() == 4 and panel.message.value == "" and not panel.button.disabled
    panel.controls["k_shot"].value = 5
    assert panel.run() is None and "Not possible" in panel.message.value and "k_shot=5" in panel.message.value
    assert not panel.button.disabled
    with pytest.raises(TypeError):  # a bug, not a learner's error, still raises
        panel.call(lambda: None, unexpected=1)


def test_views_carry_their_figure_and_a_sentence_for_readers_without_a_kernel(datasets):
    import base64

    from IPython.core.formatters import DisplayFormatter

    ex = widgets.episode_explorer(datasets)
    data, _ = DisplayFormatter().format(ex)                   # what a notebook output stores
    assert "application/vnd.jupyter.widget-view+json" in data   # the live widget, where a kernel runs
    assert base64.b64decode(data["image/png"]) == ex.image.value  # the figure, everywhere else
    assert "VBox(" not in data["text/plain"] and "n_way" in data["text/plain"]

    panel = widgets.RunPanel({"k_shot": W.IntSlider(2)})
    data, _ = DisplayFormatter().format(panel)
    assert "image/png" not in data and "Run button" in data["text/plain"] and "VBox(" not in data["text/plain"]
    panel.image.value = ex.image.value                        # once it has run, its plot comes along
    assert "image/png" in DisplayFormatter().format(panel)[0]
