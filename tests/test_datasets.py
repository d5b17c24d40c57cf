import math
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import metakit
from metakit.datasets import ImageClassDataset, SinusoidTasks, load_image_folder, load_omniglot


def write_folder(root, alphabets=2, characters=3, drawers=4):
    for a in range(alphabets):
        for c in range(characters):
            d = root / f"alpha{a}" / f"character{c:02d}"
            d.mkdir(parents=True)
            for k in range(drawers):
                im = np.full((105, 105), 255, np.uint8)
                im[20 + 10 * c: 30 + 10 * c, 10 + 20 * a: 40 + 20 * a] = 0
                Image.fromarray(im).save(d / f"{k}.png")
    return root


def test_shared_omniglot_subset_loads(omniglot):
    assert omniglot.num_classes == 136
    assert len(omniglot) == 136 * 20
    assert len(omniglot.alphabets) == 5
    x, y = omniglot[0]
    assert x.shape == (1, 28, 28)
    assert x.mean() < 0.3  # ink is 1.0 on a 0.0 background


def test_folder_layout_loads_and_relabels(tmp_path):
    ds = load_image_folder(write_folder(tmp_path / "wrapped" / "images"))
    assert ds.num_classes == 6 and len(ds) == 24
    assert ds.alphabets == ["alpha0", "alpha1"]
    assert ds.class_names[0] == "alpha0/character00"
    assert ds.subset("alpha1").num_classes == 3


def test_zip_with_wrapping_folder_loads(tmp_path):
    src = write_folder(tmp_path / "src")
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in src.rglob("*.png"):
            z.write(p, "images_background/" + str(p.relative_to(src)))
    assert load_image_folder(archive).num_classes == 6


@pytest.mark.parametrize("setup", ["missing", "empty", "flat"])
def test_wrong_folder_names_the_expected_layout(tmp_path, setup):
    folder = tmp_path / "omniglot"
    if setup != "missing":
        folder.mkdir()
    if setup == "flat":
        Image.new("L", (105, 105), 255).save(folder / "a.png")
    with pytest.raises(FileNotFoundError, match="<alphabet>/<character>/<image>.png"):
        load_image_folder(folder)


def test_corrupted_image_is_named(tmp_path):
    root = write_folder(tmp_path / "data")
    bad = root / "alpha0" / "character00" / "0.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="0.png.*corrupted"):
        load_image_folder(root)


def test_corrupted_zip_says_so(tmp_path):
    bad = tmp_path / "omniglot.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a readable zip"):
        load_image_folder(bad)


def test_omniglot_in_torchvision_layout(tmp_path):
    write_folder(tmp_path / "omniglot-py" / "images_evaluation")
    ds = load_omniglot(tmp_path, background=False)
    assert ds.num_classes == 6
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_omniglot(tmp_path, background=True)


def test_unknown_alphabet_lists_the_real_ones(tmp_path):
    ds = load_image_folder(write_folder(tmp_path / "d"))
    with pytest.raises(ValueError, match="alpha0, alpha1"):
        ds.subset("Klingon")


def test_bad_glyph_split_is_rejected():
    with pytest.raises(ValueError, match="background"):
        metakit.load_glyphs("train")


def test_dataset_rejects_mismatched_arrays():
    with pytest.raises(ValueError, match="expected"):
        ImageClassDataset(np.zeros((3, 28, 28), np.uint8), [0, 1], ["a/b", "a/c"])


def test_sinusoid_family_matches_the_maml_paper():
    g = torch.Generator().manual_seed(0)
    xs, ys, xq, yq, amp, phase = SinusoidTasks().sample(1000, 10, 5, generator=g)
    assert xs.shape == (1000, 10, 1) and xq.shape == (1000, 5, 1)
    assert 0.1 <= amp.min() and amp.max() <= 5.0
    assert 0 <= phase.min() and phase.max() <= math.pi
    assert -5 <= xs.min() and xs.max() <= 5
    torch.testing.assert_close(ys, amp[:, None, None] * torch.sin(xs - phase[:, None, None]))


def test_sinusoid_rejects_empty_tasks():
    with pytest.raises(ValueError, match="k_shot"):
        SinusoidTasks().sample(4, 0, 5)


def test_held_out_sets_has_omniglot_only_when_it_is_here(glyphs_evaluation, monkeypatch, tmp_path):
    from metakit.datasets import held_out_sets

    monkeypatch.setenv("METAKIT_OMNIGLOT", str(tmp_path / "missing.zip"))
    monkeypatch.setattr("metakit.datasets.REPO_ROOT", tmp_path)  # no shared/ beside this fake repo either
    assert list(held_out_sets(glyphs_evaluation)) == ["glyphs"]
    assert held_out_sets(glyphs_evaluation)["glyphs"] is glyphs_evaluation
