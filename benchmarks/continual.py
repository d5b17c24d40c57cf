"""Benchmark: continual learning on notebook 07's stream, and meta-continual learning (OML, ANML)
against a pretrained network, on glyphs.

    python benchmarks/continual.py                     # about 8 CPU-minutes
    python benchmarks/continual.py --quick             # seconds: tiny stream, a few meta-steps
    python benchmarks/continual.py --save-checkpoints  # also write data/checkpoints/{oml,anml,pretrain}-*.pt,
                                                       # which notebook 07 loads instead of training

Part 1: the five strategies of metakit.continual.methods on 10 rotated-glyph tasks (20 evaluation
classes, task t turned by 18t degrees; 15 training and 5 test images per class and task), an MLP
784-100-100-20, SGD with learning rate 0.1, batches of 10, 3 epochs per task, 75 memories per task
(a quarter of each task's images, GEM's MNIST ratio), GEM's margin 0.5 as in its authors' code,
EWC strength 10 (the best of 0.3, 3, 10 and 30; 30 diverges at this learning rate). Average
accuracy, backward and forward transfer (Lopez-Paz & Ranzato 2017).

Part 2: OML, ANML and a network pretrained with ordinary cross-entropy, each given the same number
of steps on 17 glyph background alphabets; each one's head learning rate chosen on the two held-out
background alphabets; then 100 (and all 579) evaluation classes learned one example per SGD step
on a fresh linear head, the representation frozen (metakit.continual.oml.stream_accuracy).

Targets (issue 7): GEM and A-GEM at least 0.20 above naive fine-tuning in average accuracy with
backward transfer above -0.05; OML and ANML at least 0.15 above the pretrained network after 100
classes. The last line printed is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import metakit  # noqa: E402
from metakit.checkpoints import CHECKPOINTS  # noqa: E402
from metakit.continual.methods import STRATEGIES, make_strategy  # noqa: E402
from metakit.continual.oml import meta_continual_models  # noqa: E402
from metakit.continual.stream import glyph_stream, mlp, run_stream  # noqa: E402

STREAM = dict(kind="rotations", n_tasks=10, n_classes=20)
TRAINING = dict(lr=0.1, epochs=3, memory_per_task=75, ewc_strength=10.0)


def part1(quick: bool, progress: bool, seed: int) -> dict:
    evaluation = metakit.load_glyphs("evaluation")
    stream = glyph_stream(evaluation, **(STREAM | {"n_tasks": 3} if quick else STREAM), seed=seed)
    epochs = 1 if quick else TRAINING["epochs"]
    results = {}
    print(f"{'strategy':<8} {'acc':>6} {'BWT':>7} {'FWT':>7} {'time s':>7}")
    for name in STRATEGIES:
        torch.manual_seed(seed)
        learner = make_strategy(name, mlp(STREAM["n_classes"]), lr=TRAINING["lr"],
                                memory_per_task=TRAINING["memory_per_task"], ewc_strength=TRAINING["ewc_strength"])
        r = run_stream(learner, stream, epochs=epochs, seed=seed, progress=progress)
        results[name] = r
        print(f"{name:<8} {r['acc']:6.3f} {r['bwt']:+7.3f} {r['fwt']:+7.3f} {r['seconds']:7.1f}", flush=True)
    return results


def part2(quick: bool, progress: bool, seed: int, save: bool) -> dict:
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
    folder = CHECKPOINTS if save and not quick else Path(tempfile.mkdtemp())
    steps = 20 if quick else None
    models = meta_continual_models(background, folder=folder, steps=steps, retrain=True, seed=seed, progress=progress)
    from metakit.continual.oml import compare_on_stream

    curves, table = compare_on_stream(models, background, evaluation, seed=seed)
    print(f"\n{'model':<9} {'train steps':>11} {'train s':>8} {'head lr':>8} {'10':>6} {'50':>6} {'100':>6} "
          f"{evaluation.num_classes:>6}")
    for name, row in table.items():
        c = curves[name]
        print(f"{name:<9} {row['steps']:>11} {row['seconds']:8.0f} {row['lr']:8.3g} {c[10]:6.3f} {c[50]:6.3f} "
              f"{c[100]:6.3f} {c[evaluation.num_classes]:6.3f}", flush=True)
    return curves


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save-checkpoints", action="store_true",
                        help="write data/checkpoints/{oml,anml,pretrain}-*.pt for notebook 07")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    progress = not args.no_progress
    print("part 1: continual learning, 10 rotated-glyph tasks" + (" (quick: 3 tasks, 1 epoch)" if args.quick else ""))
    r = part1(args.quick, progress, args.seed)
    print("\npart 2: meta-continual learning, evaluation classes learned one after another, one image per step")
    c = part2(args.quick, progress, args.seed, args.save_checkpoints)

    checks = {
        "gem_acc - naive_acc >= 0.20": r["gem"]["acc"] - r["naive"]["acc"] >= 0.20,
        "agem_acc - naive_acc >= 0.20": r["agem"]["acc"] - r["naive"]["acc"] >= 0.20,
        "gem_bwt > -0.05": r["gem"]["bwt"] > -0.05,
        "agem_bwt > -0.05": r["agem"]["bwt"] > -0.05,
        "oml_100 - pretrain_100 >= 0.15": c["oml"][100] - c["pretrain"][100] >= 0.15,
        "anml_100 - pretrain_100 >= 0.15": c["anml"][100] - c["pretrain"][100] >= 0.15,
    }
    print("\ntargets: " + ", ".join(f"{k} ({'met' if ok else 'MISSED'})" for k, ok in checks.items()))
    print(f"total time {time.perf_counter() - start:.0f} s")
    figures = {f"{n}_acc": r[n]["acc"] for n in STRATEGIES} | {"gem_bwt": r["gem"]["bwt"]}
    figures |= {f"{n}_100": c[n][100] for n in ("oml", "anml", "pretrain")}
    print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
