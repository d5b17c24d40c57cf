"""Datasets the episodes are drawn from: embedded glyphs, Omniglot-style image folders, sinusoids.

Every image dataset is an :class:`ImageClassDataset`: 28x28 grayscale images kept in Omniglot's
file polarity (white background, dark strokes) and served as float tensors with ink 1.0 on 0.0,
the convention of learn2learn's Omniglot benchmark (``1 - ToTensor()(image)``).
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .glyphs import load_or_build

IMAGE_SIZE = 28
LAYOUT = "<root>/<alphabet>/<character>/<image>.png"
SHARED_OMNIGLOT = Path("shared/data/omniglot/images_background_small1.zip")
REPO_ROOT = Path(__file__).resolve().parents[1]


def to_28(image: Image.Image) -> np.ndarray:
    """Grayscale, resized to 28x28 the way torchvision's ``Resize(28)`` does (antialiased bilinear)."""
    image = image.convert("L")
    if image.size != (IMAGE_SIZE, IMAGE_SIZE):
        image = image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


class ImageClassDataset(torch.utils.data.Dataset):
    """A labelled set of 28x28 character images grouped into classes, and classes into alphabets.

    Args:
        images: (N, 28, 28) uint8, white background (255) and dark ink, as Omniglot's PNG files.
        targets: (N,) class index of each image.
        class_names: one "alphabet/character" name per class.
        name: what error messages call this dataset, for example "glyphs (evaluation split)".
    """

    def __init__(self, images, targets, class_names, name="dataset"):
        self.images = torch.as_tensor(np.asarray(images), dtype=torch.uint8)
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        self.class_names = list(class_names)
        self.name = name
        if self.images.ndim != 3 or self.images.shape[0] != self.targets.shape[0]:
            raise ValueError(f"{name}: expected (N, H, W) images and N targets, "
                             f"got {tuple(self.images.shape)} and {tuple(self.targets.shape)}.")
        by_class = defaultdict(list)
        for i, t in enumerate(self.targets.tolist()):
            by_class[t].append(i)
        self.labels_to_indices = dict(by_class)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        x = 1.0 - self.images[i].float().unsqueeze(0) / 255.0  # (1, 28, 28), ink = 1
        return x, int(self.targets[i])

    @property
    def num_classes(self) -> int:
        return len(self.labels_to_indices)

    @property
    def class_alphabets(self) -> list[str]:
        return [n.split("/")[0] for n in self.class_names]

    @property
    def alphabets(self) -> list[str]:
        return sorted(set(self.class_alphabets))

    def examples_per_class(self) -> dict[int, int]:
        return {c: len(ix) for c, ix in self.labels_to_indices.items()}

    def subset(self, alphabets) -> "ImageClassDataset":
        """The classes of the named alphabets only, relabelled 0..C-1."""
        alphabets = [alphabets] if isinstance(alphabets, str) else list(alphabets)
        unknown = sorted(set(alphabets) - set(self.alphabets))
        if unknown:
            raise ValueError(f"{self.name} has no alphabet {', '.join(unknown)}; it has {', '.join(self.alphabets)}.")
        classes = [c for c, a in enumerate(self.class_alphabets) if a in alphabets]
        relabel = {c: i for i, c in enumerate(classes)}
        rows = [i for c in classes for i in self.labels_to_indices[c]]
        where = alphabets[0] if len(alphabets) == 1 else f"{len(alphabets)} alphabets"
        return ImageClassDataset(self.images[rows], [relabel[int(self.targets[i])] for i in rows],
                                 [self.class_names[c] for c in classes], name=f"{self.name}, {where}")

    def __repr__(self):
        return (f"{type(self).__name__}({self.name!r}: {len(self.alphabets)} alphabets, "
                f"{self.num_classes} classes, {len(self)} images)")


def ink_statistics(dataset: ImageClassDataset, every: int = 5) -> dict[str, float]:
    """How a dataset's drawings look, in three numbers comparable across datasets.

    Returns:
        ``ink`` (mean ink per pixel, 0..1), ``height`` (mean height in pixels of each drawing's
        inked rows, over every ``every``-th image) and ``stroke`` (mean stroke width in pixels:
        twice the ink over the length of the ink's outline).
    """
    x = 1 - dataset.images.float().numpy() / 255            # (N, 28, 28), ink = 1
    mask = x > 0.3
    rows = [np.nonzero(m.any(1))[0] for m in mask[::every]]
    heights = [r[-1] - r[0] + 1 for r in rows if len(r)]
    edges = np.abs(np.diff(mask, axis=1)).sum((1, 2)) + np.abs(np.diff(mask, axis=2)).sum((1, 2))
    stroke = np.mean(2 * x.sum((1, 2)) / np.maximum(edges, 1))
    return {"ink": float(x.mean()), "height": float(np.mean(heights)), "stroke": float(stroke)}


