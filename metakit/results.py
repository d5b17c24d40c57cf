"""Stored results: an evaluation that takes minutes runs once, and its result ships beside the
checkpoints, so a notebook (and the app) shows the table at once.

A result is stored under a key made of everything it depends on: the source of the cell that asks
for it, the settings the cell passes (episodes, ways, shots...), the weights and plain settings of
the models it evaluates (or the checkpoints it reads), the source of the code that computes it,
the glyph data's version, and the random state the cell starts from. The stored result is used
only when the key matches; otherwise the cell computes, as it always did, and says which part
changed. A stored result also restores the random state the computation left behind, so the cells
after it draw the same episodes as in a run that computed everything. Its Recompute button runs
the same computation again from the same random state, and says whether the numbers agree.

Where results live: the shipped ones in ``data/checkpoints/results/`` (read only); the ones a
learner computes in ``$METAKIT_RESULTS``, else ``$XDG_CACHE_HOME/metakit/results`` or
``~/.cache/metakit/results``. To refresh the shipped ones, run a notebook top to bottom with
``METAKIT_RESULTS`` set to the absolute path of ``data/checkpoints/results`` and
``METAKIT_RECOMPUTE=1`` (data/README.md).

The files are pickles (``torch.save``): load only the kit's own and your own.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import inspect
import json
import linecache
import os
import platform
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import glyphs
from .checkpoints import checkpoint_path, checkpoints_dir

FORMAT = 1   # of the stored files; a new format makes every old file a mismatch
RESULTS_ENV = "METAKIT_RESULTS"
RECOMPUTE_ENV = "METAKIT_RECOMPUTE"


def shipped_dir() -> Path:
    """The stored results that ship with the checkpoints."""
    return checkpoints_dir() / "results"


def user_dir() -> Path:
    """Where results computed here are written: ``$METAKIT_RESULTS``, else the user's cache."""
    env = os.environ.get(RESULTS_ENV, "").strip()
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "metakit" / "results"


# ---------------------------------------------------------------- the key


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    return glyphs._sha256(Path(path))[:16]   # size and mtime only make a changed file a new cache entry


def file_digest(path) -> str:
    """A short hash of a file's bytes (a bare name is a checkpoint in ``data/checkpoints/``)."""
    path = checkpoint_path(path)
    if not path.exists():   # to be made by the computation (a quick run trains its own)
        return "absent"
    st = path.stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def weights_digest(model: torch.nn.Module) -> str:
    """A short hash of a model's weights and buffers (names, shapes, dtypes and values), and of the
    settings its modules keep as plain attributes (an inner learning rate, a number of steps, a mode)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name} {t.dtype} {tuple(t.shape)}".encode())
        h.update(_tensor_bytes(t))
    for name, module in model.named_modules():
        plain = {k: v for k, v in sorted(vars(module).items())
                 if not k.startswith("_") and k != "training" and _is_plain(v)}
        h.update(f"{name} {type(module).__qualname__} {plain!r}".encode())
    return h.hexdigest()[:16]


def _parameters(model: torch.nn.Module) -> dict:
    """``{name: (id, hash of the values)}`` of the learned weights. Training changes a parameter in
    place (same object, new values); fitting a support set may leave a new head behind (a new
    object), which is the last episode's state, not a change of the model."""
    return {name: (id(p), hashlib.sha256(_tensor_bytes(p)).hexdigest()) for name, p in model.named_parameters()}


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    return t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _is_plain(v) -> bool:
    if isinstance(v, (list, tuple)):
        return all(_is_plain(x) for x in v)
    return v is None or isinstance(v, (bool, int, float, str))


def code_digest(obj) -> str:
    """A short hash of the source of a module (a package: all its ``.py`` files), a class or a function."""
    h = hashlib.sha256()
    if inspect.ismodule(obj) and hasattr(obj, "__path__"):
        for file in sorted(Path(next(iter(obj.__path__))).rglob("*.py")):
            h.update(file.name.encode() + file.read_bytes())
    else:
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:16]


def _code_name(obj) -> str:
    if inspect.ismodule(obj):
        return obj.__name__
    return f"{obj.__module__}.{obj.__qualname__}"


