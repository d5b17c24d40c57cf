"""metakit: the helper package behind the meta-learning notebooks.

The package is laid out like the book. The shared pieces sit at the top and are exported here
(``import metakit`` then ``metakit.load_glyphs(...)``); each chapter is a subpackage holding its
algorithms, its experiment protocol and its widgets, which a notebook imports by name (``from
metakit.gradient import family``). A notebook defines inline only the idea it is teaching.

Map of the book
---------------
=====================  =========================================================================
notebook               package
=====================  =========================================================================
01 few-shot tasks      the shared pieces: ``datasets``, ``glyphs``, ``episodes``, ``plots``,
                       ``widgets`` (and ``metric.protonet`` for the nearest-mean baseline)
02 MAML derivation     ``gradient`` (``functional``, ``maml``, ``training``, ``sinusoid``)
03 the MAML family     ``gradient`` (``family``, one module per algorithm, ``widgets``)
04 metric methods      ``metric``
05 GAN augmentation    ``gan``
06 meta-augmentation   ``meta_augmentation``
07 continual learning  ``continual``
08 transfer            ``transfer`` (with ``gradient.family`` and ``metric.experiments``)
09 metadata            ``metadata``
=====================  =========================================================================

Shared at the top: ``runtime`` (device, seeds, quick mode, and ``Budget``: every training loop
takes ``steps=`` or ``seconds=``, wall clock by default, CPU time with ``clock=time.process_time``),
``datasets`` and ``glyphs``, ``episodes``, ``models`` (Conv-4), ``fewshot`` (the metric methods'
base class), ``training`` (the episodic training loop several chapters use), ``compare`` (the one
comparison protocol: every method on the same episodes, paired differences, the table),
``checkpoints`` (train-or-load), ``stats`` (the one confidence interval), ``plots`` and ``widgets``
(the widget machinery). ``train`` is no chapter but a command: ``python -m metakit.train`` runs
the family's and the metric methods' long trainings in one process or under ``torchrun``.

Names used everywhere in the kit
--------------------------------
``n_way``, ``k_shot``, ``n_query``, ``x_support``, ``y_support``, ``x_query``, ``y_query``,
``inner_lr``, ``meta_lr``, ``inner_steps``, ``meta_batch_size``, ``device``.

Contracts, one per family of methods
------------------------------------
- Episodes: ``sample_episode(dataset, n_way, k_shot, n_query) -> (x_support, y_support, x_query,
  y_query)``; images are ``(N, 1, 28, 28)`` floats with ink 1.0 on a 0.0 background, labels are
  ``0..n_way-1`` and the support holds ``k_shot`` examples of each class in label order.
- Metric methods: ``fit_support(x_support, y_support)`` then ``forward(x_query) -> logits
  (n_query_total, n_way)``.
- Gradient methods: ``adapt(params, x_support, y_support, *, inner_lr, steps) -> params`` and a
  meta-loss over a batch of tasks.
- Continual methods: ``observe(x, y, task_id)`` and ``predict(x)``.

Quick mode
----------
``METAKIT_QUICK=1`` shrinks iterations in every notebook's parameters cell while running every
code path; CI uses it. ``METAKIT_DEVICE`` overrides the device that :func:`device` picks.
"""

from importlib import metadata as _metadata

from . import continual, gan, gradient, meta_augmentation, metadata, metric, transfer
from .datasets import (
    ImageClassDataset,
    SinusoidTasks,
    ink_statistics,
    load_glyphs,
    load_image_folder,
    load_omniglot,
    shared_omniglot_path,
)
from .episodes import EpisodeSampler, sample_episode
from .gradient import ANIL, MAML, MAMLPlusPlus, MetaSGD, Reptile, meta_evaluate, meta_train
from .metric import MatchingNetwork, MetaOptNet, PrototypicalNetwork
from .models import Conv4
from .runtime import device, quick_mode, seed_everything
from .training import evaluate, train_episodes

try:  # the one version number is pyproject.toml's
    __version__ = _metadata.version("metakit")
except _metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    # shared pieces
    "device", "quick_mode", "seed_everything",
    "ImageClassDataset", "SinusoidTasks", "ink_statistics", "load_glyphs", "load_image_folder", "load_omniglot",
    "shared_omniglot_path",
    "EpisodeSampler", "sample_episode", "Conv4", "train_episodes", "evaluate",
    # the methods several notebooks use
    "PrototypicalNetwork", "MatchingNetwork", "MetaOptNet",
    "MAML", "Reptile", "ANIL", "MetaSGD", "MAMLPlusPlus", "meta_train", "meta_evaluate",
    # the chapters
    "gradient", "metric", "gan", "meta_augmentation", "continual", "transfer", "metadata",
]
