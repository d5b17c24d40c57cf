"""Benchmark: few-shot learning with and without DAGAN augmentation, on the same episodes (paired).

    python benchmarks/gan_augmentation.py                     # about 20 CPU-minutes, single thread
    python benchmarks/gan_augmentation.py --quick             # under a minute: tiny budgets, 5 episodes
    python benchmarks/gan_augmentation.py --save-checkpoints  # also write data/checkpoints/{dcgan,dagan}-glyphs.pt,
                                                              # which notebook 05 loads instead of training

1. The DAGAN-style generator (metakit.gan.dagan) on the glyph background alphabets, 300 CPU-seconds
   (time.process_time, one thread): gen_train_s.
2. A DCGAN on the background alphabets (metakit.gan.dcgan, 100 CPU-seconds), for notebook 05.
3. Its sample quality on the evaluation alphabets, which it never saw: the spread of its variations
   against real drawings' (diversity), the collapse check, and the accuracy of a nearest-prototype
   classifier built from generated images only.
4. 5-way 1-shot and 5-way 5-shot evaluation episodes (600 each), every learner with and without
   5 generated images per real shot (noise scale 1): (a) a small CNN trained from scratch on the
   support set, (b) the committed prototypical network's Conv-4 (proto-5way-60000img.pt) frozen
   with a new linear head, (c) that prototypical network. Differences with the 95% interval of the
   per-episode differences.

Target (issue 5): (a) at least +5 points on 5-way 1-shot, generator training under 10 CPU-minutes.
Reference: DAGAN raised a plain low-data Omniglot classifier from 69% to 82% (Antoniou et al. 2017).
The last line printed is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import metakit  # noqa: E402
from metakit.checkpoints import CHECKPOINTS  # noqa: E402
from metakit.gan import dagan as dagan_module  # noqa: E402
from metakit.gan import dcgan as gan  # noqa: E402
from metakit.gan.augmentation import (  # noqa: E402
    check_collapse,
    format_table,
    generated_only_accuracy,
    load_pretrained,
    paired_evaluation,
)

REFERENCE = (0.69, 0.82)  # DAGAN paper: plain low-data Omniglot classifier without / with DAGAN
SETTINGS = {"5w1s": 1, "5w5s": 5}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-checkpoints", action="store_true",
                        help="write data/checkpoints/{dcgan,dagan}-glyphs.pt for notebook 05")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--n-gen", type=int, default=5, help="generated images per real shot")
    parser.add_argument("--noise-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    progress, quick = not args.no_progress, args.quick
    start = time.perf_counter()
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
    folder = CHECKPOINTS if args.save_checkpoints and not quick else Path(tempfile.mkdtemp())
    episodes = 5 if quick else args.episodes

    da_budget = 15 if quick else dagan_module.CPU_SECONDS
    generator, da = dagan_module.train_or_load_dagan(background, path=folder / dagan_module.CHECKPOINT,
                                                     seconds=da_budget, retrain=True, progress=progress,
                                                     seed=args.seed)
    gen_train_s = da["clock_seconds"]
    print(f"DAGAN on {background.name}: {da['steps']} steps in {gen_train_s:.0f} CPU-s "
          f"(budget {da_budget} CPU-s, one thread)", flush=True)

    dc_budget = 3 if quick else gan.CPU_SECONDS
    _, dc = gan.train_or_load_dcgan(gan.dataset_images(background), path=folder / gan.CHECKPOINT,
                                    seconds=dc_budget, retrain=True, progress=progress, seed=args.seed)
    print(f"DCGAN on {background.name}: {dc['steps']} steps in {dc['clock_seconds']:.0f} CPU-s, "
          f"last 100 steps mean D loss {sum(dc['d_loss'][-100:]) / len(dc['d_loss'][-100:]):.3f}, "
          f"G loss {sum(dc['g_loss'][-100:]) / len(dc['g_loss'][-100:]):.3f}", flush=True)

    pretrained = load_pretrained()
    q = check_collapse(generator, evaluation, noise_scale=args.noise_scale)
    acc = generated_only_accuracy(generator, evaluation, n_gen=args.n_gen, episodes=20 if quick else 300,
                                  noise_scale=args.noise_scale, pretrained=pretrained, seed=args.seed)
    print(f"\nsample quality on {evaluation.name} (never seen by the generator), noise scale {args.noise_scale:g}:")
    print(f"  diversity: variations of one drawing spread {q['within']:.3f} as far as real drawings of one "
          f"character ({q['fake_within']:.2f} vs {q['real_within']:.2f} pixels L2); across characters "
          f"{q['between']:.3f} of real")
    print(f"  collapsed: {q['collapsed']}" + (f" ({q['message']})" if q["collapsed"] else ""))
    if q["collapsed"]:
        sys.exit("The generator has collapsed; the augmented evaluation refuses to use it.")
    print(f"  5-way nearest-prototype accuracy on real queries, prototypes from {args.n_gen} generated images only: "
          f"{acc['generated'][0]:.4f}±{acc['generated'][1]:.4f}; from the one real drawing: "
          f"{acc['real'][0]:.4f}±{acc['real'][1]:.4f}; chance {acc['chance']:.2f}", flush=True)

    summaries = {}
    for name, k_shot in SETTINGS.items():
        seconds = time.process_time()
        r = paired_evaluation(generator, evaluation, n_way=5, k_shot=k_shot, episodes=episodes, n_gen=args.n_gen,
                              noise_scale=args.noise_scale, pretrained=pretrained, seed=args.seed,
                              progress=progress, check=False)  # checked above
        summaries[name] = r["summary"]
        print(f"{name}: {episodes} paired episodes in {time.process_time() - seconds:.0f} CPU-s", flush=True)
    print(f"\n{args.n_gen} generated images per real shot, noise scale {args.noise_scale:g}, {episodes} episodes "
          f"per setting on {evaluation.name}; accuracy ± 95% interval\n")
    print(format_table(summaries))

    plain = summaries["5w1s"]["plain"]
    ref_base, ref_aug = REFERENCE
    print(f"\n{'plain classifier':<34} {'without':>8} {'with':>8} {'difference':>11}")
    print(f"{'DAGAN (Antoniou et al. 2017)':<34} {ref_base:8.4f} {ref_aug:8.4f} {100 * (ref_aug - ref_base):+8.2f} pts"
          "   (Omniglot, their low-data setting)")
    print(f"{'ours, glyphs 5-way 1-shot':<34} {plain['base']:8.4f} {plain['aug']:8.4f} {100 * plain['diff']:+8.2f} pts"
          f"   ({plain['diff'] / (ref_aug - ref_base):.2f} of the paper's gain)")
    checks = {
        "plain 5w1s gain >= +5 points": plain["diff"] >= 0.05,
        "generator training <= 600 CPU-s": gen_train_s <= 600,
    }
    print("\ntargets: " + ", ".join(f"{k} ({'met' if ok else 'MISSED'})" for k, ok in checks.items()))
    print(f"total time {time.perf_counter() - start:.0f} s")
    s = summaries["5w1s"]
    figures = {f"{m}_{k}": s[m][k] for m in ("plain", "finetune", "proto") for k in ("base", "aug")}
    print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in figures.items()) + f" gen_train_s={gen_train_s:.1f}")


if __name__ == "__main__":
    main()
