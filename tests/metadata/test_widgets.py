import matplotlib
import pytest
import torch

from metakit.metadata.columns import ColumnDataset, generate_column
from metakit.metadata.encoder import ColumnEncoder, ColumnPrototypes
from metakit.metadata.library import TypeLibrary
from metakit.metadata.rules import RuleSignatureClassifier
from metakit.metadata.widgets import (
    Annotator,
    add_type_from_text,
    annotate,
    annotation_figure,
    episode_explorer,
    episode_figure,
    parse_column,
    parse_columns,
)
from metakit.widgets import run_safely


@pytest.fixture(scope="module")
def library():
    torch.manual_seed(0)
    return TypeLibrary(ColumnPrototypes(ColumnEncoder(dim=16)), ["email", "ipv4", "year"], k_shot=3)


def test_parse_column_lines_and_commas():
    assert parse_column("a\n b \n\nc") == ["a", "b", "c"]
    assert parse_column("a, b,c") == ["a", "b", "c"]
    assert parse_column("1,250.00\n3,000.10") == ["1,250.00", "3,000.10"]
    assert parse_columns("a\nb\n\n c\nd\n") == [["a", "b"], ["c", "d"]]


@pytest.mark.parametrize("text", ["", "   \n  ", "only-one", "1,250.00", None, 42])
def test_empty_or_single_value_says_not_enough_values(library, text):
    result, error = run_safely(annotate, library=library, text=text)
    assert result is None and ("not enough values" in error or "paste the column as text" in error)


def test_annotate_ranks_every_type_with_confidences(library):
    result = annotate(library, "\n".join(generate_column("email", 5)))
    assert [name for name, _ in result["ranking"]] and len(result["ranking"]) == 3
    assert sum(p for _, p in result["ranking"]) == pytest.approx(1.0, abs=1e-5)
    assert result["values"] >= 10 and isinstance(result["verdict"], str)
    assert isinstance(annotation_figure(library, "a@b.com\nc@d.org"), matplotlib.figure.Figure)


def test_mixed_junk_is_low_confidence_not_a_crash(library):
    junk = "\n".join(["☃☃☃", "x" * 3000, "", "12:ab::#", "東京", "\x00\x01", "   ;;; "])
    result = annotate(library, junk)
    assert not result["confident"] and result["verdict"].startswith("low confidence")
    lib = TypeLibrary(library.model, ["email"], k_shot=1)  # one example column: no radius, still an answer
    assert annotate(lib, "a\nb")["ranking"][0][0] == "email"


def test_adding_a_type_makes_it_a_candidate(library):
    lib = TypeLibrary(library.model, ["email", "ipv4"], k_shot=2)
    examples = "\n\n".join("\n".join(generate_column("mime_type", s)) for s in range(3))
    message = add_type_from_text(lib, " mime ", examples)
    assert message.startswith("Added type 'mime' from 3 example columns") and lib.names[-1] == "mime"
    assert "mime" in [n for n, _ in annotate(lib, "\n".join(generate_column("mime_type", 99)))["ranking"]]
    assert add_type_from_text(lib, "mime", examples).startswith("Replaced") and lib.names.count("mime") == 1
    for name, text in [("", examples), ("x", ""), ("x", "a\n\nb")]:
        result, error = run_safely(add_type_from_text, library=lib, name=name, text=text)
        assert result is None and error
    assert len(lib.names) == 3
    with pytest.raises(ValueError, match="no types known"):
        TypeLibrary(library.model).predict(["a", "b"])


def test_episode_figure_and_impossible_episodes():
    data = ColumnDataset(["email", "ipv4", "year", "url"], columns_per_type=4)
    methods = {"rules": RuleSignatureClassifier()}
    fig = episode_figure(methods, data, n_way=3, k_shot=2, n_query=1, seed=0)
    assert isinstance(fig, matplotlib.figure.Figure)
    for n_way, k_shot in [(5, 1), (2, 4), (0, 1)]:
        result, error = run_safely(episode_figure, methods=methods, dataset=data, n_way=n_way, k_shot=k_shot)
        assert result is None and error


def test_widgets_wire_the_callbacks(library):
    data = ColumnDataset(["email", "ipv4", "year", "url", "city", "uuid"], columns_per_type=3)
    explorer = episode_explorer({"rules": RuleSignatureClassifier()}, data)
    assert explorer.message.value == "" and explorer.image.value
    explorer.controls["n_way"].value = 7  # more ways than types: a message, no traceback
    assert "Not possible" in explorer.message.value and "6 types" in explorer.message.value
    ui = Annotator(library, example="")
    ui.annotate()
    assert "not enough values" in ui.message.value
    ui.column.value = "a@b.com\nc@d.org"
    ui.annotate()
    assert ui.message.value == "" and ui.image.value
    ui.name.value, ui.examples.value = "thing", "p\nq"
    ui.add()
    assert "Added type 'thing'" in ui.message.value


def test_plots_are_figures():
    from metakit.metadata.widgets import comparison_figure, loss_figure, signature_figure

    assert isinstance(signature_figure(["email", "iban"]), matplotlib.figure.Figure)
    results = {(m, "held-out", k): {"acc": 0.5, "ci95": 0.1} for m in ("rules", "proto") for k in (1, 3)}
    assert isinstance(comparison_figure(results), matplotlib.figure.Figure)
    assert isinstance(loss_figure([1.0, 0.5, 0.2], every=25), matplotlib.figure.Figure)


def test_displayable_boxes_characters_the_font_lacks():
    from metakit.metadata.widgets import displayable

    assert displayable("Zürich, a b") == "Zürich, a b"
    assert displayable("東京x") == "\u25a1\u25a1x"


def test_a_type_named_in_any_script_draws_without_warnings(library):
    import warnings

    from metakit.widgets import figure_png

    lib = TypeLibrary(library.model, ["email"], k_shot=2)
    add_type_from_text(lib, "日付 🙂", "2024年1月2日\n2023年5月6日")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure_png(annotation_figure(lib, "2022年3月4日\n2021年7月8日"))
