"""Exercise checks: a learner's function against the reference, answered in words.

A check runs the learner's function and the reference on several random inputs and edge cases
(a single shot, one class, one feature), and prints "correct" or what is wrong (the shape, a sign,
how far off, a gradient that does not flow) with a hint. Under nbgrader's autograde or validate
(it sets ``NBGRADER_EXECUTION``) a wrong answer raises ``ExerciseError`` instead, so the graded
cell scores zero; a learner only sees the message. Every check returns the function the rest of
the notebook should use: the learner's when it is right, the reference otherwise.

Each notebook's exercises live in their own module (``episodes`` for 01, ``maml`` for 02, ...), on
the shared machinery of ``core``.
"""
from metakit.exercises.core import ExerciseError, check_prediction, compare, grading, report
from metakit.exercises.episodes import check_nearest_mean, nearest_mean_logits
from metakit.exercises.maml import check_inner_step, inner_step, linear_forward, meta_gradient

__all__ = ["ExerciseError", "check_inner_step", "check_nearest_mean", "check_prediction", "compare", "grading",
           "inner_step", "linear_forward", "meta_gradient", "nearest_mean_logits", "report"]
