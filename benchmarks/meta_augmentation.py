"""Benchmark: meta-augmentation on non-mutually-exclusive tasks, and a learned augmentation, on glyphs.

    python benchmarks/meta_augmentation.py                     # about 15 CPU-minutes
    python benchmarks/meta_augmentation.py --quick             # under a minute: seconds of training
    python benchmarks/meta_augmentation.py --save-checkpoints  # also write data/checkpoints/metaaug-*.pt,
                                                               # which notebook 06 loads instead of training

Part 1 (Rajendran et al. 2020), meta_augmentation.nme.nme_experiment: MAML (Conv-4, one inner step
of 0.1, 60 CPU-seconds) and two prototypical learners (plain, and with a head that can memorise; 2000
episodes each) on 5-way 1-shot NME tasks over 25 glyph background classes, without and with intra-
or inter-task label shuffling; probed on 200 episodes of the training classes (true and shifted
support labels, MAML without adaptation) and of new classes (the evaluation alphabets).

Part 2, meta_augmentation.learned.augmentation_experiment: MAML adapting on the support set plus two
augmented copies (none, a hand-set fixed augmentation, one the meta-gradient learns), 150 CPU-seconds
each; the same 300 test episodes for every arm on the evaluation alphabets and on the shared real
Omniglot subset; paired differences.

The last line printed is ``RESULT nme_maml=... nme_maml_shuffled=... aug_none=... aug_fixed=...
aug_learned=... aug_learned_omniglot=...`` (nme_maml_shuffled: the intra-task shuffle).
"""

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.checkpoints import CHECKPOINTS  # noqa: E402
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.meta_augmentation import learned, nme  # noqa: E402
from metakit.stats import mean_ci  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--quick", "--save-checkpoints", "--no-progress"):
        parser.add_argument(flag, action="store_true")
    for flag, default in (("--seed", 0), ("--threads", 1)):
        parser.add_argument(flag, type=int, default=default)
    args = parser.parse_args(argv)
    with metakit.runtime.threads(args.threads):
        start, cpu_start, quick = time.perf_counter(), time.process_time(), args.quick
        common = dict(folder=CHECKPOINTS if args.save_checkpoints and not quick else Path(tempfile.mkdtemp()),
                      retrain=True, progress=not args.no_progress, seed=args.seed, device=metakit.device())
        print(f"device: {common['device']}")
        background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
        print("part 1: non-mutually-exclusive tasks, 5-way 1-shot, 25 background classes"
              + (" (quick)" if quick else ""))
        r = nme.nme_experiment(background, evaluation, seconds=3 if quick else 60, episodes=30 if quick else 2000,
                               test_episodes=20 if quick else 200, **common)
        print(nme.format_nme_table(r))
        print("Rajendran et al. (2020): on NME tasks MAML memorises; label shuffling recovers new-class accuracy. "
              "Here, "
              f"new classes: NME {r['maml']['new'][0]:.3f}, intra-shuffled {r['maml_intra']['new'][0]:.3f}, "
              f"inter-shuffled {r['maml_inter']['new'][0]:.3f}.")

        sets = held_out_sets(evaluation)
        seconds = 4 if quick else learned.AUG_TRAIN["seconds"]
        print(f"\npart 2: learned augmentation, {seconds:g} CPU-s of meta-training per arm, 5-way 1-shot test episodes")
        algorithms, histories, accs = learned.augmentation_experiment(background, sets, seconds=seconds,
                                                                      episodes=20 if quick else 300, **common)
        print(learned.format_augmentation_table(accs, histories))
        for arm in ("learned", "fixed"):
            print(f"{arm} policy: " + ", ".join(f"{k} {v:.3f}" for k, v in algorithms[arm].augment.policy().items()))
        print(learned.format_differences(accs))
        print(f"total {time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu_start:.0f} CPU-s, "
              f"{args.threads} thread(s)" + ("" if "omniglot" in sets else "; no Omniglot subset here"))
        figures = {"nme_maml": r["maml"]["new"][0], "nme_maml_shuffled": r["maml_intra"]["new"][0]}
        figures |= {f"aug_{arm}": mean_ci(accs[arm, "glyphs"])[0] for arm in learned.ARMS}
        figures["aug_learned_omniglot"] = mean_ci(accs["learned", "omniglot"])[0] if "omniglot" in sets else math.nan
        print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
