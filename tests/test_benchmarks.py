import importlib.util
import math
import subprocess
import sys

import pytest
from helpers import BENCHMARKS, required, run_quick

import metakit

# NaN only where the real Omniglot subset (../shared) is missing, and never in CI
OMNIGLOT_MAY_BE_NAN = not required("METAKIT_SHARED_REQUIRED")


def check_accuracy(key, value):
    value = float(value)
    if math.isnan(value):
        assert "omniglot" in key and OMNIGLOT_MAY_BE_NAN, (key, value)
    else:
        assert 0.0 <= value <= 1.0, (key, value)

KEYS = ["build_s", "alphabets", "characters", "glyph_5w1s", "glyph_20w1s", "omniglot_5w1s", "omniglot_20w1s"]


def test_glyph_benchmark_quick_prints_a_result_line():
    # one test for the whole script: its fresh glyph build alone takes most of a minute
    stdout, result = run_quick("glyphs.py")
    assert list(result) == KEYS and f"device: {metakit.device()}" in stdout.splitlines()
    assert float(result["build_s"]) > 0
    assert int(result["alphabets"]) > 0 and int(result["characters"]) > 0
    for key in KEYS[3:]:
        check_accuracy(key, result[key])


def test_metric_benchmark_quick_prints_a_result_line():
    stdout, result = run_quick("metric.py")
    assert list(result) == ["proto_5w1s", "proto_20w1s", "matching_5w1s", "metaopt_5w1s", "proto_omniglot_20w1s"]
    for key, value in result.items():
        check_accuracy(key, value)
    assert "5w5s" in stdout and "ms/episode" in stdout and f"device: {metakit.device()}" in stdout.splitlines()


def test_maml_family_benchmark_quick_prints_a_result_line():
    stdout, result = run_quick("maml_family.py", "--only", "maml,anil", "--episodes", "4")
    assert list(result) == ["maml_5w1s", "fomaml_5w1s", "reptile_5w1s", "anil_5w1s", "metasgd_5w1s", "mamlpp_5w1s",
                            "maml_target_5w1s", "target_cpu_s"]
    assert 0 <= float(result["maml_5w1s"]) <= 1 and math.isnan(float(result["reptile_5w1s"]))  # not run
    assert 0 <= float(result["maml_target_5w1s"]) <= 1 and float(result["target_cpu_s"]) >= 3
    assert "meta-its" in stdout and "target run: MAML" in stdout
    assert f"device: {metakit.device()}" in stdout.splitlines()


def test_fomaml_benchmark_quick_prints_a_result_line():
    stdout, result = run_quick("fomaml.py")
    assert list(result) == ["maml", "fomaml", "fomaml_5steps", "fomaml_3x", "gap_task_fresh", "gap_batch_fresh",
                            "gap_task_trained", "gap_batch_trained"]
    for key in ("maml", "fomaml", "fomaml_5steps", "fomaml_3x"):
        check_accuracy(key, result[key])
    for key in ("gap_task_fresh", "gap_batch_fresh", "gap_task_trained", "gap_batch_trained"):
        assert 0 < float(result[key]) < 10, (key, result[key])  # FOMAML differs from MAML, by a finite amount
    assert "fomaml_3x      15 meta-iterations" in stdout and f"device: {metakit.device()}" in stdout.splitlines()


def test_continual_benchmark_quick_prints_a_result_line():
    stdout, result = run_quick("continual.py")
    assert list(result) == ["naive_acc", "ewc_acc", "replay_acc", "gem_acc", "agem_acc", "gem_bwt",
                            "ewc_best_acc", "ewc_best_lambda", "ewc_diverged", "oml_100", "anml_100", "pretrain_100"]
    lam, diverged = result.pop("ewc_best_lambda"), result.pop("ewc_diverged")
    for key, value in result.items():
        assert -1.0 <= float(value) <= 1.0, (key, value)
    assert float(lam) in (1, 3, 10, 15, 30, 100) and float(diverged) in range(0, 11)
    assert "EWC's strength (lambda = 0 is naive fine-tuning)" in stdout
    for name in ("naive", "ewc", "replay", "gem", "agem", "oml", "anml", "pretrain"):
        assert f"\n{name} " in stdout
    assert f"device: {metakit.device()}" in stdout.splitlines()


def test_distributed_benchmark_quick_prints_a_result_line():
    stdout, result = run_quick("distributed.py", "--steps", "2", "--hidden", "8")
    assert list(result) == ["its_1x1", "its_2x1", "ratio", "cpu_ratio", "grad_max_diff"]
    assert all(float(result[k]) > 0 for k in ("its_1x1", "its_2x1", "ratio", "cpu_ratio"))
    assert float(result["grad_max_diff"]) < 1e-10
    assert "2 process(es) x 1 thread" in stdout and "load average" in stdout


def load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SEED_KEYS = [f"{gap}_{s}{ci}" for gap in ("anil_minus_maml", "aug_learned_minus_none", "proto_minus_baseline")
             for s in ("glyphs", "omniglot") for ci in ("", "_ci")]


def test_seeds_benchmark_quick_runs_one_gap_over_two_seeds():
    stdout, result = run_quick("seeds.py", "--gaps", "aug", "--seeds", "0,1", "--episodes", "2",
                               "--seconds-scale", "0.2")
    assert list(result) == SEED_KEYS
    assert -1 <= float(result["aug_learned_minus_none_glyphs"]) <= 1
    assert float(result["aug_learned_minus_none_glyphs_ci"]) >= 0  # two seeds: a (wide) t interval
    assert all(math.isnan(float(v)) for k, v in result.items() if not k.startswith("aug"))  # gaps not run
    assert "per seed (aug):" in stdout and "over 2 seeds (aug):" in stdout and "learned - none" in stdout


def test_seed_tables_from_fake_figures():
    seeds = load_benchmark("seeds")
    rows = {0: {("glyphs", "5w1s"): (0.90, 0.95)}, 1: {("glyphs", "5w1s"): (0.92, 0.96)},
            2: {("glyphs", "5w1s"): (0.94, 0.97)}}
    summary = seeds.summaries(rows)
    r = summary["glyphs", "5w1s"]
    assert r["a_mean"] == pytest.approx(0.92) and r["a_range"] == pytest.approx(0.04)
    assert r["diff"] == pytest.approx(0.04) and r["excludes_zero"]  # +0.05, +0.04, +0.03: told apart
    per_seed = seeds.format_seeds("anil", rows)
    assert "maml" in per_seed.splitlines()[0] and "+0.0500" in per_seed and len(per_seed.splitlines()) == 4
    assert "told apart (interval excludes 0)" in seeds.format_summary("anil", summary, 3)
    figures = seeds.result_figures("anil", summary)
    assert figures["anil_minus_maml_glyphs"] == pytest.approx(0.04) and math.isnan(figures["anil_minus_maml_omniglot"])
    one = seeds.summaries({0: rows[0]})
    assert "interval none" in seeds.format_summary("anil", one, 1)


def test_seeds_benchmark_rejects_an_unknown_gap():
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "seeds.py"), "--gaps", "anil,maml"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown maml" in proc.stderr


def test_gpu_check_only_rejects_a_part_it_does_not_have():
    # --only splits a GPU run across processes; a misspelt part must not silently run nothing
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--no-train",
                           "--notebooks", "01", "--only", "nb01,nb02,determinsm"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "nb02, determinsm not among this run's parts" in proc.stderr and "nb01" in proc.stderr
