"""Every sentence a learner reads is true to the notebook's own outputs.

Two checks on the committed notebooks:

- no markdown cell, and no line the code prints, speaks of how the project is run ("issue",
  "target");
- every number with 3 or more significant digits in a markdown cell is printed by a code cell above
  it, at the precision shown (0.965 is matched by a printed 0.9654, not by 0.9665).

Exempt: years, version numbers (40.54.0), arXiv identifiers, anything inside LaTeX math ($...$,
where derivations and formulas live: $1.96\\,s/\\sqrt n$, $C = 4 \\times 1012 = 4048$), inline code
and links. A number quoted from a paper is marked in the markdown as
``<span title="quoted from Author et al. YEAR">63.8%</span>``: the sentence cites the paper, the
tooltip says the figure is theirs, and this test skips it.
"""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
INTERNAL = re.compile(r"\b(issues?|targets?)\b", re.IGNORECASE)
QUOTED = re.compile(r'<span title="quoted from [^"]+">[^<]*</span>')
EXEMPT = [
    re.compile(r"\$\$.*?\$\$", re.DOTALL),                 # display math
    re.compile(r"\$[^$\n]+\$"),                            # inline math
    re.compile(r"`[^`]*`"),                                # inline code
    re.compile(r"\]\([^)]*\)|https?://\S+"),               # links
    re.compile(r"\b\d+\.\d+\.\d+\b"),                      # versions
    re.compile(r"\b\d{4}\.\d{4,5}\b"),                     # arXiv identifiers
    re.compile(r"\b(19|20)\d\d\b"),                        # years
]
NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?\d{1,3}(?:[,\u202f ]\d{3})+(?![\d])"
                    r"|(?<![\w.])[-+\u2212]?\d+(?:\.\d+)?(?![\w])")
PRINTED = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def cells(path):
    return nbformat.read(path, as_version=4).cells


def printed_text(cell) -> str:
    """What a code cell shows as text: printed lines and text results (not widget views)."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def significant_digits(token: str) -> int:
    digits = token.lstrip("+-\u2212").replace(",", "").replace("\u202f", "").replace(" ", "")
    if "." in digits:
        return len(digits.replace(".", "").lstrip("0"))
    return len(digits.strip("0")) if digits.strip("0") else 1


def value(token: str) -> float:
    return abs(float(token.lstrip("+-\u2212").replace(",", "").replace("\u202f", "").replace(" ", "")))


def is_printed(token: str, printed: list[float], text: str) -> bool:
    """``token`` as printed above: the same digits, or a printed value that rounds to it."""
    if token.lstrip("+-\u2212") in text:
        return True
    x, decimals = value(token), len(token.split(".")[1]) if "." in token else 0
    return any(abs(v - x) <= 0.5 * 10 ** -decimals + 1e-12 for v in printed)


def unprinted_numbers(path) -> list[str]:
    problems, text, printed = [], "", []
    for i, cell in enumerate(cells(path)):
        if cell.cell_type == "code":
            out = printed_text(cell)
            text += "\n" + out
            printed += [abs(float(t)) for t in PRINTED.findall(out.replace(",", ""))]
            continue
        if cell.cell_type != "markdown":
            continue
        prose = QUOTED.sub(" ", cell.source)
        for pattern in EXEMPT:
            prose = pattern.sub(" ", prose)
        for m in NUMBER.finditer(prose):
            token = m.group(0).strip()
            if significant_digits(token) >= 3 and not is_printed(token, printed, text):
                problems.append(f"cell {i}: {token!r} in '...{prose[max(0, m.start() - 50):m.end() + 20]}...'")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_internal_words_in_prose_or_printed_labels(path):
    found = []
    for i, cell in enumerate(cells(path)):
        text = cell.source if cell.cell_type == "markdown" else printed_text(cell) if cell.cell_type == "code" else ""
        found += [f"cell {i}: {m.group(0)!r} in '{text[max(0, m.start() - 40):m.end() + 40]}'"
                  for m in INTERNAL.finditer(text)]
    assert not found, "words about how the project is run, in what a learner reads:\n" + "\n".join(found)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_number_in_the_prose_is_printed_above_it(path):
    problems = unprinted_numbers(path)
    assert not problems, ("numbers in the markdown that no cell above prints (print them, or mark a paper's "
                          'figure <span title="quoted from ...">...</span>):\n' + "\n".join(problems))


def test_the_checker_catches_a_typed_number(tmp_path):
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print(0.9654)", execution_count=1)
    code.outputs = [nbformat.v4.new_output("stream", text="0.9654\n")]
    nb.cells = [code, nbformat.v4.new_markdown_cell(
        'It reaches 0.965 (and $x = 123.4$, `7777`, version 40.54.0, in 2019; '
        'the paper has <span title="quoted from A et al. 2020">63.8%</span>) but 0.875 and 1141 were typed.')]
    path = tmp_path / "00_t.ipynb"
    nbformat.write(nb, path)
    problems = unprinted_numbers(path)
    assert len(problems) == 2 and "'0.875'" in problems[0] and "'1141'" in problems[1]
