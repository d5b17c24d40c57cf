"""Benchmark: three gaps the notebooks read from a single seed, re-run over several seeds.

    python benchmarks/seeds.py                        # seeds 0, 1, 2 at the notebooks' budgets: ~100 min of a core
    python benchmarks/seeds.py --quick                # a smoke test: a second or two of training, a few episodes
    python benchmarks/seeds.py --gaps anil --seconds-scale 0.5    # one gap, every budget halved

The gaps, each at its notebook's settings and with the kit's own training functions:

- ``anil``: ANIL against MAML, notebook 03 (metakit.gradient.family: ``train_family``, 300 s each,
  tested with ``compare`` on ``family.SETTINGS``, 600 episodes). Notebook 03 and
  benchmarks/maml_family.py count wall clock; here it is CPU time of one thread, so that other jobs on a
  shared machine do not shorten a run (on an idle machine with one thread the two agree).
- ``aug``: the learned augmentation against none, notebook 06 part 2 (metakit.meta_augmentation.learned:
  ``make_augmented``/``train_augmented``, 150 CPU-s each, 5-way 1-shot, 300 episodes; the hand-set
  fixed arm is left out, as no conclusion about it is tested here).
- ``proto``: Baseline against ProtoNet, notebook 08 (metakit.transfer.experiments: ``pretrained_backbone``
  with a linear-head ``FineTuner`` and ``trained_proto``, 300 CPU-s each, retrained into a temporary
  folder, scored with ``compare_methods`` at 5-way 1-shot and 5-shot, 200 episodes).

Seed ``s`` sets BOTH the training seed (initial weights, training episodes) and the test-episode
seed, so a seed's row is what a single-seed table would have printed; within a seed both methods
meet the same test episodes (paired). Over the seeds, each method's mean, standard deviation and
range (how far a single-seed table can move), and the mean paired difference with its Student-t
95% interval over the seeds (metakit.stats.seed_summary). One thread; budgets are CPU time.

The last line printed is ``RESULT anil_minus_maml_glyphs=... anil_minus_maml_glyphs_ci=...
anil_minus_maml_omniglot=... ... aug_learned_minus_none_glyphs=... proto_minus_baseline_glyphs=...
proto_minus_baseline_omniglot=... ...`` (5-way 1-shot; nan where a gap or a test set was not run).
"""

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

import metakit  # noqa: E402
from metakit.compare import compare  # noqa: E402
from metakit.datasets import held_out_sets  # noqa: E402
from metakit.gradient import family  # noqa: E402
from metakit.meta_augmentation import learned  # noqa: E402
from metakit.runtime import recipe_clock, seed_everything  # noqa: E402
from metakit.stats import seed_summary  # noqa: E402
from metakit.transfer import experiments as transfer  # noqa: E402
from metakit.transfer.finetune import HEADS, FineTuner  # noqa: E402

# gap -> (first method, second method, budget in CPU-s per method, test episodes, settings): the
# difference reported is second - first, as the notebooks state it.
GAPS = {
    "anil": dict(a="maml", b="anil", seconds=300.0, episodes=600, settings=("5w1s", "5w5s")),
    "aug": dict(a="none", b="learned", seconds=learned.AUG_TRAIN["seconds"], episodes=300, settings=(learned.TEST,)),
    "proto": dict(a="baseline", b="proto", seconds=300.0, episodes=200, settings=("5w1s", "5w5s")),
}
QUICK = dict(seconds=1.5, episodes=4)


def anil_gap(background, test_sets, seconds, episodes, seed, progress):
    """MAML and ANIL as notebook 03 trains them (``seconds`` CPU-s each), on the same test episodes."""
    algorithms, histories = family.train_family(["maml", "anil"], background, seconds, seed=seed, progress=progress,
                                                clock=time.process_time)
    results = compare(algorithms, test_sets, family.SETTINGS, episodes=episodes, seed=seed, progress=progress)
    return results, {name: h["steps"] for name, h in histories.items()}


