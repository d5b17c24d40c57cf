"""Benchmark: prototypical networks, matching networks and MetaOptNet on the same Conv-4 backbone,
each trained for the same wall-clock budget on the glyph background alphabets, tested on the
glyph evaluation alphabets and on real Omniglot.

    python benchmarks/metric.py                      # 150 s of training per method, 600 test episodes
    python benchmarks/metric.py --quick              # 3 s per method, 20 episodes (a smoke test)
    python benchmarks/metric.py --save-checkpoints   # also write data/checkpoints/<method>-<ways>way.pt,
                                                     # which notebook 04 loads instead of training

Training: metakit.metric.experiments.TRAIN episodes (40-way 1-shot with 2 queries per class for the
prototypical and matching networks, 20-way 1-shot with 5 for MetaOptNet, whose QP is slow at 40
ways; 120 images a step for all; rotations as classes), Adam 1e-3. Testing: metakit.metric.experiments.SETTINGS, every method on the same episodes. Targets (issue 4):
the prototypical network at least 0.98 on glyph 5-way 1-shot and 0.95 on 20-way 1-shot after at
most 3 CPU-minutes. The last line printed is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.checkpoints import train_or_load  # noqa: E402
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.episodes import EpisodeSampler  # noqa: E402
from metakit.metric.experiments import NAMES, SETTINGS, TRAIN, compare, format_table, make_model  # noqa: E402
from metakit.training import train_episodes  # noqa: E402

TARGETS = {"proto_5w1s": 0.98, "proto_20w1s": 0.95}
# Reported on full Omniglot (1200 training characters, hours on a GPU), for orientation only.
PAPERS = {"proto": ("Snell et al. 2017", {"5w1s": 0.988, "5w5s": 0.997, "20w1s": 0.960}),
          "matching": ("Vinyals et al. 2016", {"5w1s": 0.981, "5w5s": 0.989, "20w1s": 0.938})}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="training budget per method (default 150, 3 with --quick)")
    parser.add_argument("--episodes", type=int, default=None, help="test episodes (default 600, 20 with --quick)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save-checkpoints", action="store_true", help="write data/checkpoints/<method>-<ways>way.pt")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 150.0)
    episodes = args.episodes if args.episodes is not None else (20 if args.quick else 600)
    progress = not args.no_progress
    device = metakit.device(args.device)
    start = time.perf_counter()

    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
    test_sets = held_out_sets(evaluation)
    if "omniglot" not in test_sets:
        print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")

    models, trained = {}, {}
    for method in ("proto", "matching", "metaopt"):
        metakit.seed_everything(args.seed)
        model = make_model(method).to(device)
        sampler = EpisodeSampler(background, **TRAIN[method], device=device)
        train = lambda m: train_episodes(m, sampler, lr=1e-3, seconds=seconds, progress=progress, device=device)  # noqa: E731
        if args.save_checkpoints and not args.quick:
            history = train_or_load(model, f"{method}-{TRAIN[method]['n_way']}way.pt", train, retrain=True)
        else:
            history = train(model)
        models[method], trained[method] = model, history
        print(f"{NAMES[method]}: {TRAIN[method]['n_way']}-way, {history['steps']} training episodes in {history['seconds']:.0f} s on {device}, "
              f"last 50 query accuracy {sum(history['acc'][-50:]) / len(history['acc'][-50:]):.3f}", flush=True)

    results = compare(models, test_sets, SETTINGS, episodes=episodes, seed=args.seed, device=device, progress=progress)
    print(f"\naccuracy over {episodes} test episodes (mean±95% interval), all methods on the same episodes:")
    print(format_table(results))
    print("\ntraining: " + ", ".join(f"{NAMES[m]} {trained[m]['steps']} episodes / {trained[m]['seconds']:.0f} s"
                                     for m in models))

    print("\nreferences (papers, full Omniglot, trained for hours on a GPU) and our ratio on real Omniglot:")
    for method, (paper, figures) in PAPERS.items():
        cells = []
        for setting, ref in figures.items():
            ours = results.get((method, "omniglot", setting), {"acc": math.nan})["acc"]
            cells.append(f"{setting} {ref:.3f} (x{ours / ref:.2f})")
        print(f"  {NAMES[method]:<22} {paper}: " + ", ".join(cells))
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
