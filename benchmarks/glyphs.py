"""Benchmark: build the glyph dataset from scratch, train a prototypical network on it, and test it
on unseen glyph alphabets and on real Omniglot (metakit.metric.handwriting holds the experiment).

    python benchmarks/glyphs.py                         # 120 s of training, 600 test episodes
    python benchmarks/glyphs.py --quick                 # 5 s of training, 20 test episodes
    python benchmarks/glyphs.py --train-episodes 1500 --style strokes --test-styles fonts strokes

--train-episodes fixes the training budget in episodes (fair between variants on a shared CPU);
--style picks the training glyphs' generator (fonts: the default data; strokes; mixed: both).
--train-augment deforms every training image afresh (domain randomisation; the tests are never deformed).
The last line printed is ``RESULT key=value ...``.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import metakit  # noqa: E402
from metakit.glyphs import SOURCES, STROKE_PARAMS, STYLES_OF_DRAWING  # noqa: E402
from metakit.metric.handwriting import format_report, fresh_build, handwriting_experiment, merge  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, help="training budget (default 120, 5 with --quick)")
    p.add_argument("--train-episodes", type=int, help="train for this many episodes instead of --seconds")
    p.add_argument("--episodes", type=int, help="test episodes (default 600, 20 with --quick)")
    p.add_argument("--style", default="fonts", choices=(*STYLES_OF_DRAWING, "mixed"))
    p.add_argument("--stroke-param", action="append", default=[], metavar="KEY=VALUE",
                   help=f"one of {list(STROKE_PARAMS)}")
    p.add_argument("--sources", default="matplotlib", choices=SOURCES)
    p.add_argument("--test-styles", nargs="*", default=[], choices=STYLES_OF_DRAWING)
    p.add_argument("--train-augment", type=float, default=0.0, metavar="STRENGTH",
                   help="deform every training image (rotation, scale, shear, shift, pen width) with notebook 06's "
                        "hand-set magnitudes times STRENGTH (default 0: none)")
    p.add_argument("--no-omniglot", action="store_true", help="skip the real handwriting")
    p.add_argument("--device", help="cpu, cuda, mps (default: metakit.device(), which reads $METAKIT_DEVICE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    params = {k: float(v) for k, _, v in (s.partition("=") for s in a.stroke_param)}
    if set(params) - set(STROKE_PARAMS) or (a.style == "mixed" and a.sources != "matplotlib"):
        p.error(f"--stroke-param keys are {list(STROKE_PARAMS)}; --style mixed takes the matplotlib sources only")
    seconds = a.seconds or (5.0 if a.quick else 120.0)
    episodes, progress, start = a.episodes or (20 if a.quick else 600), not a.no_progress, time.perf_counter()
    device = metakit.device(a.device)
    print(f"device: {device}")

    main_style = "fonts" if a.style == "mixed" else a.style
    build_s, data, background, evaluation = fresh_build(a.seed, main_style, params, a.sources, progress)
    others = {s: fresh_build(a.seed, s, params, progress=progress)[2:]
              for s in {*a.test_styles, *(["strokes"] if a.style == "mixed" else [])} - {main_style}}
    if a.sources != "matplotlib":  # test on the same evaluation alphabets as every other variant
        evaluation = fresh_build(a.seed, main_style, params, progress=progress)[3]
    if a.style == "mixed":
        background = merge(background, others["strokes"][0], "glyphs, fonts and strokes (background split)")
    counts = np.bincount(data["targets"])
    alphabets, characters = len({str(n).split("/")[0] for n in data["class_names"]}), len(data["class_names"])
    print(f"glyph build: {build_s:.1f} s, {alphabets} alphabets, {characters} characters, "
          f"{counts.min()}-{counts.max()} renderings each", flush=True)
    path = None if a.no_omniglot else metakit.shared_omniglot_path()
    test_sets = {"glyph": evaluation, **{f"glyph{s}": others[s][1] for s in a.test_styles if s != main_style},
                 "omniglot": metakit.load_image_folder(path, name=f"omniglot ({path.stem})") if path else None}
    budget = {"steps": a.train_episodes} if a.train_episodes else {"seconds": seconds}
    result = handwriting_experiment(background, test_sets, **budget, episodes=episodes, seed=a.seed,
                                    device=device, progress=progress, augment=a.train_augment)
    print(format_report(result, test_sets, episodes))
    print(f"\ntotal time {time.perf_counter() - start:.0f} s")
    accs = " ".join(f"{k}={m:.4f}" for k, (m, _) in result["ours"].items())
    variant = (a.style != "fonts" or params or a.sources != "matplotlib" or a.test_styles or a.train_episodes
               or a.train_augment)
    extra = (f" style={a.style}{''.join(f',{k}={v:g}' for k, v in params.items())}"
             f"{',sources=' + a.sources if a.sources != 'matplotlib' else ''}"
             + (f",train_augment={a.train_augment:g}" if a.train_augment else "")
             + f" episodes={result['history']['steps']}")
    print(f"RESULT build_s={build_s:.1f} alphabets={alphabets} characters={characters} "
          f"{accs}{extra if variant else ''}")


if __name__ == "__main__":
    main()
