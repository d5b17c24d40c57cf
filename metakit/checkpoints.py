"""Train-or-load: long training runs once, by the project's own script, and ships as a checkpoint."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from .glyphs import SOURCE_DATA, cache_dir


def checkpoints_dir() -> Path:
    """The committed checkpoints' folder: ``$METAKIT_DATA/checkpoints`` when it exists, else a source
    checkout's ``data/checkpoints``, else ``checkpoints/`` in the cache folder (an installed wheel:
    copy the repository's ``data/checkpoints`` there, or point ``METAKIT_DATA`` at a copy of ``data/``)."""
    env = os.environ.get("METAKIT_DATA")
    for folder in ([Path(env) / "checkpoints"] if env else []) + [SOURCE_DATA / "checkpoints"]:
        if folder.is_dir():
            return folder
    return cache_dir() / "checkpoints"


CHECKPOINTS = checkpoints_dir()


def checkpoint_path(path) -> Path:
    """``path`` itself, or ``data/checkpoints/<path>`` when it is a bare file name."""
    path = Path(path)
    return CHECKPOINTS / path if path.parent == Path(".") else path


def load_weights(model: torch.nn.Module, path) -> dict:
    """Load ``model``'s weights from a checkpoint :func:`train_or_load` saved; returns what it recorded."""
    saved = torch.load(checkpoint_path(path), map_location="cpu", weights_only=True)
    model.load_state_dict(saved["state_dict"])
    return saved.get("info", {})


def train_or_load(model: torch.nn.Module, path, train, retrain: bool = False) -> dict:
    """Load ``model``'s weights from ``path``, or train it and save them there.

    Args:
        model: the network, built with the same architecture as when the checkpoint was saved.
        path: a ``.pt`` file; a bare name is looked up in ``data/checkpoints/``.
        train: ``train(model) -> dict`` trains in place and returns what to record with the
            weights (for example :func:`~metakit.training.train_episodes`'s history).
        retrain: train even when the checkpoint exists, and overwrite it.
    Returns:
        The recorded dict, with ``"loaded": True`` when the weights came from the file.
    """
    path = checkpoint_path(path)
    if path.exists() and not retrain:
        try:
            return {**load_weights(model, path), "loaded": True}
        except Exception as e:  # a truncated file, or one saved from another architecture
            warnings.warn(f"Could not load the checkpoint {path} ({type(e).__name__}: {e}); training again instead.",
                          stacklevel=2)
    info = dict(train(model))
    save_checkpoint(model, path, info)
    return {**info, "loaded": False}


def save_checkpoint(model: torch.nn.Module, path, info: dict, **extra) -> Path:
    """Write ``{"state_dict", "info", **extra}`` to ``path`` (a bare name goes to ``data/checkpoints/``)
    atomically, in the format :func:`load_weights` reads.

    Args:
        info: what to record; only numbers, strings and lists of them are kept.
        extra: more keys for whoever resumes the run (an optimiser's state, a step count); they
            must be what ``torch.load(weights_only=True)`` reads (tensors, numbers, dicts, lists).
    """
    path = checkpoint_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "info": _plain(info), **extra}, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind
    return path


def _plain(info: dict) -> dict:
    """What ``torch.load(weights_only=True)`` can read back: numbers, strings, lists of them."""
    keep = (int, float, str, bool)
    out = {}
    for k, v in info.items():
        if isinstance(v, keep) or (isinstance(v, list) and all(isinstance(x, keep) for x in v)):
            out[k] = v
    return out
