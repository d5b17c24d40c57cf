"""``python -m metakit.train``: the command line (see the package docstring for examples)."""

from __future__ import annotations

import argparse
import sys

import torch

from ..gradient.family import FAMILY
from ..metric.experiments import METHODS
from . import distributed
from .run import DATA, DTYPES, Config, train


def _number(kind, least, what):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value >= least:
            raise argparse.ArgumentTypeError(f"{text} is not {what}")
        return value
    return parse


positive = _number(int, 1, "a whole number >= 1")
count = _number(int, 0, "a whole number >= 0")
rate = _number(float, 1e-300, "a positive number")
duration = _number(float, 0.0, "a number of seconds >= 0")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m metakit.train", description=(
        "Meta-train a MAML-family algorithm or a metric method, in one process or several "
        "(torchrun --nproc_per_node N -m metakit.train ...), and write a checkpoint the notebooks load."))
    commands = top.add_subparsers(dest="command", required=True, metavar="{family,metric}")
    fam = commands.add_parser("family", help="MAML, FOMAML, ANIL, Meta-SGD, MAML++, Reptile (notebook 03)",
                              description="Options left out take notebook 03's settings (metakit.gradient.family): "
                              "5-way 1-shot episodes with 5 queries per class, 4 tasks per meta-iteration, Adam 1e-3.")
    fam.add_argument("--algorithm", required=True, choices=list(FAMILY))
    fam.add_argument("--meta-batch-size", type=positive, help="tasks per meta-iteration, shared by the processes "
                     "(default 4; the papers use 32)")
    fam.add_argument("--meta-lr", type=rate, help="Adam's rate for the outer update (default 1e-3)")
    fam.add_argument("--inner-lr", type=rate, help="the inner step size (default: the algorithm's in the family)")
    fam.add_argument("--inner-steps", type=count, help="inner steps (default: the algorithm's in the family)")
    met = commands.add_parser("metric", help="prototypical or matching networks, MetaOptNet (notebook 04)",
                              description="Options left out take notebook 04's settings (metakit.metric.experiments): "
                              "40-way 1-shot episodes with 2 queries per class and rotations (MetaOptNet 20-way, 5 "
                              "queries), Adam 1e-3.")
    met.add_argument("--method", required=True, choices=list(METHODS))
    met.add_argument("--episodes", type=positive, help="episodes per step, shared by the processes "
                     "(default: one per process)")
    met.add_argument("--lr", type=rate, help="Adam's rate (default 1e-3)")
    for sub in (fam, met):
        data = sub.add_argument_group("data and episodes")
        data.add_argument("--data", choices=DATA, help="the kit's glyphs (default), Omniglot in "
                          "torchvision's layout under --root, or any folder/.zip of <alphabet>/<character>/*.png")
        data.add_argument("--root", help="where the data is (--data omniglot or folder)")
        data.add_argument("--eval-root", help="a second folder to test on (--data folder)")
        data.add_argument("--n-way", type=positive)
        data.add_argument("--k-shot", type=positive)
        data.add_argument("--n-query", type=positive, help="queries per class in training episodes")
        data.add_argument("--rotations", action=argparse.BooleanOptionalAction, default=None,
                          help="each class rotated by 90, 180, 270 degrees as new classes")
        run = sub.add_argument_group("run")
        run.add_argument("--steps", type=count, help="steps (meta-iterations) of the whole run; a resumed run "
                         "counts on")
        run.add_argument("--seconds", type=duration, help="wall-clock seconds for this invocation")
        run.add_argument("--hidden", type=positive, help="Conv-4 channels (default 64)")
        run.add_argument("--dtype", choices=list(DTYPES), help="float32 (default) or float64")
        run.add_argument("--seed", type=int, help="the initial weights' and the tasks' seed (default 0)")
        run.add_argument("--out", help="the checkpoint (default artifacts/<command>-<name>.pt)")
        run.add_argument("--resume", action="store_true", help="continue the run saved at --out")
        run.add_argument("--save-every", type=count, default=100, help="steps between checkpoints (0: at the end)")
        run.add_argument("--eval-episodes", type=count, default=100, help="test episodes at the end (0: none)")
        run.add_argument("--threads", type=positive, help="torch CPU threads per process")
        run.add_argument("--no-progress", action="store_true")
    return top


def config(args: argparse.Namespace) -> Config:
    family = args.command == "family"
    return Config(kind=args.command, name=args.algorithm if family else args.method, data=args.data, root=args.root,
                  eval_root=args.eval_root, n_way=args.n_way, k_shot=args.k_shot, n_query=args.n_query,
                  rotations=args.rotations, batch=args.meta_batch_size if family else args.episodes,
                  lr=args.meta_lr if family else args.lr, inner_lr=getattr(args, "inner_lr", None),
                  inner_steps=getattr(args, "inner_steps", None), hidden=args.hidden, dtype=args.dtype,
                  seed=args.seed, steps=args.steps, seconds=args.seconds, out=args.out, resume=args.resume,
                  save_every=args.save_every, eval_episodes=args.eval_episodes, progress=not args.no_progress)


def main(argv=None) -> int:
    """Parse ``argv``, train, return the exit status: 0, or 2 after printing what was wrong."""
    args = parser().parse_args(argv)
    if args.steps is None and args.seconds is None:
        print(f"python -m metakit.train {args.command}: error: give a budget: --steps N, --seconds S, or both.",
              file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    world = None
    try:
        world = distributed.start()
        train(config(args), world, log=print if world.main else (lambda *a, **k: None))
        return 0
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        if world is None or world.main:
            print(f"python -m metakit.train {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        distributed.stop()
