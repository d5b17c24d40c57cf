"""One training run of the command: its settings, the data, the learner, the loop under a
:class:`~metakit.runtime.Budget` around the data-parallel step (:mod:`.step`), checkpoints that
the notebooks load and that a run resumes from, and the test at the end.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoints import save_checkpoint
from ..datasets import load_glyphs, load_image_folder, load_omniglot
from ..episodes import check_episode
from ..gradient import family
from ..gradient.training import meta_evaluate
from ..metric import experiments as metric
from ..runtime import Budget, seed_everything
from ..stats import format_ci
from ..training import evaluate, model_device
from .distributed import World
from .step import Episodes, gradients

DATA = ("glyphs", "omniglot", "folder")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
# What makes a run the run it is: a resumed run keeps these from its checkpoint. Where the data
# lies may change (a moved folder, another machine): --root and --eval-root default to the saved ones.
RUN_KEYS = ("kind", "name", "data", "n_way", "k_shot", "n_query", "rotations", "batch", "lr", "inner_lr",
            "inner_steps", "hidden", "dtype", "seed")


@dataclass
class Config:
    """A run. ``None`` takes the chapter's regime (:data:`metakit.gradient.family.TRAIN` and ``META``,
    :data:`metakit.metric.experiments.TRAIN`), or the checkpoint's values when resuming.

    ``batch`` is the tasks per meta-iteration (family; default 4) or the episodes per step
    (metric; default one per process); the processes share them. ``steps`` counts the whole
    run, resumed parts included; ``seconds`` limits this invocation.
    """
    kind: str = "family"                # "family" or "metric"
    name: str = "maml"                  # a key of family.FAMILY or metric.METHODS
    data: str | None = None             # "glyphs", "omniglot" or "folder"
    root: str | None = None
    eval_root: str | None = None
    n_way: int | None = None
    k_shot: int | None = None
    n_query: int | None = None
    rotations: bool | None = None
    batch: int | None = None
    lr: float | None = None             # meta_lr (family) or Adam's lr (metric)
    inner_lr: float | None = None
    inner_steps: int | None = None
    hidden: int | None = None           # Conv-4 channels (64)
    dtype: str | None = None            # "float32" or "float64"
    seed: int | None = None             # 0
    steps: int | None = None
    seconds: float | None = None
    out: str | None = None
    resume: bool = False
    save_every: int = 100
    eval_episodes: int = 100
    progress: bool = True


def defaults(cfg: Config, world: World) -> Config:
    """``cfg`` with every ``None`` replaced by the chapter's regime."""
    names = {"family": family.FAMILY, "metric": metric.METHODS}
    if cfg.name not in names.get(cfg.kind, ()):
        raise ValueError(f"no {cfg.kind} {cfg.name!r}: the commands are " + "; ".join(
            f"{kind} ({', '.join(n)})" for kind, n in names.items()) + ".")
    if cfg.kind == "family":
        regime = {**family.TRAIN, "rotations": False, "batch": family.META["meta_batch_size"],
                  "lr": family.META["meta_lr"], "inner_lr": family.FAMILY[cfg.name]["inner_lr"],
                  "inner_steps": family.FAMILY[cfg.name]["inner_steps"]}
    else:
        regime = {**metric.TRAIN[cfg.name], "batch": world.size, "lr": 1e-3}
    regime.update(data="glyphs", hidden=64, dtype="float32", seed=0)
    cfg = dataclasses.replace(cfg, **{k: v for k, v in regime.items() if getattr(cfg, k) is None})
    return dataclasses.replace(cfg, out=default_out(cfg))


def default_out(cfg: Config) -> str:
    """Where the checkpoint goes: ``--out``, else ``artifacts/<kind>-<name>.pt``."""
    return cfg.out or f"artifacts/{cfg.kind}-{cfg.name}.pt"


