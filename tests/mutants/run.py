"""Mutation testing of the core algorithm modules with mutmut 3, each module against its own fast tests.

    python tests/mutants/run.py                   # every module in MODULES, one after the other
    python tests/mutants/run.py continual/methods # only the modules whose path contains this

Each module runs in its own scratch copy of the project (``.cache/mutants/<module>/``), so the
work tree is never touched and each run mutates one file and runs only the tests chosen for it
(mutmut further narrows them to the tests that call the mutated function). One worker: the
machine is shared. Prints a line per module and a table at the end:

    module  killed  survived  timeout  no-tests  score

score = killed (timeouts count as killed) / (all mutants but "no tests" and "skipped"). The
survivors are listed in ``.cache/mutants/<module>/survivors.txt`` (``mutmut show <name>`` there
prints each diff); tests/mutants/README.md argues the ones left alive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".cache" / "mutants"

#: core module -> its fast tests (pytest node ids or files); slow trainings deselected with -k
MODULES = {
    "metakit/continual/methods.py": ["tests/continual/test_stream_and_methods.py"],
    "metakit/gan/dcgan.py": ["tests/gan/test_dcgan.py"],
    "metakit/metric/protonet.py": ["tests/metric/test_protonet.py"],
    "metakit/metric/matching.py": ["tests/metric/test_matching.py"],
    "metakit/metric/metaoptnet.py": ["tests/metric/test_metaoptnet.py"],
    "metakit/stats.py": ["tests/test_stats.py"],
    "metakit/gradient/reptile.py": ["tests/gradient/test_algorithms.py"],
    "metakit/gradient/anil.py": ["tests/gradient/test_algorithms.py"],
    "metakit/gradient/metasgd.py": ["tests/gradient/test_algorithms.py"],
    "metakit/gradient/mamlpp.py": ["tests/gradient/test_algorithms.py"],
    "metakit/gradient/functional.py": ["tests/gradient/test_functional.py"],
    "metakit/continual/oml.py": ["tests/continual/test_oml.py"],
    "metakit/gan/dagan.py": ["tests/gan/test_dagan.py"],
    "metakit/meta_augmentation/learned.py": ["tests/meta_augmentation/test_learned.py"],
    "metakit/meta_augmentation/nme.py": ["tests/meta_augmentation/test_nme.py"],
    "metakit/episodes.py": ["tests/test_episodes.py"],
    "metakit/gradient/maml.py": ["tests/gradient/test_algorithms.py"],
    "metakit/gradient/vmap_batchnorm.py": ["tests/gradient/test_functional.py"],
    "metakit/continual/stream.py": ["tests/continual/test_stream_and_methods.py"],
    "metakit/transfer/finetune.py": ["tests/transfer/test_finetune.py"],
}

#: tests left out of a module's run: they start the benchmarks as scripts, which the scratch copy lacks
#: (and which would import the unmutated package)
DESELECT = {
    "metakit/meta_augmentation/nme.py": [
        "tests/meta_augmentation/test_nme.py::test_quick_benchmark_prints_the_result_line"],
    "metakit/transfer/finetune.py": ["tests/transfer/test_finetune.py::test_quick_benchmark"],
}

KILLED = {1, 3, 36, 24, -24, 152, 255}   # test failure, pytest internal error, timeouts (mutmut's codes)
NOT_COUNTED = {33, 5, 34}                # no test reaches the mutant, or mutmut skipped it


def run_module(module: str, tests: list[str]) -> dict:
    name = module.removeprefix("metakit/").removesuffix(".py").replace("/", ".")
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "metakit", work / "metakit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__", "browser"))
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")   # pytest's settings (no [tool.mutmut] there)
    (work / "mutants").mkdir()
    # data/checkpoints sits next to the package: a copy, since a mutant may write where it should not
    shutil.copytree(ROOT / "data" / "checkpoints", work / "mutants" / "data" / "checkpoints")
    (work / "setup.cfg").write_text("[mutmut]\nsource_paths = metakit\n"
                                    f"only_mutate = {module}\n"
                                    "pytest_add_cli_args =\n    -pno:cacheprovider\n    -q\n"   # one argument a line
                                    + "".join(f"    --deselect={t}\n" for t in DESELECT.get(module, []))
                                    + "pytest_add_cli_args_test_selection =\n"
                                    + "".join(f"    {t}\n" for t in tests))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "agg", "METAKIT_QUICK": "1",
           "METAKIT_DATA": os.environ.get("METAKIT_DATA", str(ROOT / "data"))}
    omniglot = ROOT.parent / "shared" / "data" / "omniglot" / "images_background_small1.zip"
    if "METAKIT_OMNIGLOT" not in env and omniglot.exists():   # the scratch copy has no ../shared beside it
        env["METAKIT_OMNIGLOT"] = str(omniglot)
    env.pop("PYTHONPATH", None) if os.environ.get("MUTANTS_KEEP_PYTHONPATH") is None else None
    if os.environ.get("MUTMUT_PATH"):
        env["PYTHONPATH"] = os.environ["MUTMUT_PATH"]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "1"], cwd=work, env=env,
                          capture_output=True, text=True)
    (work / "mutmut.log").write_text(proc.stdout + proc.stderr)
    codes = {}
    for meta in (work / "mutants").rglob("*.meta"):
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    counted = {k: c for k, c in codes.items() if c not in NOT_COUNTED}
    killed = [k for k, c in counted.items() if c in KILLED]
    survived = sorted(k for k, c in counted.items() if c not in KILLED)
    (work / "survivors.txt").write_text("".join(f"{k} {counted[k]}\n" for k in survived))
    return {"module": module, "mutants": len(codes), "killed": len(killed), "survived": len(survived),
            "no_tests": len(codes) - len(counted), "score": len(killed) / len(counted) if counted else float("nan"),
            "minutes": (time.perf_counter() - start) / 60, "ok": proc.returncode == 0 and bool(codes)}


def main(argv: list[str]) -> int:
    chosen = [m for m in MODULES if not argv or any(a in m for a in argv)]
    rows = []
    for module in chosen:
        row = run_module(module, MODULES[module])
        rows.append(row)
        print(f"{row['module']}: score {row['score']:.2f} ({row['killed']}/{row['killed'] + row['survived']} killed, "
              f"{row['no_tests']} reached by no test, {row['minutes']:.1f} min)"
              + ("" if row["ok"] else "  [mutmut failed: see its mutmut.log]"), flush=True)
    print(f"\n{'module':45s} {'killed':>6s} {'survived':>8s} {'no-tests':>8s} {'score':>6s}")
    for r in rows:
        print(f"{r['module']:45s} {r['killed']:6d} {r['survived']:8d} {r['no_tests']:8d} {r['score']:6.2f}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
