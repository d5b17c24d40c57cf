"""Notebook 08's experiments, which ``benchmarks/transfer.py`` runs at full size: the five methods
trained for the same CPU time (train-or-load), compared on the same test episodes
(:func:`metakit.compare.compare`), what MAML's test-time steps and class pool are worth, the choice
of layers to fine-tune, a fine-tuning curve, and meta-transfer learning's inner loop with its
scaling and shifting switched on or off."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from ..checkpoints import train_or_load
from ..compare import compare, episode_accuracy, paired
from ..episodes import EpisodeSampler
from ..gradient import family
from ..gradient.functional import inner_loop, step_rates
from ..metric import experiments as metric
from ..models import Conv4
from ..runtime import recipe_clock, seed_everything
from ..stats import format_ci
from ..training import model_device, train_episodes
from . import mtl as meta_transfer
from .finetune import HEADS, LAYERS, FineTuner, pretrain, trim_history

NAMES = {"baseline": "Baseline", "baselinepp": "Baseline++", "proto": "ProtoNet", "maml": "MAML", "mtl": "MTL",
         "mtloff": "MTL, SS off", "maml10": "MAML 10 steps", "mamlrot": "MAML rotations"}
SETTINGS = {"5w1s": dict(n_way=5, k_shot=1, n_query=15), "5w5s": dict(n_way=5, k_shot=5, n_query=15)}
N_QUERY = 10  # queries per class in the fine-tuning explorer: 10 shots + 10 queries fit a character's 20 drawings


def pretrained_backbone(name: str, background, seconds: float, folder, *, retrain: bool = False,
                        clock=None, seed: int = 0, progress: bool = True, device=None):
    """Baseline's (``name="baseline"``) or Baseline++'s (``"baselinepp"``) Conv-4, pretrained on every
    class of ``background`` for ``seconds`` of ``clock`` (by default :func:`~metakit.runtime.recipe_clock`:
    CPU time on the CPU, the same compute for every method; wall clock on a GPU), or loaded from
    ``folder / transfer-<name>-300s.pt``, on ``device`` (None: the CPU).
    Returns ``(backbone, info)``."""
    seed_everything(seed)
    backbone = Conv4().to(device)
    clock = clock or recipe_clock(device)
    train = lambda b: trim_history(pretrain(b, background, HEADS[name], seconds=seconds, clock=clock,  # noqa: E731
                                            progress=progress, seed=seed))
    info = train_or_load(backbone, Path(folder) / f"transfer-{name}-300s.pt", train, retrain=retrain)
    return backbone.eval(), info


def trained_proto(background, seconds: float, folder, *, retrain: bool = False, clock=None,
                  seed: int = 0, progress: bool = True, device=None):
    """A prototypical network in notebook 04's regime (:data:`metakit.metric.experiments.TRAIN`),
    trained for ``seconds`` of ``clock`` or loaded from ``folder / transfer-proto-300s.pt``, on
    ``device`` (None: the CPU). Returns ``(model, info)``."""
    seed_everything(seed)
    proto = metric.make_model("proto").to(device)
    clock = clock or recipe_clock(device)
    sampler = EpisodeSampler(background, **metric.TRAIN["proto"], device=device)
    train = lambda m: trim_history(train_episodes(m, sampler, seconds=seconds, clock=clock,  # noqa: E731
                                                  progress=progress))
    info = train_or_load(proto, Path(folder) / "transfer-proto-300s.pt", train, retrain=retrain)
    return proto.eval(), info


def trained_maml(background, seconds: float, path, *, retrain: bool = False, clock=None,
                 seed: int = 0, progress: bool = True, device=None, rotations: bool = False):
    """MAML in notebook 03's regime (:mod:`metakit.gradient.family`), trained for ``seconds`` of
    ``clock`` or loaded from ``path`` (notebook 03's ``family-maml.pt``), on ``device`` (None: the
    CPU); ``rotations=True`` draws its training episodes from the same pool of 4C rotated classes
    as the other methods' training. Returns ``(maml, info)``,
    info holding ``steps``, ``seconds`` (wall), ``clock_seconds`` and ``loaded``."""
    seed_everything(seed)
    maml = family.make_algorithm("maml").to(device)
    clock = clock or recipe_clock(device)
    h = train_or_load(maml, Path(path), lambda a: family.train(a, background, seconds=seconds, progress=progress,
                                                                clock=clock, rotations=rotations), retrain=retrain)
    return maml, {"steps": h["steps"], "clock_seconds": h.get("clock_seconds", h["seconds"]), "loaded": h["loaded"],
                  "seconds": h["seconds"]}


def with_test_steps(algorithm, steps: int):
    """A copy of a gradient-based method that takes ``steps`` inner steps at test time (its
    meta-training is unchanged): MAML trained with one step often gains from more."""
    algorithm = copy.deepcopy(algorithm)
    algorithm.inner_steps = int(steps)
    return algorithm


def without_scale_shift(mtl):
    """A copy of a trained meta-transfer learner whose features skip the scaling and shifting (the
    pretrained features as they were), with the same meta-learned head and inner loop."""
    mtl = copy.deepcopy(mtl)
    mtl.model.set_mode("off")
    return mtl


def trained_mtl(background, seconds: float, folder, *, retrain: bool = False, clock=None, seed: int = 0,
                progress: bool = True, device=None):
    """Meta-transfer learning (:mod:`metakit.transfer.mtl`): ``PRETRAIN_SHARE`` of ``seconds`` of
    ``clock`` pretraining a Conv-4 as Baseline does, the rest meta-learning its scaling and shifting,
    or loaded from ``folder / transfer-mtl-300s.pt``, on ``device`` (None: the CPU).
    Returns ``(mtl, info)``."""
    seed_everything(seed)
    mtl = meta_transfer.make_mtl().to(device)
    clock = clock or recipe_clock(device)
    train = lambda m: trim_history(meta_transfer.train(m, background, seconds, clock=clock,  # noqa: E731
                                                       progress=progress, seed=seed))
    info = train_or_load(mtl, Path(folder) / "transfer-mtl-300s.pt", train, retrain=retrain)
    return mtl, info


def compare_methods(methods: dict, test_sets: dict, episodes: int = 600, seed: int = 0, progress: bool = True) -> dict:
    """Every method on the same 5-way 1-shot and 5-shot test episodes (:data:`SETTINGS`)."""
    return compare(methods, test_sets, SETTINGS, episodes=episodes, seed=seed, progress=progress)


def format_table(results: dict, train_info: dict | None = None, names: dict = NAMES) -> str:
    """One row per (test set, method), a column per setting (``acc±ci95``), then ms per test
    episode and, from ``train_info`` (name -> ``{"steps", "clock_seconds"}``), training steps and time."""
    train_info = train_info or {}
    methods = list(dict.fromkeys(k[0] for k in results))
    sets = list(dict.fromkeys(k[1] for k in results))
    settings = list(dict.fromkeys(k[2] for k in results))
    width = max(20, *(len(f"{s}, {names.get(m, m)}") for s in sets for m in methods))
    lines = [f"{'test set, method':<{width}} " + " ".join(f"{s:>15}" for s in settings)
             + f" {'ms/ep':>6} {'train steps':>11} {'train s':>8}"]
    for s in sets:
        for m in methods:
            cells = " ".join(format_ci(results[m, s, x]["acc"], results[m, s, x]["ci95"]) for x in settings)
            info = train_info.get(m, {})  # none for a variant of another method's weights
            clock = f"{info['clock_seconds']:>8.0f}" if "clock_seconds" in info else f"{'':>8}"
            lines.append(f"{s + ', ' + names.get(m, m):<{width}} {cells} {results[m, s, settings[0]]['ms']:>6.1f} "
                         f"{info.get('steps', ''):>11} {clock}")
    return "\n".join(lines)


def layers_table(backbone, datasets: dict, head: str, episodes: int = 30, seed: int = 0, progress: bool = True,
                 **finetune) -> dict:
    """Query accuracy (mean, 95% interval) of fine-tuning each choice of ``layers``, 5-way 1-shot,
    on the same episodes: ``{(layers, dataset): (acc, ci95)}``."""
    methods = {layers: FineTuner(backbone, head=head, layers=layers, **finetune) for layers in LAYERS}
    results = compare(methods, datasets, {"5w1s": dict(n_way=5, k_shot=1, n_query=15)}, episodes=episodes, seed=seed,
                      progress=progress)
    return {(layers, name): (r["acc"], r["ci95"]) for (layers, name, _), r in results.items()}


_CACHE: dict = {}  # episodes, frozen features and reference accuracies, so a slider move only re-tunes


def _cached(key, make, *owners):
    """``make()``, kept under ``key``; the entry holds ``owners`` (whose ids are in the key) alive,
    so that no other object can reuse their ids while it is cached."""
    if key not in _CACHE:
        if len(_CACHE) > 256:
            _CACHE.clear()
        _CACHE[key] = (owners, make())
    return _CACHE[key][1]


def finetune_curve(backbone, dataset, head: str, n_way: int, k_shot: int, steps: int, lr: float, layers: str,
                   seed: int = 0, episodes: int = 3, references: dict | None = None) -> dict:
    """Fine-tune a new head (and ``layers``) on ``episodes`` episodes and follow it step by step.

    Args:
        backbone: a pretrained Conv-4.
        head: ``"linear"`` (Baseline) or ``"cosine"`` (Baseline++).
        references: name -> trained method (ProtoNet, MAML) scored on the same episodes.
    Returns:
        ``{"loss": mean support loss per step, "steps": the steps where the query accuracy was
        taken, "acc": mean query accuracy there, "references": {name: accuracy}}``.
    """
    model = FineTuner(backbone, head=head, layers=layers, steps=steps, lr=lr)  # refuses bad settings first
    key = (id(dataset), n_way, k_shot, seed, episodes, str(model_device(backbone)))

    def draw():
        seed_everything(seed)
        sampler = EpisodeSampler(dataset, n_way, k_shot, N_QUERY,   # ValueError for an impossible episode
                                 device=model_device(backbone))
        return [sampler.sample() for _ in range(episodes)]

    tasks = _cached(("episodes", *key), draw, dataset)
    feats = _cached(("features", id(backbone), layers, *key),
                   lambda: [(model.features(xs), ys, model.features(xq), yq) for xs, ys, xq, yq in tasks],
                   backbone, dataset)
    losses, accs = [], []
    for h_support, y_support, h_query, y_query in feats:
        model.fit_features(h_support, y_support, watch=(h_query, y_query))
        losses.append(model.history["loss"])
        accs.append(model.history["query_acc"])
    refs = {}
    for name, method in (references or {}).items():
        out = getattr(getattr(method, "model", None), "head", None)
        if out is not None and out.out_features != n_way:
            continue  # MAML's head was trained for a fixed number of ways
        refs[name] = _cached(("reference", id(method), *key), lambda method=method: mean_accuracy(method, tasks),
                            method, dataset)
    mean = lambda rows: [sum(col) / len(col) for col in zip(*rows)]  # noqa: E731
    return {"loss": mean(losses), "steps": model.history["query_steps"], "acc": mean(accs), "references": refs}


def mtl_curve(mtl, dataset, mode: str, k_shot: int, steps: int, lr: float, seed: int = 0, episodes: int = 5) -> dict:
    """Meta-transfer learning's inner loop followed step by step on ``episodes`` 5-way episodes,
    with the scaling and shifting in ``mode`` (:data:`metakit.transfer.mtl.SS_MODES`; ``"off"``
    is the pretrained features as they were), from the meta-learned head.

    Returns:
        ``{"steps": 0..steps, "acc": mean query accuracy after each step, "loss": mean support
        loss before each step}``.
    Raises:
        ValueError: an impossible episode, a mode or a rate that is not one;
        FloatingPointError: when the support loss stops being finite (too large a rate).
    """
    n_way, net = mtl.model.head.out_features, mtl.model
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0; got {steps!r}.")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"the inner learning rate must be a positive number; got {lr!r}.")
    if mode not in meta_transfer.SS_MODES:
        raise ValueError(f"mode must be one of {', '.join(repr(m) for m in meta_transfer.SS_MODES)}; got {mode!r}.")
    device = model_device(net)
    key = (id(dataset), n_way, k_shot, seed, episodes, str(device))

    def draw():
        seed_everything(seed)
        sampler = EpisodeSampler(dataset, n_way, k_shot, N_QUERY, device=device)  # ValueError if impossible
        return [sampler.sample() for _ in range(episodes)]

    def features():
        before = net.mode
        net.set_mode(mode)
        try:
            with torch.no_grad():
                return [(net.features(xs), ys, net.features(xq), yq) for xs, ys, xq, yq in tasks]
        finally:
            net.set_mode(before)

    tasks = _cached(("mtl episodes", *key), draw, dataset)
    feats = _cached(("mtl features", id(mtl), mode, *key), features, mtl, dataset)
    rate = step_rates(lr, None, None, int(steps))
    start = {"weight": net.head.weight.detach(), "bias": net.head.bias.detach()}
    accs, losses = [], []
    for z_support, y_support, z_query, y_query in feats:
        with torch.no_grad():  # torch.func still takes the inner gradients
            path, support = inner_loop(meta_transfer.head_forward, start, z_support, y_support, steps=int(steps),
                                       rate=rate, loss_fn=F.cross_entropy, first_order=True)
            acc = [(meta_transfer.head_forward(p, z_query).argmax(1) == y_query).float().mean().item()
                   for p in [start, *path]]
        loss_path = support.tolist()
        bad = [k for k, v in enumerate(loss_path) if not math.isfinite(v)]
        if bad:
            raise FloatingPointError(f"The support loss became {loss_path[bad[0]]} at step {bad[0] + 1} with "
                                     f"lr={lr:g}; lower the learning rate (try lr / 10).")
        if len(loss_path) > 1 and loss_path[-1] > loss_path[0]:  # cross-entropy stays finite: a rise is the sign
            raise FloatingPointError(f"The inner loop diverged: the support loss rose from {loss_path[0]:.3g} to "
                                     f"{loss_path[-1]:.3g} in {steps} steps with lr={lr:g}; lower the learning rate "
                                     "(try lr / 10).")
        accs.append(acc)
        losses.append(loss_path)
    mean = lambda rows: [sum(col) / len(col) for col in zip(*rows)]  # noqa: E731
    return {"steps": list(range(int(steps) + 1)), "acc": mean(accs), "loss": mean(losses)}


def mean_accuracy(method, tasks) -> float:
    """The mean query accuracy of a trained method on the episodes ``tasks``, BatchNorm on its
    running statistics as at test time."""
    was_training = method.training
    method.eval()
    try:
        return sum(episode_accuracy(method, *t) for t in tasks) / len(tasks)
    finally:
        method.train(was_training)


PAIRS = (("baselinepp", "baseline"), ("baselinepp", "proto"), ("baseline", "proto"), ("proto", "maml"),
         ("mtl", "baseline"), ("mtl", "proto"), ("mtl", "mtloff"), ("maml10", "maml"), ("mamlrot", "maml"),
         ("proto", "maml10"))


def paired_table(results: dict, pairs=PAIRS) -> str:
    """One line per (test set, setting): each pair's mean per-episode difference and its interval
    (pairs with a method not in ``results`` are left out)."""
    methods = {k[0] for k in results}
    pairs = [(a, b) for a, b in pairs if a in methods and b in methods]
    sets = list(dict.fromkeys(k[1] for k in results))
    settings = list(dict.fromkeys(k[2] for k in results))
    return "\n".join(f"  {s:<8} {x}: " + "  ".join(f"{a}-{b} {d:+.4f}±{e:.4f}" for a, b in pairs
                                                   for d, e in [paired(results, a, b, s, x)])
                     for s in sets for x in settings)


# Chen et al. 2019, Conv-4 on mini-ImageNet (Table 3) and ResNet-18 mini-ImageNet -> CUB (Table 4):
# the direction of effect to compare with, not the same data.
PAPER = {
    "mini-ImageNet 5w1s (Conv-4)": {"baseline": 0.4211, "baselinepp": 0.4824, "proto": 0.4442, "maml": 0.4647},
    "mini-ImageNet 5w5s (Conv-4)": {"baseline": 0.6253, "baselinepp": 0.6643, "proto": 0.6424, "maml": 0.6271},
    "mini-ImageNet -> CUB 5w5s (ResNet-18)": {"baseline": 0.6557, "baselinepp": 0.6204, "proto": 0.6202,
                                               "maml": 0.5134},
}


def rank_orders(results: dict, paper: dict = PAPER, names: dict = NAMES) -> str:
    """The paper's accuracies and rank order of the methods, then ours on each test set and setting."""
    rows = dict(paper)
    for s, x in dict.fromkeys(k[1:] for k in results):
        rows[f"ours, {s} {x}"] = {m: results[m, s, x]["acc"] for m in dict.fromkeys(k[0] for k in results)}
    return "\n".join(f"  {where:<38} " + "  ".join(f"{names[m]} {row[m]:.3f}" for m in row) + "   order: "
                     + " > ".join(names[m] for m in sorted(row, key=row.get, reverse=True))
                     for where, row in rows.items())
