"""The embedded glyph dataset: an Omniglot stand-in drawn from the fonts inside matplotlib.

Each character of a Unicode script or symbol block is rendered in the DejaVu and STIX families,
thinned to its centre line (Zhang-Suen), and redrawn with a round pen of random width after a
random slant, rotation, scale, shift and elastic distortion, like a person copying it. The
result has Omniglot's format: 28x28, dark strokes on white, strokes about as wide as
Omniglot's pen once its 105x105 drawings are resized to 28x28.

Blank glyphs, the font's missing-glyph box and characters that look like one already kept are
dropped. Glyphs keep their place in the em box (no cropping), so Braille cells and
box-drawing pieces stay distinct. The background/evaluation split is by alphabet.

``style="strokes"`` (an option; the default stays ``"fonts"``) redraws the same characters as a
person redrawing them: each centre line is cut into strokes at its junctions, and every rendering
moves, turns and rescales each stroke a little on its own, presses each stroke with its own pen
width, varies the width smoothly across the drawing, and adds a fine tremor, on top of the
whole-character distortion of the default. It has its own version in the cache name. The amount
``bend`` (0 by default) also bends each stroke on its own (benchmarks/RESULTS.md has its figures).
Other amounts than ``STROKE_PARAMS`` (``params``) build a cache of their own, so an experiment
never replaces the default strokes.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

VERSION = 2            # of the default style, "fonts"
STROKES_VERSION = 1    # of style="strokes"
STYLES_OF_DRAWING = ("fonts", "strokes")
MAX_STROKES = 8        # strokes per character; the smallest extra pieces join their nearest stroke
# How much each rendering of style="strokes" departs from the font's centre line, on top of
# ``distort``. Lengths in [-1, 1] image units (1 = half the canvas), angles in radians.
STROKE_PARAMS = {
    "shift": 0.05,       # each stroke moves up to this far (about 0.7 pixel at 28x28)
    "rotate": 0.12,      # ...turns up to this much about its centre (about 7 degrees)
    "scale": 0.08,       # ...and is rescaled by up to this fraction
    "pressure": 0.2,     # log-normal spread of each stroke's pen width
    "width_field": 0.15, # amplitude of a smooth width change across the drawing
    "tremor": 0.4,       # pixels (at 56x56) of fine wobble, on a 10x10 grid of random offsets
    "bend": 0.0,         # pixels (at 56x56) of each stroke's own smooth bending, on a 3x3 grid (0: rigid strokes)
}
CANVAS = 56            # drawing resolution; pooled 2x2 down to 28x28
FONT_SIZE = 48         # em box ~0.85 of the canvas: drawings as tall as Omniglot's at 28x28
BASELINE_LIFT = 3      # pixels: centres glyphs where Omniglot's drawers centre theirs
RENDERINGS = 20        # renderings per character, as Omniglot has 20 drawers
MAX_PER_ALPHABET = 70  # Omniglot's alphabets hold 14 to 55 characters
# Bold faces are left out: thinned to their centre lines they equal the regular ones.
STYLES = ("DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "STIXGeneral",
          "DejaVuSerif-Italic", "STIXGeneralItalic", "DejaVuSans-Oblique")

# (alphabet, split, code point ranges): Unicode scripts and symbol blocks.
ALPHABETS = [
    ("Latin", "background", [(0x41, 0x5A), (0x61, 0x7A)]),
    ("Latin_Extended", "background", [(0xC0, 0x24F)]),
    ("IPA", "background", [(0x250, 0x2AF)]),
    ("Greek", "background", [(0x370, 0x3FF)]),
    ("Cyrillic", "background", [(0x400, 0x52F)]),
    ("Hebrew", "background", [(0x5D0, 0x5EA)]),
    ("Arabic", "background", [(0x620, 0x64A), (0x671, 0x6D3)]),
    ("Lao", "background", [(0xE80, 0xEFF)]),
    ("Canadian_Syllabics", "background", [(0x1400, 0x167F)]),
    ("Ogham", "background", [(0x1680, 0x169F)]),
    ("Phonetic_Extensions", "background", [(0x1D00, 0x1DBF)]),
    ("Letterlike_Symbols", "background", [(0x2100, 0x218F)]),
    ("Arrows", "background", [(0x2190, 0x21FF), (0x27F0, 0x27FF)]),
    ("Mathematical_Operators", "background", [(0x2200, 0x22FF)]),
    ("Box_Drawing", "background", [(0x2500, 0x259F)]),
    ("Miscellaneous_Symbols", "background", [(0x2600, 0x26FF)]),
    ("Dingbats", "background", [(0x2700, 0x27BF)]),
    ("Supplemental_Arrows", "background", [(0x2900, 0x297F), (0x2B00, 0x2BFF)]),
    ("Latin_Extended_CD", "background", [(0x2C60, 0x2C7F), (0xA720, 0xA7FF)]),
    ("Armenian", "evaluation", [(0x531, 0x58F)]),
    ("NKo", "evaluation", [(0x7C0, 0x7FF)]),
    ("Georgian", "evaluation", [(0x10A0, 0x10FF), (0x2D00, 0x2D2F)]),
    ("Tifinagh", "evaluation", [(0x2D30, 0x2D7F)]),
    ("Old_Italic", "evaluation", [(0x10300, 0x1032F)]),
    ("Cyrillic_Extended", "evaluation", [(0xA640, 0xA69F)]),
    ("Braille", "evaluation", [(0x2800, 0x28FF)]),
    ("Hexagrams_and_Tetragrams", "evaluation", [(0x4DC0, 0x4DFF), (0x1D300, 0x1D35F)]),
    ("Geometric_Shapes", "evaluation", [(0x25A0, 0x25FF)]),
    ("Miscellaneous_Technical", "evaluation", [(0x2300, 0x23FF)]),
    ("Miscellaneous_Mathematical", "evaluation", [(0x27C0, 0x27EF), (0x2980, 0x29FF)]),
    ("Supplemental_Math_Operators", "evaluation", [(0x2A00, 0x2AFF)]),
]


# sources="pypi": fonts from small OFL-licensed PyPI packages (fontpkg-*), when installed. They
# add handwriting-like faces of Latin (and Cyrillic, Devanagari) characters after the matplotlib
# ones, and five more scripts as background alphabets.
PYPI_FONTS = {  # style: (module, file under its files/ folder)
    "Kalam": ("fontpkg_kalam", "Kalam-Regular.ttf"),
    "Caveat": ("fontpkg_caveat", "Caveat[wght].ttf"),
    "IndieFlower": ("fontpkg_indie_flower", "IndieFlower-Regular.ttf"),
    "NotoSansThai": ("fontpkg_noto_sans_thai", "NotoSansThai[wdth,wght].ttf"),
    "NotoSansDevanagari": ("fontpkg_noto_sans_devanagari", "NotoSansDevanagari[wdth,wght].ttf"),
    "NotoSansKhmer": ("fontpkg_noto_sans_khmer", "NotoSansKhmer[wdth,wght].ttf"),
    "NotoSansTamil": ("fontpkg_noto_sans_tamil", "NotoSansTamil[wdth,wght].ttf"),
    "NotoSansTelugu": ("fontpkg_noto_sans_telugu", "NotoSansTelugu[wdth,wght].ttf"),
}
PYPI_ALPHABETS = [
    ("Thai", "background", [(0xE01, 0xE2E)]),
    ("Devanagari", "background", [(0x904, 0x939)]),
    ("Khmer", "background", [(0x1780, 0x17B3)]),
    ("Tamil", "background", [(0xB85, 0xBB9)]),
    ("Telugu", "background", [(0xC05, 0xC39)]),
]
SOURCES = ("matplotlib", "pypi")


def pypi_font_paths() -> dict[str, Path]:
    """The fonts of ``PYPI_FONTS`` that are installed, by style."""
    import importlib.util

    out = {}
    for style, (module, name) in PYPI_FONTS.items():
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.origin:
            path = Path(spec.origin).parent / "files" / name
            if path.exists():
                out[style] = path
    return out


def font_paths() -> dict[str, Path]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    names = {"DejaVuSans": "DejaVuSans.ttf", "DejaVuSerif": "DejaVuSerif.ttf",
             "DejaVuSansMono": "DejaVuSansMono.ttf", "STIXGeneral": "STIXGeneral.ttf",
             "DejaVuSerif-Italic": "DejaVuSerif-Italic.ttf", "STIXGeneralItalic": "STIXGeneralItalic.ttf",
             "DejaVuSans-Oblique": "DejaVuSans-Oblique.ttf"}
    return {s: folder / names[s] for s in STYLES}


# ---------------------------------------------------------------- drawing


def render(ch: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    """The glyph as a boolean ink mask on the canvas, placed by its em box, not cropped."""
    im = Image.new("L", (CANVAS, CANVAS), 0)
    ImageDraw.Draw(im).text((CANVAS / 2, CANVAS / 2 - BASELINE_LIFT), ch, font=font, fill=255, anchor="mm")
    return np.asarray(im) >= 96


def _thinning_tables() -> torch.Tensor:
    """For both Zhang-Suen sub-steps, whether a pixel with a given 8-neighbourhood code is deleted."""
    tables = torch.zeros(2, 256, dtype=torch.bool)
    for code in range(256):
        n, ne, e, se, s, sw, w, nw = [(code >> i) & 1 for i in range(8)]
        ring = [n, ne, e, se, s, sw, w, nw, n]
        count = sum(ring[:-1])
        transitions = sum(a == 0 and b == 1 for a, b in zip(ring[:-1], ring[1:]))
        base = 2 <= count <= 6 and transitions == 1
        tables[0, code] = base and n * e * s == 0 and e * s * w == 0
        tables[1, code] = base and n * e * w == 0 and n * s * w == 0
    return tables


_TABLES = _thinning_tables()


def thin(masks: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of a batch of (B, H, W) boolean masks to one-pixel centre lines."""
    img = masks.to(torch.uint8).clone()
    active = torch.arange(len(img))
    weights = [1, 2, 4, 8, 16, 32, 64, 128]
    while len(active):
        sub = img[active]
        changed = torch.zeros(len(active), dtype=torch.bool)
        for step in (0, 1):
            p = F.pad(sub, (1, 1, 1, 1)).long()
            ring = [p[:, :-2, 1:-1], p[:, :-2, 2:], p[:, 1:-1, 2:], p[:, 2:, 2:],
                    p[:, 2:, 1:-1], p[:, 2:, :-2], p[:, 1:-1, :-2], p[:, :-2, :-2]]
            code = sum(wt * r for wt, r in zip(weights, ring))
            delete = (sub == 1) & _TABLES[step][code]
            sub[delete] = 0
            changed |= delete.flatten(1).any(1)
        img[active] = sub
        active = active[changed]
    return img.bool()


