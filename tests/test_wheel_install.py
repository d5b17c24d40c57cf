"""A normal (non-editable) install: the wheel, installed outside the source tree, imports, finds the
checkpoints and the glyph cache in the user's cache folder (or ``$METAKIT_DATA``), and classifies a
glyph episode with a committed checkpoint, the way notebook 01's code does."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from metakit.checkpoints import checkpoints_dir
from metakit.glyphs import SOURCE_DATA, cache_dir

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys, torch, metakit
from metakit.checkpoints import CHECKPOINTS, load_weights
from metakit.compare import episode_accuracy
from metakit.episodes import EpisodeSampler
from metakit.metric.experiments import make_model
assert metakit.__file__.startswith(sys.argv[1]), metakit.__file__
torch.manual_seed(0)
model = make_model("proto")
load_weights(model, "proto-40way.pt")
model.eval()
sampler = EpisodeSampler(metakit.load_glyphs("evaluation"), n_way=5, k_shot=1, n_query=5)
acc = sum(episode_accuracy(model, *sampler.sample()) for _ in range(5)) / 5
print(f"checkpoints {CHECKPOINTS} accuracy {acc:.2f}")
"""


def test_checkpoints_follow_metakit_data(tmp_path, monkeypatch):
    monkeypatch.setenv("METAKIT_DATA", str(tmp_path))
    assert checkpoints_dir() == SOURCE_DATA / "checkpoints"  # no checkpoints/ there: the checkout's
    (tmp_path / "checkpoints").mkdir()
    assert checkpoints_dir() == tmp_path / "checkpoints" and cache_dir() == tmp_path


def test_wheel_outside_the_source_tree(tmp_path):
    source, wheels, site, home = (tmp_path / d for d in ("source", "wheels", "site", "home"))
    # build from a copy, so that no build/ folder is left in (or reused from) the checkout
    shutil.copytree(ROOT / "metakit", source / "metakit", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", wheels, source], check=True, cwd=tmp_path)
    subprocess.run([*pip, "install", "--no-deps", "--target", site, *wheels.glob("metakit-*.whl")], check=True)
    assert not (site / "data").exists()  # the wheel carries the package only
    # what a user of the wheel does once (README, "Installing"): the checkpoints into the cache folder;
    # the glyph cache is copied too, only to save the test its build time
    cache = home / ".cache" / "metakit"
    shutil.copytree(SOURCE_DATA / "checkpoints", cache / "checkpoints")
    for built in SOURCE_DATA.glob("glyphs-*"):
        shutil.copy(built, cache)
    env = {k: v for k, v in os.environ.items() if k not in ("METAKIT_DATA", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(PYTHONPATH=str(site), HOME=str(home))
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(site)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout.strip().splitlines()[-1]
    assert f"checkpoints {cache / 'checkpoints'} " in out
    assert float(out.split()[-1]) >= 0.6, out
