"""Benchmark: prototypical networks, matching networks and MetaOptNet on the same Conv-4 backbone,
each trained for the same wall-clock budget on the glyph background alphabets, tested on the
glyph evaluation alphabets and on real Omniglot.

    python benchmarks/metric.py                      # 150 s of training per method, 600 test episodes
    python benchmarks/metric.py --quick              # 3 s per method, 20 episodes (a smoke test)
    python benchmarks/metric.py --save-checkpoints   # also write data/checkpoints/<method>-<ways>way.pt,
                                                     # which notebook 04 loads instead of training

Training: metakit.metric.experiments.TRAIN episodes (40-way 1-shot with 2 queries per class for the
prototypical and matching networks, 20-way 1-shot with 5 for MetaOptNet, whose QP is slow at 40
ways; 120 images a step for all; rotations as classes), Adam 1e-3. Testing:
metakit.metric.experiments.SETTINGS, every method on the same episodes (metakit.compare). Targets
(issue 4): the prototypical network at least 0.98 on glyph 5-way 1-shot and 0.95 on 20-way 1-shot
after at most 3 CPU-minutes. The last line printed is ``RESULT key=value ...``.
"""

import argparse
import math
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.compare import compare, format_table  # noqa: E402
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.metric import experiments as metric  # noqa: E402

TARGETS = {"proto_5w1s": 0.98, "proto_20w1s": 0.95}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="training budget per method (default 150, 3 with --quick)")
    parser.add_argument("--episodes", type=int, help="test episodes (default 600, 20 with --quick)")
    parser.add_argument("--device", help="cpu, cuda, mps (default: metakit.device(), which reads $METAKIT_DEVICE)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save-checkpoints", action="store_true", help="write data/checkpoints/<method>-<ways>way.pt")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 150.0)
    episodes = args.episodes if args.episodes is not None else (20 if args.quick else 600)
    progress, device, start = not args.no_progress, metakit.device(args.device), time.perf_counter()
    print(f"device: {device}")
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
    if "omniglot" not in (test_sets := held_out_sets(evaluation)):
        print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")

    models, trained = metric.train_methods(background, seconds, seed=args.seed, device=device, progress=progress,
                                           save_checkpoints=args.save_checkpoints and not args.quick)
    for method, h in trained.items():
        print(f"{metric.NAMES[method]}: {metric.TRAIN[method]['n_way']}-way, {h['steps']} training episodes in "
              f"{h['seconds']:.0f} s on {device}, last 50 query accuracy "
              f"{sum(h['acc'][-50:]) / len(h['acc'][-50:]):.3f}")
    results = compare(models, test_sets, metric.SETTINGS, episodes=episodes, seed=args.seed, progress=progress,
                      make_sampler=partial(metakit.EpisodeSampler, device=device))
    print(f"\naccuracy over {episodes} test episodes (mean±95% interval), all methods on the same episodes:")
    print(format_table(results, metric.NAMES))
    print("\ntraining: " + ", ".join(f"{metric.NAMES[m]} {h['steps']} episodes / {h['seconds']:.0f} s"
                                     for m, h in trained.items()))
    print("\nreferences (papers, full Omniglot, trained for hours on a GPU) and our ratio on real Omniglot:")
    print(metric.format_papers(results))
    get = lambda m, s, x: results.get((m, s, x), {"acc": math.nan})["acc"]  # noqa: E731
    figures = {"proto_5w1s": get("proto", "glyphs", "5w1s"), "proto_20w1s": get("proto", "glyphs", "20w1s"),
               "matching_5w1s": get("matching", "glyphs", "5w1s"), "metaopt_5w1s": get("metaopt", "glyphs", "5w1s"),
               "proto_omniglot_20w1s": get("proto", "omniglot", "20w1s")}
    print("\ntargets: " + ", ".join(f"{k} {figures[k]:.4f} vs >= {v} ({'met' if figures[k] >= v else 'MISSED'})"
                                    for k, v in TARGETS.items()) + f" after {seconds:.0f} s of training")
    print(f"total time {time.perf_counter() - start:.0f} s")
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
