"""Benchmark: transfer learning against meta-learning at matched training compute (Chen et al. 2019).

    python benchmarks/transfer.py                      # 300 CPU-seconds of training each, 600 test episodes
    python benchmarks/transfer.py --quick              # 3 s each, 10 episodes (a smoke test)
    python benchmarks/transfer.py --save-checkpoints   # also write data/checkpoints/transfer-*-300s.pt (notebook 08)
    python benchmarks/transfer.py --save-checkpoints --retrain mtl   # train and write MTL's alone, load the rest
    python benchmarks/transfer.py --retrain none       # train nothing: test the committed checkpoints

Training on the glyph background alphabets, each method for the same budget of this process's CPU
time (one torch thread): Baseline (a Conv-4 classifier over all 4048 classes, linear head),
Baseline++ (cosine head), a prototypical network (notebook 04's regime), meta-transfer learning
(240 s pretraining as Baseline, 60 s meta-learning the scaling and shifting; also scored with the
scaling and shifting switched off); MAML is notebook 03's ``family-maml.pt``, or trained for the
same CPU budget with ``--retrain-maml`` (and in quick mode). What MAML's two differences from the
others are worth (not in quick mode): the same MAML with 10 inner steps at test time instead of 1,
and a MAML trained on the same rotated class pool as the others (``transfer-maml-rot-300s.pt``).
Testing: 5-way 1-shot and 5-shot on the glyph evaluation alphabets and the real Omniglot subset,
every method on the same episodes (metakit.transfer.experiments). The last line printed is ``RESULT
baseline_5w1s=... baselinepp_5w1s=... proto_5w1s=... maml_5w1s=... mtl_5w1s=... mtloff_5w1s=...
maml10_5w1s=... mamlrot_5w1s=... baseline_omniglot=... proto_omniglot=... mtl_omniglot=...``."""

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
from metakit.transfer import experiments as ex  # noqa: E402
from metakit.transfer.finetune import HEADS, FineTuner  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None,
                        help="CPU-seconds of training each (default 300, 3 with --quick)")
    parser.add_argument("--episodes", type=int, default=None, help="test episodes (default 600, 10 with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--retrain-maml", action="store_true",
                        help="train MAML afresh instead of loading family-maml.pt")
    parser.add_argument("--retrain", default="",
                        help="comma-separated methods to train afresh (default: all but MAML), or none; the others "
                             "are loaded from data/checkpoints/ (--save-checkpoints --retrain mtl writes MTL's alone)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save-checkpoints", action="store_true", help="write data/checkpoints/transfer-*-300s.pt")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    with metakit.runtime.threads(args.threads):
        seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 300.0)
        episodes = args.episodes if args.episodes is not None else (10 if args.quick else 600)
        folder = CHECKPOINTS if args.save_checkpoints and not args.quick else Path(tempfile.mkdtemp())
        run = dict(seed=args.seed, progress=not args.no_progress, device=metakit.device())
        if args.retrain:
            retrain = set() if args.retrain == "none" else set(args.retrain.split(","))
        else:
            retrain = set(ex.NAMES) - {"maml"} | ({"maml"} if args.retrain_maml or args.quick else set())
        unknown = retrain - set(ex.NAMES)
        if unknown:
            parser.error(f"--retrain: unknown method(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(ex.NAMES)}")
        start = time.perf_counter()
        print(f"device: {run['device']}")
        print(f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}, "
              f"{seconds:.0f} CPU-seconds of training each")
        background, test_sets = metakit.load_glyphs("background"), held_out_sets()
        if "omniglot" not in test_sets:
            print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")
        methods, info = {}, {}
        fresh = lambda name: dict(run, retrain=name in retrain)  # noqa: E731
        where = lambda name: folder if name in retrain else CHECKPOINTS  # noqa: E731  (the others are loaded)
        for name, head in HEADS.items():
            backbone, info[name] = ex.pretrained_backbone(name, background, seconds, where(name), **fresh(name))
            methods[name] = FineTuner(backbone, head=head)
        methods["proto"], info["proto"] = ex.trained_proto(background, seconds, where("proto"), **fresh("proto"))
        methods["maml"], info["maml"] = ex.trained_maml(background, seconds, folder / "transfer-maml.pt" if
                                                        "maml" in retrain else CHECKPOINTS / "family-maml.pt",
                                                        **fresh("maml"))
        methods["mtl"], info["mtl"] = ex.trained_mtl(background, seconds, where("mtl"), **fresh("mtl"))
        methods["mtloff"] = ex.without_scale_shift(methods["mtl"])  # what the scaling and shifting adds
        if not args.quick:  # what MAML's two handicaps are worth: its test-time steps and its class pool
            methods["maml10"] = ex.with_test_steps(methods["maml"], 10)
            methods["mamlrot"], info["mamlrot"] = ex.trained_maml(background, seconds,
                                                                  where("mamlrot") / "transfer-maml-rot-300s.pt",
                                                                  rotations=True, **fresh("mamlrot"))
        for name, i in info.items():
            print(f"{ex.NAMES[name]}: {i['steps']} training steps, " + (f"loaded: {i['seconds']:.0f} s of wall clock"
                  if i.get("loaded") else f"{i['clock_seconds']:.0f} CPU-seconds"), flush=True)

        results = ex.compare_methods(methods, test_sets, episodes=episodes, seed=args.seed, progress=run["progress"])
        print(f"\naccuracy over {episodes} test episodes (mean±95% interval), every method on the same episodes;"
              f" ms per test episode (5w1s) and training:\n{ex.format_table(results, info)}")
        print(f"\npaired differences on the same episodes (mean±95% interval):\n{ex.paired_table(results)}")
        print(f"\nChen et al. 2019 (other data; the direction of effect) next to ours:\n{ex.rank_orders(results)}")
        get = lambda m, s: results.get((m, s, "5w1s"), {"acc": math.nan})["acc"]  # noqa: E731
        figures = {f"{m}_5w1s": get(m, "glyphs") for m in ("baseline", "baselinepp", "proto", "maml", "mtl",
                                                           "mtloff", "maml10", "mamlrot")}
        figures |= {f"{m}_omniglot": get(m, "omniglot") for m in ("baseline", "proto", "mtl")}
        print(f"total time {time.perf_counter() - start:.0f} s")
        print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
