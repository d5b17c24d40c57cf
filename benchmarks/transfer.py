"""Benchmark: transfer learning against meta-learning at matched training compute (Chen et al. 2019).

    python benchmarks/transfer.py                      # 300 CPU-seconds of training each, 600 test episodes
    python benchmarks/transfer.py --quick              # 3 s each, 10 episodes (a smoke test)
    python benchmarks/transfer.py --save-checkpoints   # also write data/checkpoints/transfer-{baseline,
                                                       # baselinepp,proto}-300s.pt, which notebook 08 loads

Training on the glyph background alphabets (19 alphabets, 1012 characters, rotations as classes),
each for the same budget of this process's CPU time (``time.process_time``, one torch thread):
Baseline, a Conv-4 classifier over all 4048 classes with a linear head (Adam 1e-3, batches of
64); Baseline++, the same with a cosine head; a prototypical network (metakit.metric.experiments's regime:
40-way 1-shot episodes, 2 queries, Adam 1e-3). MAML is notebook 03's checkpoint
``family-maml.pt`` (300 s of wall clock on one thread, 5-way 1-shot, metakit.gradient.family), or a fresh
MAML trained for the same CPU budget with ``--retrain-maml`` (and in quick mode).

Testing: 5-way 1-shot and 5-way 5-shot, 15 queries per class, on the glyph evaluation alphabets and
on the shared real Omniglot subset (a change of domain), every method on the same episodes. A new
task is met by fitting a new head on the frozen features with 100 steps of SGD (0.01, momentum
0.9, weight decay 1e-3: Chen et al.'s fine-tuning), by class means (ProtoNet), or by one inner step
(MAML). The last line printed is ``RESULT baseline_5w1s=... baselinepp_5w1s=... proto_5w1s=...
maml_5w1s=... baseline_omniglot=... proto_omniglot=...`` (glyphs 5w1s, then Omniglot 5w1s).
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
from metakit.checkpoints import CHECKPOINTS, train_or_load  # noqa: E402
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.episodes import EpisodeSampler  # noqa: E402
from metakit.gradient import family  # noqa: E402
from metakit.metric import experiments as metric  # noqa: E402
from metakit.transfer import finetune as transfer  # noqa: E402

# Chen et al. 2019, Conv-4 on mini-ImageNet (Table 3) and ResNet-18 mini-ImageNet -> CUB (Table 4):
# the direction of effect to compare with, not the same data.
PAPER = {
    "mini-ImageNet 5w1s (Conv-4)": {"baseline": 0.4211, "baselinepp": 0.4824, "proto": 0.4442, "maml": 0.4647},
    "mini-ImageNet 5w5s (Conv-4)": {"baseline": 0.6253, "baselinepp": 0.6643, "proto": 0.6424, "maml": 0.6271},
    "mini-ImageNet -> CUB 5w5s (ResNet-18)": {"baseline": 0.6557, "baselinepp": 0.6204, "proto": 0.6202,
                                               "maml": 0.5134},
}


def build(background, seconds: float, folder: Path, save: bool, retrain_maml: bool, progress: bool, seed: int):
    """The four trained methods and what their training cost: ``(methods, info)``."""
    methods, info = {}, {}
    for name, head in transfer.HEADS.items():
        metakit.seed_everything(seed)
        backbone = metakit.Conv4()
        train = lambda b, head=head: transfer.trim_history(transfer.pretrain(  # noqa: E731
            b, background, head, seconds=seconds, progress=progress, seed=seed))
        info[name] = train_or_load(backbone, folder / f"transfer-{name}-300s.pt", train, retrain=True)
        methods[name] = transfer.FineTuner(backbone.eval(), head=head)
    metakit.seed_everything(seed)
    proto = metric.make_model("proto")
    sampler = EpisodeSampler(background, **metric.TRAIN["proto"])
    train = lambda m: transfer.trim_history(transfer.train_episodic(m, sampler, seconds=seconds,  # noqa: E731
                                                                    progress=progress))
    info["proto"] = train_or_load(proto, folder / "transfer-proto-300s.pt", train, retrain=True)
    methods["proto"] = proto.eval()
    metakit.seed_everything(seed)
    maml = family.make_algorithm("maml")
    train = lambda a: family.train(a, background, seconds=seconds, progress=progress, clock=time.process_time)  # noqa: E731
    path = CHECKPOINTS / "family-maml.pt" if not retrain_maml else folder / "transfer-maml.pt"
    h = train_or_load(maml, path, train, retrain=retrain_maml)
    info["maml"] = {"steps": h["steps"], "clock_seconds": h.get("clock_seconds", h["seconds"]),
                    "loaded": h["loaded"], "wall": h["seconds"]}
    methods["maml"] = maml
    return methods, info


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="CPU-seconds of training each (default 300, 3 with --quick)")
    parser.add_argument("--episodes", type=int, default=None, help="test episodes (default 600, 10 with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--retrain-maml", action="store_true", help="train MAML afresh instead of loading family-maml.pt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save-checkpoints", action="store_true", help="write data/checkpoints/transfer-*-300s.pt")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 300.0)
    episodes = args.episodes if args.episodes is not None else (10 if args.quick else 600)
    save = args.save_checkpoints and not args.quick
    folder = CHECKPOINTS if save else Path(tempfile.mkdtemp())
    progress = not args.no_progress
    start = time.perf_counter()
    print(f"{torch.get_num_threads()} CPU thread(s), torch {torch.__version__}, {seconds:.0f} CPU-seconds of training each")

    background = metakit.load_glyphs("background")
    test_sets = held_out_sets()
    if "omniglot" not in test_sets:
        print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")
    methods, info = build(background, seconds, folder, save, args.retrain_maml or args.quick, progress, args.seed)
    for name, i in info.items():
        how = ("loaded from family-maml.pt: " + f"{i['wall']:.0f} s of wall clock on one thread"
               if i.get("loaded") else f"{i['clock_seconds']:.0f} CPU-seconds")
        print(f"{transfer.NAMES[name]}: {i['steps']} training steps, {how}", flush=True)

    results = transfer.compare(methods, test_sets, episodes=episodes, seed=args.seed, progress=progress)
    print(f"\naccuracy over {episodes} test episodes (mean±95% interval), every method on the same episodes;"
          " ms per test episode (5w1s) and training:")
    print(transfer.format_table(results, info))

    print("\npaired differences on the same episodes (mean±95% interval of the per-episode difference):")
    for s in test_sets:
        for x in transfer.SETTINGS:
            cells = [f"{a}-{b} {d:+.4f}±{e:.4f}" for a, b in (("baselinepp", "baseline"), ("baselinepp", "proto"),
                                                              ("baseline", "proto"), ("proto", "maml"))
                     for d, e in [transfer.paired(results, a, b, s, x)]]
            print(f"  {s:<8} {x}: " + "  ".join(cells))

    print("\nChen et al. 2019 (other data; the direction of effect) next to ours, rank order of the four methods:")
    for where, row in PAPER.items():
        order = sorted(row, key=row.get, reverse=True)
        print(f"  {where:<38} " + "  ".join(f"{transfer.NAMES[m]} {row[m]:.3f}" for m in row)
              + "   order: " + " > ".join(transfer.NAMES[m] for m in order))
    for s in test_sets:
        for x in transfer.SETTINGS:
            row = {m: results[m, s, x]["acc"] for m in methods}
            order = sorted(row, key=row.get, reverse=True)
            print(f"  {'ours, ' + s + ' ' + x:<38} " + "  ".join(f"{transfer.NAMES[m]} {row[m]:.3f}" for m in row)
                  + "   order: " + " > ".join(transfer.NAMES[m] for m in order))

    get = lambda m, s: results.get((m, s, "5w1s"), {"acc": math.nan})["acc"]  # noqa: E731
    figures = {f"{m}_5w1s": get(m, "glyphs") for m in ("baseline", "baselinepp", "proto", "maml")}
    figures |= {"baseline_omniglot": get("baseline", "omniglot"), "proto_omniglot": get("proto", "omniglot")}
    print(f"total time {time.perf_counter() - start:.0f} s")
    print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
