"""The machinery every exercise shares: run the learner's function, compare in words, report."""
from __future__ import annotations

import os

import torch


class ExerciseError(AssertionError):
    """A wrong or missing answer while nbgrader grades the notebook."""


def grading() -> bool:
    """True under ``nbgrader autograde`` or ``nbgrader validate`` (nbgrader FAQ)."""
    return os.environ.get("NBGRADER_EXECUTION") in ("autograde", "validate")


def report(name: str, problem: str | None, hint: str = "") -> bool:
    """Print (or, when grading, raise) the verdict of one check; True when correct."""
    if problem is None:
        print(f"{name}: correct.")
        return True
    message = f"{name}: not yet. {problem}" + (f"\nHint: {hint}" if hint else "")
    if grading():
        raise ExerciseError(message)
    print(message + "\nThe rest of the notebook uses the reference implementation.")
    return False


def _call(fn, args) -> tuple[object, str | None]:
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "The function is not written yet (it raises NotImplementedError)."
    except Exception as error:  # the learner's bug, shown as a sentence instead of a traceback
        return None, f"It raised {type(error).__name__}: {error}."


def compare(answer, expected: torch.Tensor, what: str, atol: float = 1e-4) -> str | None:
    """Describe how ``answer`` differs from ``expected`` in words, or None when they agree."""
    if answer is None:
        return f"It returned None instead of {what[0].lower() + what[1:]} (is the `return` missing?)."
    if not isinstance(answer, torch.Tensor):
        return f"It returned a {type(answer).__name__} where {what[0].lower() + what[1:]} should be a tensor."
    if answer.shape != expected.shape:
        hint = ""
        if answer.dim() == 2 and answer.shape == expected.shape[::-1]:
            hint = " (the transpose of the expected shape: are rows and columns swapped?)"
        return f"{what} has shape {tuple(answer.shape)}, expected {tuple(expected.shape)}{hint}."
    answer = answer.detach().to(expected.dtype)
    if not torch.isfinite(answer).all():
        return f"{what} contains NaN or infinity."
    if torch.allclose(answer, expected, atol=atol, rtol=1e-4):
        return None
    if torch.allclose(answer, -expected, atol=atol, rtol=1e-4):
        return f"{what} has the right size but the wrong sign."
    off = (answer - expected).abs().max().item()
    return f"{what} is off by up to {off:.3g} (largest entry of the expected value: {expected.abs().max().item():.3g})."


def check_prediction(name: str, answer, expected, hint: str = "", tolerance: float = 0.0) -> bool:
    """A "predict, then verify" answer: compare the learner's prediction with what the widget shows."""
    if answer is None or answer is ...:
        return report(name, "No prediction given yet.", hint)
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        try:
            wrong = abs(float(answer) - expected) > tolerance
        except (TypeError, ValueError):
            return report(name, f"Expected a number, got {answer!r}.", hint)
    else:
        wrong = str(answer).strip().lower() != str(expected).strip().lower()
    return report(name, f"The prediction {answer!r} is not what the widget shows." if wrong else None, hint)
