"""Benchmark: continual learning on notebook 07's stream, and meta-continual learning (OML, ANML)
against a pretrained network, on glyphs.

    python benchmarks/continual.py                     # about 8 CPU-minutes
    python benchmarks/continual.py --quick             # seconds: tiny stream, a few meta-steps
    python benchmarks/continual.py --save-checkpoints  # also write data/checkpoints/{oml,anml,pretrain}-*.pt,
                                                       # which notebook 07 loads instead of training

Part 1 (metakit.continual.experiments.compare_strategies): the five strategies on 10 rotated-glyph
tasks (20 evaluation classes, task t turned by 18t degrees; 15 training and 5 test images per class
and task), an MLP 784-100-100-20, SGD 0.1, batches of 10, 3 epochs per task, 75 memories per task
(GEM's MNIST ratio), GEM's margin 0.5 as in its authors' code, EWC strength 10. Average accuracy,
backward and forward transfer (Lopez-Paz & Ranzato 2017). Then EWC alone at strengths 0 to 30 with SGD
0.1 and 0 to 100 with SGD 0.03 (experiments.ewc_sweep): the runs that diverge are printed as such.

Part 2 (experiments.meta_continual_comparison): OML, ANML and a pretrained network, the same steps
each on 17 background alphabets, head learning rate chosen on the other two, then the evaluation
classes learned one example per SGD step on a fresh linear head, the representation frozen.

Targets (issue 7): GEM and A-GEM at least 0.20 above naive fine-tuning in average accuracy, backward
transfer above -0.05; OML and ANML 0.15 above the pretrained network after 100 classes. Last line: RESULT.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.checkpoints import CHECKPOINTS  # noqa: E402
from metakit.continual import experiments  # noqa: E402
from metakit.continual.methods import STRATEGIES  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save-checkpoints", action="store_true",
                        help="write data/checkpoints/{oml,anml,pretrain}-*.pt for notebook 07")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    start, progress, device = time.perf_counter(), not args.no_progress, metakit.device()
    print(f"device: {device}")
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
    print("part 1: continual learning, 10 rotated-glyph tasks" + (" (quick: 3 tasks, 1 epoch)" if args.quick else ""))
    small = dict(n_tasks=3, epochs=1) if args.quick else {}
    r = experiments.compare_strategies(evaluation, seed=args.seed, progress=progress, device=device, **small)
    print(experiments.strategies_table(r, names={}), flush=True)
    sweep = experiments.ewc_sweep(evaluation, strengths=(0, 1, 3, 10, 15, 30), lrs=(0.1,), seed=args.seed,
                                  progress=progress, device=device, **small)
    sweep += experiments.ewc_sweep(evaluation, strengths=(0, 10, 30, 100), lrs=(0.03,), seed=args.seed,
                                   progress=progress, device=device, **small)
    print("\nEWC's strength (lambda = 0 is naive fine-tuning)\n" + experiments.sweep_table(sweep), flush=True)
    stable = [row for row in sweep if "result" in row and row["strength"] > 0]
    best = max(stable, key=lambda row: row["result"]["acc"]) if stable else None

    print("\npart 2: meta-continual learning, evaluation classes learned one after another, one image per step")
    folder = CHECKPOINTS if args.save_checkpoints and not args.quick else Path(tempfile.mkdtemp())
    models, c, table = experiments.meta_continual_comparison(background, evaluation, folder=folder,
                                                             steps=20 if args.quick else None, retrain=True,
                                                             seed=args.seed, progress=progress, device=device)
    print(", ".join(f"{name} {info['steps']} steps in {info['seconds']:.0f} s" for name, (_, info) in models.items()))
    print(experiments.online_table(c, table, evaluation.num_classes), flush=True)

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
    figures |= {"ewc_best_acc": best["result"]["acc"] if best else math.nan,
                "ewc_best_lambda": best["strength"] if best else math.nan,
                "ewc_diverged": sum("diverged" in row for row in sweep)}
    figures |= {f"{n}_100": c[n][100] for n in ("oml", "anml", "pretrain")}
    print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
