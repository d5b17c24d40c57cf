"""The MAML family side by side: one factory, one training regime, and the experiments of
notebook 03 (test settings for :func:`metakit.compare.compare`, accuracy against inner steps,
feature reuse, the adaptation explorer's curves).

Notebook 03 and ``benchmarks/maml_family.py`` both use these, so their tables are measured the
same way: the same Conv-4 (BatchNorm on batch statistics), the same 5-way 1-shot training
episodes, the same outer optimiser and budget, and the same test episodes for all.
"""

from __future__ import annotations

import math
import time
from copy import deepcopy

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from ..checkpoints import train_or_load
from ..compare import compare
from ..episodes import EpisodeSampler, check_episode
from ..models import Conv4
from ..runtime import seed_everything
from ..stats import format_ci
from ..training import model_device
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
# Full Omniglot (1200 training characters, 60 000 meta-iterations of 32 tasks on a GPU), for
# orientation only: (paper, 5-way 1-shot, 5-way 5-shot).
PAPERS = {"maml": ("Finn et al. 2017", 0.987, 0.999), "fomaml": ("Finn et al. 2017", 0.983, 0.992),
          "reptile": ("Nichol et al. 2018, transductive", 0.9768, 0.9948),
          "anil": ("Raghu et al. 2020 (MiniImageNet only)", None, None),
          "metasgd": ("Li et al. 2017", 0.9953, 0.9993), "mamlpp": ("Antoniou et al. 2019", 0.9947, 0.9993)}
N_QUERY = 10  # queries per class in the widgets' test episodes: 10 shots + 10 queries fit 20 renderings


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


def first_order_gap(tasks, weights: dict | None = None, inner_steps: int = 1, inner_lr: float = 0.4,
                    hidden: int = 64) -> dict:
    """How far FOMAML's meta-gradient is from MAML's, at ``weights`` (a MAML state dict, e.g. a
    trained ``family-maml.pt``; None: a fresh Conv-4 drawn from torch's generator) with the given inner loop.

    Args:
        tasks: ``(x_s, y_s, x_q, y_q)`` stacked over T tasks (:func:`~metakit.gradient.training.sample_tasks`).
    Returns:
        ``per_task``: the median over tasks of ``|g_F - g_M| / |g_M|`` for one task's gradients;
        ``batch``: the same for the gradients summed over the T tasks, which is what a meta-batch
        follows; ``cosine``: the cosine between the two summed gradients (1: same direction,
        -1: opposite).
    """
    maml, fomaml = (make_algorithm(n, hidden=hidden, inner_steps=inner_steps, inner_lr=inner_lr)
                    for n in ("maml", "fomaml"))
    if weights is not None:
        maml.load_state_dict(weights)
    fomaml.load_state_dict(maml.state_dict())

    def flat_grad(algorithm, one):
        loss, _ = algorithm.meta_loss(one)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(algorithm.parameters()))])

    per_task, g_m, g_f = [], 0, 0
    for i in range(tasks[0].shape[0]):
        one = tuple(t[i:i + 1] for t in tasks)
        m, f = flat_grad(maml, one), flat_grad(fomaml, one)
        per_task.append(((f - m).norm() / m.norm()).item())
        g_m, g_f = g_m + m, g_f + f
    return {"per_task": float(torch.tensor(per_task).median()), "batch": ((g_f - g_m).norm() / g_m.norm()).item(),
            "cosine": nn.functional.cosine_similarity(g_f, g_m, dim=0).item()}


def check_meta(meta_lr: float, meta_batch_size: int) -> None:
    """Raise ``ValueError`` saying what is possible for an outer learning rate or meta-batch size."""
    if isinstance(meta_lr, bool) or not isinstance(meta_lr, (int, float)) or not (0 < meta_lr <= 1
                                                                                 and math.isfinite(meta_lr)):
        raise ValueError(f"meta_lr must be a positive number up to 1; got {meta_lr!r}.")
    if isinstance(meta_batch_size, bool) or not isinstance(meta_batch_size, int) or not 1 <= meta_batch_size <= 64:
        raise ValueError(f"meta_batch_size must be a whole number of tasks from 1 to 64; got {meta_batch_size!r}.")


def train(algorithm, dataset, seconds: float | None = None, steps: int | None = None, progress: bool = True,
          callback=None, clock=time.perf_counter, meta_lr: float = META["meta_lr"],
          meta_batch_size: int = META["meta_batch_size"], **episode) -> dict:
    """Meta-train on ``dataset`` with the family's regime (:data:`TRAIN` episodes, :data:`META`).

    Args:
        seconds, steps, clock: the budget (:class:`~metakit.runtime.Budget`: wall clock by default,
            ``time.process_time`` for CPU time).
        meta_lr, meta_batch_size: the outer Adam's learning rate and the tasks per meta-iteration.
        episode: overrides of :data:`TRAIN` (``n_way``, ``k_shot``, ``n_query``).
        callback: passed to :func:`~metakit.gradient.training.meta_train` (live plots).
    Returns:
        :func:`~metakit.gradient.training.meta_train`'s history.
    """
    check_meta(meta_lr, meta_batch_size)
    sampler = EpisodeSampler(dataset, **{**TRAIN, **episode})
    return meta_train(algorithm, sampler, steps=steps, seconds=seconds, progress=progress,
                      callback=callback, clock=clock, meta_lr=meta_lr, meta_batch_size=meta_batch_size)