def aug_gap(background, test_sets, seconds, episodes, seed, progress):
    """Notebook 06's no-augmentation and learned-augmentation arms (``seconds`` CPU-s each)."""
    arms, steps = {}, {}
    for arm in ("none", "learned"):
        seed_everything(seed)
        arms[arm] = learned.make_augmented(arm)
        history = learned.train_augmented(arms[arm], background, seconds=seconds, meta_lr=learned.AUG_TRAIN["meta_lr"],
                                          aug_lr=learned.AUG_TRAIN["aug_lr"], clock=recipe_clock(), progress=progress)
        steps[arm] = history["steps"]
    return compare(arms, test_sets, {learned.TEST: dict(n_way=5, k_shot=1, n_query=15)}, episodes=episodes,
                   seed=seed, progress=progress), steps


def proto_gap(background, test_sets, seconds, episodes, seed, progress):
    """Notebook 08's Baseline (linear head, fine-tuned per episode) and ProtoNet, ``seconds`` CPU-s each."""
    with tempfile.TemporaryDirectory() as folder:
        run = dict(retrain=True, seed=seed, progress=progress)
        backbone, baseline_info = transfer.pretrained_backbone("baseline", background, seconds, folder, **run)
        proto, proto_info = transfer.trained_proto(background, seconds, folder, **run)
    methods = {"baseline": FineTuner(backbone, head=HEADS["baseline"]), "proto": proto}
    results = transfer.compare_methods(methods, test_sets, episodes=episodes, seed=seed, progress=progress)
    return results, {"baseline": baseline_info["steps"], "proto": proto_info["steps"]}


RUN = {"anil": anil_gap, "aug": aug_gap, "proto": proto_gap}


def cells(gap: str, test_sets) -> list[tuple[str, str]]:
    """The (test set, setting) cells a gap is scored on."""
    return [(s, x) for s in test_sets for x in GAPS[gap]["settings"]]


def seed_row(gap: str, results: dict, test_sets) -> dict:
    """One seed's accuracies: ``{(test set, setting): (acc of a, acc of b)}`` from ``compare``'s results."""
    a, b = GAPS[gap]["a"], GAPS[gap]["b"]
    return {cell: (results[(a, *cell)]["acc"], results[(b, *cell)]["acc"]) for cell in cells(gap, test_sets)}


def format_seeds(gap: str, rows: dict, steps: dict | None = None) -> str:
    """The per-seed table: a line per (cell, seed) with both accuracies and the difference b - a, then
    each method's training steps in that seed's budget when ``steps`` (seed -> method -> steps) is given."""
    a, b = GAPS[gap]["a"], GAPS[gap]["b"]
    lines = [f"{'test set':<9} {'setting':<7} {'seed':>4} {a:>9} {b:>9} {b + ' - ' + a:>17}"
             + (f" {a + ' steps':>14} {b + ' steps':>14}" if steps else "")]
    for cell in next(iter(rows.values())):
        for seed, row in rows.items():
            x, y = row[cell]
            lines.append(f"{cell[0]:<9} {cell[1]:<7} {seed:>4} {x:>9.4f} {y:>9.4f} {y - x:>+17.4f}"
                         + (f" {steps[seed][a]:>14} {steps[seed][b]:>14}" if steps else ""))
    return "\n".join(lines)


def summaries(rows: dict) -> dict:
    """``{cell: metakit.stats.seed_summary}`` over the seeds in ``rows`` (seed -> :func:`seed_row`)."""
    first = next(iter(rows.values()))
    return {cell: seed_summary([r[cell][0] for r in rows.values()], [r[cell][1] for r in rows.values()])
            for cell in first}


def format_summary(gap: str, summary: dict, n_seeds: int) -> str:
    """Over the seeds: each method's mean ± sd and range, the mean difference ± its t interval, the verdict."""
    a, b = GAPS[gap]["a"], GAPS[gap]["b"]
    lines = [f"{'test set':<9} {'setting':<7} {a + ' mean±sd (range)':>26} {b + ' mean±sd (range)':>26} "
             f"{b + ' - ' + a + ' (t95, ' + str(n_seeds) + ' seeds)':>30}  verdict"]
    for (s, x), r in summary.items():
        verdict = ("told apart" if r["excludes_zero"] else "not told apart") + " (interval "
        verdict += ("excludes 0)" if r["excludes_zero"] else "holds 0)" if not math.isnan(r["diff_ci"]) else "none)")
        lines.append(f"{s:<9} {x:<7} {r['a_mean']:>9.4f}±{r['a_std']:.4f} ({r['a_range']:.4f}) "
                     f"{r['b_mean']:>9.4f}±{r['b_std']:.4f} ({r['b_range']:.4f}) "
                     f"{r['diff']:>+22.4f}±{r['diff_ci']:.4f}  {verdict}")
    return "\n".join(lines)