def _find_images(names: list[str], where: str) -> dict[str, list[str]]:
    """Group image paths by "alphabet/character", accepting one wrapping folder level or more."""
    pngs = [n for n in names if n.lower().endswith(".png") and "__MACOSX" not in n]
    if not pngs:
        raise FileNotFoundError(f"No .png images under {where}. Expected the layout {LAYOUT}, "
                                "as in Omniglot's images_background folder.")
    depth = min(len(Path(n).parts) for n in pngs)
    if depth < 3:
        raise FileNotFoundError(f"Images lie too shallow under {where} (for example {pngs[0]!r}). "
                                f"Expected the layout {LAYOUT}.")
    groups = defaultdict(list)
    for n in sorted(pngs):
        parts = Path(n).parts
        if len(parts) == depth:
            groups["/".join(parts[-3:-1])].append(n)
    return dict(groups)


def load_image_folder(path, name: str | None = None) -> ImageClassDataset:
    """Load any folder or .zip laid out as ``alphabet/character/*.png`` (Omniglot's layout).

    Wrapping folders are fine (``images_background/...`` inside a zip, say). A missing, empty,
    misarranged or corrupted source raises an error that names the expected layout or the file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Expected a folder or .zip laid out as {LAYOUT}.")
    name = name or path.stem
    images, targets, class_names = [], [], []

    if path.is_file():
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{path} is not a readable zip file ({e}). Expected a zip laid out as {LAYOUT}.") from None
        with archive:
            groups = _find_images(archive.namelist(), str(path))
            for label, (cls, files) in enumerate(sorted(groups.items())):
                class_names.append(cls)
                for f in files:
                    images.append(_read_png(io.BytesIO(archive.read(f)), f"{path}:{f}"))
                    targets.append(label)
    else:
        files = [str(p.relative_to(path)) for p in path.rglob("*.png")]
        groups = _find_images(files, str(path))
        for label, (cls, rel) in enumerate(sorted(groups.items())):
            class_names.append(cls)
            for f in rel:
                images.append(_read_png(path / f, str(path / f)))
                targets.append(label)
    return ImageClassDataset(np.stack(images), targets, class_names, name=name)


def _read_png(source, where: str) -> np.ndarray:
    try:
        with Image.open(source) as im:
            return to_28(im)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ValueError(f"Could not read the image {where}: {e}. Is the data folder corrupted?") from None


def load_omniglot(root="data", background: bool = True, download: bool = False) -> ImageClassDataset:
    """Real Omniglot in torchvision's layout: ``root/omniglot-py/images_background/...``.

    Args:
        root: the folder torchvision's ``Omniglot`` uses.
        background: the background split (30 alphabets) if True, else evaluation (20 alphabets).
        download: fetch it with torchvision when missing (needs a network; never done by default).
    """
    split = "images_background" if background else "images_evaluation"
    folder = Path(root).expanduser() / "omniglot-py" / split
    if not folder.is_dir():
        if not download:
            raise FileNotFoundError(
                f"{folder} does not exist. Omniglot in torchvision's layout is {Path(root) / 'omniglot-py' / split}"
                f"/<alphabet>/<character>/<image>.png; pass download=True to fetch it (needs a network), "
                "or use load_image_folder() on a folder of your own.")
        from torchvision.datasets import Omniglot
        Omniglot(str(root), background=background, download=True)
    return load_image_folder(folder, name=f"omniglot ({'background' if background else 'evaluation'})")


def shared_omniglot_path() -> Path | None:
    """The real Omniglot subset shipped beside the project (5 alphabets x 20 drawers), if present.

    ``$METAKIT_OMNIGLOT`` wins; otherwise ``shared/data/omniglot/...`` beside or inside the repo.
    """
    env = os.environ.get("METAKIT_OMNIGLOT")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / SHARED_OMNIGLOT, REPO_ROOT / SHARED_OMNIGLOT]
    return next((p for p in candidates if p.exists()), None)


def held_out_sets(evaluation: ImageClassDataset | None = None) -> dict:
    """The data every comparison tests on: ``{"glyphs": the evaluation alphabets}``, plus
    ``"omniglot"``, the shared real handwriting (a change of domain), when it is on this machine.

    Args:
        evaluation: the glyph evaluation split, if already loaded.
    """
    sets = {"glyphs": evaluation if evaluation is not None else load_glyphs("evaluation")}
    path = shared_omniglot_path()
    if path is not None:
        sets["omniglot"] = load_image_folder(path, name="omniglot")
    return sets


def load_glyphs(split: str = "background", root=None, seed: int = 0, rebuild: bool = False,
                style: str = "fonts", sources: str = "matplotlib", params: dict | None = None) -> ImageClassDataset:
    """The embedded glyph dataset, built from matplotlib's fonts on first use and cached in ``data/``.

    Args:
        split: "background" (meta-training alphabets), "evaluation" (meta-test alphabets) or "all".
        root: cache folder; default ``$METAKIT_DATA`` or the repo's ``data/``.
        seed: the build seed; the same seed gives the same images.
        rebuild: ignore the cache and build again.
        style: "fonts" (the default) or "strokes", the same characters with each stroke redrawn
            on its own like a hand (see ``metakit.glyphs``); each style has its own cache.
        sources: "matplotlib" (the default) or "pypi": also the fonts of the optional fontpkg
            packages in ``metakit.glyphs.PYPI_FONTS`` (five more scripts, handwriting-like faces).
        params: for style "strokes", amounts overriding ``metakit.glyphs.STROKE_PARAMS`` (for
            experiments; each set of amounts has its own cache).
    """

    if split not in {"background", "evaluation", "all"}:
        raise ValueError(f"split must be 'background', 'evaluation' or 'all'; got {split!r}.")
    data = load_or_build(root=root, seed=seed, rebuild=rebuild, style=style, sources=sources, params=params)
    keep = np.ones(len(data["class_names"]), bool) if split == "all" else data["class_split"] == split
    new_label = -np.ones(len(keep), int)
    new_label[keep] = np.arange(keep.sum())
    rows = keep[data["targets"]]
    names = [n for n, k in zip(data["class_names"], keep) if k]
    return ImageClassDataset(data["images"][rows], new_label[data["targets"][rows]], names,
                             name=("glyphs" if style == "fonts" else f"glyphs, {style}")
                             + ("" if sources == "matplotlib" else f", {sources} fonts")
                             + (f" ({split} split)" if split != "all" else ""))


class SinusoidTasks:
    """The sinusoid regression family of MAML (Finn et al., 2017, Sec. 5.1).

    A task is ``y = amplitude * sin(x - phase)`` with amplitude in [0.1, 5.0], phase in [0, pi]
    and x drawn uniformly in [-5, 5].
    """

    def __init__(self, amplitude=(0.1, 5.0), phase=(0.0, math.pi), x_range=(-5.0, 5.0)):
        self.amplitude, self.phase, self.x_range = amplitude, phase, x_range

    @staticmethod
    def function(x, amplitude, phase):
        return amplitude * torch.sin(x - phase)

    def sample(self, meta_batch_size: int, k_shot: int, n_query: int, generator=None, device=None):
        """Draw a batch of tasks with their support and query points.

        Returns:
            x_support, y_support: (meta_batch_size, k_shot, 1)
            x_query, y_query: (meta_batch_size, n_query, 1)
            amplitude, phase: (meta_batch_size,)
        """
        for n, v in (("meta_batch_size", meta_batch_size), ("k_shot", k_shot), ("n_query", n_query)):
            if int(v) != v or v < 1:
                raise ValueError(f"{n} must be a positive integer; got {v!r}.")
        g = generator
        u = lambda *shape: torch.rand(*shape, generator=g)
        amp = self.amplitude[0] + (self.amplitude[1] - self.amplitude[0]) * u(meta_batch_size)
        phase = self.phase[0] + (self.phase[1] - self.phase[0]) * u(meta_batch_size)
        lo, hi = self.x_range
        x = lo + (hi - lo) * u(meta_batch_size, k_shot + n_query, 1)
        y = self.function(x, amp[:, None, None], phase[:, None, None])
        out = (x[:, :k_shot], y[:, :k_shot], x[:, k_shot:], y[:, k_shot:], amp, phase)
        return tuple(t.to(device) for t in out) if device is not None else out
