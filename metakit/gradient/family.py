"""The MAML family side by side: one factory, one training regime, one comparison protocol.

Notebook 03 and ``benchmarks/maml_family.py`` both use these, so their tables are measured the
same way: the same Conv-4 (BatchNorm on batch statistics), the same 5-way 1-shot training
episodes, the same outer optimiser and wall-clock budget, and the same test episodes for all.
"""

from __future__ import annotations

import math
import time

import torch
from torch.func import functional_call
from tqdm.auto import tqdm

from ..episodes import EpisodeSampler
from ..models import Conv4
from ..runtime import seed_everything
from .anil import ANIL
from .maml import MAML
from .mamlpp import MAMLPlusPlus
from .metasgd import MetaSGD
from .reptile import Reptile
from .training import meta_evaluate, meta_train

NAMES = {"maml": "MAML", "fomaml": "FOMAML", "reptile": "Reptile", "anil": "ANIL", "metasgd": "Meta-SGD",
         "mamlpp": "MAML++"}
# Inner loops as the papers use them on Omniglot, shrunk where a step costs a CPU too much:
# MAML/FOMAML one step of 0.4 (Finn et al. train with one), Reptile SGD steps on the support set,
# Meta-SGD's rates start at MAML's 0.4, MAML++ two steps (the paper: five) so that it gets a fair
# share of meta-iterations within the same budget.
FAMILY = {
    "maml": dict(cls=MAML, inner_lr=0.4, inner_steps=1),
    "fomaml": dict(cls=MAML, inner_lr=0.4, inner_steps=1, first_order=True),
    "reptile": dict(cls=Reptile, inner_lr=0.1, inner_steps=5),
    "anil": dict(cls=ANIL, inner_lr=0.4, inner_steps=1),
    "metasgd": dict(cls=MetaSGD, inner_lr=0.4, inner_steps=1),
    "mamlpp": dict(cls=MAMLPlusPlus, inner_lr=0.4, inner_steps=2, msl_iterations=300),
}
# Meta-training: 5-way 1-shot episodes with 5 queries per class, 4 tasks per meta-iteration, Adam.
# Small meta-batches won at equal wall clock on 2 CPU cores (more, noisier steps).
TRAIN = dict(n_way=5, k_shot=1, n_query=5)
META = dict(meta_lr=1e-3, meta_batch_size=4)
SETTINGS = {
    "5w1s": dict(n_way=5, k_shot=1, n_query=15),
    "5w5s": dict(n_way=5, k_shot=5, n_query=15),
}


def make_algorithm(name: str, n_way: int = 5, hidden: int = 64, **overrides):
    """A family member on a fresh Conv-4 with an ``n_way`` head, configured as in :data:`FAMILY`.

    Args:
        name: a key of :data:`FAMILY` (``"maml"``, ``"fomaml"``, ``"reptile"``, ``"anil"``,
            ``"metasgd"``, ``"mamlpp"``).
        n_way: classes per task (the head's outputs).
        hidden: Conv-4 channels.
        **overrides: ``inner_lr``, ``inner_steps`` or any other argument of the class.
    """
    if name not in FAMILY:
        raise ValueError(f"algorithm must be one of {', '.join(FAMILY)}; got {name!r}.")
    if n_way < 2:
        raise ValueError(f"n_way must be at least 2 (one class is no classification task); got {n_way!r}.")
    config = {**FAMILY[name], **overrides}
    cls = config.pop("cls")
    if not config["inner_lr"] > 0 or not math.isfinite(config["inner_lr"]):
        raise ValueError(f"inner_lr must be a positive number; got {config['inner_lr']!r}.")
    return cls(Conv4(hidden=hidden, out_features=n_way, track_running_stats=False), **config)


