import math
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "maml_speed.py"


def test_maml_speed_quick_prints_a_result_line():
    proc = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), proc.stdout[-3000:]
    result = {key: float(value) for key, value in (item.split("=", 1) for item in last.split()[1:])}
    assert list(result) == ["mlp_speedup", "conv_speedup", "max_rel_grad_diff"]
    assert result["mlp_speedup"] > 0 and result["conv_speedup"] > 0
    # the same meta-gradients as learn2learn up to float32 round-off, whatever the speed (2.4e-6 in quick
    # mode on CPU, 4.5e-4 in full mode; 1e-3 leaves room for a GPU's TF32 convolutions)
    assert math.isfinite(result["max_rel_grad_diff"]) and result["max_rel_grad_diff"] < 1e-3
    assert "learn2learn" in proc.stdout and "metakit vmap" in proc.stdout