def centre_lines(masks: torch.Tensor) -> torch.Tensor:
    """Thin (B, H, W) masks, keeping a pixel of every blob that thinning erased (Zhang-Suen
    deletes 2x2 squares outright, so Braille dots and short dashes would vanish)."""
    from scipy.ndimage import distance_transform_edt, label, maximum_position

    lines = thin(masks).numpy()
    for i, m in enumerate(masks.numpy()):
        blobs, n = label(m)
        lost = np.setdiff1d(np.arange(1, n + 1), blobs[lines[i]])
        if len(lost):
            depth = distance_transform_edt(m)
            for y, x in maximum_position(depth, blobs, lost):
                lines[i, y, x] = True
    return torch.from_numpy(lines)


def distance_to(lines: torch.Tensor) -> torch.Tensor:
    """(B, H, W) Euclidean distance from each pixel to the nearest centre-line pixel."""
    from scipy.ndimage import distance_transform_edt

    out = np.full(lines.shape, float(CANVAS), dtype=np.float32)
    for i, m in enumerate(lines.numpy()):
        if m.any():
            out[i] = distance_transform_edt(~m)
    return torch.from_numpy(out)


def pen(distance: torch.Tensor, radius) -> torch.Tensor:
    """Ink of a round antialiased pen of the given radius along the centre lines, in [0, 1]."""
    return (radius + 0.5 - distance).clamp(0, 1)


