"""Widget callbacks and the small machinery that wires them to ipywidgets.

A callback is a plain function of the control values that returns a matplotlib Figure; tests
call it directly. :class:`Explorer` shows its figure as a PNG under the controls and, when the
callback rejects the values (an impossible episode, a diverging learning rate), shows the
reason in the message area instead of a traceback, keeping the last good plot.
"""

from __future__ import annotations

import base64
import html
import io
import time

import ipywidgets as W

from .episodes import sample_episode
from .plots import plot_episode
from .runtime import seed_everything

# Errors a learner can cause by moving a control; anything else is a bug and is raised.
USER_ERRORS = (ValueError, FileNotFoundError, FloatingPointError)


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def error_html(message: str) -> str:
    """A learner's error as the message area shows it: red, prefixed "Not possible:", escaped."""
    return (f'<div style="color:#a40000;border-left:4px solid #a40000;padding:4px 8px">'
            f"<b>Not possible:</b> {html.escape(message)}</div>")


def static_bundle(ui, png: bytes, what: str) -> dict:
    """A view's display data: the live widget, and for a reader without a running kernel (GitHub,
    nbviewer, a static site, a JupyterLab that has not restored the saved widget state) its current
    figure as a PNG and a sentence instead of the widget's ``VBox(children=...`` repr.

    Args:
        ui: the view's outer ipywidgets box; png: its current figure (empty: none yet);
        what: the sentence shown as plain text.
    """
    bundle = ui._repr_mimebundle_()
    bundle["text/plain"] = what
    if png:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    return bundle


def run_safely(fn, **values):
    """Call ``fn(**values)``. Returns ``(result, None)``, or ``(None, message)`` for a user error."""
    try:
        return fn(**values), None
    except USER_ERRORS as e:
        return None, str(e)


class Explorer:
    """Controls, a message area and a plot, redrawn by ``fn(**control values)`` on every change.

    Args:
        fn: callback returning a matplotlib Figure.
        controls: name -> ipywidgets control; the names are ``fn``'s keyword arguments.
        extras: more widgets shown beside the controls (a button that moves one of them, say).
        **fixed: keyword arguments passed to ``fn`` unchanged.
    """

    def __init__(self, fn, controls: dict, extras=(), **fixed):
        self.fn, self.controls, self.fixed = fn, controls, fixed
        self.message = W.HTML()
        self.image = W.Image(format="png")
        self.seconds = float("nan")
        for c in controls.values():
            c.observe(self.update, names="value")
        box = W.HBox if len(controls) + len(extras) <= 3 else W.VBox
        self.ui = W.VBox([box([*controls.values(), *extras]), self.message, self.image])
        self.update()

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def update(self, *_):
        start = time.perf_counter()
        fig, error = run_safely(self.fn, **self.fixed, **self.values)
        if error is None:
            self.image.value = figure_png(fig)
            self.message.value = ""
        else:
            self.message.value = error_html(error)
        self.seconds = time.perf_counter() - start

    def _repr_mimebundle_(self, **kwargs):
        return static_bundle(self.ui, self.image.value,
                             f"[interactive view: {', '.join(self.controls)}; run the notebook to move the controls]")


class RunPanel:
    """Controls and a Run button over a message area, an output area and a plot: the base of every
    "train (or evaluate) with these settings" panel.

    A subclass builds its controls, passes them here, and in its ``run`` calls :meth:`call` with
    the work to do; the work's progress bars print into the output area, the button is disabled
    while it runs, and a learner's error becomes the message instead of a traceback.

    Args:
        controls: name -> ipywidgets control.
        rows: the control names row by row (default: one row); the button ends the last row.
    """

    def __init__(self, controls: dict, rows=None):
        self.controls = controls
        self.button = W.Button(description="Run", icon="play", button_style="primary")
        self.button.on_click(lambda _: self.run())
        self.message, self.out, self.image = W.HTML(), W.Output(), W.Image(format="png")
        rows = [[controls[name] for name in row] for row in (rows or [list(controls)])]
        rows[-1].append(self.button)
        self.ui = W.VBox([*(W.HBox(row) for row in rows), self.message, self.out, self.image])

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def run(self):
        raise NotImplementedError

    def call(self, fn, **values):
        """``fn(**values)`` with the output area cleared and the button disabled. Returns its
        result, or None after showing a learner's error (:data:`USER_ERRORS`) as the message."""
        self.out.clear_output()
        self.button.disabled = True
        try:
            with self.out:
                result, error = run_safely(fn, **values)
        finally:
            self.button.disabled = False
        if error is not None:
            self.message.value = error_html(error)
        return result

    def _repr_mimebundle_(self, **kwargs):
        return static_bundle(self.ui, self.image.value,
                             f"[controls: {', '.join(self.controls)} and a Run button; run the notebook to use them]")


def episode_figure(datasets: dict, dataset: str, n_way: int, k_shot: int, n_query: int,
                   rotations: bool = False, seed: int = 0):
    """Notebook 01's callback: draw an episode from ``datasets[dataset]`` and plot it."""
    seed_everything(seed)  # learn2learn's Taskset picks classes with Python's random
    episode = sample_episode(datasets[dataset], n_way, k_shot, n_query, rotations=rotations)
    return plot_episode(*episode, title=f"{dataset}: {n_way}-way {k_shot}-shot, {n_query} queries per class")


def episode_explorer(datasets: dict) -> Explorer:
    """Dropdown for the dataset, sliders for n_way, k_shot, n_query, a rotation switch and a
    button that draws a new episode."""
    style = {"description_width": "initial"}
    controls = {
        "dataset": W.Dropdown(options=list(datasets), description="dataset"),
        "n_way": W.IntSlider(5, min=1, max=60, description="n_way", style=style),
        "k_shot": W.IntSlider(1, min=0, max=20, description="k_shot", style=style),
        "n_query": W.IntSlider(3, min=0, max=20, description="n_query", style=style),
        "rotations": W.Checkbox(False, description="rotations as new classes"),
        "seed": W.IntText(0, description="seed", layout=W.Layout(width="140px")),
    }
    return Explorer(episode_figure, controls, extras=[new_episode_button(controls["seed"])], datasets=datasets)


def new_episode_button(seed_control) -> W.Button:
    """A button that bumps a seed control, so every callback watching it draws a new episode."""
    button = W.Button(description="new episode", icon="refresh")
    button.on_click(lambda _: setattr(seed_control, "value", seed_control.value + 1))
    return button
