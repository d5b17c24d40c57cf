"""Benchmark: the training command's data parallelism on the CPU (metakit.train.experiments).

Meta-iterations per second of MAML (second order, Conv-4, glyph 5-way 1-shot, the family's
regime: 4 tasks per meta-iteration) in 1 process of 1 thread, and in 2 gloo processes of 1 thread
each sharing every meta-batch; their ratio (ideal 2, on 2 free cores); and the check that one
meta-step's gradients in 2 processes equal those of 1 process on the same tasks (float64).

    python benchmarks/distributed.py              # 30 timed meta-iterations per run
    python benchmarks/distributed.py --quick      # 3 (a smoke test)

Wall clock is what the ratio is about, and other jobs on the machine shrink it; the CPU time of
one process per step, 1 process against 2 (``cpu_ratio``), shows how the work splits whatever the
load. The last line is ``RESULT its_1x1=... its_2x1=... ratio=... cpu_ratio=... grad_max_diff=...``.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from metakit.train import Config, experiments  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="timed meta-iterations per run (default 30, 3 with --quick)")
    parser.add_argument("--meta-batch-size", type=int, default=4, help="tasks per meta-iteration (default 4)")
    parser.add_argument("--hidden", type=int, default=64, help="Conv-4 channels (default 64)")
    for flag in ("--quick", "--no-progress"):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    steps = args.steps or (3 if args.quick else 30)
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU(s), load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; MAML on Conv-4 ({args.hidden} channels), {args.meta_batch_size} tasks per meta-iteration")

    check = experiments.gradient_check(names=("maml", "reptile", "proto", "matching"),
                                       start_method="fork" if sys.platform == "linux" else "spawn")
    for name, c in check.items():
        print(f"gradients, 2 processes against 1, float64, {name}: max |difference| {c['max_diff']:.1e} "
              f"(gradient norm {c['norm']:.2f})")
    grad_max_diff = max(c["max_diff"] for c in check.values())

    cfg = Config(kind="family", name="maml", hidden=args.hidden, batch=args.meta_batch_size)
    runs = {p: experiments.throughput(p, steps, threads=1, cfg=cfg) for p in (1, 2)}
    for p, r in runs.items():
        print(f"{p} process(es) x 1 thread: {r['its_per_s']:.2f} meta-iterations/s (median {r['ms_per_it']:.0f} ms "
              f"each, {r['steps']} timed); CPU time of the first process {r['cpu_ms_per_it']:.0f} ms per step")
    ratio = runs[2]["its_per_s"] / runs[1]["its_per_s"]
    cpu_ratio = runs[1]["cpu_ms_per_it"] / runs[2]["cpu_ms_per_it"]
    load = os.getloadavg()
    print(f"ratio 2 processes / 1 process: {ratio:.2f} (ideal 2); load average after {load[0]:.2f}")
    print(f"CPU time per step, 1 process / each of 2: {cpu_ratio:.2f} (at most the speed-up on 2 free cores: "
          "time spent waiting at the all-reduce is not CPU time)")
    print(f"RESULT its_1x1={runs[1]['its_per_s']:.3f} its_2x1={runs[2]['its_per_s']:.3f} ratio={ratio:.3f} "
          f"cpu_ratio={cpu_ratio:.3f} grad_max_diff={grad_max_diff:.2e}")


if __name__ == "__main__":
    main()
