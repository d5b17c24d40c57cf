"""Pieces several test modules need (pytest puts tests/ on sys.path, so ``from helpers import ...``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from metakit.datasets import SinusoidTasks, load_image_folder, shared_omniglot_path
from metakit.episodes import import_learn2learn
from metakit.models import Conv4


def random_episode(n_way, k_shot, n_query, seed=0):
    """Random 28x28 images with labels in support order: (x_support, y_support, x_query)."""
    g = torch.Generator().manual_seed(seed)
    x_support = torch.rand(n_way * k_shot, 1, 28, 28, generator=g)
    y_support = torch.arange(n_way).repeat_interleave(k_shot)
    x_query = torch.rand(n_way * n_query, 1, 28, 28, generator=g)
    return x_support, y_support, x_query


def sine_tasks(tasks=4, k_shot=10, n_query=10, seed=0):
    """A batch of sinusoid tasks ``(x_support, y_support, x_query, y_query)``, each (T, N, 1)."""
    return SinusoidTasks().sample(tasks, k_shot, n_query, generator=torch.Generator().manual_seed(seed))[:4]


def image_tasks(tasks=2, n_way=5, k_shot=1, n_query=1, seed=0):
    """A batch of random-image classification tasks ``(x_support, y_support, x_query, y_query)``."""
    g = torch.Generator().manual_seed(seed)
    x_support = torch.rand(tasks, n_way * k_shot, 1, 28, 28, generator=g)
    x_query = torch.rand(tasks, n_way * n_query, 1, 28, 28, generator=g)
    labels = lambda per: torch.arange(n_way).repeat_interleave(per).expand(tasks, -1)  # noqa: E731
    return x_support, labels(k_shot), x_query, labels(n_query)


def tiny_conv4(seed=0):
    """A 4-channel Conv-4 with a 5-way head and batch-statistics BatchNorm, seeded."""
    torch.manual_seed(seed)
    return Conv4(hidden=4, out_features=5, track_running_stats=False)


def learn2learn_meta_loss(model, tasks, *, inner_lr, steps, first_order, loss_fn):
    """The reference: learn2learn's MAML wrapper, one clone per task, adapt() per inner step."""
    l2l = import_learn2learn()
    maml = l2l.algorithms.MAML(model, lr=inner_lr, first_order=first_order)
    total = 0.0
    for x_support, y_support, x_query, y_query in zip(*tasks):
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(loss_fn(learner(x_support), y_support))
        total = total + loss_fn(learner(x_query), y_query)
    return total / len(tasks[0])


def central_difference(loss, param, direction, eps):
    """``(loss(param + eps d) - loss(param - eps d)) / 2 eps``, moving ``param`` in place and back:
    the slope of ``loss()`` along ``direction``, to check a gradient against."""
    with torch.no_grad():
        param += eps * direction
    up = loss().item()
    with torch.no_grad():
        param -= 2 * eps * direction
    down = loss().item()
    with torch.no_grad():
        param += eps * direction
    return (up - down) / (2 * eps)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_quick(script: str, *args: str) -> tuple[str, dict]:
    """Run ``benchmarks/<script> --quick --no-progress *args``; return its stdout and parsed RESULT line."""
    proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--quick", "--no-progress", *args],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), proc.stdout[-3000:]
    return proc.stdout, dict(item.split("=", 1) for item in last.split()[1:])


def required(flag: str) -> bool:
    """Whether a test that lacks something must fail rather than skip: in CI (``CI`` set to a true
    value, as CI services and `.ci/run` set it) or when the suite's own ``flag`` is set to 1."""
    return any(os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no") for name in ("CI", flag))


def skip_or_fail(reason: str, flag: str):
    """Skip with ``reason`` on a developer's machine; fail with it where :func:`required` says so."""
    if required(flag):
        pytest.fail(f"{reason} (in CI, or with {flag}=1, this test may not skip)")
    pytest.skip(reason)


def shared_omniglot():
    """The real Omniglot subset of ../shared, loaded; skips without it (fails in CI)."""
    path = shared_omniglot_path()
    if path is None:
        skip_or_fail("the real Omniglot subset (../shared/data/omniglot/images_background_small1.zip) is not here",
                     "METAKIT_SHARED_REQUIRED")
    return load_image_folder(path)


def assert_falls_back(check, wrong, reference, capsys, words: str = "") -> str:
    """An exercise check given a wrong answer: it returns the reference for the rest of the notebook
    and prints "not yet", ``words`` (what names the mistake), a hint, and that the reference takes over."""
    assert check(wrong) is reference  # the notebook goes on with the reference
    out = capsys.readouterr().out
    assert "not yet" in out and words in out and "Hint:" in out and "reference" in out, out
    return out


def small_glyph_builds(monkeypatch, alphabets) -> list:
    """Make ``metakit.glyphs.build`` draw only ``alphabets``, 2 renderings each, quietly (seconds,
    not a full build); returns the list it fills with each call's ``seed``, ``style`` and ``params``."""
    from metakit import glyphs

    real, calls = glyphs.build, []

    def build(seed=0, progress=True, style="fonts", params=None, sources="matplotlib"):
        calls.append({"seed": seed, "style": style, "params": params})
        return real(seed=seed, renderings=2, alphabets=list(alphabets), progress=False, style=style, params=params,
                    sources=sources)

    monkeypatch.setattr(glyphs, "build", build)
    return calls
