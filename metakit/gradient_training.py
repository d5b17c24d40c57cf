"""Meta-training and evaluation of the gradient family (``meta_loss``, ``adapt``, ``predict``)."""

from __future__ import annotations

import math
import time

import torch
from tqdm.auto import tqdm


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


def _device(algorithm) -> torch.device:
    return next(algorithm.parameters(), torch.empty(0)).device


def meta_train(algorithm, sampler_or_task_fn, *, meta_lr: float, meta_batch_size: int, seconds: float | None = None,
               iterations: int | None = None, progress: bool = True, optimizer=torch.optim.Adam, callback=None,
               callback_every: float = 1.0, clock=time.perf_counter) -> dict:
    """Train a gradient method: per meta-iteration, a batch of tasks, its meta-loss, one outer step.

    Training stops after ``seconds`` (as ``clock`` counts them) or ``iterations`` meta-iterations,
    whichever comes first; at least one must be given.

    Args:
        algorithm: ``MAML``, ``ANIL``, ``MetaSGD``, ``Reptile`` or ``MAMLPlusPlus``.
        sampler_or_task_fn: where tasks come from (see :func:`sample_tasks`).
        meta_lr: the outer optimiser's learning rate.
        meta_batch_size: tasks per meta-iteration.
        progress: show a tqdm bar with the running loss and accuracy (or mse).
        optimizer: the outer optimiser's class; ``torch.optim.SGD`` with ``meta_lr=eps`` makes
            Reptile's update exactly ``theta + eps * (theta_adapted - theta)``.
        callback: ``callback(history)`` every ``callback_every`` seconds and once at the end
            (a live plot redraws from it).
        clock: what ``seconds`` counts: wall-clock time by default; ``time.process_time`` counts
            this process's CPU time instead (a budget in CPU-seconds, fair on a busy machine).
    Returns:
        A dict with one float per meta-iteration for each metric (``loss`` and ``acc`` or ``mse``),
        ``iterations`` (the count done), ``seconds`` (the wall-clock time taken) and
        ``clock_seconds`` (the time ``clock`` counted).
    Raises:
        FloatingPointError: when the loss stops being finite, naming the iteration and the rates.
    """
    if seconds is None and iterations is None:
        raise ValueError("Give a budget: seconds=..., iterations=..., or both.")
    device = _device(algorithm)
    algorithm.train()
    opt = optimizer(algorithm.parameters(), lr=meta_lr)
    history = {"iterations": 0, "seconds": 0.0}
    by_time = iterations is None
    bar = tqdm(total=seconds if by_time else iterations, unit="s" if by_time else "it",
               desc=f"meta-training {type(algorithm).__name__}", disable=not progress)
    start, cpu_start = time.perf_counter(), clock()
    last_call = start
    try:
        while not ((iterations is not None and history["iterations"] >= iterations)
                   or (seconds is not None and clock() - cpu_start >= seconds)):
            tasks = tuple(t.to(device) for t in sample_tasks(sampler_or_task_fn, meta_batch_size))
            where = f"at meta-iteration {history['iterations'] + 1} (meta_lr={meta_lr:g})"
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
            for key, value in metrics.items():
                history.setdefault(key, []).append(value)
            history["iterations"] += 1
            if progress:
                shown = {k: f"{sum(v[-20:]) / len(v[-20:]):.3f}" for k, v in history.items() if isinstance(v, list)}
                bar.set_postfix(shown, refresh=False)  # running means over 20 iterations, steadier to read
                bar.update(min(clock() - cpu_start, seconds) - bar.n if by_time else 1)
            if callback is not None and time.perf_counter() - last_call >= callback_every:
                history["seconds"] = time.perf_counter() - start
                callback(history)
                last_call = time.perf_counter()
    finally:
        bar.close()
    history["seconds"] = time.perf_counter() - start
    history["clock_seconds"] = clock() - cpu_start
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
        ``(mean_acc, ci95)`` with ``ci95 = 1.96 * std / sqrt(episodes)``.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes!r}.")
    device = _device(algorithm)
    was_training = algorithm.training
    algorithm.eval()
    accs = []
    try:
        for _ in tqdm(range(episodes), desc="evaluating", unit="episode", disable=not progress, leave=False):
            x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
            params = algorithm.adapt(x_support, y_support, steps=steps)
            with torch.no_grad():
                accs.append((algorithm.predict(params, x_query).argmax(-1) == y_query).float().mean().item())
    finally:
        algorithm.train(was_training)
    accs = torch.tensor(accs, dtype=torch.float64)
    return accs.mean().item(), 1.96 * accs.std(correction=0).item() / math.sqrt(episodes)
