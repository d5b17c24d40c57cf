"""Student versions of the notebooks, with nbgrader's own preprocessors (``make student``).

The solutions between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become a stub that leaves the
cell runnable (``pass``), so a fresh student notebook runs top to bottom without an error cell: each
check prints its "not yet" message and the notebook goes on with the reference. Instructors can
run ``nbgrader generate_assignment`` / ``autograde`` on the same notebooks instead.
"""
from __future__ import annotations

import sys
from pathlib import Path

CODE_STUB = {"python": "pass  # YOUR CODE HERE"}


def write_student(notebook: str | Path, out_dir: str | Path) -> Path:
    """Write the student version of ``notebook`` into ``out_dir`` (outputs cleared); return its path."""
    import nbformat
    from nbgrader.preprocessors import ClearOutput, ClearSolutions  # nbgrader==0.9.6, `make student`

    nb = nbformat.read(str(notebook), as_version=4)
    nb, _ = ClearSolutions(code_stub=CODE_STUB).preprocess(nb, {})
    nb, _ = ClearOutput().preprocess(nb, {})
    out = Path(out_dir) / Path(notebook).name
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(out))
    return out


if __name__ == "__main__":
    out_dir, *notebooks = sys.argv[1:]
    for notebook in notebooks:
        print(write_student(notebook, out_dir))
