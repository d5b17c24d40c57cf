"""The data-parallel step: reproducible episodes, the local loss, and gradients summed over processes.

Task ``i`` of step ``s`` is drawn with Python's ``random`` (what learn2learn's Taskset uses)
seeded from ``(seed, s, i)``. So a step's tasks do not depend on how many processes share them,
or on whether the run was stopped and resumed in between: 1 process and N processes compute
the same meta-gradients, and a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

from ..episodes import EpisodeSampler
from .distributed import World


class Episodes:
    """An :class:`~metakit.episodes.EpisodeSampler` whose ``sample(step, index)`` draws task ``index``
    of step ``step`` reproducibly, as tensors on ``device`` with images in ``dtype``."""

    def __init__(self, dataset, n_way, k_shot, n_query, rotations=False, seed=0, device="cpu", dtype=torch.float32):
        self.sampler = EpisodeSampler(dataset, n_way, k_shot, n_query, rotations=rotations)
        self.seed, self.device, self.dtype = seed, device, dtype

    def sample(self, step: int | None = None, index: int = 0):
        """``(x_support, y_support, x_query, y_query)``: task ``index`` of ``step``, or a fresh one."""
        if step is not None:
            random.seed(int(np.random.SeedSequence([self.seed, step, index]).generate_state(1)[0]))
        x_support, y_support, x_query, y_query = self.sampler.sample()
        return (x_support.to(self.device, self.dtype), y_support.to(self.device),
                x_query.to(self.device, self.dtype), y_query.to(self.device))

    def batch(self, step: int, indices, stacked: bool):
        """The episodes ``indices`` of ``step``: stacked into (T, N, ...) tensors, or a list."""
        episodes = [self.sample(step, i) for i in indices]
        return tuple(torch.stack(parts) for parts in zip(*episodes)) if stacked else episodes


def local_loss(learner, kind: str, batch):
    """This process's mean loss over its share and its metrics (``loss``, ``acc``): the family's
    ``meta_loss``, or the metric contract (``fit_support``, ``forward``, cross-entropy) per episode."""
    if kind == "family":
        return learner.meta_loss(batch)
    losses, accs = [], []
    for x_support, y_support, x_query, y_query in batch:
        learner.fit_support(x_support, y_support)
        logits = learner(x_query)  # (n_query_total, n_way)
        losses.append(F.cross_entropy(logits, y_query))
        accs.append((logits.argmax(1) == y_query).float().mean().item())
    loss = torch.stack(losses).mean()
    return loss, {"loss": loss.item(), "acc": sum(accs) / len(accs)}


def gradients(learner, kind: str, batch, share: int, total: int, world: World) -> dict:
    """Fill ``.grad`` with the gradient of the whole step's mean loss, summed over the processes.

    Args:
        batch: this process's ``share`` of the step's ``total`` tasks or episodes.
    Returns:
        The step's ``loss`` and ``acc`` over all ``total`` tasks.
    Raises:
        FloatingPointError: on every process, when the loss of any stopped being finite.
    """
    try:
        loss, metrics = local_loss(learner, kind, batch)
        failure = "" if bool(torch.isfinite(loss.detach())) else (
            f"The loss became {loss.item()}: training diverged; lower the learning rates (try a tenth).")
    except FloatingPointError as e:
        loss, metrics, failure = None, {}, str(e)
    # one all-reduce for the metrics, weighted by share, and for whether any process failed
    stats = world.sum(torch.tensor([share * metrics.get("loss", 0.0), share * metrics.get("acc", 0.0),
                                    float(bool(failure))], dtype=torch.float64, device=world.device))
    if stats[2] > 0:
        raise FloatingPointError(failure or "The loss stopped being finite on another process; lower the rates.")
    learner.zero_grad(set_to_none=True)
    (loss * (share / total)).backward()
    world.sum_gradients(learner.parameters())
    return {"loss": stats[0].item() / total, "acc": stats[1].item() / total}
