"""Several processes (gloo on the CPU): the same gradients and the same run as one process."""

import os
import subprocess
import sys

import pytest
import torch

from metakit.train import main
from metakit.train.distributed import World
from metakit.train.experiments import CHECKS, gradient_check


def test_each_process_gets_a_contiguous_share_of_nearly_equal_size():
    for total in (1, 2, 5, 32):
        for size in range(1, total + 1):
            shares = [World(rank, size).share(total) for rank in range(size)]
            assert [i for s in shares for i in s] == list(range(total))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1 and min(map(len, shares)) >= 1


def test_two_processes_compute_one_process_gradients():
    # every family member whose step differs (second order, MAML++'s weighted steps, Reptile's
    # surrogate) and two metric methods, 4 tasks or episodes shared 2 + 2, in float64
    # fork: the children start at once, without importing torch again (spawn is the benchmark's)
    check = gradient_check(names=tuple(CHECKS), processes=2,
                           start_method="fork" if sys.platform == "linux" else "spawn")
    for name, c in check.items():
        assert c["max_diff"] < 1e-10 and c["norm"] > 0.1, (name, c)


def test_a_torchrun_run_equals_a_single_process_run_and_resumes_it(tmp_path):
    # one process: 2 steps; one process 1 step, then resumed for step 2 by 2 processes under torchrun
    argv = ["family", "--algorithm", "maml", "--steps", "2", "--hidden", "4", "--dtype", "float64",
            "--eval-episodes", "0", "--no-progress"]
    assert main([*argv, "--out", str(tmp_path / "one.pt")]) == 0
    assert main([*argv[:3], "--steps", "1", *argv[5:], "--out", str(tmp_path / "two.pt")]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # METAKIT_DEVICE=cpu comes from conftest.py
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "metakit.train", *argv[:5], "--resume", "--eval-episodes", "0", "--no-progress",
                           "--out", str(tmp_path / "two.pt")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("over 2 process(es) on cpu, resumed at step 1") == 1  # only the main process speaks
    one, two = (torch.load(tmp_path / f, weights_only=True) for f in ("one.pt", "two.pt"))
    assert two["step"] == 2 and two["info"]["world_size"] == 2
    assert two["info"]["loss"] == pytest.approx(one["info"]["loss"], abs=1e-12)
    for name, value in one["state_dict"].items():
        # a convolution's bias before BatchNorm has a gradient of exactly zero in exact arithmetic;
        # Adam divides its rounding noise by itself, so only there do the runs differ visibly
        tolerance = 1e-6 if name.endswith(".0.bias") else 1e-12
        assert (value - two["state_dict"][name]).abs().max() < tolerance, name