def resumed(cfg: Config) -> tuple[Config, dict]:
    """The checkpoint at ``cfg.out`` and ``cfg`` with its run settings; a setting given again
    with another value is refused (that would be another run)."""
    path = Path(default_out(cfg))
    if not path.is_file():
        raise FileNotFoundError(f"--resume: there is no checkpoint at {path} to resume from; "
                                "drop --resume to start a new run there.")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if "config" not in saved or "optimizer" not in saved:
        raise ValueError(f"--resume: {path} holds weights only (no optimiser state or step count), so it was not "
                         "written by `python -m metakit.train`; start a new run with another --out.")
    old = saved["config"]
    clash = [f"--{k.replace('_', '-')} {old[k]} (now {getattr(cfg, k)})" for k in RUN_KEYS
             if k not in ("kind", "name") and getattr(cfg, k) is not None and getattr(cfg, k) != old[k]]
    if (cfg.kind, cfg.name) != (old["kind"], old["name"]):
        clash.insert(0, f"{old['kind']} {old['name']} (now {cfg.kind} {cfg.name})")
    if clash:
        raise ValueError(f"--resume: {path} was trained with " + ", ".join(clash) + ". Give the same settings (or "
                         "leave them out: they are read from the checkpoint), or start a new run with another --out.")
    places = {k: old[k] for k in ("root", "eval_root") if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **{k: old[k] for k in RUN_KEYS}, **places), saved


def load_data(cfg: Config):
    """``(training set, evaluation set or None)`` for ``cfg.data``."""
    if cfg.data not in DATA:
        raise ValueError(f"--data must be one of {', '.join(DATA)}; got {cfg.data!r}.")
    if cfg.data == "glyphs":
        return load_glyphs("background", root=cfg.root), load_glyphs("evaluation", root=cfg.root)
    if cfg.root is None:
        raise ValueError(f"--data {cfg.data} needs --root: " + (
            "the folder torchvision's Omniglot uses (it holds omniglot-py/)." if cfg.data == "omniglot" else
            "a folder or .zip laid out as <alphabet>/<character>/<image>.png."))
    if cfg.data == "omniglot":
        background = load_omniglot(cfg.root, background=True)
        try:
            return background, load_omniglot(cfg.root, background=False)
        except FileNotFoundError:
            return background, None
    evaluation = load_image_folder(cfg.eval_root, name="evaluation folder") if cfg.eval_root else None
    return load_image_folder(cfg.root), evaluation


def build(cfg: Config, world: World):
    """The learner, the same initial weights on every process, on ``world.device`` in ``cfg.dtype``."""
    seed_everything(cfg.seed)
    if cfg.kind == "family":
        learner = family.make_algorithm(cfg.name, n_way=cfg.n_way, hidden=cfg.hidden, inner_lr=cfg.inner_lr,
                                        inner_steps=cfg.inner_steps)
    else:
        learner = metric.make_model(cfg.name, hidden=cfg.hidden)
    return learner.to(world.device, DTYPES[cfg.dtype])


def check_world(cfg: Config, world: World) -> None:
    """Refuse a step that some process would have no share of."""
    flag = "--meta-batch-size" if cfg.kind == "family" else "--episodes"
    plural = "s" * (cfg.batch != 1)
    what = (f"a meta-batch of {cfg.batch} task{plural}" if cfg.kind == "family"
            else f"{cfg.batch} episode{plural} per step")
    if cfg.batch < 1:
        raise ValueError(f"{flag} must be at least 1; got {cfg.batch}.")
    if world.size > cfg.batch:
        raise ValueError(f"{world.size} processes would share {what} ({flag}), so some would have none: give "
                         f"{flag} {world.size} or more, or start fewer processes.")


