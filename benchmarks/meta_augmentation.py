"""Benchmark: meta-augmentation on non-mutually-exclusive tasks, and a learned augmentation, on glyphs.

    python benchmarks/meta_augmentation.py                     # about 15 CPU-minutes
    python benchmarks/meta_augmentation.py --quick             # under a minute: seconds of training
    python benchmarks/meta_augmentation.py --save-checkpoints  # also write data/checkpoints/metaaug-*.pt,
                                                               # which notebook 06 loads instead of training

Part 1 (Rajendran et al. 2020): MAML (Conv-4 of 32 channels, one inner step of 0.1, 60 CPU-seconds
of meta-training, 4 tasks per step) and two prototypical learners (plain, and with a learned
linear head that can memorise; 2000 episodes each) trained on 5-way 1-shot NME tasks over 25
glyph background classes (5 per label, each class always on its label), and with intra-task or
inter-task label shuffling. Probes on 200 episodes: accuracy on the training classes, the same
with the support labels shifted by one, MAML without adaptation, and accuracy on 5-way 1-shot
episodes of the evaluation alphabets' classes (new classes).

Part 2: MAML (Conv-4 of 32 channels, one inner step of 0.4) adapting on the support set plus two
augmented copies of it, with no augmentation, a hand-set fixed augmentation, and one whose
magnitudes are learned by the meta-gradient; 150 CPU-seconds of meta-training each on all glyph
background alphabets; 300 test episodes (5-way 1-shot, 15 queries per class), the same for every
arm, on the glyph evaluation alphabets and on the shared real Omniglot subset; paired differences.

The last line printed is ``RESULT nme_maml=... nme_maml_shuffled=... aug_none=... aug_fixed=...
aug_learned=... aug_learned_omniglot=...`` (nme_maml_shuffled: the intra-task shuffle).
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
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.meta_augmentation.learned import AUG_TRAIN, augmentation_experiment, format_augmentation_table, mean_ci  # noqa: E402
from metakit.meta_augmentation.nme import format_nme_table, nme_experiment  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save-checkpoints", action="store_true",
                        help="write data/checkpoints/metaaug-*.pt for notebook 06")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start, cpu_start = time.perf_counter(), time.process_time()
    progress = not args.no_progress
    folder = CHECKPOINTS if args.save_checkpoints and not args.quick else Path(tempfile.mkdtemp())
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")

    print("part 1: non-mutually-exclusive tasks, 5-way 1-shot, 25 background classes"
          + (" (quick: 3 CPU-s, 30 episodes)" if args.quick else ""))
    nme = nme_experiment(background, evaluation, seconds=3 if args.quick else 60, episodes=30 if args.quick else 2000,
                         test_episodes=20 if args.quick else 200, folder=folder, retrain=True, progress=progress,
                         seed=args.seed)
    print(format_nme_table(nme), flush=True)
    print("Rajendran et al. (2020): on NME tasks MAML memorises (training accuracy high, new classes near chance);"
          "\nwith meta-augmentation (label shuffling) new-class accuracy recovers. Here, new classes: "
          f"NME {nme['maml']['new'][0]:.3f}, intra-shuffled {nme['maml_intra']['new'][0]:.3f} "
          f"({nme['maml_intra']['new'][0] - nme['maml']['new'][0]:+.3f}), inter-shuffled "
          f"{nme['maml_inter']['new'][0]:.3f}.")

    sets = held_out_sets(evaluation)
    seconds = 4 if args.quick else AUG_TRAIN["seconds"]
    print(f"\npart 2: learned augmentation, {seconds:g} CPU-s of meta-training per arm, 5-way 1-shot test episodes"
          + (" (quick)" if args.quick else ""))
    if "omniglot" not in sets:
        print("(the shared Omniglot subset is not here: aug_learned_omniglot=nan)")
    algorithms, histories, accs = augmentation_experiment(background, sets, seconds=seconds,
                                                          episodes=20 if args.quick else 300, folder=folder,
                                                          retrain=True, progress=progress, seed=args.seed)
    print(format_augmentation_table(accs, histories))
    policy = algorithms["learned"].augment.policy()
    print("learned policy: " + ", ".join(f"{k} {v:.3f}" for k, v in policy.items()))
    print("fixed policy:   " + ", ".join(f"{k} {v:.3f}" for k, v in algorithms["fixed"].augment.policy().items()))
    for s in sets:
        d, c = mean_ci(accs["learned", s] - accs["none", s])
        f, fc = mean_ci(accs["learned", s] - accs["fixed", s])
        print(f"{s}: learned - none {d:+.3f}±{c:.3f} ({'above' if d - c > 0 else 'below' if d + c < 0 else 'within'} "
              f"the interval); learned - fixed {f:+.3f}±{fc:.3f}")
    print(f"total {time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu_start:.0f} CPU-s, "
          f"{args.threads} thread(s)")
    figures = {"nme_maml": nme["maml"]["new"][0], "nme_maml_shuffled": nme["maml_intra"]["new"][0]}
    figures |= {f"aug_{arm}": mean_ci(accs[arm, "glyphs"])[0] for arm in ("none", "fixed", "learned")}
    figures["aug_learned_omniglot"] = mean_ci(accs["learned", "omniglot"])[0] if "omniglot" in sets else math.nan
    print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