def to_uint8_28(ink: torch.Tensor) -> np.ndarray:
    """(B, 56, 56) ink -> (B, 28, 28) uint8 in Omniglot's polarity (white 255 background)."""
    small = F.avg_pool2d(ink.unsqueeze(1), 2).squeeze(1)
    return (255 * (1 - small)).round().clamp(0, 255).to(torch.uint8).numpy()


def _hand_grid(b: int, g: torch.Generator) -> torch.Tensor:
    """(b, H, W, 2) sampling grids of a hand's variation: slant, rotation, scale, shift and a
    smooth elastic field."""
    u = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(b, *shape, generator=g)
    angle = u(-0.15, 0.15)                      # radians, about +-9 degrees
    scale = u(0.88, 1.12)
    slant = u(-0.3, 0.3)
    shift = u(-0.06, 0.06, 2)                   # in [-1, 1] image coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin + slant
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, (b, 1, CANVAS, CANVAS), align_corners=False)
    return grid + smooth_offsets(b, 4, 1.4, g, "bicubic")


def smooth_offsets(count: int, grid: int, pixels: float, g: torch.Generator, mode: str) -> torch.Tensor:
    """(count, H, W, 2) smooth random displacements for ``grid_sample`` grids: offsets of standard
    deviation ``pixels`` (at CANVAS size) on a ``grid`` x ``grid`` lattice, interpolated with ``mode``."""
    coarse = torch.randn(count, 2, grid, grid, generator=g) * (2.0 / CANVAS) * pixels
    return F.interpolate(coarse, size=(CANVAS, CANVAS), mode=mode, align_corners=True).permute(0, 2, 3, 1)