def train(cfg: Config, world: World, log=print) -> dict:
    """Run ``cfg`` on this process; the main process saves the checkpoint and tests the result.

    Returns:
        The run's record (the checkpoint's ``info``): ``steps``, ``seconds``, ``loss`` and ``acc``
        per step, ``step_seconds`` and ``step_cpu_seconds`` (the main process's wall-clock and CPU
        time per step), and ``test_acc``/``test_ci95`` when it was tested.
    """
    saved = {}
    if cfg.resume:
        cfg, saved = world.from_main(lambda: resumed(dataclasses.replace(cfg, out=default_out(cfg))))
    cfg = defaults(cfg, world)
    check_world(cfg, world)
    background, evaluation = load_data(cfg)
    episodes = Episodes(background, cfg.n_way, cfg.k_shot, cfg.n_query, cfg.rotations, cfg.seed, world.device,
                        DTYPES[cfg.dtype])
    learner = build(cfg, world)
    optimizer = torch.optim.Adam(learner.parameters(), lr=cfg.lr)
    info = {"loss": [], "acc": [], "step_seconds": [], "step_cpu_seconds": [], "seconds": 0.0}
    if saved:
        learner.load_state_dict(saved["state_dict"])
        optimizer.load_state_dict(saved["optimizer"])
        info.update({k: saved["info"].get(k, v) for k, v in info.items()})
    done = int(saved.get("step", 0))
    share = world.share(cfg.batch)
    if world.main:
        log(f"{cfg.kind} {cfg.name} on {background.name}, {background.num_classes} classes: {cfg.n_way}-way "
            f"{cfg.k_shot}-shot, {cfg.batch} {'tasks' if cfg.kind == 'family' else 'episodes'} per step over "
            f"{world.size} process(es) on {world.device.type}" + (f", resumed at step {done}" if saved else ""))
    budget = Budget(None if cfg.steps is None else max(cfg.steps - done, 0), cfg.seconds, device=world.device,
                    desc=f"{cfg.kind} {cfg.name}", progress=cfg.progress and world.main)

    def save():
        if world.main:
            record = {**info, "kind": cfg.kind, "name": cfg.name, "data": cfg.data, "steps": done,
                      "world_size": world.size, "device": world.device.type}
            save_checkpoint(learner, cfg.out, record, optimizer=optimizer.state_dict(), step=done,
                            config=dataclasses.asdict(cfg))

    learner.train()
    steps, consistent = iter(budget), True  # consistent: weights, optimiser and record agree on `done`
    try:
        while not world.all_stop(next(steps, None) is None):
            started, cpu_started = budget.elapsed, time.process_time()
            batch = episodes.batch(done, share, stacked=cfg.kind == "family")
            try:
                metrics = gradients(learner, cfg.kind, batch, len(share), cfg.batch, world)
            except FloatingPointError as e:
                rate = "meta_lr" if cfg.kind == "family" else "lr"
                raise FloatingPointError(f"{e} (at step {done + 1}, {rate}={cfg.lr:g})") from None
            consistent = False
            optimizer.step()
            if cfg.kind == "metric":
                world.average_buffers(learner)
            done += 1
            timing = {"step_seconds": budget.elapsed - started, "step_cpu_seconds": time.process_time() - cpu_started}
            for key, value in {**metrics, **timing}.items():
                info[key].append(value)
            consistent = True
            budget.log(**metrics)
            if cfg.save_every and done % cfg.save_every == 0:
                save()
    except KeyboardInterrupt:
        if world.size == 1 and consistent:  # several processes may each have stopped somewhere else
            info["seconds"] += budget.summary()["seconds"]
            save()
            log(f"interrupted: {done} steps saved in {cfg.out}; add --resume to go on from there")
        raise
    finally:
        steps.close()
    info["seconds"] += budget.summary()["seconds"]
    save()
    if world.main and cfg.eval_episodes > 0:
        info.update(test(cfg, learner, evaluation, log))
        save()
    if world.main:
        log(f"{done} steps, {info['seconds']:.0f} s in all; checkpoint {cfg.out}")
    return {**info, "steps": done}


def test(cfg: Config, learner, evaluation, log=print) -> dict:
    """Mean query accuracy on ``cfg.eval_episodes`` episodes of the evaluation set (``n_way`` as
    trained for the family, 5 for the metric methods; the trained shots; up to 15 queries)."""
    if evaluation is None:
        log("no evaluation set (give --eval-root for --data folder): not tested")
        return {}
    n_way = cfg.n_way if cfg.kind == "family" else 5
    n_query = min(15, min(len(ix) for ix in evaluation.labels_to_indices.values()) - cfg.k_shot)
    try:
        check_episode(evaluation, n_way, cfg.k_shot, n_query)
    except ValueError as e:
        log(f"not tested: {e}")
        return {}
    seed_everything(cfg.seed)
    sampler = Episodes(evaluation, n_way, cfg.k_shot, n_query, device=model_device(learner),
                       dtype=DTYPES[cfg.dtype])
    evaluate_fn = meta_evaluate if cfg.kind == "family" else evaluate
    acc, ci95 = evaluate_fn(learner, sampler, episodes=cfg.eval_episodes, progress=cfg.progress)
    log(f"test on {evaluation.name}, {n_way}-way {cfg.k_shot}-shot, {cfg.eval_episodes} episodes: "
        f"{format_ci(acc, ci95)}")
    return {"test_acc": acc, "test_ci95": ci95, "test_setting": f"{n_way}w{cfg.k_shot}s"}
