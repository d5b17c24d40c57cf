"""Device choice, seeding and quick mode: the three switches every notebook's setup cell uses."""

import os
import random

import numpy as np
import torch

DEVICE_ENV = "METAKIT_DEVICE"
QUICK_ENV = "METAKIT_QUICK"


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``$METAKIT_DEVICE`` if set, else cuda, then mps, then cpu.

    Args:
        prefer: a device string that wins over the environment variable (for example "cpu").
    Returns:
        A ``torch.device``. Asking for a device this machine lacks raises ``ValueError``.
    """
    name = prefer or os.environ.get(DEVICE_ENV, "").strip()
    if name:
        dev = torch.device(name)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{DEVICE_ENV}={name!r} asks for CUDA, but this machine has no CUDA GPU.")
        if dev.type == "mps" and not _mps_available():
            raise ValueError(f"{DEVICE_ENV}={name!r} asks for MPS, but this machine has no MPS device.")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a run repeats on the same device.

    learn2learn's Taskset draws classes with Python's ``random``, so that is seeded too.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def quick_mode() -> bool:
    """True when ``$METAKIT_QUICK`` is set to a true value (CI runs the notebooks this way)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
