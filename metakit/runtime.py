"""Device choice, seeding and quick mode (the switches every notebook's setup cell uses), the
budget every training loop runs under, and scoped thread settings."""

import contextlib
import os
import random
import time

import numpy as np
import torch
from tqdm.auto import tqdm

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


def seed_everything(seed: int = 0, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch (all devices).

    learn2learn's Taskset draws classes with Python's ``random``, so that is seeded too. On the
    CPU that is enough for a run to repeat. On a GPU it is not: cuDNN picks convolution algorithms
    by timing them, and some CUDA kernels add in an order that changes from run to run (atomic
    adds), so two seeded runs drift apart in the last bits and then further.

    Args:
        deterministic: also make GPU runs repeat: ``torch.use_deterministic_algorithms(True)``,
            cuDNN's benchmark mode off and its deterministic algorithms on, and cuBLAS's fixed
            workspace (``CUBLAS_WORKSPACE_CONFIG``). What it costs: slower kernels on a GPU
            (``make gpu-check`` measures a Conv-4 MAML step both ways) and an error from the few
            operations that have no deterministic version. On the CPU it changes nothing. It
            stays on for the process, until ``torch.use_deterministic_algorithms(False)``.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


@contextlib.contextmanager
def threads(n: int):
    """Run the block with torch's intra-op threads set to ``n``, and restore the previous number after
    (also when the block raises): a CPU-time budget of one thread, without changing the kernel for
    every cell that follows.

    Usage::

        with metakit.runtime.threads(1):
            train(model, seconds=300, clock=time.process_time)
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"threads needs a whole number of threads, at least 1; got {n!r}.")
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def recipe_clock(device=None):
    """The clock of the kit's training recipes whose committed checkpoints were trained for a
    budget of CPU-seconds (the GAN, DAGAN, transfer, column-encoder and meta-augmentation ones).

    On the CPU it is ``time.process_time``, as those checkpoints were made, so that other jobs on
    a shared machine do not shorten a retraining. On a GPU, CPU time misses the GPU's work, so the
    budget is wall clock there (which :class:`Budget` reads after synchronising). Every other loop
    in the kit counts wall clock by default; pass ``clock=`` to choose.
    """
    return time.process_time if torch.device(device or "cpu").type == "cpu" else time.perf_counter


def quick_mode() -> bool:
    """True when ``$METAKIT_QUICK`` is set to a true value (CI runs the notebooks this way)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


class Budget:
    """How long a training loop runs: at most ``steps`` steps and/or ``seconds`` of ``clock`` time,
    whichever ends first, with a tqdm bar and the loop's running metrics.

    Every training loop in the kit takes the same two budget arguments, ``steps=`` and
    ``seconds=``, and a ``clock=``. The default clock is wall-clock time (``time.perf_counter``):
    it is what a learner waits for, and the only clock that means anything on a GPU, so on a CUDA
    device the clock is read after ``torch.cuda.synchronize``. ``clock=time.process_time`` counts
    this process's CPU time instead (all its threads), which benchmarks on a shared CPU pass
    explicitly so that other jobs do not shorten the training.

    Usage::

        budget = Budget(steps=steps, seconds=seconds, desc="training", progress=progress)
        for step in budget:            # stops when the budget is spent
            loss = ...
            budget.log(loss=loss.item())
        history = {**budget.history, **budget.summary()}   # per-step metrics, steps, seconds

    Args:
        steps: the most steps (optimiser updates) to take.
        seconds: the most time to take, as ``clock`` counts it.
        clock: what ``seconds`` counts (wall clock by default).
        device: where the loop computes; a CUDA device is synchronised before the clock is read.
        desc: the progress bar's label.
        progress: show the bar (its total is ``seconds`` for a time budget, else ``steps``).
        window: the bar shows running means over this many steps.
    """

    def __init__(self, steps: int | None = None, seconds: float | None = None, *, clock=time.perf_counter,
                 device=None, desc: str = "training", progress: bool = True, window: int = 20):
        if steps is None and seconds is None:
            raise ValueError("Give a budget: steps=..., seconds=..., or both.")
        if steps is not None and steps < 0:
            raise ValueError(f"steps must be at least 0; got {steps!r}.")
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"seconds must be at least 0; got {seconds!r}.")
        self.max_steps, self.max_seconds, self.clock = steps, seconds, clock
        self.device = torch.device(device) if device is not None else None
        self.window = window
        self.steps = 0
        self.history: dict[str, list] = {}
        self.by_time = steps is None
        self.bar = tqdm(total=seconds if self.by_time else steps, unit="s" if self.by_time else "step", desc=desc,
                        disable=not progress)
        self._wall_start = time.perf_counter()
        self._clock_start = self._now()

    def _now(self) -> float:
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self.clock()

    @property
    def elapsed(self) -> float:
        """Time spent so far, as the budget's clock counts it."""
        return self._now() - self._clock_start

    def spent(self) -> bool:
        """Whether the budget is used up."""
        return ((self.max_steps is not None and self.steps >= self.max_steps)
                or (self.max_seconds is not None and self.elapsed >= self.max_seconds))

    def __iter__(self):
        try:
            while not self.spent():
                yield self.steps
                self.steps += 1
                if self.by_time:
                    self.bar.update(min(self.elapsed, self.max_seconds) - self.bar.n)
                else:
                    self.bar.update(1)
        finally:
            self.close()

    def log(self, **metrics: float) -> None:
        """Record this step's metrics (one float each) and show their running means on the bar."""
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(float(value))
        if not self.bar.disable:
            self.bar.set_postfix({k: f"{sum(v[-self.window:]) / len(v[-self.window:]):.3f}"
                                  for k, v in self.history.items()}, refresh=False)

    def summary(self) -> dict:
        """``{"steps": steps taken, "seconds": wall-clock seconds, "clock_seconds": as the clock counted}``."""
        return {"steps": self.steps, "seconds": time.perf_counter() - self._wall_start,
                "clock_seconds": self.elapsed}

    def close(self) -> None:
        self.bar.close()