def distort(distance: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """A hand's variation (``_hand_grid``) applied to the distance map, so the pen keeps its width."""
    grid = _hand_grid(distance.shape[0], g)
    return F.grid_sample(distance.unsqueeze(1), grid, mode="bilinear", padding_mode="border",
                         align_corners=False).squeeze(1)

# ---------------------------------------------------------------- style="strokes"


def split_strokes(line: np.ndarray, max_strokes: int = MAX_STROKES) -> np.ndarray:
    """Cut a (H, W) boolean centre line into strokes at its junctions.

    The pixels with three or more neighbours are junctions; what is left falls apart into arms,
    and each arm takes the junction pixels next to it, so strokes still meet where they met.
    Arms under 4 pixels (thinning's spurs) and arms beyond ``max_strokes`` join the nearest
    bigger stroke.

    Returns:
        (K, H, W) boolean, 1 <= K <= max_strokes, their union is ``line``.
    """
    from scipy.ndimage import binary_dilation, convolve, distance_transform_edt, label

    if not line.any():
        return line[None]
    eight = np.ones((3, 3), int)
    neighbours = convolve(line.astype(int), eight, mode="constant") - 1
    junction = line & (neighbours >= 3)
    arms, n = label(line & ~junction, structure=eight)
    if n == 0:
        return line[None]
    sizes = np.bincount(arms.ravel(), minlength=n + 1)[1:]
    order = np.argsort(-sizes, kind="stable")
    big = [k for k in order if sizes[k] >= 4][:max_strokes] or [order[0]]
    pieces = [arms == k + 1 for k in big]
    depth = np.stack([distance_transform_edt(~p) for p in pieces])     # (K, H, W)
    owner = depth.argmin(0)
    for k in range(n):                    # small and surplus arms join the nearest stroke
        if k not in big:
            m = arms == k + 1
            pieces[np.bincount(owner[m], minlength=len(pieces)).argmax()] |= m
    for p in pieces:                      # junctions go to every stroke that reaches them
        p |= binary_dilation(p, structure=eight, iterations=2) & junction
    left = junction & ~np.any(pieces, axis=0)
    if left.any():
        pieces[int(np.bincount(owner[left], minlength=len(pieces)).argmax())] |= left
    return np.stack(pieces)


def draw_strokes(strokes: list[np.ndarray], renderings: int, g: torch.Generator, params: dict) -> torch.Tensor:
    """Redraw a character ``renderings`` times from its strokes, like a hand copying it.

    Args:
        strokes: one (K_s, 56, 56) boolean array per font style of the character.
        renderings: how many drawings; they cycle through the styles.
        g: the random generator.
        params: the amounts of variation, keys as in ``STROKE_PARAMS``.
    Returns:
        (renderings, 56, 56) ink in [0, 1].
    """
    maps = [torch.from_numpy(np.stack([distance_transform(p) for p in s]).astype(np.float32)) for s in strokes]
    centres = [_centres(s) for s in strokes]
    r = renderings
    pick = (torch.arange(r) % len(strokes)).tolist()
    # one row per (drawing, stroke) pair; `owner` is the drawing
    dist = torch.cat([maps[i] for i in pick])                                   # (N, H, W)
    centre = torch.cat([centres[i] for i in pick])                              # (N, 2)
    owner = torch.cat([torch.full((len(maps[i]),), j) for j, i in enumerate(pick)])
    n = len(owner)
    u = lambda lo, hi, *shape: lo + (hi - lo) * torch.rand(*shape, generator=g)
    # the whole character: the default's slant, rotation, scale, shift and elastic field, plus tremor
    whole = _hand_grid(r, g)                                                    # (R, H, W, 2)
    whole = whole + smooth_offsets(r, 10, params["tremor"], g, "bilinear")
    # each stroke on its own: turn and rescale about its centre, then move
    angle = u(-params["rotate"], params["rotate"], n)
    scale = 1 + u(-params["scale"], params["scale"], n)
    shift = u(-params["shift"], params["shift"], n, 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    turn = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)   # (N, 2, 2)
    offset = centre - torch.einsum("nij,nj->ni", turn, centre) - shift
    w = whole[owner]                                                            # (N, H, W, 2)
    src = w[..., :1] * turn[:, None, None, :, 0] + w[..., 1:] * turn[:, None, None, :, 1] + offset[:, None, None]
    if params["bend"] > 0:  # each stroke bends on its own, as a pen redrawing it wanders (none by default)
        src = src + smooth_offsets(n, 3, params["bend"], g, "bicubic")
    warped = F.grid_sample(dist.unsqueeze(1), src, mode="bilinear", padding_mode="border",
                           align_corners=False).squeeze(1)
    # the pen: a width per drawing (as in the default), per stroke, and a smooth field across it
    pressure = torch.exp(params["pressure"] * torch.randn(n, generator=g))
    radius = (1.2 + 0.5 * torch.rand(r, generator=g))[owner] * pressure
    field = F.interpolate(torch.randn(r, 1, 3, 3, generator=g), size=(CANVAS, CANVAS), mode="bilinear",
                          align_corners=True).squeeze(1)
    radius = radius[:, None, None] * (1 + params["width_field"] * field[owner]).clamp_min(0.3)
    ink = pen(warped, radius).flatten(1)
    out = torch.zeros(r, CANVAS * CANVAS).scatter_reduce_(0, owner[:, None].expand_as(ink), ink, "amax")
    return out.view(r, CANVAS, CANVAS)


def distance_transform(mask: np.ndarray) -> np.ndarray:
    from scipy.ndimage import distance_transform_edt

    return distance_transform_edt(~mask) if mask.any() else np.full(mask.shape, float(CANVAS))


def _centres(strokes: np.ndarray) -> torch.Tensor:
    """(K, 2) centre of each stroke in grid_sample's [-1, 1] coordinates, (x, y)."""
    out = torch.zeros(len(strokes), 2)
    for i, p in enumerate(strokes):
        ys, xs = np.nonzero(p)
        if len(xs):
            out[i] = torch.tensor([(2 * xs.mean() + 1) / CANVAS - 1, (2 * ys.mean() + 1) / CANVAS - 1])
    return out


# ---------------------------------------------------------------- choosing the characters


def candidates(cmaps: dict[str, set[int]], alphabets=ALPHABETS):
    """Yield (alphabet, split, char, styles) for letters and symbols the fonts really draw."""
    styles_in_order = [s for s in (*STYLES, *PYPI_FONTS) if s in cmaps]
    for alphabet, split, ranges in alphabets:
        chars = []
        for lo, hi in ranges:
            for cp in range(lo, hi + 1):
                ch = chr(cp)
                cat = unicodedata.category(ch)
                if cat[0] not in "LS" or cat == "Lm" or unicodedata.decomposition(ch):
                    continue  # marks, spaces, modifiers and precomposed accented letters
                styles = [s for s in styles_in_order if cp in cmaps[s]]
                if styles:
                    chars.append((ch, styles))
        yield alphabet, split, chars


def build(seed: int = 0, renderings: int = RENDERINGS, alphabets=None, progress: bool = True,
          style: str = "fonts", params: dict | None = None, sources: str = "matplotlib") -> dict:
    """Build the glyph dataset in memory.

    Args:
        seed: seeds every random choice; the same seed gives the same arrays.
        renderings: images per character (at least 10 for the default data).
        alphabets: names from ``ALPHABETS`` to build (default: all).
        style: "fonts" (the default data) or "strokes" (each stroke redrawn on its own; the
            same characters).
        params: for style "strokes", amounts overriding ``STROKE_PARAMS``.
        sources: "matplotlib" (the default: its DejaVu and STIX fonts) or "pypi" (those, then the
            fontpkg packages of ``PYPI_FONTS``: handwriting-like faces and five more scripts).
    Returns:
        A dict of numpy arrays: images (N, 28, 28) uint8, targets (N,), class_names (C,),
        class_split (C,), codepoints (C,).
    """
    from fontTools.ttLib import TTFont
    from tqdm.auto import tqdm

    _check_style(style)
    params = stroke_params(params)
    if sources not in SOURCES:
        raise ValueError(f"sources must be one of {', '.join(map(repr, SOURCES))}; got {sources!r}.")
    paths = font_paths()
    table = ALPHABETS
    if sources == "pypi":
        extra = pypi_font_paths()
        if len(extra) < len(PYPI_FONTS):
            missing = sorted({PYPI_FONTS[s][0].replace("_", "-") for s in PYPI_FONTS if s not in extra})
            raise ValueError(f"sources='pypi' needs the font packages {', '.join(missing)} (pip install them)")
        paths = {**paths, **extra}
        table = ALPHABETS + PYPI_ALPHABETS
    cmaps = {s: set(TTFont(p, lazy=True).getBestCmap()) for s, p in paths.items()}
    fonts = {s: ImageFont.truetype(str(p), FONT_SIZE) for s, p in paths.items()}
    notdef = {s: render(chr(0x10FFFD), f) for s, f in fonts.items()}
    bar = tqdm(total=4, desc="building glyphs", disable=not progress, leave=False)

    # 1. Each candidate in its first style: the canonical drawing that filters and dedupes.
    items = [(a, split, ch, styles) for a, split, chars in candidates(cmaps, table)
             if alphabets is None or a in alphabets for ch, styles in chars]
    masks = np.stack([render(ch, fonts[styles[0]]) for _, _, ch, styles in items])
    real = np.array([m.sum() >= 12 and not np.array_equal(m, notdef[st[0]])
                     for m, (*_, st) in zip(masks, items)])
    canon = pen(distance_to(centre_lines(torch.from_numpy(masks))), 1.45)   # (C, 56, 56)
    bar.update()

    # 2. Drop what is too small to read as a character, and look-alikes of one kept before.
    ink = canon > 0.5
    rows, cols = ink.any(2), ink.any(1)
    extent = lambda m: (m.float() * torch.arange(CANVAS)).amax(1) - torch.where(
        m, torch.arange(CANVAS), CANVAS).amin(1) + 1
    big = (ink.flatten(1).sum(1) >= 20) & (torch.maximum(extent(rows), extent(cols)) >= 0.3 * CANVAS)
    small = F.avg_pool2d(canon.unsqueeze(1), 2).flatten(1)          # (C, 784)
    keep = select_distinct(small, torch.from_numpy(real) & big)
    bar.update()

    # 3. Cap alphabets at Omniglot-like sizes, evenly across each block.
    classes = []
    by_alpha: dict[str, list[int]] = {}
    for i in np.flatnonzero(keep):
        by_alpha.setdefault(items[i][0], []).append(int(i))
    for idx in by_alpha.values():
        if len(idx) > MAX_PER_ALPHABET:
            idx = [idx[j] for j in np.linspace(0, len(idx) - 1, MAX_PER_ALPHABET).round().astype(int)]
        classes += idx
    classes.sort()

    # 4. Every style of the kept characters, as centre-line distance maps.
    styled, owner = [], []
    for label, i in enumerate(classes):
        ch, styles = items[i][2], items[i][3]
        for s in styles:
            m = masks[i] if s == styles[0] else render(ch, fonts[s])
            if m.sum() >= 12 and not np.array_equal(m, notdef[s]):
                styled.append(m)
                owner.append(label)
    lines = centre_lines(torch.from_numpy(np.stack(styled)))
    owner = torch.tensor(owner)
    bar.update()

    # 5. Draw each kept character `renderings` times by different hands.
    g = torch.Generator().manual_seed(seed)
    images = []
    if style == "fonts":
        dist = distance_to(lines)
        for label in range(len(classes)):
            rows_ = (owner == label).nonzero().flatten()
            pick = rows_[torch.arange(renderings) % len(rows_)]         # cycle through the styles
            radius = 1.2 + 0.5 * torch.rand(renderings, 1, 1, generator=g)  # Omniglot-wide strokes
            images.append(to_uint8_28(pen(distort(dist[pick], g), radius)))
    else:
        lines = lines.numpy()
        for label in range(len(classes)):
            strokes = [split_strokes(lines[i]) for i in (owner == label).nonzero().flatten().tolist()]
            images.append(to_uint8_28(draw_strokes(strokes, renderings, g, params)))
    bar.update()
    bar.close()
    return {
        "images": np.concatenate(images),
        "targets": np.repeat(np.arange(len(classes), dtype=np.int64), renderings),
        "class_names": np.asarray([f"{items[i][0]}/U+{ord(items[i][2]):04X}" for i in classes]),
        "class_split": np.asarray([items[i][1] for i in classes]),
        "codepoints": np.asarray([ord(items[i][2]) for i in classes], dtype=np.int64),
    }


def select_distinct(canon: torch.Tensor, eligible: torch.Tensor, threshold: float = 0.25) -> np.ndarray:
    """Keep eligible characters whose canonical drawing differs from every one kept before.

    Args:
        canon: (C, D) canonical drawings, ink in [0, 1].
        eligible: (C,) bool.
        threshold: the smallest Jaccard distance between the inked pixels of two kept drawings.
    Returns:
        (C,) bool mask of the characters kept, the first of each look-alike group winning.
    """
    ink = (canon > 0.3).float()
    inter = ink @ ink.T
    area = ink.sum(1)
    distance = (1 - inter / (area[:, None] + area[None, :] - inter).clamp_min(1)).numpy()
    keep = np.zeros(len(canon), bool)
    for i in np.flatnonzero(eligible.numpy()):
        keep[i] = not (distance[i, keep] < threshold).any()
    return keep


# ---------------------------------------------------------------- the cache in data/

ARRAYS = ("images", "targets", "class_names", "class_split", "codepoints")


SOURCE_DATA = Path(__file__).resolve().parents[1] / "data"  # a source checkout's data/ (it holds checkpoints/)


def cache_dir(root=None) -> Path:
    """The folder of the glyph cache: ``root``, else ``$METAKIT_DATA``, else a source checkout's
    ``data/``, else (an installed wheel) the user's cache, ``$XDG_CACHE_HOME/metakit`` or
    ``~/.cache/metakit``."""
    if root or os.environ.get("METAKIT_DATA"):
        return Path(root or os.environ["METAKIT_DATA"])
    if (SOURCE_DATA / "checkpoints").is_dir():
        return SOURCE_DATA
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "metakit"


def _check_style(style: str) -> None:
    if style not in STYLES_OF_DRAWING:
        raise ValueError(f"style must be one of {', '.join(map(repr, STYLES_OF_DRAWING))}; got {style!r}.")


def version_of(style: str = "fonts") -> int:
    _check_style(style)
    return VERSION if style == "fonts" else STROKES_VERSION


def stroke_params(params: dict | None = None) -> dict:
    """``STROKE_PARAMS`` with ``params`` overriding some of them; an unknown name is an error."""
    if unknown := sorted(set(params or {}) - set(STROKE_PARAMS)):
        raise ValueError(f"unknown stroke parameters {unknown}; known: {sorted(STROKE_PARAMS)}")
    return {**STROKE_PARAMS, **(params or {})}


def _params_tag(style: str, params: dict | None) -> str:
    """"" for the default stroke parameters, else "-p" and 8 hex digits of their hash, so that a
    build with other amounts has a cache of its own. Style "fonts" takes no parameters."""
    if style == "fonts":
        if params:
            raise ValueError("stroke parameters apply to style 'strokes' only; style 'fonts' takes none.")
        return ""
    params = stroke_params(params)
    if params == STROKE_PARAMS:
        return ""
    return "-p" + hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]


