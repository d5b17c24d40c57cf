"""Episodic training and evaluation of metric methods (``fit_support`` then ``forward``)."""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def train_episodes(model, sampler, *, lr: float = 1e-3, seconds: float | None = None,
                   episodes: int | None = None, progress: bool = True, device=None, clock=time.perf_counter) -> dict:
    """Train a metric model on episodes with Adam: fit the support, then cross-entropy on the queries.

    Training stops when ``clock`` has counted ``seconds`` or after ``episodes`` episodes, whichever
    comes first; at least one of the two must be given.

    Args:
        model: a metric model, for example ``PrototypicalNetwork(Conv4())``.
        sampler: has ``sample() -> (x_support, y_support, x_query, y_query)``, e.g. an
            :class:`~metakit.episodes.EpisodeSampler`.
        lr: Adam's learning rate.
        seconds: budget in seconds, as ``clock`` counts them.
        episodes: number of episodes (one optimiser step each).
        progress: show a tqdm progress bar with the running loss and query accuracy.
        device: where to train (default: where the model's parameters are).
        clock: what ``seconds`` counts: wall-clock time by default; ``time.process_time`` gives a
            CPU-time budget that does not shrink when other jobs share the machine.
    Returns:
        A dict with ``loss`` and ``acc`` (one float per episode), ``episodes`` (the count done),
        ``seconds`` (the wall-clock time taken) and ``clock_seconds`` (the time ``clock`` counted).
    Raises:
        FloatingPointError: when the loss stops being finite, usually a learning rate too large.
    """
    if seconds is None and episodes is None:
        raise ValueError("Give a budget: seconds=..., episodes=..., or both.")
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"loss": [], "acc": [], "episodes": 0, "seconds": 0.0}
    # the bar counts episodes when there is an episode budget, else seconds of the time budget
    by_time = episodes is None
    bar = tqdm(total=seconds if by_time else episodes, unit="s" if by_time else "episode",
               desc="training", disable=not progress)
    start, clock_start = time.perf_counter(), clock()
    while True:
        elapsed = clock() - clock_start
        if (episodes is not None and history["episodes"] >= episodes) or (seconds is not None and elapsed >= seconds):
            break
        x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
        model.fit_support(x_support, y_support)
        logits = model(x_query)  # (n_query_total, n_way)
        loss = F.cross_entropy(logits, y_query)
        if not torch.isfinite(loss):
            bar.close()
            raise FloatingPointError(
                f"The loss became {loss.item()} at episode {history['episodes'] + 1} with lr={lr:g}. "
                "Training diverged: lower the learning rate (try lr / 10) and train again.")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

        history["loss"].append(loss.item())
        history["acc"].append((logits.argmax(1) == y_query).float().mean().item())
        history["episodes"] += 1
        if progress:
            recent = slice(-20, None)  # a running mean, so the bar does not flicker episode to episode
            bar.set_postfix(loss=f"{sum(history['loss'][recent]) / len(history['loss'][recent]):.3f}",
                            acc=f"{sum(history['acc'][recent]) / len(history['acc'][recent]):.3f}",
                            refresh=False)
            bar.update(min(clock() - clock_start, seconds) - bar.n if by_time else 1)
    history["seconds"], history["clock_seconds"] = time.perf_counter() - start, clock() - clock_start
    bar.close()
    return history


@torch.no_grad()
def evaluate(model, sampler, episodes: int = 600, progress: bool = True) -> tuple[float, float]:
    """Mean query accuracy over fresh episodes and its 95% confidence interval.

    Args:
        model: a metric model with ``fit_support`` and ``forward``.
        sampler: has ``sample() -> (x_support, y_support, x_query, y_query)``.
        episodes: how many episodes to average over (600 is the usual few-shot protocol).
        progress: show a tqdm progress bar.
    Returns:
        ``(mean_acc, ci95)`` as floats, with ``ci95 = 1.96 * std / sqrt(episodes)`` over the
        per-episode accuracies, so that the result reads ``mean_acc +- ci95``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes!r}.")
    device = _model_device(model)
    was_training = model.training
    model.eval()  # BatchNorm uses its running statistics, as at test time
    accs = []
    for _ in tqdm(range(episodes), desc="evaluating", unit="episode", disable=not progress, leave=False):
        x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
        model.fit_support(x_support, y_support)
        accs.append((model(x_query).argmax(1) == y_query).float().mean().item())
    model.train(was_training)
    accs = torch.tensor(accs, dtype=torch.float64)
    return accs.mean().item(), 1.96 * accs.std(correction=0).item() / math.sqrt(episodes)
