"""Benchmark: metakit's functional MAML against learn2learn's ``MAML.clone()/adapt()`` loop, on the
same model and the same tasks, in one run.

    python benchmarks/maml_speed.py            # per row 5 warm-up + 30 timed meta-iterations (MLP), 2 + 10 (Conv-4)
    python benchmarks/maml_speed.py --quick    # 1 warm-up and 2 timed, Conv-4 on 2 tasks (a smoke test)

Settings, both second order (full MAML):
  (a) sinusoid regression (Finn et al. 2017, Sec. 5.1): MLP 1-40-40-1 with ReLU, 10 support and
      10 query points per task, meta_batch_size 25, 1 inner step, inner_lr 0.01, MSE;
  (b) glyph classification: Conv-4 (64 channels, BatchNorm with batch statistics, linear head),
      5-way 1-shot with 15 queries per class, meta_batch_size 32, 1 inner step, inner_lr 0.4.
A meta-iteration is the meta-loss and its backward pass to the initial parameters (the optimiser
step, the same for every implementation, is left out; tasks are drawn beforehand). The
implementations take turns within each iteration, so a slow spell of the machine hits all of
them. learn2learn runs as its examples do: a clone per task, ``adapt`` per inner step, the query
loss's ``backward()`` per task. metakit runs both its task loop and its ``vmap`` path (for Conv-4 also
the loop with :mod:`metakit.gradient.fast_conv4`'s forward, an option); its default path for the
model is the one compared. Speedups are ratios of medians.

The gradient difference is, per parameter tensor, ``|g - g_l2l| / |g_l2l|`` on the first task
batch, the largest over tensors, paths and settings; tensors whose gradient is zero in exact
arithmetic (the conv biases just before BatchNorm: below 1e-4 of the whole gradient's norm, so
round-off only) are left out.
Targets on CPU: at least 3x faster than learn2learn on the MLP; on Conv-4 at least 1.5x, and never slower.
The last line printed is ``RESULT mlp_speedup=... conv_speedup=... max_rel_grad_diff=...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import metakit  # noqa: E402
from metakit.episodes import EpisodeSampler, import_learn2learn  # noqa: E402
from metakit.gradient.functional import default_vectorize, functional_forward, meta_loss  # noqa: E402
from metakit.gradient.fast_conv4 import conv4_forward  # noqa: E402
from metakit.gradient.training import sample_tasks  # noqa: E402


def sinusoid_setting(batches: int):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))
    g, family = torch.Generator().manual_seed(0), metakit.SinusoidTasks()
    tasks = [family.sample(25, 10, 10, generator=g)[:4] for _ in range(batches)]
    return "sinusoid MLP", model, tasks, dict(inner_lr=0.01, steps=1, loss_fn=F.mse_loss)


def glyph_setting(batches: int, meta_batch_size: int = 32):
    metakit.seed_everything(0)
    model = metakit.Conv4(out_features=5, track_running_stats=False)
    sampler = EpisodeSampler(metakit.load_glyphs("background"), n_way=5, k_shot=1, n_query=15)
    tasks = [sample_tasks(sampler, meta_batch_size) for _ in range(batches)]
    return "glyph Conv-4", model, tasks, dict(inner_lr=0.4, steps=1, loss_fn=F.cross_entropy)


def learn2learn_iteration(maml, tasks, *, inner_lr, steps, loss_fn):
    """One meta-iteration as in learn2learn's examples; gradients land in the wrapped model's .grad."""
    for x_support, y_support, x_query, y_query in zip(*tasks):
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(loss_fn(learner(x_support), y_support))
        (loss_fn(learner(x_query), y_query) / len(tasks[0])).backward()


def metakit_iteration(model, tasks, vectorize, fast=False, **kwargs):
    forward = functional_forward(model, fast=fast)
    meta_loss(forward, dict(model.named_parameters()), tasks, vectorize=vectorize, **kwargs).loss.backward()


def gradients(model, run, tasks):
    model.zero_grad(set_to_none=True)
    run(tasks)
    return [p.grad.clone() for p in model.parameters()]


def relative_difference(got, reference) -> float:
    """The largest ``|g - g_ref| / |g_ref|`` over the tensors whose reference gradient is not zero up
    to round-off (below 1e-4 of the whole gradient: the conv biases just before BatchNorm)."""
    whole = torch.cat([r.flatten() for r in reference]).norm()
    return max(((g - r).norm() / r.norm()).item() for g, r in zip(got, reference) if r.norm() > 1e-4 * whole)


def bench(setting, warmup: int, iterations: int, progress: bool):
    """Median and mean ms per meta-iteration of each implementation, and gradient differences."""
    name, model, tasks, kwargs = setting
    l2l = import_learn2learn()
    maml = l2l.algorithms.MAML(model, lr=kwargs["inner_lr"], first_order=False)
    runs = {"learn2learn": lambda t: learn2learn_iteration(maml, t, **kwargs),
            "metakit loop": lambda t: metakit_iteration(model, t, False, **kwargs),
            "metakit vmap": lambda t: metakit_iteration(model, t, True, **kwargs)}
    if conv4_forward(model) is not None:  # the loop with the Conv4 fast forward (an option, not the default)
        runs["metakit loop, fast Conv-4"] = lambda t: metakit_iteration(model, t, False, fast=True, **kwargs)
    reference = gradients(model, runs["learn2learn"], tasks[0])
    diffs = {k: relative_difference(gradients(model, run, tasks[0]), reference)
             for k, run in runs.items() if k != "learn2learn"}
    times = {k: [] for k in runs}
    order = list(runs)
    for i in tqdm(range(warmup + iterations), desc=name, disable=not progress, leave=False):
        order = order[1:] + order[:1]  # rotate who goes first
        for k in order:
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            runs[k](tasks[i % len(tasks)])
            if i >= warmup:
                times[k].append(1000 * (time.perf_counter() - start))
    return {k: (statistics.median(v), statistics.fmean(v)) for k, v in times.items()}, diffs, model


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=None,
                        help="timed meta-iterations per row (default 30 for the MLP and 10 for Conv-4, 2 with --quick)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    # (warm-up, timed) meta-iterations per setting; a Conv-4 meta-iteration takes seconds on a CPU
    counts = {"mlp": (1, 2), "conv": (1, 2)} if args.quick else {"mlp": (5, 30), "conv": (2, 10)}
    if args.iterations:
        counts = {k: (w, args.iterations) for k, (w, _) in counts.items()}
    conv_tasks = 2 if args.quick else 32
    load = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; (warm-up, timed) meta-iterations per "
          f"implementation: MLP {counts['mlp']}, Conv-4 {counts['conv']}; ms per meta-iteration (median, mean)",
          flush=True)
    print(f"Conv-4 on {conv_tasks} tasks per meta-iteration"
          + (" (--quick; the full run uses 32)" if args.quick else ""))
    print(f"{'setting':<14} {'implementation':<22} {'median':>9} {'mean':>9} {'vs l2l':>7} {'grad diff':>10}")
    speedups, worst = {}, 0.0
    for key, make in (("mlp", sinusoid_setting), ("conv", lambda n: glyph_setting(n, conv_tasks))):
        warmup, iterations = counts[key]
        setting = make(min(warmup + iterations, 8))
        times, diffs, model = bench(setting, warmup, iterations, not args.no_progress)
        default = "metakit vmap" if default_vectorize(model) else "metakit loop"
        for k, (median, mean) in times.items():
            label = k + (" (default)" if k == default else "")
            ratio = times["learn2learn"][0] / median
            diff = f"{diffs[k]:.1e}" if k in diffs else "reference"
            print(f"{setting[0]:<14} {label:<22} {median:>9.1f} {mean:>9.1f} {ratio:>6.2f}x {diff:>10}", flush=True)
        speedups[key] = times["learn2learn"][0] / times[default][0]
        worst = max(worst, *diffs.values())
    # other processes on the cores distort multi-threaded timings badly (most of all the vmap path's many small ops)
    print(f"load average (1 min) at the start {load:.2f}, at the end {os.getloadavg()[0]:.2f}, "
          f"on {os.cpu_count()} CPUs")
    met = {"mlp": speedups["mlp"] >= 3.0, "conv": speedups["conv"] >= 1.5, "never slower": speedups["conv"] >= 1.0}
    print(f"targets: MLP >= 3x: {'met' if met['mlp'] else 'NOT met'} ({speedups['mlp']:.2f}x); "
          f"Conv-4 >= 1.5x: {'met' if met['conv'] else 'NOT met'}, no slower: "
          f"{'met' if met['never slower'] else 'NOT met'} ({speedups['conv']:.2f}x)")
    print(f"RESULT mlp_speedup={speedups['mlp']:.2f} conv_speedup={speedups['conv']:.2f} max_rel_grad_diff={worst:.1e}")


if __name__ == "__main__":
    main()