def cache_files(root=None, seed: int = 0, style: str = "fonts", sources: str = "matplotlib",
                params: dict | None = None) -> tuple[Path, Path]:
    """The cache's data and metadata files; the name carries the style's version, so a cache
    built by another version is never taken for this one, and (style "strokes") a short hash of
    any stroke parameters that differ from ``STROKE_PARAMS``."""
    if style == "fonts" and sources == "matplotlib" and not params:
        name = f"glyphs-v{VERSION}-seed{seed}"   # the default data's name, as it always was
    else:
        name = f"glyphs-{style}-{sources}-v{version_of(style)}{_params_tag(style, params)}-seed{seed}"
    stem = cache_dir(root) / name
    return stem.with_suffix(".npz"), stem.with_suffix(".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_cache(root=None, seed: int = 0, style: str = "fonts", sources: str = "matplotlib",
                params: dict | None = None) -> dict:
    """Load the cached glyphs, or raise ``ValueError`` saying why the cache cannot be trusted."""
    data_file, meta_file = cache_files(root, seed, style, sources, params)
    if not data_file.exists() or not meta_file.exists():
        raise ValueError(f"no cache at {data_file}")
    try:
        meta = json.loads(meta_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_file} is unreadable ({e})") from None
    if (meta.get("version") != version_of(style) or meta.get("seed") != seed
            or meta.get("style", "fonts") != style or meta.get("sources", "matplotlib") != sources):
        raise ValueError(f"{meta_file} was built by another version or seed")
    if style == "strokes" and stroke_params(meta.get("params")) != stroke_params(params):
        raise ValueError(f"{meta_file} was built with other stroke parameters")
    if _sha256(data_file) != meta.get("sha256"):
        raise ValueError(f"{data_file} does not match the checksum recorded when it was built")
    try:
        with np.load(data_file, allow_pickle=False) as z:
            data = {k: z[k] for k in ARRAYS}
    except Exception as e:  # a truncated or foreign file: any reader error means rebuild
        raise ValueError(f"{data_file} is unreadable ({e})") from None
    n, c = len(data["images"]), len(data["class_names"])
    if (data["images"].shape[1:] != (28, 28) or len(data["targets"]) != n
            or data["targets"].max(initial=-1) != c - 1 or len(data["class_split"]) != c):
        raise ValueError(f"{data_file} has inconsistent arrays")
    return data