def result_figures(gap: str, summary: dict | None, set_names=("glyphs", "omniglot")) -> dict:
    """The RESULT entries of one gap: the 5-way 1-shot mean difference and its half-width per test set."""
    key = f"{gap}_minus_{GAPS[gap]['a']}" if gap != "aug" else "aug_learned_minus_none"
    out = {}
    for s in set_names:
        r = (summary or {}).get((s, "5w1s"), {"diff": math.nan, "diff_ci": math.nan})
        out[f"{key}_{s}"], out[f"{key}_{s}_ci"] = r["diff"], r["diff_ci"]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gaps", default=",".join(GAPS), help=f"comma-separated, of {', '.join(GAPS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (training and test episodes)")
    parser.add_argument("--seconds-scale", type=float, default=1.0, help="multiply every training budget")
    parser.add_argument("--episodes", type=int, help="test episodes of every gap (default: its notebook's)")
    for flag in ("--quick", "--no-progress"):
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args(argv)
    gaps, seeds = [g for g in args.gaps.split(",") if g], [int(s) for s in args.seeds.split(",") if s]
    if unknown := [g for g in gaps if g not in GAPS]:
        parser.error(f"--gaps: unknown {', '.join(unknown)}; choose from {', '.join(GAPS)}")
    if not seeds or not args.seconds_scale > 0:
        parser.error("--seeds needs at least one seed and --seconds-scale a positive number")
    with metakit.runtime.threads(1):
        start, cpu_start, progress = time.perf_counter(), time.process_time(), not args.no_progress
        print(f"device: cpu (budgets are CPU-seconds of one thread); torch {torch.__version__}; seeds {seeds}")
        background = metakit.load_glyphs("background")
        test_sets = held_out_sets()
        if "omniglot" not in test_sets:
            print("omniglot: the shared real Omniglot subset is not here; its figures are reported as nan")
        figures = {}
        for gap in GAPS:
            if gap not in gaps:
                figures |= result_figures(gap, None)
                continue
            g = GAPS[gap]
            seconds = (QUICK["seconds"] if args.quick else g["seconds"]) * args.seconds_scale
            episodes = args.episodes or (QUICK["episodes"] if args.quick else g["episodes"])
            print(f"\n== {gap}: {g['b']} - {g['a']}, {seconds:g} CPU-s of training each, {episodes} test episodes",
                  flush=True)
            rows, steps = {}, {}
            for seed in seeds:
                gap_start = time.perf_counter()
                results, steps[seed] = RUN[gap](background, test_sets, seconds, episodes, seed, progress)
                rows[seed] = seed_row(gap, results, test_sets)
                print(f"seed {seed} done in {time.perf_counter() - gap_start:.0f} s (training steps "
                      + ", ".join(f"{m} {n}" for m, n in steps[seed].items()) + "): "
                      + ", ".join(f"{s} {x} {a:.4f} / {b:.4f}" for (s, x), (a, b) in rows[seed].items()), flush=True)
            summary = summaries(rows)
            print(f"\nper seed ({gap}):\n{format_seeds(gap, rows, steps)}\n\nover {len(seeds)} seeds ({gap}):\n"
                  f"{format_summary(gap, summary, len(seeds))}", flush=True)
            figures |= result_figures(gap, summary)
        print(f"\ntotal {time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu_start:.0f} CPU-s, "
              "1 thread")
        print("RESULT " + " ".join(f"{k}={v:.4f}" if not math.isnan(v) else f"{k}=nan" for k, v in figures.items()))


if __name__ == "__main__":
    main()