def random_state() -> dict:
    """Python's, NumPy's and torch's (CPU) random states."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_random_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def state_digest(state: dict) -> str:
    h = hashlib.sha256()
    h.update(repr(state["python"]).encode())
    numpy_state = state["numpy"]
    h.update(np.asarray(numpy_state[1]).tobytes() + repr(numpy_state[2:]).encode())
    h.update(state["torch"].numpy().tobytes())
    return h.hexdigest()[:16]


def caller_digest(depth: int = 2) -> str:
    """A short hash of the source of the cell (or file) that called: an edited cell is another experiment."""
    filename = sys._getframe(depth).f_code.co_filename
    return hashlib.sha256("".join(linecache.getlines(filename)).encode()).hexdigest()[:16]


def key_parts(settings: dict | None = None, checkpoints=(), code=(), state: dict | None = None,
              models: dict | None = None, cell: str = "") -> dict:
    """What a result depends on, part by part (the key is their hash)."""
    return {
        "format": FORMAT,
        "cell": cell,
        "settings": json.dumps(settings or {}, sort_keys=True, default=str),
        "checkpoints": {Path(str(c)).name: file_digest(c) for c in checkpoints},
        "models": {name: weights_digest(m) for name, m in (models or {}).items()},
        "code": {_code_name(c): code_digest(c) for c in code},
        "data": f"glyphs v{glyphs.VERSION}, strokes v{glyphs.STROKES_VERSION}",
        "random state": state_digest(state if state is not None else random_state()),
    }


def key_of(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def what_changed(old: dict, new: dict) -> str:
    """Which parts of two keys differ, in words."""
    changed = []
    for part in new:
        if old.get(part) == new[part]:
            continue
        if part == "settings":
            a, b = json.loads(old.get(part, "{}")), json.loads(new[part])
            diffs = [f"{k} {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            changed.append("settings (" + ", ".join(diffs) + ")")
        elif isinstance(new[part], dict):
            names = sorted(k for k in set(old.get(part) or {}) | set(new[part])
                           if (old.get(part) or {}).get(k) != new[part].get(k))
            changed.append(f"{part} ({', '.join(names)})")
        else:
            changed.append(part)
    return ", ".join(changed) or "nothing"


# ---------------------------------------------------------------- files


def _path(folder: Path, name: str) -> Path:
    return folder / f"{name}.pt"


def load(name: str) -> list[tuple[Path, dict]]:
    """The stored records called ``name``: the user's first, then the shipped one. A file that cannot
    be read is reported and skipped."""
    found = []
    for folder in dict.fromkeys([user_dir(), shipped_dir()]):
        path = _path(folder, name)
        if not path.exists():
            continue
        try:
            record = torch.load(path, map_location="cpu", weights_only=False)
            if not isinstance(record, dict) or record.get("format") != FORMAT or "value" not in record:
                raise ValueError("not a stored result of this format")
        except Exception as e:  # truncated, corrupted, or from another version
            print(f"The stored result {path} could not be read ({type(e).__name__}: {e}); it is ignored.")
            continue
        found.append((path, record))
    return found


def save(record: dict) -> Path | None:
    """Write a record to :func:`user_dir` atomically; a folder that cannot be written is reported."""
    folder = user_dir()
    path = _path(folder, record["name"])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(record, tmp)
        os.replace(tmp, path)
    except Exception as e:  # a folder that cannot be written, or a value that cannot be pickled
        print(f"Could not store the result in {folder} ({type(e).__name__}: {e}); it is shown but will be "
              "computed again next time.")
        return None
    return path


# ---------------------------------------------------------------- the one entry point


def _compute(name: str, compute, parts: dict, state_before: dict) -> dict:
    start = time.perf_counter()
    value = compute()
    return {"format": FORMAT, "name": name, "key": key_of(parts), "parts": parts, "value": value,
            "random_before": state_before, "random_after": random_state(),
            "seconds": time.perf_counter() - start,
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.system()} {platform.machine()}, torch {torch.__version__}, "
                       f"{torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)}"}


def _compute_and_store(name: str, compute, parts: dict, state_before: dict, models: dict | None) -> tuple[dict, list]:
    """Compute, and store the result unless the computation changed some model's learned weights in
    place: a stored result could not stand in for it, since the cells below would see other weights.
    Returns the record and the names of the models whose weights changed."""
    before = {m: _parameters(model) for m, model in (models or {}).items()}
    record = _compute(name, compute, parts, state_before)
    changed = [m for m, model in (models or {}).items()
               if any(before[m].get(k, (None,))[0] == v[0] and before[m][k][1] != v[1]
                      for k, v in _parameters(model).items())]
    if changed:
        print(f"The computation changed the learned weights of {', '.join(changed)}, so its result is not stored.")
    else:
        save(record)
    return record, changed


def describe(record: dict) -> str:
    minutes = record["seconds"] / 60
    took = f"{minutes:.0f} min" if minutes >= 1 else f"{record['seconds']:.0f} s"
    return f"computed {record['when'][:10]} in {took} ({record['machine']})"


def same(a, b) -> bool:
    """Whether two results hold the same numbers, exactly (containers compared element by element)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b, equal_nan=True)
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def stored(name: str, compute, *, settings: dict | None = None, models: dict | None = None, checkpoints=(),
           code=(), show=None, refresh: bool = False):
    """``compute()``'s result: the stored one when its key matches, else computed now and stored.
    A stored result is announced with where it came from and a Recompute button.

    Args:
        name: the result's file name, for example ``"04-metric-table"``.
        compute: a function of no arguments that computes the result (it may draw random numbers).
        settings: everything else the result depends on that a learner can change (episodes,
            ways, shots, test sets), as JSON-able values.
        models: the networks it evaluates, by name; their weights are part of the key (whether they
            were loaded from a checkpoint or trained in this session).
        checkpoints: checkpoint files it reads itself (bare names are in data/checkpoints/).
        code: the modules, classes or functions whose source the result depends on.
        show: ``show(value)`` displays the result (prints the table, draws the figure), the stored
            one or the computed one, and again after Recompute.
        refresh: compute even when a stored result matches (also ``METAKIT_RECOMPUTE=1``).
    Returns:
        The result, as ``compute()`` returned it.
    """
    state = random_state()
    parts = key_parts(settings, checkpoints, code, state, models, cell=caller_digest())
    key = key_of(parts)
    refresh = refresh or os.environ.get(RECOMPUTE_ENV, "").strip() not in ("", "0")
    records = [] if refresh else load(name)
    match = next((r for _, r in records if r.get("key") == key), None)
    if match is not None:
        set_random_state(match["random_after"])   # as if it had just been computed
        if show is not None:
            show(match["value"])
        _recompute_button(name, compute, parts, match, show, models)
        return match["value"]
    if records:
        old = records[0][1]
        print(f"The stored result ({describe(old)}) is for other inputs: {what_changed(old['parts'], parts)} "
              f"changed. Computing it again.")
    record, _ = _compute_and_store(name, compute, parts, state, models)
    if show is not None:
        show(record["value"])
    return record["value"]


