"""Benchmark: why first-order MAML trails MAML on glyphs, measured rather than guessed.

    python benchmarks/fomaml.py                  # 1200 meta-iterations per run, 400 test episodes
    python benchmarks/fomaml.py --quick          # 5 meta-iterations, 10 episodes (a smoke test)
    python benchmarks/fomaml.py --only fomaml_5steps --save-checkpoints
                                                 # also write data/checkpoints/family-fomaml-5steps.pt, which
                                                 # notebook 03 loads (only this run is kept)

Part 1, the meta-gradient. On 32 background tasks (5-way 1-shot, 5 queries), for a fresh Conv-4
and for the committed family-maml.pt, with one inner step of 0.4 and with five of 0.1: how far
FOMAML's meta-gradient is from MAML's, per task and averaged over the tasks (what a meta-batch
sums): ``|g_F - g_M| / |g_M|`` and their cosine.

Part 2, training. The same Conv-4, seed and episodes, meta-trained for the same number of
meta-iterations (notebook 03's regime: 4 tasks per iteration, Adam 1e-3): MAML with one step of
0.4; FOMAML with one step of 0.4 (notebook 03's row), with five steps of 0.1, and with one step of
0.4 for three times as many iterations. Each is tested with its own inner steps on the same glyph
evaluation episodes (5-way 1-shot, 15 queries), mean and 95% interval.

The last line is ``RESULT maml=... fomaml=... fomaml_5steps=... fomaml_3x=... gap_task_fresh=...
gap_batch_fresh=... gap_task_trained=... gap_batch_trained=...``.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import metakit  # noqa: E402
from metakit.checkpoints import checkpoint_path, save_checkpoint  # noqa: E402
from metakit.compare import compare  # noqa: E402
from metakit.episodes import EpisodeSampler  # noqa: E402
from metakit.gradient import family  # noqa: E402
from metakit.gradient.training import sample_tasks  # noqa: E402

RUNS = {  # name -> (family member, overrides, iterations as a multiple of --steps)
    "maml": ("maml", {}, 1),
    "fomaml": ("fomaml", {}, 1),
    "fomaml_5steps": ("fomaml", dict(inner_steps=5, inner_lr=0.1), 1),
    "fomaml_3x": ("fomaml", {}, 3),
}
FIVE_STEPS_CHECKPOINT = "family-fomaml-5steps.pt"
KEYS = [*RUNS, "gap_task_fresh", "gap_batch_fresh", "gap_task_trained", "gap_batch_trained"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, help="meta-iterations per run (default 1200, 5 with --quick)")
    parser.add_argument("--episodes", type=int, help="test episodes (default 400, 10 with --quick)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(RUNS), help="comma-separated runs of part 2 (others print nan)")
    for flag in ("--quick", "--no-progress", "--save-checkpoints"):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    steps = args.steps or (5 if args.quick else 1200)
    episodes = args.episodes or (10 if args.quick else 400)
    torch.set_num_threads(args.threads)
    device = metakit.device()
    print(f"device: {device}")
    background, evaluation = metakit.load_glyphs("background"), metakit.load_glyphs("evaluation")

    figures = {}
    metakit.seed_everything(args.seed)
    tasks = sample_tasks(EpisodeSampler(background, n_way=5, k_shot=1, n_query=5), 4 if args.quick else 32)
    trained = torch.load(checkpoint_path("family-maml.pt"), weights_only=True)["state_dict"]
    print("part 1: FOMAML's meta-gradient against MAML's, |g_F - g_M| / |g_M| (cosine of the averages)")
    for label, weights in (("fresh", None), ("trained", trained)):
        for inner_steps, inner_lr in ((1, 0.4), (5, 0.1)):
            torch.manual_seed(args.seed)
            gap = family.first_order_gap(tasks, weights, inner_steps, inner_lr)
            per_task, batch, cosine = gap["per_task"], gap["batch"], gap["cosine"]
            print(f"  {label:<8} {inner_steps} step(s) of {inner_lr}: median per task {per_task:.2f}, "
                  f"over {tasks[0].shape[0]} tasks averaged {batch:.2f} (cosine {cosine:.3f})")
            if inner_steps == 1:
                figures[f"gap_task_{label}"], figures[f"gap_batch_{label}"] = per_task, batch

    print(f"part 2: meta-training, {steps} meta-iterations each ({args.threads} thread(s)), "
          f"tested on {episodes} glyph 5-way 1-shot episodes")
    figures.update({name: float("nan") for name in RUNS})  # the runs not chosen
    for name in args.only.split(","):  # in the order given, each tested as soon as it is trained
        if name not in RUNS:
            raise SystemExit(f"--only takes runs among {', '.join(RUNS)}; got {name!r}.")
        member, overrides, times = RUNS[name]
        metakit.seed_everything(args.seed)
        algorithm = family.make_algorithm(member, **overrides).to(device)
        start = time.process_time()
        history = family.train(algorithm, background, steps=steps * times, progress=not args.no_progress)
        r = compare({name: algorithm}, {"glyphs": evaluation}, {"5w1s": family.SETTINGS["5w1s"]},
                    episodes=episodes, seed=args.seed, progress=False)[name, "glyphs", "5w1s"]
        figures[name] = r["acc"]
        if name == "fomaml_5steps" and args.save_checkpoints and not args.quick:
            save_checkpoint(algorithm, FIVE_STEPS_CHECKPOINT, {**history, "inner_steps": 5, "inner_lr": 0.1})
        print(f"  {name:<14} {history['steps']} meta-iterations, {time.process_time() - start:.0f} CPU s, last "
              f"training accuracy {history['acc'][-1]:.3f}; test {r['acc']:.4f} ± {r['ci95']:.4f}", flush=True)
    print("RESULT " + " ".join(f"{k}={figures[k]:.4f}" for k in KEYS))


if __name__ == "__main__":
    main()
