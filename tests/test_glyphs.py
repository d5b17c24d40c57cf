import hashlib
import json

import numpy as np
import pytest
import torch

from helpers import small_glyph_builds

from metakit import glyphs
from metakit.datasets import ink_statistics, load_glyphs


def test_the_default_data_is_as_big_as_promised(glyphs_background, glyphs_evaluation):
    every = load_glyphs("all")
    assert every.num_classes >= 1500
    assert len(every.alphabets) >= 20
    assert min(every.examples_per_class().values()) >= 10
    assert glyphs_background.num_classes + glyphs_evaluation.num_classes == every.num_classes


def test_split_is_by_alphabet(glyphs_background, glyphs_evaluation):
    assert not set(glyphs_background.alphabets) & set(glyphs_evaluation.alphabets)
    assert not set(glyphs_background.class_names) & set(glyphs_evaluation.class_names)
    assert len(glyphs_evaluation.alphabets) >= 8


def test_images_have_omniglot_format(glyphs_evaluation):
    assert glyphs_evaluation.images.shape[1:] == (28, 28)
    assert glyphs_evaluation.images.dtype == torch.uint8
    x, _ = glyphs_evaluation[0]
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1


def test_polarity_scale_and_stroke_width_match_real_omniglot(glyphs_background, omniglot):
    ours, real = ink_statistics(glyphs_background), ink_statistics(omniglot)
    for name in ours:
        a, b = ours[name], real[name]
        assert abs(a - b) / b < 0.15, f"{name}: glyphs {a:.3f} vs Omniglot {b:.3f}"
    # same polarity as the files: white (255) background, dark strokes
    assert np.median(glyphs_background.images.numpy()) == 255
    assert np.median(omniglot.images.numpy()) == 255


def test_no_blank_images(glyphs_background, glyphs_evaluation):
    # Dotted characters (Braille cells, three-dot punctuation) legitimately carry under two
    # pixels' worth of ink, so the floor is one full pixel.
    for ds in (glyphs_background, glyphs_evaluation):
        ink = (255 - ds.images.int()).sum((1, 2)).float()
        assert ink.min() > 255


def test_few_renderings_lose_most_of_their_ink(glyphs_background, glyphs_evaluation):
    # A distortion can push part of a thin edge glyph (an upper-eighth block, a long arrow) off
    # the canvas; on the seed-0 build 13 of 31820 renderings keep under a quarter of their
    # class's median ink. Keep that rare.
    for ds in (glyphs_background, glyphs_evaluation):
        ink = (255 - ds.images.int()).sum((1, 2)).float()
        median = torch.stack([ink[ds.targets == c].median() for c in range(ds.num_classes)])
        faint = ink < 0.25 * median[ds.targets]
        assert faint.float().mean() < 1e-3, [ds.class_names[c] for c in ds.targets[faint].unique()]


def test_build_is_deterministic_for_a_seed():
    a = glyphs.build(seed=3, renderings=2, alphabets=["Hebrew", "Ogham"], progress=False)
    b = glyphs.build(seed=3, renderings=2, alphabets=["Hebrew", "Ogham"], progress=False)
    c = glyphs.build(seed=4, renderings=2, alphabets=["Hebrew", "Ogham"], progress=False)
    for k in glyphs.ARRAYS:
        assert np.array_equal(a[k], b[k])
    assert not np.array_equal(a["images"], c["images"])


def test_lookalikes_across_scripts_are_one_class():
    data = load_glyphs("all")
    names = set(data.class_names)
    assert "Latin/U+0041" in names                              # A
    assert "Greek/U+0391" not in names and "Cyrillic/U+0410" not in names  # Greek and Cyrillic capital A


def test_position_in_the_cell_is_kept():
    # Braille cells of the same shape in different rows (top, middle, bottom pair of dots)
    # would be identical if each glyph were cropped to its bounding box.
    font = glyphs.ImageFont.truetype(str(glyphs.font_paths()["DejaVuSans"]), glyphs.FONT_SIZE)
    masks = np.stack([glyphs.render(chr(cp), font) for cp in (0x2809, 0x2812, 0x2824)])
    canon = glyphs.pen(glyphs.distance_to(glyphs.centre_lines(torch.from_numpy(masks))), 1.45).flatten(1)
    assert glyphs.select_distinct(canon, torch.ones(3, dtype=torch.bool)).all()
    # ...while a drawing equal to an earlier one is dropped.
    twice = torch.cat([canon, canon[:1]])
    assert glyphs.select_distinct(twice, torch.ones(4, dtype=torch.bool)).tolist() == [True, True, True, False]


