"""Notebooks are committed executed in full mode, top to bottom, with clean outputs.

nbval (run by `make test` on notebooks/) re-executes them in quick mode; these tests check what a
reader sees in the committed files.
"""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NOISE = ["Gym has been unmaintained", "DeprecationWarning", "Traceback (most recent call last)"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no NN_name.ipynb"


def code_cells(path):
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def output_text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
        parts.extend(out.get("traceback", []))
    return "\n".join(parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_top_to_bottom_without_errors(path):
    cells = [c for c in code_cells(path) if c.source.strip()]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"execution counts {counts}: run the notebook top to bottom"
    for i, cell in enumerate(cells, 1):
        assert not [o for o in cell.outputs if o.output_type == "error"], f"cell {i} has an error output"
        text = output_text(cell)
        for noise in NOISE:
            assert noise not in text, f"cell {i} shows {noise!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_in_full_mode_with_a_parameters_cell(path):
    cells = code_cells(path)
    params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "one cell tagged 'parameters'"
    assert "quick_mode()" in params[0].source
    assert "QUICK = False" in output_text(params[0]) or "quick mode: False" in output_text(params[0])
    assert any("device" in output_text(c) for c in cells[:3]), "the setup cell prints the device"
