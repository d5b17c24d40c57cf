"""The metric methods side by side: one factory, one training regime, the test settings of the
comparison (:func:`metakit.compare.compare`), and notebook 04's live measurements.

Notebook 04, its Run button and ``benchmarks/metric.py`` all use these, so the notebook's table
and the benchmark's are measured the same way.
"""

from __future__ import annotations

import math
import time

import torch

from ..checkpoints import train_or_load
from ..compare import compare
from ..episodes import EpisodeSampler, sample_episode
from ..models import Conv4
from ..runtime import seed_everything
from ..training import model_device, train_episodes
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
# Reported on full Omniglot (1200 training characters, hours on a GPU), for orientation only.
PAPERS = {"proto": ("Snell et al. 2017", {"5w1s": 0.988, "5w5s": 0.997, "20w1s": 0.960}),
          "matching": ("Vinyals et al. 2016", {"5w1s": 0.981, "5w5s": 0.989, "20w1s": 0.938})}


def make_model(method: str, hidden: int = 64, **kwargs):
    """A metric model on a fresh Conv-4 backbone: ``"proto"``, ``"matching"`` or ``"metaopt"``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}.")
    return METHODS[method](Conv4(hidden=hidden), **kwargs)


def method_of(model) -> str:
    """The key of :data:`METHODS` whose class ``model`` is."""
    for name, cls in METHODS.items():
        if type(model) is cls:
            return name
    raise ValueError(f"{type(model).__name__} is not one of the metric methods ({', '.join(METHODS)}).")


def train(model, dataset, *, steps: int | None = None, seconds: float | None = None, lr: float = 1e-3, device=None,
          progress: bool = True, clock=time.perf_counter, **episode) -> dict:
    """Train a metric model on episodes of ``dataset`` with its method's regime (:data:`TRAIN`, Adam).

    Args:
        model: a model from :func:`make_model`.
        steps, seconds, clock: the budget (:class:`~metakit.runtime.Budget`; wall clock by default).
        episode: overrides of the method's :data:`TRAIN` episodes (``n_way``, ``k_shot``,
            ``n_query``, ``rotations``).
    Returns:
        :func:`~metakit.training.train_episodes`'s history.
    """
    sampler = EpisodeSampler(dataset, **{**TRAIN[method_of(model)], **episode}, device=device)
    return train_episodes(model, sampler, lr=lr, steps=steps, seconds=seconds, progress=progress, device=device,
                          clock=clock)


def train_methods(background, seconds: float, seed: int = 0, device=None, progress: bool = True,
                  save_checkpoints: bool = False) -> tuple[dict, dict]:
    """Every method made fresh (seeded) and trained for the same budget with its regime, as
    ``benchmarks/metric.py`` does; ``save_checkpoints`` writes ``<method>-<ways>way.pt``.

    Returns:
        ``(models, histories)``, both keyed by method.
    """
    models, histories = {}, {}
    for method in METHODS:
        seed_everything(seed)
        models[method] = make_model(method).to(device)
        run = lambda m: train(m, background, seconds=seconds, device=device, progress=progress)  # noqa: E731
        name = f"{method}-{TRAIN[method]['n_way']}way.pt"
        histories[method] = (train_or_load(models[method], name, run, retrain=True) if save_checkpoints
                             else run(models[method]))
    return models, histories


#: the two training regimes of :data:`TRAIN`, so that MetaOptNet and the prototypical network can be
#: compared at matched ways: each method trained in its own regime and in the other's
REGIMES = {"20way": TRAIN["metaopt"], "40way": TRAIN["proto"]}


def train_matched_ways(background, seconds: float, methods=("proto", "metaopt"), seed: int = 0, device=None,
                       progress: bool = True, clock=time.process_time) -> tuple[dict, dict]:
    """Every method in ``methods`` trained in every regime of :data:`REGIMES` for the same budget
    of ``clock`` (CPU time by default), each from the same seed.

    Returns:
        ``(models, histories)``, keyed ``"<method>-<regime>"`` (``"metaopt-40way"``, ...).
    """
    models, histories = {}, {}
    for method in methods:
        for regime, episode in REGIMES.items():
            seed_everything(seed)
            key = f"{method}-{regime}"
            models[key] = make_model(method).to(device)
            histories[key] = train(models[key], background, seconds=seconds, device=device, progress=progress,
                                   clock=clock, **episode)
    return models, histories


def format_papers(results: dict) -> str:
    """The papers' full-Omniglot figures and our ratio on real Omniglot (nan without it)."""
    lines = []
    for method, (paper, figures) in PAPERS.items():
        ours = {s: results.get((method, "omniglot", s), {"acc": math.nan})["acc"] for s in figures}
        cells = [f"{setting} {ref:.3f} (x{ours[setting] / ref:.2f})" for setting, ref in figures.items()]
        lines.append(f"  {NAMES[method]:<22} {paper}: " + ", ".join(cells))
    return "\n".join(lines)


def episode_accuracies(model, dataset, n_way: int, k_shot: int, n_query: int = 5, episodes: int = 100, seed: int = 0,
                       distance: str | None = None) -> list[float]:
    """A trained model's query accuracy on each of ``episodes`` fresh episodes (notebook 04's live
    re-measurement, on the comparison's protocol).

    Args:
        distance: for the prototypical network, the distance used at test time (the embedding was
            trained with whatever it was trained with; the model's own is restored after); other
            methods ignore it.
    Returns:
        The per-episode accuracies.
    """
    old = getattr(model, "distance", None)
    if old is not None and distance is not None:
        model.distance = distance
    setting = dict(n_way=n_way, k_shot=k_shot, n_query=n_query)
    try:
        results = compare({"model": model}, {"test": dataset}, {"setting": setting}, episodes=episodes, seed=seed,
                          progress=False)
    finally:
        if old is not None:
            model.distance = old
    return results["model", "test", "setting"]["accs"]


def embedding_2d(model, dataset, n_way: int, k_shot: int, n_query: int = 5, seed: int = 0) -> dict:
    """One episode's support and query embeddings projected on their first two principal components.

    Returns:
        ``{"points": (N, 2) all projected embeddings, "support": (n_way*k_shot, 2), "query":
        (n_way*n_query, 2), "prototypes": (n_way, 2) projected class means, "y_support",
        "y_query", "wrong": (n_way*n_query,) True where the full model misclassifies}``, on the CPU
        (the episode is computed on the model's device).
    """
    seed_everything(seed)
    x_support, y_support, x_query, y_query = sample_episode(dataset, n_way, k_shot, n_query,
                                                            device=model_device(model))
    model.eval()
    with torch.no_grad():
        model.fit_support(x_support, y_support)
        wrong = model(x_query).argmax(1) != y_query
        z = model.backbone(torch.cat([x_support, x_query]))       # (n_support + n_query_total, D)
    centre = z.mean(0)
    _, _, v = torch.linalg.svd(z - centre, full_matrices=False)
    p = (z - centre) @ v[:2].T                                    # (N, 2)
    ps, pq = p[: len(y_support)], p[len(y_support):]
    protos = torch.stack([ps[y_support == c].mean(0) for c in range(n_way)])
    out = {"points": p, "support": ps, "query": pq, "prototypes": protos, "y_support": y_support,
           "y_query": y_query, "wrong": wrong}
    return {k: v.cpu() for k, v in out.items()}                   # for plotting