def load_or_build(root=None, seed: int = 0, rebuild: bool = False, progress: bool = True,
                  style: str = "fonts", params: dict | None = None, sources: str = "matplotlib") -> dict:
    """The cached glyph arrays for ``seed``, ``style`` and ``sources`` (see ``build``), built first
    if the cache is missing or fails its check. ``params`` (style "strokes" only, for
    experiments) override ``STROKE_PARAMS``; other amounts have a cache of their own, which
    records them, so they never replace the default drawings."""
    _check_style(style)
    data_file, meta_file = cache_files(root, seed, style, sources, params)  # bad parameters fail before any work
    if not rebuild:
        try:
            return check_cache(root, seed, style, sources, params)
        except ValueError as why:
            if "no cache" not in str(why):
                warnings.warn(f"Rebuilding the glyph cache: {why}.", stacklevel=3)
    start = time.perf_counter()
    data = build(seed=seed, progress=progress, style=style, params=params, sources=sources)
    data_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = data_file.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **data)
    os.replace(tmp, data_file)  # never leave a half-written cache under the real name
    meta = {"version": version_of(style), "seed": seed, "sha256": _sha256(data_file),
            "build_seconds": round(time.perf_counter() - start, 2),
            "alphabets": int(len({n.split("/")[0] for n in data["class_names"]})),
            "characters": int(len(data["class_names"])), "images": int(len(data["images"]))}
    if style != "fonts" or sources != "matplotlib":  # the default's metadata stays as it was
        meta["style"], meta["sources"] = style, sources
        if style == "strokes":
            meta["params"] = stroke_params(params)
    meta_file.write_text(json.dumps(meta, indent=1))
    return data
