"""The student versions, generated fresh, run top to bottom in quick mode without an
error cell (each check prints "not yet" and the notebook goes on with the reference); nbgrader's
autograde gives the instructor version full marks and the untouched student version zero.

CI checks notebooks 01 and 02; ``make student-check`` checks every notebook with exercises
(``METAKIT_STUDENT_NOTEBOOKS=all``, or a list such as ``04,07``)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

nbgrader = pytest.importorskip("nbgrader")  # `make test` installs it
import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

from metakit.student import write_student  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHOSEN = os.environ.get("METAKIT_STUDENT_NOTEBOOKS", "01,02")
NOTEBOOKS = [p.name for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
             if CHOSEN == "all" or p.name[:2] in CHOSEN.split(",")]


def checks(nb) -> int:
    return sum(bool(c.metadata.get("nbgrader", {}).get("grade")) for c in nb.cells)


def points(nb) -> float:
    return sum(c.metadata["nbgrader"].get("points", 0) for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade"))


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setenv("METAKIT_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "agg")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_runs_without_error_cell(name, tmp_path):
    out = write_student(ROOT / "notebooks" / name, tmp_path)
    nb = nbformat.read(str(out), as_version=4)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in nb.cells)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert text.count("not yet") == checks(nb) >= 2
    assert "uses the reference implementation" in text


def autograde(tmp_path, notebook: Path, student: bool) -> tuple[float, float]:
    course = tmp_path / "course"
    (course / "source" / "ps").mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\nc.CourseDirectory.course_id = 'metakit'\n"
        "c.ClearSolutions.code_stub = {'python': 'pass  # YOUR CODE HERE'}\n"
        "c.Execute.timeout = 600\n")
    shutil.copy(notebook, course / "source" / "ps" / notebook.name)
    # nbgrader runs `alembic` from the PATH: the one next to this Python
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    run = lambda *args: subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course,  # noqa: E731
                                       env=env, capture_output=True, text=True, timeout=900)
    result = run("generate_assignment", "ps", "--force")
    assert result.returncode == 0, result.stderr[-2000:]
    submitted = course / "submitted" / "learner" / "ps"
    submitted.mkdir(parents=True)
    source = course / ("release" if student else "source") / "ps" / notebook.name
    shutil.copy(source, submitted / notebook.name)
    result = run("autograde", "ps", "--force")
    assert result.returncode == 0, result.stderr[-2000:]
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission("ps", "learner")
        return submission.score, submission.max_score


# in CI one notebook is autograded (02, about 40 s); `make student-check` grades every chosen one
GRADED = NOTEBOOKS if CHOSEN != "01,02" else ["02_maml_derivation.ipynb"]


@pytest.mark.parametrize("name", GRADED)
def test_autograde_full_and_zero(name, tmp_path):
    notebook = ROOT / "notebooks" / name
    total = points(nbformat.read(str(notebook), as_version=4))
    assert total >= 2
    score, max_score = autograde(tmp_path / "done", notebook, student=False)
    assert score == max_score == total
    score, max_score = autograde(tmp_path / "untouched", notebook, student=True)
    assert (score, max_score) == (0, total)
