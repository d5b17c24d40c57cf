"""metakit: the helper package behind the meta-learning notebooks.

Notebooks import everything from here; they define inline only the idea they are teaching.

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

from ._runtime import device, quick_mode, seed_everything
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
from .models import Conv4
from .anil import ANIL
from .gradient_training import meta_evaluate, meta_train
from .maml import MAML
from .mamlpp import MAMLPlusPlus
from .matching import MatchingNetwork
from .metaoptnet import MetaOptNet
from .metasgd import MetaSGD
from .protonet import PrototypicalNetwork
from .reptile import Reptile
from .training import evaluate, train_episodes

__version__ = "0.1.0"

__all__ = [
    "device",
    "quick_mode",
    "seed_everything",
    "ImageClassDataset",
    "SinusoidTasks",
    "ink_statistics",
    "load_glyphs",
    "load_image_folder",
    "load_omniglot",
    "shared_omniglot_path",
    "EpisodeSampler",
    "sample_episode",
    "Conv4",
    "PrototypicalNetwork",
    "MatchingNetwork",
    "MetaOptNet",
    "train_episodes",
    "evaluate",
    "MAML",
    "Reptile",
    "ANIL",
    "MetaSGD",
    "MAMLPlusPlus",
    "meta_train",
    "meta_evaluate",
]

# Continual learning and meta-continual learning (notebook 07)
from .continual import ContinualLearner, TaskMemory, continual_metrics, glyph_stream, run_stream  # noqa: E402
from .continual_methods import AGEM, EWC, GEM, Replay, gem_project  # noqa: E402
from .oml import ANML, OnlineLearner, meta_train_online, stream_accuracy  # noqa: E402

__all__ += [
    "ContinualLearner",
    "TaskMemory",
    "continual_metrics",
    "glyph_stream",
    "run_stream",
    "EWC",
    "Replay",
    "GEM",
    "AGEM",
    "gem_project",
    "OnlineLearner",
    "ANML",
    "meta_train_online",
    "stream_accuracy",
]