def test_blank_and_missing_glyphs_are_not_classes():
    font = glyphs.ImageFont.truetype(str(glyphs.font_paths()["DejaVuSans"]), glyphs.FONT_SIZE)
    assert glyphs.render(" ", font).sum() == 0
    notdef = glyphs.render(chr(0x10FFFD), font)
    data = load_glyphs("all")
    codepoints = {int(n.split("U+")[1], 16) for n in data.class_names}
    assert 0x20 not in codepoints and 0x2800 not in codepoints    # space, blank Braille cell
    rendered = [glyphs.render(chr(cp), font) for cp in sorted(codepoints)[:300]]
    assert not any(np.array_equal(r, notdef) for r in rendered)


def test_thinning_leaves_one_pixel_lines():
    bar = torch.zeros(1, 20, 20, dtype=torch.bool)
    bar[0, 8:13, 2:18] = True            # a 5-pixel-thick horizontal bar
    line = glyphs.thin(bar)[0]
    assert line.any(1).sum() == 1         # one row left
    assert line.sum() >= 8


@pytest.fixture
def small_build(monkeypatch):
    return small_glyph_builds(monkeypatch, ["Hebrew"])


def test_cache_is_reused(tmp_path, small_build):
    a = glyphs.load_or_build(root=tmp_path)
    b = glyphs.load_or_build(root=tmp_path)
    assert len(small_build) == 1
    assert np.array_equal(a["images"], b["images"])
    meta = json.loads(glyphs.cache_files(tmp_path)[1].read_text())
    assert meta["characters"] == len(a["class_names"])


@pytest.mark.parametrize("damage", ["truncate", "flip", "meta"])
def test_corrupted_cache_is_rebuilt_not_trusted(tmp_path, small_build, damage):
    first = glyphs.load_or_build(root=tmp_path)
    data_file, meta_file = glyphs.cache_files(tmp_path)
    raw = data_file.read_bytes()
    if damage == "truncate":
        data_file.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip":
        data_file.write_bytes(raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:])
    else:
        meta_file.write_text("{not json")
    with pytest.warns(UserWarning, match="Rebuilding the glyph cache"):
        again = glyphs.load_or_build(root=tmp_path)
    assert len(small_build) == 2
    assert np.array_equal(first["images"], again["images"])
    glyphs.check_cache(tmp_path)  # the rebuilt cache passes its check


def test_dots_survive_thinning():
    dots = torch.zeros(1, 20, 20, dtype=torch.bool)
    dots[0, 4:6, 4:6] = True              # a 2x2 dot: Zhang-Suen alone erases it
    dots[0, 12:15, 10:13] = True
    assert glyphs.centre_lines(dots)[0].sum() == 2


# ---------------------------------------------------------------- style="strokes"

# SHA-256 of the default build's arrays (name, dtype, shape and bytes of each of glyphs.ARRAYS,
# in order) as the code made them before style="strokes" existed: the default must not move,
# or every checkpoint and figure built on it would. (The .npz file's own checksum cannot serve:
# the zip records the time it was written.) The build's float32 distortions round differently
# with the CPU's vector kernels, so the bytes are reproducible per kernel family, not across them:
# one hash per value of torch.backends.cpu.get_cpu_capability() (AVX512 recorded 2026-11-26,
# AVX2 2026-11-27, on this project's machines).
DEFAULT_ARRAYS_SHA256 = {"AVX512": "c898bd2baaa0353bc026f8ba7d806a54b2e43f836c09d602957d1d159af4b8f5",
                         "AVX2": "fef320d2f25be3423eeffaa63cc7a56ffad5dcd9a3272bf72290eb9f89dcdd6d"}