def _recompute_button(name: str, compute, parts: dict, record: dict, show, models: dict | None = None) -> None:
    """A note on where the result came from, and a button that recomputes it from the same random state.
    The notebook's state is kept: its random state, and the models' weights should the computation
    change them (then nothing is stored, as in :func:`stored`)."""
    import ipywidgets as widgets
    from IPython.display import display

    print(f"Stored result: {describe(record)}.")
    button = widgets.Button(description="Recompute", icon="refresh",
                            tooltip="Run the same computation again, from the same random state")
    out = widgets.Output()

    def on_click(_):
        button.disabled = True
        out.clear_output()
        with out:
            now = random_state()
            weights = [(p, p.detach().clone()) for model in (models or {}).values() for p in model.parameters()]
            try:
                set_random_state(record["random_before"])
                fresh, changed = _compute_and_store(name, compute, parts, record["random_before"], models)
                if changed:
                    print(f"The weights of {', '.join(changed)} are put back as they were.")
                if show is not None:
                    show(fresh["value"])
                agree = "the same numbers as" if same(fresh["value"], record["value"]) else "numbers that differ from"
                print(f"Recomputed in {fresh['seconds']:.0f} s: {agree} the stored result. "
                      "The cells below still use the stored one.")
            except Exception as e:  # the message, not a traceback, and the stored result stays
                print(f"Could not recompute: {type(e).__name__}: {e}")
            finally:  # also after an error part of the way through
                with torch.no_grad():  # into the same tensors (a head replaced since is left as it is)
                    for p, saved in weights:
                        p.copy_(saved)
                set_random_state(now)
                button.disabled = False

    button.on_click(on_click)
    display(widgets.VBox([button, out]))


# ---------------------------------------------------------------- are the shipped ones still current?


def _resolve(name: str):
    """The module, class or function a key's code part names (``package.module`` or ``module.Qualname``)."""
    import importlib

    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def check_shipped() -> list[tuple[str, str]]:
    """For each shipped result, ``(name, what no longer matches)``: its code and data parts against
    the code and data here ("" when they match). The models, settings and random state can only be
    checked by running the notebook, which then uses the result or computes it again."""
    report = []
    here = key_parts()["data"]
    for path in sorted(shipped_dir().glob("*.pt")):
        try:
            record = torch.load(path, map_location="cpu", weights_only=False)
            parts = record["parts"]
        except Exception as e:
            report.append((path.stem, f"unreadable ({type(e).__name__})"))
            continue
        stale = []
        for name, digest in parts["code"].items():
            try:
                if code_digest(_resolve(name)) != digest:
                    stale.append(name)
            except (ImportError, AttributeError, OSError, TypeError):
                stale.append(f"{name} (gone)")
        if parts.get("data") != here:
            stale.append("the glyph data")
        report.append((path.stem, ", ".join(f"{s} changed" for s in stale)))
    return report


def main() -> int:
    report = check_shipped()
    if not report:
        print(f"No stored results in {shipped_dir()}.")
    for name, stale in report:
        print(f"{name:<28} {'STALE: ' + stale if stale else 'current'}")
    if any(stale for _, stale in report):
        print("\nA stale result is computed again when its notebook runs. To ship a fresh one, run the notebook top "
              f"to bottom with {RESULTS_ENV}={shipped_dir()} {RECOMPUTE_ENV}=1 (data/README.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
