"""Benchmark: build the glyph dataset from scratch, train a Prototypical Network on it for a fixed
wall-clock budget, and test it on unseen glyph alphabets and on real Omniglot characters.

    python benchmarks/glyphs.py            # 120 s of training, 600 test episodes (a few minutes)
    python benchmarks/glyphs.py --quick    # 5 s of training, 20 test episodes (a smoke test)
    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/glyphs.py --train-episodes 1500 --episodes 300 \
        --style strokes --test-styles fonts   # a variant at a fixed episode budget, fair on a shared CPU

``--style`` picks the generator of the training data ("fonts", the default data; "strokes", each
stroke redrawn on its own; "mixed", both sets of drawings of every background character, so 40
per character) and ``--stroke-param KEY=VALUE`` overrides its amounts (``STROKE_PARAMS``).
``--test-styles`` adds the evaluation alphabets of other styles as test sets: a held-out
rendering style, the yardstick for choosing a generator without looking at real handwriting.

Training regime (fixed): 40-way 1-shot episodes with 2 queries per class from the background
glyph alphabets, each character's four rotations counted as classes of their own; Adam, lr 1e-3.
A 2-core CPU manages about a thousand of these in 120 s. At equal wall-clock, many ways and few
queries won (Snell et al. also train with more ways than they test): on 300 test episodes,
40w2q beat 20w5q by 0-3 points and 20-way 15-query episodes (2.7x the images per step, so a
quarter of the steps) by 1.5-9; 5-way 15-query was worst and lr 3e-3 changed little.
Testing: 1-shot, 15 queries per class for 5-way and 5 for 20-way, no rotations, the same episodes
for every model (the sampler is reseeded). The last line printed is ``RESULT key=value ...``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.episodes import EpisodeSampler  # noqa: E402
from metakit.datasets import ImageClassDataset  # noqa: E402
from metakit.glyphs import SOURCES, STROKE_PARAMS, STYLES_OF_DRAWING, load_or_build  # noqa: E402
from metakit.metric.protonet import PrototypicalNetwork  # noqa: E402
from metakit.models import Conv4  # noqa: E402
from metakit.training import evaluate, train_episodes  # noqa: E402

TRAIN = dict(n_way=40, k_shot=1, n_query=2, rotations=True)
LR = 1e-3
def describe(dataset) -> str:
    return f"{dataset.name}: {len(dataset.alphabets)} alphabets, {dataset.num_classes} characters"


TESTS = {"5w1s": dict(n_way=5, k_shot=1, n_query=15), "20w1s": dict(n_way=20, k_shot=1, n_query=5)}
# Snell, Swersky and Zemel (2017), Table 1: Conv4 prototypical network trained on the 1200
# Omniglot training characters (x4 rotations) for hours on a GPU, tested on the other 423.
PAPER = {"5w1s": 0.988, "20w1s": 0.960}


def build_glyphs(seed: int, progress: bool, style: str = "fonts", params: dict | None = None,
                 sources: str = "matplotlib"):
    """Time a fresh build in a throwaway folder, then load the splits from it, so the benchmark
    measures and uses exactly this build and never touches the cache in the repo's data/.

    Returns:
        (build seconds, the built arrays, background split, evaluation split)
    """
    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        data = load_or_build(root=root, seed=seed, rebuild=True, progress=progress, style=style,
                             params=params if style != "fonts" else None, sources=sources)
        build_s = time.perf_counter() - start
        splits = [metakit.load_glyphs(split, root=root, seed=seed, style=style, sources=sources)
                  for split in ("background", "evaluation")]
    return build_s, data, *splits


def merge(a: ImageClassDataset, b: ImageClassDataset, name: str) -> ImageClassDataset:
    """The drawings of both datasets, class by class (the two styles keep the same classes)."""
    assert a.class_names == b.class_names
    return ImageClassDataset(torch.cat([a.images, b.images]), torch.cat([a.targets, b.targets]), a.class_names, name=name)


def parse_params(items) -> dict:
    params = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in STROKE_PARAMS:
            raise SystemExit(f"--stroke-param {item!r}: unknown key; known: {', '.join(STROKE_PARAMS)}")
        params[key] = float(value)
    return params


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=None, help="training budget (default 120, 5 with --quick)")
    parser.add_argument("--episodes", type=int, default=None, help="test episodes (default 600, 20 with --quick)")
    parser.add_argument("--train-episodes", type=int, default=None,
                        help="train for this many episodes instead of a wall-clock budget (fair on a shared CPU)")
    parser.add_argument("--style", default="fonts", choices=(*STYLES_OF_DRAWING, "mixed"),
                        help="generator of the training glyphs (default fonts, the default data)")
    parser.add_argument("--stroke-param", action="append", default=[], metavar="KEY=VALUE",
                        help="override an amount of STROKE_PARAMS for the strokes style (repeatable)")
    parser.add_argument("--sources", default="matplotlib", choices=SOURCES,
                        help="fonts of the training glyphs: matplotlib's (default) or also the fontpkg packages")
    parser.add_argument("--test-styles", nargs="*", default=[], choices=STYLES_OF_DRAWING,
                        help="also test on the evaluation alphabets drawn in these styles")
    parser.add_argument("--no-omniglot", action="store_true", help="skip the real handwriting")
    parser.add_argument("--device", default="cpu", help="where to train and test (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke test: 5 s of training, 20 test episodes")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (5.0 if args.quick else 120.0)
    episodes = args.episodes if args.episodes is not None else (20 if args.quick else 600)
    progress = not args.no_progress
    device = metakit.device(args.device)
    total_start = time.perf_counter()

    params = parse_params(args.stroke_param)
    if params:
        print(f"stroke parameters: {({**STROKE_PARAMS, **params})}")
    main_style = "fonts" if args.style == "mixed" else args.style
    build_s, data, background, evaluation = build_glyphs(args.seed, progress, main_style, params, args.sources)
    others = {}
    for style in {*args.test_styles, *(["strokes"] if args.style == "mixed" else [])} - {main_style}:
        others[style] = build_glyphs(args.seed, progress, style, params)[2:]
    if args.sources != "matplotlib":   # test on the same evaluation alphabets as every other variant
        evaluation = build_glyphs(args.seed, progress, main_style, params)[3]
    if args.style == "mixed":
        if args.sources != "matplotlib":
            raise SystemExit("--style mixed takes the matplotlib sources only")
        background = merge(background, others["strokes"][0], "glyphs, fonts and strokes (background split)")
    alphabets = len({str(n).split("/")[0] for n in data["class_names"]})
    characters = len(data["class_names"])
    per_char = np.bincount(data["targets"])
    renderings = str(per_char[0]) if per_char.min() == per_char.max() else f"{per_char.min()}-{per_char.max()}"
    print(f"glyph build: {build_s:.1f} s for {alphabets} alphabets, {characters} characters, "
          f"{renderings} renderings per character ({len(data['images'])} images)", flush=True)

    metakit.seed_everything(args.seed)
    model = PrototypicalNetwork(Conv4()).to(device)
    sampler = EpisodeSampler(background, **TRAIN, device=device)
    budget = {"steps": args.train_episodes} if args.train_episodes else {"seconds": seconds}
    history = train_episodes(model, sampler, lr=LR, progress=progress, device=device, **budget)
    n_last = min(50, history["steps"])
    last = slice(-n_last, None)
    print(f"training: {TRAIN['n_way']}-way {TRAIN['k_shot']}-shot, {TRAIN['n_query']} queries per class, "
          f"rotations={TRAIN['rotations']}, Adam lr={LR:g} on {describe(background)}, for {history['seconds']:.0f} s "
          f"on {device}: {history['steps']} episodes, last {n_last} episodes loss "
          f"{np.mean(history['loss'][last]):.3f} acc {np.mean(history['acc'][last]):.3f}", flush=True)

    omniglot_path = metakit.shared_omniglot_path()
    test_sets = {"glyph": evaluation}
    for style in args.test_styles:
        if style != main_style:
            test_sets[f"glyph{style}"] = others[style][1]
    if args.no_omniglot:
        omniglot_path = None
    if omniglot_path is None:
        print("omniglot: no shared Omniglot subset found (shared/data/omniglot or $METAKIT_OMNIGLOT); "
              "skipped, reported as nan")
    else:
        test_sets["omniglot"] = metakit.load_image_folder(omniglot_path, name=f"omniglot ({omniglot_path.stem})")
    # The reference in the same run: nearest class mean on raw pixels (a prototypical network
    # whose backbone is the identity), on the very same test episodes.
    pixels = PrototypicalNetwork(torch.nn.Flatten()).to(device)
    results, baseline = {}, {}
    names = [*test_sets] + ([] if "omniglot" in test_sets else ["omniglot"])
    for name in names:
        for key, episode in TESTS.items():
            if name not in test_sets:
                results[f"{name}_{key}"] = baseline[f"{name}_{key}"] = (math.nan, math.nan)
                continue
            for model_, out in ((model, results), (pixels, baseline)):
                metakit.seed_everything(args.seed)  # the same test episodes whatever was trained
                test_sampler = EpisodeSampler(test_sets[name], **episode, device=device)
                out[f"{name}_{key}"] = evaluate(model_, test_sampler, episodes=episodes, progress=progress)

    print(f"\ntest accuracy over {episodes} episodes, mean +- 95% interval "
          f"(1-shot; {TESTS['5w1s']['n_query']} queries per class for 5-way, {TESTS['20w1s']['n_query']} for 20-way):")
    labels = {name: describe(test_sets[name]) if name in test_sets else f"{name} (not found)"
              for name in names}
    width = max(len(label) for label in labels.values())
    print(f"{'test set':<{width}}  {'5-way 1-shot':>16}  {'20-way 1-shot':>16}")
    for name, label in labels.items():
        cells = [f"{m:.4f} +- {ci:.4f}" for m, ci in (results[f"{name}_{k}"] for k in TESTS)]
        print(f"{label:<{width}}  {cells[0]:>16}  {cells[1]:>16}")
    print(f"\nreferences, same episodes: nearest class mean on raw pixels; Snell et al. (2017) on full Omniglot")
    wide = width + len("pixels, ")
    print(f"{'':<{wide}}  {'5-way 1-shot':>16}  {'20-way 1-shot':>16}")
    for name, label in labels.items():
        cells = [f"{baseline[f'{name}_{k}'][0]:.4f} (x{results[f'{name}_{k}'][0] / baseline[f'{name}_{k}'][0]:.2f})"
                 for k in TESTS]
        print(f"{'pixels, ' + label:<{wide}}  {cells[0]:>16}  {cells[1]:>16}")
    cells = [f"{PAPER[k]:.4f} (x{results[f'omniglot_{k}'][0] / PAPER[k]:.2f})" for k in TESTS]
    print(f"{'paper, Omniglot test split':<{wide}}  {cells[0]:>16}  {cells[1]:>16}")
    print("(xR: our prototypical network's accuracy on that test set divided by the reference's;"
          " for the paper, ours on real Omniglot)")
    print(f"\ntotal time {time.perf_counter() - total_start:.0f} s")
    accs = " ".join(f"{k}={m:.4f}" for k, (m, _) in results.items())
    extra = ""  # the default run's line keeps its keys; a variant's adds what it was
    if args.style != "fonts" or params or args.sources != "matplotlib" or args.test_styles or args.train_episodes:
        style = args.style + "".join(f",{k}={v:g}" for k, v in params.items()) + (
            f",sources={args.sources}" if args.sources != "matplotlib" else "")
        extra = f" style={style} episodes={history['steps']}"
    print(f"RESULT build_s={build_s:.1f} alphabets={alphabets} characters={characters} {accs}{extra}")


if __name__ == "__main__":
    main()