def arrays_sha256(data: dict) -> str:
    h = hashlib.sha256()
    for k in glyphs.ARRAYS:
        a = np.ascontiguousarray(data[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def test_the_default_style_is_unchanged(glyphs_background):
    data = glyphs.load_or_build(progress=False)   # the cache the session's fixtures built
    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in DEFAULT_ARRAYS_SHA256:
        pytest.skip(f"no recorded hash of the default build for {capability} kernels")
    assert arrays_sha256(data) == DEFAULT_ARRAYS_SHA256[capability]
    assert glyphs.cache_files()[0].name == f"glyphs-v{glyphs.VERSION}-seed0.npz" == "glyphs-v2-seed0.npz"


def test_strokes_draw_the_same_characters_in_omniglot_format():
    kw = {"seed": 1, "renderings": 3, "alphabets": ["Hebrew", "Ogham"], "progress": False}
    fonts, strokes = glyphs.build(**kw), glyphs.build(style="strokes", **kw)
    for k in ("targets", "class_names", "class_split", "codepoints"):
        assert np.array_equal(fonts[k], strokes[k])
    assert strokes["images"].shape == fonts["images"].shape and strokes["images"].dtype == np.uint8
    assert not np.array_equal(fonts["images"], strokes["images"])
    ink = (255 - strokes["images"].astype(int)).sum((1, 2))
    assert ink.min() > 255                      # no blank drawing
    assert np.median(strokes["images"]) == 255  # white background, dark strokes


def test_strokes_build_is_deterministic_for_a_seed():
    kw = {"renderings": 2, "alphabets": ["Ogham"], "progress": False, "style": "strokes"}
    a, b, c = glyphs.build(seed=3, **kw), glyphs.build(seed=3, **kw), glyphs.build(seed=4, **kw)
    for k in glyphs.ARRAYS:
        assert np.array_equal(a[k], b[k])
    assert not np.array_equal(a["images"], c["images"])


def test_stroke_bending_is_off_by_default_and_bends_without_losing_ink(monkeypatch):
    shapes, randn = [], torch.randn
    monkeypatch.setattr(torch, "randn", lambda *a, **k: shapes.append(tuple(a)) or randn(*a, **k))
    kw = {"seed": 2, "renderings": 4, "alphabets": ["Ogham"], "progress": False, "style": "strokes"}
    rigid = glyphs.build(**kw)
    # bend 0 (the default) draws no random numbers, so the strokes style builds what it built before
    assert glyphs.STROKE_PARAMS["bend"] == 0.0 and not any(s[1:] == (2, 3, 3) for s in shapes)
    bent, again = glyphs.build(params={"bend": 1.5}, **kw), glyphs.build(params={"bend": 1.5}, **kw)
    assert any(s[1:] == (2, 3, 3) for s in shapes)
    assert np.array_equal(bent["images"], again["images"])
    assert not np.array_equal(rigid["images"], bent["images"])
    ink = lambda d: (255 - d["images"].astype(float)).sum((1, 2))  # noqa: E731
    assert abs(ink(bent).mean() / ink(rigid).mean() - 1) < 0.15     # the same pens, bent strokes


def test_split_strokes_cuts_at_junctions_and_keeps_every_pixel():
    plus = np.zeros((20, 20), bool)
    plus[10, 2:19] = True
    plus[2:19, 10] = True
    strokes = glyphs.split_strokes(plus)
    assert len(strokes) == 4                                   # four arms meeting in the middle
    assert np.array_equal(strokes.any(0), plus)
    assert all(s[10, 10] for s in strokes)                     # each still reaches the junction
    line = np.zeros((20, 20), bool)
    line[5, 3:17] = True
    assert len(glyphs.split_strokes(line)) == 1
    assert glyphs.split_strokes(np.zeros((20, 20), bool)).shape == (1, 20, 20)


def test_strokes_cache_has_its_own_versioned_name_and_is_checked(tmp_path, monkeypatch):
    calls = small_glyph_builds(monkeypatch, ["Ogham"])
    data_file, meta_file = glyphs.cache_files(tmp_path, style="strokes")
    assert data_file.name == f"glyphs-strokes-matplotlib-v{glyphs.STROKES_VERSION}-seed0.npz"
    first = glyphs.load_or_build(root=tmp_path, style="strokes")
    again = glyphs.load_or_build(root=tmp_path, style="strokes")
    assert [c["style"] for c in calls] == ["strokes"] and np.array_equal(first["images"], again["images"])
    meta = json.loads(meta_file.read_text())
    assert meta["style"] == "strokes" and meta["params"] == glyphs.STROKE_PARAMS
    # the default style's cache is another file, not this one
    assert not glyphs.cache_files(tmp_path)[0].exists()
    # a flipped byte is caught and rebuilt, never trusted
    raw = data_file.read_bytes()
    data_file.write_bytes(raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:])
    with pytest.warns(UserWarning, match="Rebuilding the glyph cache"):
        rebuilt = glyphs.load_or_build(root=tmp_path, style="strokes")
    assert [c["style"] for c in calls] == ["strokes", "strokes"]
    assert np.array_equal(first["images"], rebuilt["images"])
    # a cache whose metadata names another version is not taken for this one
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "version": glyphs.STROKES_VERSION + 1}))
    with pytest.raises(ValueError, match="another version"):
        glyphs.check_cache(tmp_path, style="strokes")


