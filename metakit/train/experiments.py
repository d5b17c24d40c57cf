"""The measurements of ``benchmarks/distributed.py`` (and of the tests): one step's gradients in
one process against several, and meta-iterations per second against the number of processes."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import torch

from . import distributed
from .run import Config, build, defaults, load_data, train
from .step import Episodes, gradients

# Small learners in float64: the check is about the arithmetic of sharing, not about the model.
CHECKS = {
    "maml": Config(kind="family", name="maml"),
    "mamlpp": Config(kind="family", name="mamlpp"),
    "reptile": Config(kind="family", name="reptile"),
    "proto": Config(kind="metric", name="proto"),
    "matching": Config(kind="metric", name="matching"),
}


def step_gradients(cfg: Config, world: distributed.World, step: int = 0, dataset=None) -> dict:
    """``{name: gradient}`` of step ``step`` of run ``cfg`` on this process, summed over the processes
    (``dataset``: the training set, if already loaded)."""
    cfg = defaults(cfg, world)
    dataset = dataset if dataset is not None else load_data(cfg)[0]
    episodes = Episodes(dataset, cfg.n_way, cfg.k_shot, cfg.n_query, cfg.rotations, cfg.seed, world.device,
                        torch.float64 if cfg.dtype == "float64" else torch.float32)
    learner = build(cfg, world).train()
    share = world.share(cfg.batch)
    gradients(learner, cfg.kind, episodes.batch(step, share, stacked=cfg.kind == "family"), len(share), cfg.batch,
              world)
    return {n: p.grad.detach().cpu().clone() for n, p in learner.named_parameters() if p.grad is not None}


def _gradients_worker(configs: dict, folder: str) -> None:
    torch.set_num_threads(1)
    world = distributed.start(torch.device("cpu"))
    dataset = load_data(defaults(next(iter(configs.values())), world))[0]
    grads = {name: step_gradients(cfg, world, dataset=dataset) for name, cfg in configs.items()}
    if world.main:
        torch.save(grads, Path(folder) / "grads.pt")


def gradient_check(names=("maml", "proto"), processes: int = 2, hidden: int = 8, batch: int = 4,
                   dtype: str = "float64", start_method: str = "spawn") -> dict:
    """One step's gradients computed by ``processes`` gloo processes sharing the step's tasks (or
    episodes) against one process doing them all, on the same tasks.

    Args:
        start_method: how the processes start (:func:`~metakit.train.distributed.spawn`).
    Returns:
        ``{name: {"max_diff": largest absolute difference, "norm": the gradient's norm}}``.
    """
    configs = {n: dataclasses.replace(CHECKS[n], hidden=hidden, batch=batch, dtype=dtype) for n in names}
    alone = distributed.World(device=torch.device("cpu"))
    dataset = load_data(defaults(next(iter(configs.values())), alone))[0]  # the kit's glyphs, for all of them
    single = {n: step_gradients(cfg, alone, dataset=dataset) for n, cfg in configs.items()}
    with tempfile.TemporaryDirectory() as folder:
        distributed.spawn(_gradients_worker, processes, configs, folder, start_method=start_method)
        shared = torch.load(Path(folder) / "grads.pt", weights_only=True)
    out = {}
    for n in names:
        if single[n].keys() != shared[n].keys():
            raise AssertionError(f"{n}: the processes computed gradients for other parameters than one process")
        out[n] = {"max_diff": max((single[n][k] - shared[n][k]).abs().max().item() for k in single[n]),
                  "norm": math.sqrt(sum(g.double().pow(2).sum().item() for g in single[n].values()))}
    return out


def _throughput_worker(cfg: Config, threads: int, folder: str) -> None:
    torch.set_num_threads(threads)
    world = distributed.start(torch.device("cpu"))
    info = train(cfg, world, log=lambda *a: None)
    if world.main:
        torch.save({k: info[k] for k in ("step_seconds", "step_cpu_seconds")}, Path(folder) / "times.pt")


def throughput(processes: int, steps: int, threads: int = 1, cfg: Config | None = None) -> dict:
    """Meta-iterations per second of ``processes`` CPU processes of ``threads`` threads each,
    sharing each step's tasks (the family's MAML on Conv-4 and glyph 5-way 1-shot by default).

    The first step (warm-up) is left out. CPU time counts the first process only: on a busy machine
    it still shows how much of a step's work each process does, which wall clock does not.

    Returns:
        ``{"its_per_s", "ms_per_it" (median wall clock), "cpu_ms_per_it" (median CPU time of the
        first process), "steps"}``.
    """
    cfg = cfg or Config(kind="family", name="maml")
    with tempfile.TemporaryDirectory() as folder:
        run = dataclasses.replace(cfg, steps=steps + 1, out=str(Path(folder) / "run.pt"), save_every=0,
                                  eval_episodes=0, progress=False)
        distributed.spawn(_throughput_worker, processes, run, threads, folder)
        record = torch.load(Path(folder) / "times.pt", weights_only=True)
    times, cpu = record["step_seconds"][1:], sorted(record["step_cpu_seconds"][1:])
    return {"its_per_s": len(times) / sum(times), "ms_per_it": 1000 * sorted(times)[len(times) // 2],
            "cpu_ms_per_it": 1000 * cpu[len(cpu) // 2], "steps": len(times)}
