"""Long trainings from the command line, in one process or many (``torchrun``), on CPU or GPUs.

::

    python -m metakit.train family --algorithm maml --steps 2000             # one process
    python -m metakit.train metric --method proto --seconds 600 --data omniglot --root ~/data
    torchrun --nproc_per_node 4 -m metakit.train family --algorithm maml --meta-batch-size 32 --steps 60000
    python -m metakit.train family --algorithm maml --steps 4000 --resume    # continue the run at --out

- ``cli``: the arguments and their messages; ``run``: settings, data, learner, the loop under a
  :class:`~metakit.runtime.Budget`, checkpoints, the final test; ``step``: the data-parallel step
  (each process takes a share of a step's tasks or episodes, drawn reproducibly, and the gradients
  are summed); ``distributed``: the process group and the all-reduce; ``experiments``: the
  gradient check and the throughput of ``benchmarks/distributed.py``.

The step is the chapters' own: the family's ``meta_loss`` (notebook 03) and the metric contract
``fit_support`` then ``forward`` (notebook 04). The checkpoint is ``{"state_dict", "info"}`` as
:func:`metakit.checkpoints.train_or_load` writes it, plus ``optimizer``, ``step`` and ``config``
for ``--resume``, so :func:`~metakit.checkpoints.load_weights` reads it as it is.
"""

from .cli import main
from .run import Config, train

__all__ = ["Config", "main", "train"]
