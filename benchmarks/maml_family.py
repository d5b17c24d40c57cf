"""Benchmark: MAML, FOMAML, Reptile, ANIL, Meta-SGD and MAML++ on one Conv-4 and one budget each, trained
on the glyph background alphabets, tested on glyph evaluation and real Omniglot (metakit.gradient.family).

    python benchmarks/maml_family.py                      # 300 s of meta-training each, 600 test episodes
    python benchmarks/maml_family.py --quick              # 3 s each, 20 episodes (a smoke test)
    python benchmarks/maml_family.py --save-checkpoints   # also write data/checkpoints/family-<name>.pt
    python benchmarks/maml_family.py --only "" --threads 1 --target-seconds 590   # the target run alone, one core

Target (issue 3): MAML at least 0.95 on glyph 5-way 1-shot after at most 10 CPU-minutes of
meta-training (family.target_run: ``--target-seconds`` of this process's CPU time). The last line
is ``RESULT maml_5w1s=... fomaml_5w1s=... reptile_5w1s=... anil_5w1s=... metasgd_5w1s=...
mamlpp_5w1s=... maml_target_5w1s=... target_cpu_s=...``.
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import metakit  # noqa: E402
from metakit.compare import compare, format_table  # noqa: E402
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.gradient import family  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="meta-training budget each (default 300, 3 with --quick)")
    parser.add_argument("--episodes", type=int, help="test episodes (default 600, 20 with --quick)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--only", default=",".join(family.FAMILY), help="comma-separated algorithms to run")
    parser.add_argument("--target-seconds", type=float, help="target run's CPU-s (590, 3 with --quick; 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-checkpoints", action="store_true", help="write data/checkpoints/family-<name>.pt")
    for flag in ("--quick", "--no-progress"):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    with metakit.runtime.threads(args.threads or torch.get_num_threads()):
        pick = lambda value, quick, full: value if value is not None else (quick if args.quick else full)  # noqa: E731
        seconds, episodes = pick(args.seconds, 3.0, 300.0), pick(args.episodes, 20, 600)
        target_seconds = pick(args.target_seconds, 3.0, 590.0)
        progress, start = not args.no_progress, time.perf_counter()
        device = metakit.device()
        print(f"device: {device}")
        print(f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}, "
              f"{seconds:.0f} s of meta-training each")
        background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
        if "omniglot" not in (test_sets := held_out_sets(evaluation)):
            print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")

        algorithms, trained = family.train_family([n for n in args.only.split(",") if n], background, seconds,
                                                  seed=args.seed, progress=progress, device=device,
                                                  save_checkpoints=args.save_checkpoints and not args.quick)
        print(family.format_training(trained))
        results = {}
        if algorithms:
            results = compare(algorithms, test_sets, family.SETTINGS, episodes=episodes, seed=args.seed,
                              progress=progress)
            print(f"\naccuracy over {episodes} test episodes (mean±95% interval), all algorithms on the same episodes:")
            print(format_table(results, family.NAMES) + "\n\nthe same with meta-training iterations and time:\n"
                  + family.format_summary(results, trained)
                  + "\n\npapers (full Omniglot, hours on a GPU) and our ratio "
                  "on real Omniglot, 5w1s / 5w5s:\n" + family.format_papers(results, algorithms))

        figures = {f"{n}_5w1s": results.get((n, "glyphs", "5w1s"), {"acc": math.nan})["acc"] for n in family.FAMILY}
        figures |= {"maml_target_5w1s": math.nan, "target_cpu_s": math.nan}
        if target_seconds > 0:
            target = family.target_run(background, evaluation, target_seconds, episodes=episodes, seed=args.seed,
                                       progress=progress, device=device)
            figures["maml_target_5w1s"], figures["target_cpu_s"] = target["acc"], target["history"]["clock_seconds"]
            print("\n" + family.format_target(target))
        print(f"total time {time.perf_counter() - start:.0f} s")
        print("RESULT " + " ".join(f"{k}={v:.4f}" if k != "target_cpu_s" else f"{k}={v:.0f}"
                                   for k, v in figures.items()))


if __name__ == "__main__":
    main()