def train_and_test(name: str, background, evaluation, *, n_way: int = 5, k_shot: int = 1, inner_lr: float = 0.4,
                   inner_steps: int = 1, meta_lr: float = META["meta_lr"],
                   meta_batch_size: int = META["meta_batch_size"],
                   seconds: float = 30.0, callback=None, test_episodes: int = 100, seed: int = 0, device=None):
    """Notebook 03's Run button: a fresh family member meta-trained on ``background`` with the
    family's regime (``meta_lr`` and ``meta_batch_size`` as chosen), then tested on
    ``test_episodes`` episodes of ``evaluation`` (N_QUERY queries), on ``device`` (None: the CPU).

    Returns:
        ``(algorithm, history, (acc, ci95))``. Impossible episodes and bad rates raise
        ``ValueError`` before any training.
    """
    check_episode(background, n_way, k_shot, TRAIN["n_query"])
    check_episode(evaluation, n_way, k_shot, N_QUERY)
    check_meta(meta_lr, meta_batch_size)
    algorithm = make_algorithm(name, n_way=n_way, inner_lr=inner_lr, inner_steps=inner_steps).to(device)
    history = train(algorithm, background, seconds=seconds, callback=callback, n_way=n_way, k_shot=k_shot,
                    meta_lr=meta_lr, meta_batch_size=meta_batch_size)
    seed_everything(seed)
    sampler = EpisodeSampler(evaluation, n_way, k_shot, N_QUERY)
    return algorithm, history, meta_evaluate(algorithm, sampler, episodes=test_episodes)


def train_family(names, background, seconds: float, seed: int = 0, progress: bool = True,
                 save_checkpoints: bool = False, clock=time.perf_counter, device=None) -> tuple[dict, dict]:
    """Each named member made fresh (seeded) and meta-trained for the same budget on ``device``
    (None: the CPU), as ``benchmarks/maml_family.py`` does; ``save_checkpoints`` writes ``family-<name>.pt``.

    Returns:
        ``(algorithms, histories)``, both keyed by name.
    """
    algorithms, histories = {}, {}
    for name in names:
        seed_everything(seed)
        algorithms[name] = make_algorithm(name).to(device)
        run = lambda a: train(a, background, seconds=seconds, progress=progress, clock=clock)  # noqa: E731
        histories[name] = (train_or_load(algorithms[name], f"family-{name}.pt", run, retrain=True)
                           if save_checkpoints else run(algorithms[name]))
    return algorithms, histories


def target_run(background, evaluation, cpu_seconds: float, episodes: int = 600, seed: int = 0,
               progress: bool = True, device=None) -> dict:
    """A fresh MAML meta-trained for ``cpu_seconds`` of this process's CPU time (a busy machine
    does not shorten it) on ``device`` (None: the CPU), tested on glyph 5-way 1-shot episodes.

    Returns:
        ``{"acc", "ci95", "accs", "ms", "history"}``.
    """
    seed_everything(seed)
    maml = make_algorithm("maml").to(device)
    history = train(maml, background, seconds=cpu_seconds, progress=progress, clock=time.process_time)
    result = compare({"maml": maml}, {"glyphs": evaluation}, {"5w1s": SETTINGS["5w1s"]}, episodes=episodes, seed=seed,
                     progress=False)["maml", "glyphs", "5w1s"]
    return {**result, "history": history}


def format_training(histories: dict) -> str:
    """One line per trained member: meta-iterations, time, and its last 100 training queries' accuracy."""
    return "\n".join(f"{NAMES[name]}: {h['steps']} meta-iterations in {h['seconds']:.0f} s "
                     f"({1000 * h['seconds'] / h['steps']:.0f} ms each), last 100 query accuracy "
                     f"{sum(h['acc'][-100:]) / len(h['acc'][-100:]):.3f}" for name, h in histories.items())


def format_target(target: dict, goal: float = 0.95, cpu_limit: float = 600) -> str:
    """:func:`target_run`'s figures and whether MAML reached ``goal`` within ``cpu_limit`` CPU-seconds."""
    h = target["history"]
    verdict = "met" if target["acc"] >= goal and h["clock_seconds"] <= cpu_limit else "MISSED"
    return (f"target run: MAML meta-trained for {h['clock_seconds']:.0f} CPU-seconds ({h['steps']} meta-iterations, "
            f"{h['seconds']:.0f} s of wall clock, {torch.get_num_threads()} thread(s)): glyph 5w1s "
            f"{format_ci(target['acc'], target['ci95'])} over {len(target['accs'])} episodes; target >= {goal} within "
            f"{cpu_limit / 60:.0f} CPU-minutes: {verdict}")