def test_other_stroke_parameters_have_their_own_cache_and_never_replace_the_default(tmp_path, monkeypatch):
    calls = small_glyph_builds(monkeypatch, ["Ogham"])
    bent = {"bend": 1.5}
    default_file = glyphs.cache_files(tmp_path, style="strokes")[0]
    bent_file, bent_meta = glyphs.cache_files(tmp_path, style="strokes", params=bent)
    assert bent_file != default_file
    assert bent_file.name.startswith(f"glyphs-strokes-matplotlib-v{glyphs.STROKES_VERSION}-p")
    # the defaults spelled out are the default cache, not another one
    assert glyphs.cache_files(tmp_path, style="strokes", params=dict(glyphs.STROKE_PARAMS))[0] == default_file
    plain = glyphs.load_or_build(root=tmp_path, style="strokes")
    wavy = glyphs.load_or_build(root=tmp_path, style="strokes", params=bent)
    assert [c["params"] for c in calls] == [None, bent] and not np.array_equal(plain["images"], wavy["images"])
    # each is read back from its own file: no rebuild, and the default drawings are still the default
    again = load_glyphs("all", root=tmp_path, style="strokes")
    again_bent = load_glyphs("all", root=tmp_path, style="strokes", params=bent)
    assert len(calls) == 2
    assert np.array_equal(again.images.numpy(), plain["images"])
    assert np.array_equal(again_bent.images.numpy(), wavy["images"])
    assert json.loads(bent_meta.read_text())["params"] == {**glyphs.STROKE_PARAMS, **bent}
    # a cache whose recorded amounts are not the ones asked for is not trusted
    bent_meta.write_text(json.dumps({**json.loads(bent_meta.read_text()), "params": glyphs.STROKE_PARAMS}))
    with pytest.raises(ValueError, match="other stroke parameters"):
        glyphs.check_cache(tmp_path, style="strokes", params=bent)
    # stroke parameters for the font style are a clear error, before any work
    with pytest.raises(ValueError, match="apply to style 'strokes' only"):
        glyphs.load_or_build(root=tmp_path, params=bent)
    assert len(calls) == 2


def test_unknown_style_or_stroke_parameter_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="style must be one of 'fonts', 'strokes'"):
        load_glyphs("all", root=tmp_path, style="pencil")
    with pytest.raises(ValueError, match="sources must be one of 'matplotlib', 'pypi'"):
        load_glyphs("all", root=tmp_path, sources="internet")
    with pytest.raises(ValueError, match="unknown stroke parameters"):
        glyphs.build(renderings=2, alphabets=["Ogham"], progress=False, style="strokes", params={"wobble": 1})
    assert not list(tmp_path.iterdir())       # nothing written


def test_pypi_sources_without_their_packages_say_what_to_install(monkeypatch):
    monkeypatch.setattr(glyphs, "pypi_font_paths", dict)
    with pytest.raises(ValueError, match="needs the font packages fontpkg-caveat, .*fontpkg-noto-sans-thai"):
        glyphs.build(renderings=2, alphabets=["Thai"], progress=False, sources="pypi")


@pytest.mark.skipif(len(glyphs.pypi_font_paths()) < len(glyphs.PYPI_FONTS),
                    reason="the fontpkg packages are not installed")
def test_pypi_sources_add_scripts_and_keep_the_matplotlib_classes():
    kw = {"renderings": 2, "alphabets": ["Latin", "Thai"], "progress": False, "style": "strokes"}
    more, base = glyphs.build(sources="pypi", **kw), glyphs.build(**kw)
    alphabets = {n.split("/")[0] for n in more["class_names"]}
    assert alphabets == {"Latin", "Thai"}
    assert set(base["class_names"]) <= set(more["class_names"])
