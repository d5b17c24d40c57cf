"""Notebook 09's widgets: annotate a pasted column with semantic types, add a new type from a few
pasted example columns, and look at an episode's predictions.

The callbacks are plain functions (tests call them directly); a learner's bad input (an empty
column, a single value, an impossible episode) raises ``ValueError`` with the reason, which the
widgets show in their message area. Junk gets an answer flagged "low confidence", not an error.
"""

from __future__ import annotations

import re
from functools import lru_cache

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
from IPython.display import display
from matplotlib import font_manager, ft2font

from ..widgets import Explorer, error_html, figure_png, new_episode_button, run_safely
from .columns import generate_column
from .experiments import episode_predictions
from .library import MIN_VALUES, TypeLibrary
from .rules import RULES, rule_signature


def parse_column(text: str) -> list[str]:
    """A pasted column: one value per line, or comma-separated values on a single line; blank
    values dropped. Raises ``ValueError`` ("not enough values") below :data:`MIN_VALUES` values."""
    if not isinstance(text, str):
        raise ValueError(f"paste the column as text; got {type(text).__name__}.")
    lines = [v.strip() for v in text.strip().splitlines()]
    lines = [v for v in lines if v]
    # one line with commas is comma-separated, unless the commas could be digit groups ("1,250.00")
    if len(lines) == 1 and (", " in lines[0] or ("," in lines[0] and not re.search(r"\d,\d", lines[0]))):
        lines = [v.strip() for v in lines[0].split(",")]
    values = [v for v in lines if v]
    if len(values) < MIN_VALUES:
        raise ValueError(f"not enough values: {len(values)} value{'s' * (len(values) != 1)} pasted; paste at least "
                         f"{MIN_VALUES}, one per line (or comma-separated on one line).")
    return values


def parse_columns(text: str) -> list[list[str]]:
    """Example columns separated by blank lines, each parsed by :func:`parse_column`."""
    blocks = [b for b in re.split(r"\n\s*\n", (text or "").strip()) if b.strip()]
    if not blocks:
        raise ValueError("not enough values: paste at least one example column (columns separated by a blank line).")
    return [parse_column(b) for b in blocks]


def annotate(library: TypeLibrary, text: str, low_confidence: float = 0.5) -> dict:
    """The widget callback: parse a pasted column and predict its type.

    Returns:
        ``{"values": n, "ranking": [(type, confidence), ...], "verdict": str, "confident": bool}``;
        the verdict says "low confidence" when the top confidence is below ``low_confidence`` or the
        column lies far from every known type (mixed junk, a type not in the library).
    """
    values = parse_column(text)
    ranking, nearest = library.predict(values)
    top, conf = ranking[0]
    far = nearest > library.radius
    confident = conf >= low_confidence and not far
    if confident:
        verdict = f"{top} ({conf:.0%} confidence)"
    else:
        why = "unlike every known type" if far else f"the best guess has {conf:.0%}"
        verdict = f"low confidence: {why}; closest type {top}"
    return {"values": len(values), "ranking": ranking, "verdict": verdict, "confident": confident}


