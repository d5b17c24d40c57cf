"""The metric methods side by side: one factory, one training regime, one comparison protocol.

Notebook 04 and ``benchmarks/metric.py`` both use these, so the notebook's table and the
benchmark's are measured the same way.
"""

from __future__ import annotations

import time

from ..episodes import EpisodeSampler
from ..models import Conv4
from ..runtime import seed_everything
from ..training import evaluate
from .matching import MatchingNetwork
from .metaoptnet import MetaOptNet
from .protonet import PrototypicalNetwork

METHODS = {"proto": PrototypicalNetwork, "matching": MatchingNetwork, "metaopt": MetaOptNet}
NAMES = {"proto": "prototypical network", "matching": "matching network", "metaopt": "MetaOptNet (SVM)"}
# Training episodes, 120 images each. Many ways and few queries won at equal wall clock
# (benchmarks/glyphs.py); MetaOptNet's QP grows as (n_way * n_support)^2, and at 40 ways a step
# took 1.35 s against 0.09 s for the prototypical network, so it trains on 20-way episodes.
TRAIN = {
    "proto": dict(n_way=40, k_shot=1, n_query=2, rotations=True),
    "matching": dict(n_way=40, k_shot=1, n_query=2, rotations=True),
    "metaopt": dict(n_way=20, k_shot=1, n_query=5, rotations=True),
}
SETTINGS = {
    "5w1s": dict(n_way=5, k_shot=1, n_query=15),
    "5w5s": dict(n_way=5, k_shot=5, n_query=15),
    "20w1s": dict(n_way=20, k_shot=1, n_query=5),
}


def make_model(method: str, hidden: int = 64, **kwargs):
    """A metric model on a fresh Conv-4 backbone: ``"proto"``, ``"matching"`` or ``"metaopt"``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    return METHODS[method](Conv4(hidden=hidden), **kwargs)


def compare(models: dict, test_sets: dict, settings: dict = SETTINGS, episodes: int = 600, seed: int = 0,
            device=None, progress: bool = True) -> dict:
    """Accuracy of every model on every test set and setting, all models on the same episodes.

    Args:
        models: name -> trained metric model.
        test_sets: name -> dataset to draw test episodes from.
        settings: name -> ``dict(n_way=, k_shot=, n_query=)``.
        episodes: episodes per (model, test set, setting).
        seed: reseeds the sampler before each model, so every model meets the same episodes.
    Returns:
        ``{(model, test set, setting): {"acc", "ci95", "ms"}}``, with ``ms`` the wall-clock time
        per episode, sampling included.
    """
    from tqdm.auto import tqdm

    results = {}
    jobs = [(m, t, s) for t in test_sets for s in settings for m in models]
    for model_name, set_name, setting in tqdm(jobs, desc="testing", disable=not progress):
        seed_everything(seed)
        sampler = EpisodeSampler(test_sets[set_name], **settings[setting], device=device)
        start = time.perf_counter()
        acc, ci95 = evaluate(models[model_name], sampler, episodes=episodes, progress=False)
        ms = 1000 * (time.perf_counter() - start) / episodes
        results[model_name, set_name, setting] = {"acc": acc, "ci95": ci95, "ms": ms}
    return results


def format_table(results: dict, names: dict = NAMES) -> str:
    """One row per (test set, model), one column per setting: ``acc +- ci95``, then ms per episode.

    Args:
        names: display names of the models (the keys of ``results`` otherwise).
    """
    models = list(dict.fromkeys(k[0] for k in results))
    sets = list(dict.fromkeys(k[1] for k in results))
    settings = list(dict.fromkeys(k[2] for k in results))
    width = max(len(f"{s}, {names.get(m, m)}") for s in sets for m in models)
    lines = [f"{'test set, method':<{width}}  " + "  ".join(f"{s:>15}" for s in settings)
             + f"  {'ms/episode (' + settings[0] + ')':>18}"]
    for s in sets:
        for m in models:
            cells = [f"{results[m, s, x]['acc']:.4f}±{results[m, s, x]['ci95']:.4f}" for x in settings]
            lines.append(f"{s + ', ' + names.get(m, m):<{width}}  " + "  ".join(f"{c:>15}" for c in cells)
                         + f"  {results[m, s, settings[0]]['ms']:>18.1f}")
    return "\n".join(lines)