def train(algorithm, dataset, seconds: float | None = None, iterations: int | None = None, progress: bool = True,
          callback=None, clock=time.perf_counter, **episode) -> dict:
    """Meta-train on ``dataset`` with the family's regime (:data:`TRAIN` episodes, :data:`META`).

    Args:
        episode: overrides of :data:`TRAIN` (``n_way``, ``k_shot``, ``n_query``).
        callback: passed to :func:`~metakit.gradient_training.meta_train` (live plots).
        clock: what ``seconds`` counts (``time.process_time``: CPU time), as in ``meta_train``.
    Returns:
        :func:`~metakit.gradient_training.meta_train`'s history.
    """
    sampler = EpisodeSampler(dataset, **{**TRAIN, **episode})
    return meta_train(algorithm, sampler, steps=iterations, seconds=seconds, progress=progress,
                      callback=callback, clock=clock, **META)


def compare(algorithms: dict, test_sets: dict, settings: dict = SETTINGS, episodes: int = 600, seed: int = 0,
            steps: int | None = None, progress: bool = True) -> dict:
    """Accuracy of every algorithm on every test set and setting, all on the same episodes.

    Args:
        algorithms: name -> trained family member.
        test_sets: name -> dataset to draw test episodes from.
        settings: name -> ``dict(n_way=, k_shot=, n_query=)``.
        episodes: episodes per (algorithm, test set, setting).
        seed: reseeds the sampler before each algorithm, so every one meets the same episodes.
        steps: inner steps at test time (default: each algorithm's own ``inner_steps``).
    Returns:
        ``{(algorithm, test set, setting): {"acc", "ci95", "ms"}}`` (``ms`` per episode, adaptation
        and sampling included), the layout :func:`metakit.metric.format_table` prints.
    """
    results = {}
    jobs = [(a, t, s) for t in test_sets for s in settings for a in algorithms]
    for name, set_name, setting in tqdm(jobs, desc="testing", disable=not progress):
        seed_everything(seed)
        sampler = EpisodeSampler(test_sets[set_name], **settings[setting])
        start = time.perf_counter()
        acc, ci95 = meta_evaluate(algorithms[name], sampler, episodes=episodes, steps=steps)
        results[name, set_name, setting] = {"acc": acc, "ci95": ci95,
                                            "ms": 1000 * (time.perf_counter() - start) / episodes}
    return results


