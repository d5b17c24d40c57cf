"""Meta-training and evaluation of the gradient family (``meta_loss``, ``adapt``, ``predict``)."""

from __future__ import annotations

import math
import time

import torch
from tqdm.auto import tqdm

from ..compare import episode_accuracy
from ..runtime import Budget
from ..stats import mean_ci
from ..training import model_device


def sample_tasks(source, meta_batch_size: int):
    """A batch of tasks ``(x_support, y_support, x_query, y_query)``, each (T, N, ...).

    Args:
        source: an object with ``sample() -> one episode`` (an
            :class:`~metakit.episodes.EpisodeSampler`), or a function ``f(meta_batch_size)``
            returning stacked tensors whose first four are the task batch, for example
            ``lambda b: SinusoidTasks().sample(b, k_shot=10, n_query=10)``.
    """
    if hasattr(source, "sample"):
        try:
            episodes = [source.sample() for _ in range(meta_batch_size)]
        except TypeError as e:  # SinusoidTasks.sample needs sizes: wrap it in a function instead
            raise TypeError(f"{type(source).__name__}.sample() needs arguments ({e}); pass a function "
                            "f(meta_batch_size), e.g. lambda b: SinusoidTasks().sample(b, 10, 10).") from None
        return tuple(torch.stack(parts) for parts in zip(*episodes))
    return tuple(source(meta_batch_size)[:4])


def meta_train(algorithm, sampler_or_task_fn, *, meta_lr: float, meta_batch_size: int, steps: int | None = None,
               seconds: float | None = None, progress: bool = True, optimizer=torch.optim.Adam, callback=None,
               callback_every: float = 1.0, clock=time.perf_counter) -> dict:
    """Train a gradient method: per step, a batch of tasks, its meta-loss, one outer update.

    Training stops after ``steps`` meta-iterations or ``seconds`` of ``clock`` time, whichever
    comes first (see :class:`~metakit.runtime.Budget`).

    Args:
        algorithm: ``MAML``, ``ANIL``, ``MetaSGD``, ``Reptile`` or ``MAMLPlusPlus``.
        sampler_or_task_fn: where tasks come from (see :func:`sample_tasks`).
        meta_lr: the outer optimiser's learning rate (an algorithm with ``param_groups(meta_lr)``
            gives its own groups of parameters and rates, as meta-transfer learning does).
        meta_batch_size: tasks per meta-iteration.
        steps, seconds: the budget; at least one must be given.
        progress: show a tqdm bar with the running loss and accuracy (or mse).
        optimizer: the outer optimiser's class; ``torch.optim.SGD`` with ``meta_lr=eps`` makes
            Reptile's update exactly ``theta + eps * (theta_adapted - theta)``.
        callback: ``callback(history)`` every ``callback_every`` wall-clock seconds and once at the
            end (a live plot redraws from it).
        clock: what ``seconds`` counts: wall-clock time by default; ``time.process_time`` counts
            this process's CPU time instead (a budget in CPU-seconds, fair on a busy machine).
    Returns:
        A dict with one float per meta-iteration for each metric (``loss`` and ``acc`` or ``mse``),
        ``steps`` (the count done), ``seconds`` (the wall-clock time taken) and
        ``clock_seconds`` (the time ``clock`` counted).
    Raises:
        FloatingPointError: when the loss stops being finite, naming the iteration and the rates.
    """
    device = model_device(algorithm)
    budget = Budget(steps, seconds, clock=clock, device=device, desc=f"meta-training {type(algorithm).__name__}",
                    progress=progress)
    algorithm.train()
    groups = getattr(algorithm, "param_groups", None)  # a method may set its own rates per group of parameters
    opt = optimizer(groups(meta_lr) if groups is not None else algorithm.parameters(), lr=meta_lr)
    last_call = time.perf_counter()
    for step in budget:
        tasks = tuple(t.to(device) for t in sample_tasks(sampler_or_task_fn, meta_batch_size))
        where = f"at meta-iteration {step + 1} (meta_lr={meta_lr:g})"
        try:
            loss, metrics = algorithm.meta_loss(tasks)
        except FloatingPointError as e:
            raise FloatingPointError(f"{e} This happened {where}; if it came after many iterations, "
                                     "meta_lr may be too large as well.") from None
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"The meta-loss became {loss.item()} {where}. Training diverged: "
                                     "lower meta_lr (try meta_lr / 10) or inner_lr and train again.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        budget.log(**metrics)
        if callback is not None and time.perf_counter() - last_call >= callback_every:
            callback({**budget.history, **budget.summary(), "steps": step + 1})  # this step is done
            last_call = time.perf_counter()
    history = {**budget.history, **budget.summary()}
    if callback is not None:
        callback(history)
    return history


def meta_evaluate(algorithm, sampler, episodes: int = 600, steps: int | None = None,
                  progress: bool = False) -> tuple[float, float]:
    """Mean query accuracy after adapting to each of ``episodes`` fresh episodes, with its 95% CI.

    Args:
        algorithm: a trained gradient method.
        sampler: has ``sample() -> (x_support, y_support, x_query, y_query)`` (one episode).
        episodes: how many episodes to average over.
        steps: inner steps at test time (default: the algorithm's ``inner_steps``).
        progress: show a tqdm bar.
    Returns:
        ``(mean_acc, ci95)`` (:func:`metakit.stats.mean_ci` of the per-episode accuracies, each
        :func:`metakit.compare.episode_accuracy`).
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes!r}.")
    device = model_device(algorithm)
    was_training = algorithm.training
    algorithm.eval()
    accs = []
    try:
        for _ in tqdm(range(episodes), desc="evaluating", unit="episode", disable=not progress, leave=False):
            accs.append(episode_accuracy(algorithm, *(t.to(device) for t in sampler.sample()), steps=steps))
    finally:
        algorithm.train(was_training)
    return mean_ci(accs)
