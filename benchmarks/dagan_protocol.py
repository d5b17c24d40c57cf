"""Benchmark: DAGAN augmentation under the DAGAN paper's own protocol, and with a balanced generator.

    python benchmarks/dagan_protocol.py                     # about 35 CPU-minutes, single thread
    python benchmarks/dagan_protocol.py --quick             # about a minute: tiny budgets, one run
    python benchmarks/dagan_protocol.py --save-checkpoints  # train the balanced generator again (300 CPU-s)
                                                            # and write data/checkpoints/dagan-balanced-glyphs.pt,
                                                            # which notebook 05 loads
    python benchmarks/dagan_protocol.py --retrain           # train it again into a temporary folder instead
    python benchmarks/dagan_protocol.py --generators hand-set   # only some of the augmenters below

Without these flags the committed generators are loaded, and only the evaluation runs.

Two questions notebook 05 leaves open after its episodic table (benchmarks/gan_augmentation.py):

1. Does augmentation help in the setting where the DAGAN paper found its large gain? A plain
   classifier over many new classes at once (100 here), trained from scratch on 1 or 5 real
   drawings of each, with and without 5 generated images per real one, tested on 10 other drawings
   of each class (metakit.gan.low_data; three runs per setting, paired by run). On the glyph
   evaluation alphabets and, when ../shared holds it, on real handwritten Omniglot, which neither
   the generators nor anything else here was trained on.
2. Does the outcome hang on a discriminator that wins? The committed generator (dagan-glyphs.pt)
   ends its training with the discriminator's loss far below its equilibrium value 2 log 2. The
   balanced generator is the same network trained for the same 300 CPU-seconds with the R1 penalty
   on the discriminator (metakit.gan.dagan.BALANCED). Both generators are scored on the same
   sample-quality checks, and on the same paired 5-way episodes for the three learners of the
   notebook's table.
3. Do *generated* images teach more than simple deformations? The hand-set augmenter
   (metakit.gan.augmentation.HandSet: random rotation, scaling, shear, shift and pen width with
   notebook 06's hand-set magnitudes, chosen by eye on glyphs) takes a generator's place in every
   test above. All augmenters meet the same episodes, classes, drawings and initial weights, so
   their "without" arms are identical and their "with" arms compare directly.

Budgets are CPU time of one thread (time.process_time). The last line printed is ``RESULT
lowdata_glyphs_1shot_diff=... ... balanced_plain_5w1s_diff=... d_loss_committed=... d_loss_balanced=...``.
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
from metakit.gan import augmentation as A  # noqa: E402
from metakit.gan import dagan, low_data  # noqa: E402


AUGMENTERS = ("committed", "balanced", "hand-set")


def key(name: str) -> str:
    """An augmenter's name as it appears in the RESULT line's keys ("hand-set" -> "handset")."""
    return name.replace("-", "")


def tail_mean(values, n: int = 500) -> float:
    """The mean of the last ``n`` values of a loss history."""
    tail = values[-n:]
    return sum(tail) / len(tail)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--quick", "--no-progress", "--save-checkpoints", "--retrain"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=300, help="paired 5-way episodes per setting")
    parser.add_argument("--runs", type=int, default=low_data.PROTOCOL["runs"], help="low-data runs per setting")
    parser.add_argument("--generators", default=",".join(AUGMENTERS),
                        help=f"comma-separated, of {', '.join(AUGMENTERS)} (default: all)")
    args = parser.parse_args(argv)
    chosen = [g for g in args.generators.split(",") if g]
    if not chosen or (unknown := sorted(set(chosen) - set(AUGMENTERS))):
        parser.error(f"--generators: {'unknown ' + ', '.join(unknown) if chosen else 'none given'}; "
                     f"choose from {', '.join(AUGMENTERS)}")
    progress = not args.no_progress
    with metakit.runtime.threads(args.threads):
        start, quick = time.perf_counter(), args.quick
        background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
        test_sets = held_out_sets(evaluation)
        # the committed generator is loaded; the balanced one too, unless asked to train it (--retrain: into a
        # temporary folder; --save-checkpoints: into data/checkpoints) or quick mode trains both for 40 steps
        temporary = Path(tempfile.mkdtemp())
        generators, infos = {}, {}
        if "committed" in chosen and quick:
            generators["committed"], infos["committed"] = dagan.train_or_load_dagan(
                background, path=temporary / dagan.CHECKPOINT, seconds=None, steps=40, progress=progress)
        elif "committed" in chosen:
            generators["committed"], infos["committed"] = dagan.train_or_load_dagan(background)
        folder = temporary if quick or (args.retrain and not args.save_checkpoints) else CHECKPOINTS
        if "balanced" in chosen:
            generators["balanced"], infos["balanced"] = dagan.train_or_load_dagan(
                background, path=folder / dagan.BALANCED_CHECKPOINT, seconds=None if quick else dagan.CPU_SECONDS,
                steps=40 if quick else None, retrain=args.save_checkpoints or args.retrain, progress=progress,
                **dagan.BALANCED)
        if "hand-set" in chosen:
            generators["hand-set"] = A.HandSet()  # nothing to train
        figures = {}
        print("training (the last 500 steps' mean losses; at the game's equilibrium D = 2 log 2 = 1.386, "
              "G = log 2 = 0.693 plus the diversity term, at most -0.15):")
        for name, info in infos.items():
            d, g = tail_mean(info["d_loss"]), tail_mean(info["g_loss"])
            figures[f"d_loss_{key(name)}"], figures[f"g_loss_{key(name)}"] = d, g
            print(f"  {name:<9} {info['steps']} steps in {info['clock_seconds']:.0f} CPU-s; "
                  f"D loss {d:.3f}, G loss {g:.3f}")

        quality_episodes = 4 if quick else 200
        print(f"\nsample quality on {evaluation.name} (never seen by a generator):")
        for name, g in generators.items():
            q = A.check_collapse(g, evaluation)
            acc = A.generated_only_accuracy(g, evaluation, episodes=quality_episodes)
            figures[f"within_{key(name)}"], figures[f"generated_only_{key(name)}"] = q["within"], acc["generated"][0]
            print(f" {name}:\n" + A.format_quality(q, acc, 5))

        episodes = 3 if quick else args.episodes
        pretrained = A.load_pretrained()
        print(f"\nthe notebook's paired 5-way episodes ({episodes} per setting, the same episodes for every "
              "augmenter), 5 generated images per real shot:")
        for name, g in generators.items():
            summaries = A.comparison(g, evaluation, episodes=episodes, pretrained=pretrained, n_gen=5,
                                     progress=progress)
            print(f" {name}:\n" + A.format_table(summaries))
            for setting, table in summaries.items():
                for m, r in table.items():
                    figures[f"{key(name)}_{m}_{setting}_diff"] = r["diff"]

        runs = 1 if quick else args.runs
        protocol = dict(n_classes=10, steps=5, n_test=2) if quick else {}
        print(f"\nthe DAGAN paper's protocol: {protocol.get('n_classes', low_data.PROTOCOL['n_classes'])}-class "
              f"classifiers from scratch, 1 and 5 real drawings per class, {runs} run(s) each:")
        results = {}
        for set_name, dataset in test_sets.items():
            for name, g in generators.items():
                r = low_data.low_data_experiment(g, dataset, runs=runs, progress=progress, **protocol)
                results[f"{set_name}, {name}"] = r
                for k, d in r.items():
                    figures[f"lowdata_{set_name}_{key(name)}_{k}shot_base"] = d["summary"]["base"]
                    figures[f"lowdata_{set_name}_{key(name)}_{k}shot_diff"] = d["summary"]["diff"]
                    figures[f"lowdata_{set_name}_{key(name)}_{k}shot_ci"] = d["summary"]["diff_ci"]
                print(f"  {set_name}, {name}: done", flush=True)
        print(low_data.format_low_data(results, protocol.get("n_classes", low_data.PROTOCOL["n_classes"])))
        train_accs = [d[f"train_{arm}"].min().item() for r in results.values() for d in r.values()
                      for arm in ("base", "aug")]
        print(f"lowest accuracy on the real training drawings after training: {min(train_accs):.3f}")
        print(f"\ntotal time {time.perf_counter() - start:.0f} s")
        print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
