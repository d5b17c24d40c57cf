"""Benchmark: prototypical networks, matching networks and MetaOptNet on the same Conv-4 backbone,
each trained for the same wall-clock budget on the glyph background alphabets, tested on the
glyph evaluation alphabets and on real Omniglot.

    python benchmarks/metric.py                      # 150 s of training per method, 600 test episodes
    python benchmarks/metric.py --quick              # 3 s per method, 20 episodes (a smoke test)
    python benchmarks/metric.py --save-checkpoints   # also write data/checkpoints/<method>-<ways>way.pt,
                                                     # which notebook 04 loads instead of training
    python benchmarks/metric.py --matched-ways       # MetaOptNet and the prototypical network, each trained
                                                     # 20-way and 40-way (150 CPU-s of one thread each)

Training: metakit.metric.experiments.TRAIN episodes (40-way 1-shot with 2 queries per class for the
prototypical and matching networks, 20-way 1-shot with 5 for MetaOptNet, whose QP is slow at 40
ways; 120 images a step for all; rotations as classes), Adam 1e-3. Testing:
metakit.metric.experiments.SETTINGS, every method on the same episodes (metakit.compare). Targets
(issue 4): the prototypical network at least 0.98 on glyph 5-way 1-shot and 0.95 on 20-way 1-shot
after at most 3 CPU-minutes. The last line printed is ``RESULT key=value ...``.

``--matched-ways`` answers whether MetaOptNet trails because it trains 20-way: both methods are
trained in both regimes (20-way 1-shot with 5 queries, 40-way 1-shot with 2: 120 images a step
either way) for the same CPU time of one thread, and all four meet the same test episodes.
"""

import argparse
import math
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import metakit  # noqa: E402
from metakit.compare import compare, format_table, paired  # noqa: E402
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
    parser.add_argument("--matched-ways", action="store_true",
                        help="train MetaOptNet and the prototypical network 20-way and 40-way (CPU-time budget)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's; "
                        "--matched-ways uses 1 unless told)")
    args = parser.parse_args(argv)
    if args.threads or args.matched_ways:
        torch.set_num_threads(args.threads or 1)
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 150.0)
    episodes = args.episodes if args.episodes is not None else (20 if args.quick else 600)
    progress, device, start = not args.no_progress, metakit.device(args.device), time.perf_counter()
    print(f"device: {device}")
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
    if "omniglot" not in (test_sets := held_out_sets(evaluation)):
        print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")

    if args.matched_ways:
        matched_ways(args, seconds, episodes, device, progress, background, test_sets, start)
        return
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


def matched_ways(args, seconds, episodes, device, progress, background, test_sets, start) -> None:
    """The ``--matched-ways`` run: each method in both regimes, all on the same test episodes."""
    print(f"{torch.get_num_threads()} CPU thread(s); {seconds:.0f} CPU-seconds of training each")
    models, trained = metric.train_matched_ways(background, seconds, seed=args.seed, device=device, progress=progress)
    for key, h in trained.items():
        print(f"{key}: {h['steps']} training episodes in {h['clock_seconds']:.0f} CPU-s, last 50 query accuracy "
              f"{sum(h['acc'][-50:]) / len(h['acc'][-50:]):.3f}")
    results = compare(models, test_sets, metric.SETTINGS, episodes=episodes, seed=args.seed, progress=progress,
                      make_sampler=partial(metakit.EpisodeSampler, device=device))
    print(f"\naccuracy over {episodes} test episodes (mean±95% interval), all on the same episodes:")
    print(format_table(results))
    print("\npaired differences on the same episodes, prototypical network minus MetaOptNet:")
    for regime in metric.REGIMES:
        for s in test_sets:
            cells = []
            for x in metric.SETTINGS:
                d, e = paired(results, f"proto-{regime}", f"metaopt-{regime}", s, x)
                cells.append(f"{x} {d:+.4f}±{e:.4f}")
            print(f"  both trained {regime}, {s}: " + "  ".join(cells))
    get = lambda k, s="glyphs", x="5w1s": results.get((k, s, x), {"acc": math.nan})["acc"]  # noqa: E731
    figures = {f"{k.replace('-', '_')}_5w1s": get(k) for k in models}
    figures |= {f"{k.replace('-', '_')}_omniglot_5w1s": get(k, "omniglot") for k in models}
    print(f"total time {time.perf_counter() - start:.0f} s")
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