def format_summary(results: dict, histories: dict) -> str:
    """One row per algorithm: meta-training iterations and time, then ``acc±ci95`` per (test set, setting)."""
    columns = list(dict.fromkeys(k[1:] for k in results))
    head = f"{'algorithm':<9} {'meta-its':>8} {'train s':>7} {'ms/it':>6}  " + "  ".join(
        f"{s + ' ' + x:>15}" for s, x in columns)
    lines = [head]
    for name in dict.fromkeys(k[0] for k in results):
        h = histories[name]
        cells = [f"{results[name, s, x]['acc']:.4f}±{results[name, s, x]['ci95']:.4f}" for s, x in columns]
        lines.append(f"{NAMES.get(name, name):<9} {h['steps']:>8} {h['seconds']:>7.0f} "
                     f"{1000 * h['seconds'] / max(h['steps'], 1):>6.0f}  " + "  ".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def accuracy_vs_steps(algorithms: dict, dataset, steps=(0, 1, 2, 3, 5, 10), episodes: int = 100, seed: int = 0,
                      progress: bool = True, **setting) -> dict:
    """Test accuracy against the number of inner steps at test time, on the same episodes.

    A step count an algorithm cannot take (MAML++ learned one rate per trained step) or at which
    its adaptation diverges (a learned rate too large to repeat) gives ``nan`` and a reason.

    Args:
        setting: ``n_way``, ``k_shot``, ``n_query`` (default 5-way 1-shot, 15 queries).
    Returns:
        ``{name: {"steps": [...], "acc": [...], "ci95": [...], "notes": {steps: reason}}}``.
    """
    setting = {**SETTINGS["5w1s"], **setting}
    curves = {}
    for name, algorithm in tqdm(algorithms.items(), desc="steps", disable=not progress):
        curve = {"steps": list(steps), "acc": [], "ci95": [], "notes": {}}
        for k in steps:
            seed_everything(seed)
            try:
                acc, ci95 = meta_evaluate(algorithm, EpisodeSampler(dataset, **setting), episodes=episodes, steps=k)
            except (ValueError, FloatingPointError) as e:
                acc, ci95 = math.nan, math.nan
                curve["notes"][k] = str(e)
            curve["acc"].append(acc)
            curve["ci95"].append(ci95)
        curves[name] = curve
    return curves


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear centred kernel alignment of two (n, d) representations of the same n inputs:
    1 for the same representation up to rotation and scale, near 0 for unrelated ones
    (Kornblith et al., 2019)."""
    x = x.flatten(1).double()
    y = y.flatten(1).double()
    x, y = x - x.mean(0), y - y.mean(0)
    cross = (y.T @ x).norm() ** 2
    return (cross / ((x.T @ x).norm() * (y.T @ y).norm())).item()


def block_outputs(algorithm, params: dict, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of each Conv-4 block of ``algorithm.model`` run with ``params``."""
    model, outs = algorithm.model, []
    h = x
    for i, block in enumerate(model.features):
        prefix = f"features.{i}."
        own = {n[len(prefix):]: p for n, p in params.items() if n.startswith(prefix)}
        h = functional_call(block, own, (h,))
        if len(own):  # the Flatten at the end has no parameters
            outs.append(h)
    return outs


def feature_reuse(algorithm, dataset, episodes: int = 100, seed: int = 0, progress: bool = True,
                  **setting) -> dict:
    """Raghu et al.'s (2020) measurement: does the inner loop change the features, or only the head?

    On the same episodes, the accuracy of adapting every parameter (MAML's inner loop) and of
    adapting only the head (ANIL's, on the same trained network), and for each Conv-4 block the
    linear CKA between its output on the query images before and after adaptation (1: the
    adapted network computes the same features; the head is what changed).

    Returns:
        ``{"full": (acc, ci95), "head_only": (acc, ci95), "cka": [per block mean], "head_change",
        "body_change"}``, the last two the mean relative change of the head's and the body's
        parameters in the inner loop.
    """
    if isinstance(algorithm, MAMLPlusPlus):
        raise ValueError("feature_reuse runs the plain Conv-4 blocks; MAML++'s per-step BatchNorm weights do not "
                         "fit them. Measure MAML, FOMAML, Meta-SGD, Reptile or ANIL.")
    setting = {**SETTINGS["5w1s"], **setting}
    head_only = ANIL(algorithm.model, inner_lr=algorithm.inner_lr, inner_steps=algorithm.inner_steps)
    full = {}
    for name, alg in (("full", algorithm), ("head_only", head_only)):
        seed_everything(seed)
        full[name] = meta_evaluate(alg, EpisodeSampler(dataset, **setting), episodes=episodes)
    seed_everything(seed)
    sampler = EpisodeSampler(dataset, **setting)
    theta = {n: p.detach() for n, p in algorithm.init_params().items()}
    cka, head_change, body_change = [], [], []
    was_training = algorithm.training
    algorithm.eval()
    try:
        for _ in tqdm(range(episodes), desc="feature reuse", disable=not progress, leave=False):
            x_support, y_support, x_query, _ = sampler.sample()
            adapted = algorithm.adapt(x_support, y_support)
            with torch.no_grad():
                before, after = block_outputs(algorithm, theta, x_query), block_outputs(algorithm, adapted, x_query)
                cka.append([linear_cka(b, a) for b, a in zip(before, after)])
                change = {n: ((adapted[n] - theta[n]).norm() / theta[n].norm()).item() for n in theta if n in adapted}
            head = [v for n, v in change.items() if n in head_only.head_names]
            body = [v for n, v in change.items() if n not in head_only.head_names]
            head_change.append(sum(head) / len(head))
            body_change.append(sum(body) / len(body))
    finally:
        algorithm.train(was_training)
    cka = torch.tensor(cka, dtype=torch.float64).mean(0).tolist()
    return {**full, "cka": cka, "head_change": sum(head_change) / episodes, "body_change": sum(body_change) / episodes}