def format_papers(results: dict, names) -> str:
    """The papers' full-Omniglot figures and our ratio on real Omniglot, 5w1s / 5w5s (nan without it)."""
    lines = []
    for name in names:
        paper, one, five = PAPERS[name]
        if one is None:
            lines.append(f"  {NAMES[name]:<9} {paper}")
            continue
        ours = [results.get((name, "omniglot", s), {"acc": math.nan})["acc"] for s in SETTINGS]
        lines.append(f"  {NAMES[name]:<9} {paper}: {one:.3f} (x{ours[0] / one:.2f}) / "
                     f"{five:.3f} (x{ours[1] / five:.2f})")
    return "\n".join(lines)


def format_summary(results: dict, histories: dict) -> str:
    """One row per algorithm: meta-training iterations and time, then ``acc±ci95`` per (test set, setting).

    Args:
        results: :func:`metakit.compare.compare`'s output.
        histories: name -> :func:`train`'s history.
    """
    columns = list(dict.fromkeys(k[1:] for k in results))
    head = f"{'algorithm':<9} {'meta-its':>8} {'train s':>7} {'ms/it':>6}  " + "  ".join(
        f"{s + ' ' + x:>15}" for s, x in columns)
    lines = [head]
    for name in dict.fromkeys(k[0] for k in results):
        h = histories[name]
        cells = [format_ci(results[name, s, x]["acc"], results[name, s, x]["ci95"]) for s, x in columns]
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


def with_ways(algorithm, n_way: int):
    """A copy of a trained family member for ``n_way``-way tasks, ``n_way`` up to its head's outputs:
    the head keeps its first ``n_way`` rows (and Meta-SGD their learned rates). Labels are shuffled
    in every training episode, so no row is tied to a class and any ``n_way`` of them make an
    initialisation for fewer ways.

    Raises:
        ValueError when ``n_way`` is below 2 or above the head's outputs.
    """
    head = algorithm.model.head
    if isinstance(n_way, bool) or not isinstance(n_way, int) or not 2 <= n_way <= head.out_features:
        raise ValueError(f"this model was meta-trained with a {head.out_features}-way head, so it adapts to 2 to "
                         f"{head.out_features} ways; n_way={n_way!r} was asked. Train a wider one with the Run "
                         "button to try more ways.")
    if n_way == head.out_features:
        return algorithm
    copy = deepcopy(algorithm)
    narrow = nn.Linear(head.in_features, n_way).to(head.weight.device, head.weight.dtype)
    with torch.no_grad():
        narrow.weight.copy_(head.weight[:n_way])
        narrow.bias.copy_(head.bias[:n_way])
    copy.model.head = narrow
    for key, rate in getattr(copy, "lrs", {}).items():  # Meta-SGD: one learned rate per weight
        if key.startswith("head__"):
            copy.lrs[key] = nn.Parameter(rate.detach()[:n_way].clone())
    return copy


def adaptation_curve(algorithm, dataset, k_shot: int, inner_steps: int, inner_lr: float | None = None,
                     episodes: int = 10, seed: int = 0, n_query: int = N_QUERY) -> dict:
    """Query accuracy and support loss after each inner step, over ``episodes`` test episodes.

    Args:
        algorithm: a trained family member (its head fixes ``n_way``).
        inner_lr: the step size for algorithms with one fixed rate (None: the trained one); Meta-SGD
            and MAML++ adapt with their learned rates.
    Returns:
        ``{"acc": (episodes, steps + 1), "support_loss": (episodes, steps)}`` tensors.
    """
    if inner_steps < 0 or inner_steps > 50:
        raise ValueError(f"inner_steps must be between 0 and 50; got {inner_steps!r}.")
    if inner_lr is not None and not (inner_lr > 0 and math.isfinite(inner_lr)):
        raise ValueError(f"inner_lr must be a positive number; got {inner_lr!r}.")
    n_way = algorithm.model.head.out_features
    check_episode(dataset, n_way, k_shot, n_query)
    seed_everything(seed)
    sampler = EpisodeSampler(dataset, n_way, k_shot, n_query, device=model_device(algorithm))
    trained_lr, was_training, accs, losses = algorithm.inner_lr, algorithm.training, [], []
    algorithm.eval()
    try:
        if inner_lr is not None:
            algorithm.inner_lr = inner_lr
        for _ in range(episodes):
            x_support, y_support, x_query, y_query = sampler.sample()
            path, support = algorithm.adaptation_path(x_support, y_support, steps=inner_steps)
            with torch.no_grad():
                accs.append([(algorithm.predict(p, x_query).argmax(-1) == y_query).float().mean().item()
                             for p in path])
            losses.append(support.tolist())
    finally:
        algorithm.inner_lr = trained_lr
        algorithm.train(was_training)
    return {"acc": torch.tensor(accs), "support_loss": torch.tensor(losses).reshape(episodes, inner_steps)}


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
    sampler = EpisodeSampler(dataset, **setting, device=model_device(algorithm))
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