def annotation_figure(library: TypeLibrary, text: str, top: int = 6):
    """:func:`annotate`, drawn: the ``top`` most likely types and their confidences."""
    result = annotate(library, text)
    names, probs = zip(*result["ranking"][:top])
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.0))
    ax.barh(range(len(names))[::-1], probs, color=["tab:green" if result["confident"] else "tab:orange"] +
            ["tab:gray"] * (len(names) - 1))
    ax.set_yticks(range(len(names))[::-1], [displayable(n) for n in names])
    ax.set_xlim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_title(displayable(f"{result['values']} values: {result['verdict']}"), fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


def add_type_from_text(library: TypeLibrary, name: str, text: str) -> str:
    """The widget callback: add type ``name`` from pasted example columns; returns a message."""
    columns = parse_columns(text)
    existed = name.strip() in library.names
    library.add_type(name, columns)
    return (f"{'Replaced' if existed else 'Added'} type {name.strip()!r} from {len(columns)} example "
            f"column{'s' * (len(columns) != 1)}; {len(library.names)} types known.")


@lru_cache(maxsize=1)
def _font_chars() -> frozenset:
    path = font_manager.findfont(font_manager.FontProperties(family=plt.rcParams["font.family"]))
    return frozenset(ft2font.FT2Font(path).get_charmap())


def displayable(text: str) -> str:
    """``text`` with the characters matplotlib's font lacks (CJK, emoji) shown as a box."""
    chars = _font_chars()
    return "".join(c if ord(c) in chars or c.isspace() else "\u25a1" for c in text)


def episode_figure(methods: dict, dataset, n_way: int, k_shot: int, n_query: int = 1, seed: int = 0):
    """One held-out episode and every method's prediction for each query column
    (:func:`~metakit.metadata.experiments.episode_predictions`), as a table.

    Args:
        methods: name -> classifier on columns (``fit_support``, ``forward``).
        dataset: a :class:`~metakit.metadata.columns.ColumnDataset`.
    Returns:
        A Figure: one row per query column (its first values), a column per method, green when right.
    """
    x_query, y_query, names, preds = episode_predictions(methods, dataset, n_way, k_shot, n_query, seed)
    fig, ax = plt.subplots(figsize=(3.2 + 1.6 * len(methods), 0.42 * len(x_query) + 1.2))
    ax.set_axis_off()
    rows = [[displayable(", ".join(c[:2])[:34]), names[int(y)]] + [names[int(p[j])] for p in preds.values()]
            for j, (c, y) in enumerate(zip(x_query, y_query))]
    colours = [["white", "white"] + ["#c8f0c8" if int(p[j]) == int(y) else "#f6c6c6" for p in preds.values()]
               for j, y in enumerate(y_query)]
    table = ax.table(cellText=rows, cellColours=colours, colLabels=["query column", "true type", *methods],
                     loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)
    accs = ", ".join(f"{n} {float((p == y_query).float().mean()):.0%}" for n, p in preds.items())
    ax.set_title(f"{n_way}-way {k_shot}-shot held-out episode: {accs}", fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


def episode_explorer(methods: dict, dataset) -> Explorer:
    """Sliders for n_way and k_shot, and a new-episode button, over :func:`episode_figure`."""
    controls = {"n_way": W.IntSlider(5, min=2, max=15, description="n_way"),
                "k_shot": W.IntSlider(1, min=1, max=10, description="k_shot"),
                "seed": W.IntText(0, description="seed", layout=W.Layout(width="140px"))}
    return Explorer(episode_figure, controls, extras=[new_episode_button(controls["seed"])],
                    methods=methods, dataset=dataset)


class Annotator:
    """A text box for a pasted column and an Annotate button; a name, a text box for example
    columns and an Add-type button. Results and messages show in the output area."""

    def __init__(self, library: TypeLibrary, example: str = ""):
        self.library = library
        self.column = W.Textarea(example, placeholder="one value per line", description="column",
                                 layout=W.Layout(width="420px", height="140px"))
        self.annotate_button = W.Button(description="Annotate", icon="tag", button_style="primary")
        self.name = W.Text(placeholder="new type name", description="type name")
        self.examples = W.Textarea(placeholder="example columns, separated by a blank line", description="examples",
                                   layout=W.Layout(width="420px", height="140px"))
        self.add_button = W.Button(description="Add type", icon="plus")
        self.message = W.HTML()
        self.image = W.Image(format="png")
        self.annotate_button.on_click(lambda _: self.annotate())
        self.add_button.on_click(lambda _: self.add())
        self.ui = W.VBox([W.HBox([self.column, self.annotate_button]),
                          W.HBox([W.VBox([self.name, self.examples]), self.add_button]), self.message, self.image])

    def annotate(self) -> None:
        fig, error = run_safely(annotation_figure, library=self.library, text=self.column.value)
        if error is None:
            self.image.value, self.message.value = figure_png(fig), ""
        else:
            self.message.value = error_html(error)

    def add(self) -> None:
        text, error = run_safely(add_type_from_text, library=self.library, name=self.name.value,
                                 text=self.examples.value)
        self.message.value = error_html(error) if error is not None else f"<span>{text}</span>"

    def _ipython_display_(self):
        display(self.ui)


def signature_figure(types, seed: int = 0):
    """The rule signature (fraction of values each rule accepts) of one column of each type."""
    s = torch.stack([rule_signature(generate_column(t, seed)) for t in types])  # (T, R)
    fig, ax = plt.subplots(figsize=(0.26 * len(RULES) + 2.5, 0.3 * len(types) + 1.6))
    im = ax.imshow(s, cmap="Greens", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(RULES)), RULES, rotation=90, fontsize=7)
    ax.set_yticks(range(len(types)), types, fontsize=8)
    ax.set_title("rule signatures: the fraction of a column's values each rule accepts", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.02)
    fig.tight_layout()
    plt.close(fig)
    return fig


def comparison_figure(results: dict, n_way: int = 5):
    """Accuracy against k_shot with 95% intervals, from
    :func:`~metakit.metadata.experiments.compare_methods`'s results (settings named by k_shot)."""
    methods = list(dict.fromkeys(k[0] for k in results))
    shots = sorted(set(k[2] for k in results))
    test_set = next(iter(results))[1]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name in methods:
        m = [results[name, test_set, k]["acc"] for k in shots]
        h = [results[name, test_set, k]["ci95"] for k in shots]
        ax.errorbar(shots, m, yerr=h, marker="o", capsize=3, label=name)
    ax.axhline(1 / n_way, color="gray", ls=":", lw=1, label="chance")
    ax.set_xticks(shots)
    ax.set_xlabel("k_shot (labelled example columns per type)")
    ax.set_ylabel("query accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"held-out types, {n_way}-way episodes", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    plt.close(fig)
    return fig


def loss_figure(curve, every: int):
    """The meta-training loss, averaged over blocks of ``every`` episodes."""
    fig, ax = plt.subplots(figsize=(5.5, 3))
    ax.plot([every * (i + 1) for i in range(len(curve))], curve)
    ax.set_xlabel("training episode")
    ax.set_ylabel("query cross-entropy")
    ax.set_yscale("log")
    fig.tight_layout()
    plt.close(fig)
    return fig
