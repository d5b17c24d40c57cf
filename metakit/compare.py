"""One comparison protocol for every table of methods in the kit.

Every method meets the same test episodes (the sampler is reseeded before each method), so the
differences between methods are paired; each cell is a mean accuracy with its 95% interval
(:func:`metakit.stats.mean_ci`), and :func:`paired` gives the interval of a difference. The
gradient, metric, transfer and column comparisons are this one function with an evaluator: the
default, :func:`episode_accuracy`, adapts a gradient method (``adapt``/``predict``) or fits a
metric method or fine-tuner (``fit_support``/``forward``).
"""

from __future__ import annotations

import time

import torch
from torch import nn
from tqdm.auto import tqdm

from .episodes import EpisodeSampler
from .runtime import seed_everything
from .stats import format_ci, mean_ci


def method_device(method) -> torch.device | None:
    """Where a method's parameters live, or None for one without parameters (rules, nearest neighbour)."""
    if isinstance(method, nn.Module):
        param = next(method.parameters(), None)
        return param.device if param is not None else None
    return None


def episode_accuracy(method, x_support, y_support, x_query, y_query, steps: int | None = None) -> float:
    """Query accuracy of any method of the kit on one episode.

    A gradient method (``adapt``/``predict``) adapts to the support set (``steps`` inner steps;
    None: its own); anything else is fitted with ``fit_support`` and scores the queries with
    ``forward``. Fitting runs without gradients unless the method says it needs them
    (``needs_grad_to_fit = True``, as a fine-tuner does). The episode's tensors go to the device
    of the method's parameters first, so a sampler on the CPU serves a model on a GPU.
    """
    device = method_device(method)
    if device is not None:
        x_support, y_support, x_query, y_query = (t.to(device) if isinstance(t, torch.Tensor) else t
                                                  for t in (x_support, y_support, x_query, y_query))
    if hasattr(method, "adapt"):
        params = method.adapt(x_support, y_support, steps=steps)
        with torch.no_grad():
            logits = method.predict(params, x_query)
    else:
        with torch.enable_grad() if getattr(method, "needs_grad_to_fit", False) else torch.no_grad():
            method.fit_support(x_support, y_support)
        with torch.no_grad():
            logits = method(x_query)
    return (logits.argmax(-1) == y_query).float().mean().item()


def compare(methods: dict, test_sets: dict, settings: dict, episodes: int = 600, seed: int = 0,
            evaluate=episode_accuracy, make_sampler=EpisodeSampler, progress: bool = True) -> dict:
    """Accuracy of every method on every test set and setting, all on the same episodes.

    Args:
        methods: name -> trained method.
        test_sets: name -> dataset to draw test episodes from.
        settings: name -> ``dict(n_way=, k_shot=, n_query=)``.
        episodes: episodes per (method, test set, setting).
        seed: reseeds before each method, so every method meets the same episodes.
        evaluate: ``evaluate(method, x_support, y_support, x_query, y_query) -> accuracy``.
        make_sampler: ``make_sampler(dataset, n_way=, k_shot=, n_query=)`` with ``sample() ->
            episode`` (default :class:`~metakit.episodes.EpisodeSampler`). Each episode's tensors
            are moved to the method's device (where its parameters are) before ``evaluate``.
    Returns:
        ``{(method, test set, setting): {"acc", "ci95", "accs", "ms"}}``: the mean accuracy, its
        95% half-width, the per-episode accuracies (for :func:`paired`) and the wall-clock
        milliseconds per episode, sampling included.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be at least 1; got {episodes!r}.")
    results = {}
    jobs = [(m, t, s) for t in test_sets for s in settings for m in methods]
    for name, set_name, setting in tqdm(jobs, desc="testing", disable=not progress):
        method = methods[name]
        was_training = method.training if isinstance(method, nn.Module) else None
        if was_training is not None:
            method.eval()  # BatchNorm on its running statistics, as at test time
        seed_everything(seed)  # learn2learn's Taskset draws with Python's random
        sampler = make_sampler(test_sets[set_name], **settings[setting])
        start, where = time.perf_counter(), method_device(method)
        try:
            accs = [evaluate(method, *_moved(sampler.sample(), where)) for _ in range(episodes)]
        finally:
            if was_training is not None:
                method.train(was_training)
        acc, ci95 = mean_ci(accs)
        results[name, set_name, setting] = {"acc": acc, "ci95": ci95, "accs": accs,
                                            "ms": 1000 * (time.perf_counter() - start) / episodes}
    return results


def _moved(episode, device):
    return tuple(t.to(device) if device is not None and torch.is_tensor(t) else t for t in episode)


def paired(results: dict, a: str, b: str, test_set: str, setting: str) -> tuple[float, float]:
    """``a`` minus ``b`` on the same episodes: the mean per-episode difference and its 95% interval."""
    diff = [x - y for x, y in zip(results[a, test_set, setting]["accs"], results[b, test_set, setting]["accs"])]
    return mean_ci(diff)


def format_table(results: dict, names: dict | None = None) -> str:
    """One row per (test set, method), one column per setting (``acc±ci95``), then ms per episode.

    Args:
        results: :func:`compare`'s output.
        names: display names of the methods (the keys of ``results`` otherwise).
    """
    names = names or {}
    models = list(dict.fromkeys(k[0] for k in results))
    sets = list(dict.fromkeys(k[1] for k in results))
    settings = list(dict.fromkeys(k[2] for k in results))
    width = max(len(f"{s}, {names.get(m, m)}") for s in sets for m in models)
    lines = [f"{'test set, method':<{width}}  " + "  ".join(f"{s:>15}" for s in settings)
             + f"  {'ms/episode (' + settings[0] + ')':>18}"]
    for s in sets:
        for m in models:
            cells = [format_ci(results[m, s, x]["acc"], results[m, s, x]["ci95"]) for x in settings]
            lines.append(f"{s + ', ' + names.get(m, m):<{width}}  " + "  ".join(f"{c:>15}" for c in cells)
                         + f"  {results[m, s, settings[0]]['ms']:>18.1f}")
    return "\n".join(lines)
