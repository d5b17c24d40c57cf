"""Episodic training and evaluation of methods that fit a support set (``fit_support`` then
``forward``): the loop the metric, meta-augmentation and transfer chapters share."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .runtime import Budget
from .stats import mean_ci


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters live (the CPU for a model without parameters)."""
    return next(model.parameters(), torch.empty(0)).device


def train_episodes(model, sampler, *, lr: float = 1e-3, steps: int | None = None, seconds: float | None = None,
                   progress: bool = True, device=None, clock=time.perf_counter) -> dict:
    """Train a metric model on episodes with Adam: fit the support, then cross-entropy on the queries.

    One step is one episode and one optimiser update. Training stops after ``steps`` steps or
    ``seconds`` of ``clock`` time, whichever comes first (see :class:`~metakit.runtime.Budget`).

    Args:
        model: a metric model, for example ``PrototypicalNetwork(Conv4())``.
        sampler: has ``sample() -> (x_support, y_support, x_query, y_query)``, e.g. an
            :class:`~metakit.episodes.EpisodeSampler`.
        lr: Adam's learning rate.
        steps, seconds: the budget; at least one must be given.
        progress: show a tqdm progress bar with the running loss and query accuracy.
        device: where to train (default: where the model's parameters are).
        clock: what ``seconds`` counts: wall-clock time by default; ``time.process_time`` gives a
            CPU-time budget that does not shrink when other jobs share the machine.
    Returns:
        A dict with ``loss`` and ``acc`` (one float per step), ``steps`` (the count done),
        ``seconds`` (the wall-clock time taken) and ``clock_seconds`` (the time ``clock`` counted).
    Raises:
        FloatingPointError: when the loss stops being finite, usually a learning rate too large.
    """
    device = torch.device(device) if device is not None else model_device(model)
    budget = Budget(steps, seconds, clock=clock, device=device, desc="training", progress=progress)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in budget:
        x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
        model.fit_support(x_support, y_support)
        logits = model(x_query)  # (n_query_total, n_way)
        loss = F.cross_entropy(logits, y_query)
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"The loss became {loss.item()} at episode {step + 1} with lr={lr:g}. "
                "Training diverged: lower the learning rate (try lr / 10) and train again.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        budget.log(loss=loss.item(), acc=(logits.argmax(1) == y_query).float().mean().item())
    return {"loss": [], "acc": [], **budget.history, **budget.summary()}


@torch.no_grad()
def evaluate(model, sampler, episodes: int = 600, progress: bool = True) -> tuple[float, float]:
    """Mean query accuracy over fresh episodes and its 95% confidence interval.

    Args:
        model: a metric model with ``fit_support`` and ``forward``.
        sampler: has ``sample() -> (x_support, y_support, x_query, y_query)``.
        episodes: how many episodes to average over (600 is the usual few-shot protocol).
        progress: show a tqdm progress bar.
    Returns:
        ``(mean_acc, ci95)`` as floats (:func:`metakit.stats.mean_ci` of the per-episode
        accuracies), so that the result reads ``mean_acc +- ci95``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes!r}.")
    device = model_device(model)
    was_training = model.training
    model.eval()  # BatchNorm uses its running statistics, as at test time
    accs = []
    for _ in tqdm(range(episodes), desc="evaluating", unit="episode", disable=not progress, leave=False):
        x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
        model.fit_support(x_support, y_support)
        accs.append((model(x_query).argmax(1) == y_query).float().mean().item())
    model.train(was_training)
    return mean_ci(accs)
