"""Benchmark: few-shot learning with and without DAGAN augmentation, on the same episodes (paired).

    python benchmarks/gan_augmentation.py                     # about 20 CPU-minutes, single thread
    python benchmarks/gan_augmentation.py --quick             # under a minute: tiny budgets, 5 episodes
    python benchmarks/gan_augmentation.py --save-checkpoints  # also write data/checkpoints/{dcgan,dagan}-glyphs.pt,
                                                              # which notebook 05 loads instead of training

metakit.gan.augmentation.gan_experiment: the DAGAN-style generator trained on the glyph background
alphabets for 300 CPU-seconds (time.process_time, one thread: gen_train_s), a DCGAN for 100; the
DAGAN's sample quality on the evaluation alphabets (diversity, collapse, a classifier built from
generated images only); 5-way 1-shot and 5-shot episodes (600 each), each learner with and without
5 generated images per real shot: (a) a small CNN trained from scratch, (b) the committed
prototypical network's Conv-4 (proto-5way-60000img.pt) frozen with a new linear head, (c) that
prototypical network; differences with the 95% interval of the per-episode differences.

Target (issue 5): (a) at least +5 points on 5-way 1-shot, generator training under 10 CPU-minutes.
Reference: DAGAN raised a plain low-data Omniglot classifier from 69% to 82% (Antoniou et al. 2017).
The last line printed is ``RESULT key=value ...``.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.checkpoints import CHECKPOINTS  # noqa: E402
from metakit.gan import augmentation as A  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag in ("--quick", "--no-progress", "--save-checkpoints"):
        parser.add_argument(flag, action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--n-gen", type=int, default=5, help="generated images per real shot")
    parser.add_argument("--noise-scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    with metakit.runtime.threads(args.threads):
        start, quick, device = time.perf_counter(), args.quick, metakit.device()
        print(f"device: {device}")
        background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")
        quick_budgets = dict(dagan_seconds=15, dcgan_seconds=3, episodes=5, quality_episodes=20)
        budgets = quick_budgets if quick else dict(episodes=args.episodes)
        r = A.gan_experiment(background, evaluation, n_gen=args.n_gen, noise_scale=args.noise_scale, seed=args.seed,
                             folder=CHECKPOINTS if args.save_checkpoints and not quick else Path(tempfile.mkdtemp()),
                             progress=not args.no_progress, device=device, **budgets)
        da, dc, summaries = r["dagan"], r["dcgan"], r["summaries"]
        gen_train_s = da["clock_seconds"]
        print(f"DAGAN on {background.name}: {da['steps']} steps in {gen_train_s:.0f} CPU-s (one thread)")
        print(f"DCGAN on {background.name}: {dc['steps']} steps in {dc['clock_seconds']:.0f} CPU-s, last 100 steps "
              f"mean D loss {sum(dc['d_loss'][-100:]) / len(dc['d_loss'][-100:]):.3f}, "
              f"G loss {sum(dc['g_loss'][-100:]) / len(dc['g_loss'][-100:]):.3f}")
        print(f"\nsample quality on {evaluation.name} (never seen by the generator), noise scale {args.noise_scale:g}:")
        print(A.format_quality(r["quality"], r["generated_only"], args.n_gen))
        if summaries is None:
            sys.exit("The generator has collapsed; the augmented evaluation refuses to use it.")
        print("\n" + "; ".join(f"{name}: paired episodes in {s:.0f} CPU-s" for name, s in r["seconds"].items()))
        print(f"{args.n_gen} generated images per real shot, noise scale {args.noise_scale:g}, {budgets['episodes']} "
              f"episodes per setting on {evaluation.name}; accuracy ± 95% interval\n")
        print(A.format_table(summaries) + "\n\n" + A.format_reference(summaries["5w1s"]["plain"]))
        checks = {"plain 5w1s gain >= +5 points": summaries["5w1s"]["plain"]["diff"] >= 0.05,
                  "generator training <= 600 CPU-s": gen_train_s <= 600}
        print("\ntargets: " + ", ".join(f"{k} ({'met' if ok else 'MISSED'})" for k, ok in checks.items()))
        print(f"total time {time.perf_counter() - start:.0f} s")
        s = summaries["5w1s"]
        figures = {f"{m}_{k}": s[m][k] for m in A.METHODS for k in ("base", "aug")}
        print("RESULT " + " ".join(f"{k}={v:.4f}" for k, v in figures.items()) + f" gen_train_s={gen_train_s:.1f}")


if __name__ == "__main__":
    main()
