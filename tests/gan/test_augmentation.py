"""metakit.gan.augmentation: augmentation shapes, paired evaluation, intervals, collapse detection,
sample quality; plus the quick run of benchmarks/gan_augmentation.py."""

import math

import pytest
import torch

import metakit
from metakit.datasets import load_glyphs
from metakit.gan.augmentation import (
    METHODS,
    assert_not_collapsed,
    augment,
    check_collapse,
    comparison,
    diversity,
    format_quality,
    format_reference,
    format_table,
    generated_only_accuracy,
    load_pretrained,
    paired_evaluation,
    summarize,
)
from metakit.gan.dagan import DAGANGenerator
from metakit.stats import mean_ci as interval


class Copier(DAGANGenerator):
    """Collapsed: ignores the noise, every variation is the input itself."""

    def forward(self, x, z):
        return x.clone()


class Constant(DAGANGenerator):
    """Collapsed: ignores everything, the same grey square for every input and noise."""

    def forward(self, x, z):
        return torch.full_like(x, 0.3)


class Jitter(DAGANGenerator):
    """Healthy enough: the input shifted by a pixel or two and speckled, depending on the noise."""

    def forward(self, x, z):
        shift = int(z[0, 0].sign().item()) + 1
        noise = torch.sigmoid(z[:, :1, None, None].expand(-1, 1, 28, 28) + torch.randn_like(x))
        return (torch.roll(x, shifts=shift, dims=-1) * 0.7 + 0.3 * noise).clamp(0, 1)


@pytest.fixture(scope="module")
def evaluation():
    return load_glyphs("evaluation")


@pytest.fixture(scope="module")
def pretrained():
    return load_pretrained()


def test_augment_shapes_and_labels():
    x = torch.rand(10, 1, 28, 28)
    y = torch.arange(5).repeat_interleave(2)
    xa, ya = augment(Jitter(z_dim=4, hidden=4), x, y, n_gen=3, seed=0)
    assert xa.shape == (40, 1, 28, 28) and ya.shape == (40,)
    assert torch.equal(xa[:10], x) and torch.equal(ya[:10], y)
    assert torch.equal(ya[10:], y.repeat_interleave(3))
    assert xa.min() >= 0 and xa.max() <= 1


def test_interval_fixed_values():
    values = torch.tensor([0.0, 1.0] * 20)  # 40 values: the papers' 1.96 * population std / sqrt(n)
    mean, ci = interval(values)
    assert mean == 0.5 and ci == pytest.approx(1.96 * 0.5 / math.sqrt(40))


def test_summary_uses_the_paired_difference():
    base = torch.tensor([0.2, 0.4, 0.6, 0.8], dtype=torch.float64)
    table = summarize({"plain": {"base": base, "aug": base + 0.1}})["plain"]
    assert table["diff"] == pytest.approx(0.1) and table["diff_ci"] == pytest.approx(0.0, abs=1e-12)
    assert table["base_ci"] > 0.1  # the separate intervals are wide, the paired one is not


def test_collapse_detection(evaluation):
    copier, constant, jitter = Copier(z_dim=4, hidden=4), Constant(z_dim=4, hidden=4), Jitter(z_dim=4, hidden=4)
    c = check_collapse(copier, evaluation, n_chars=10, n_samples=4)
    assert c["collapsed"] and "nearly identical" in c["message"] and c["within"] == pytest.approx(0.0, abs=1e-6)
    assert c["between"] > 0.5  # the copies still differ between characters
    c = check_collapse(constant, evaluation, n_chars=10, n_samples=4)
    assert c["collapsed"] and "same picture" in c["message"]
    c = check_collapse(jitter, evaluation, n_chars=10, n_samples=4)
    assert not c["collapsed"] and c["message"] == ""
    with pytest.raises(ValueError, match="collapsed"):
        assert_not_collapsed(copier, evaluation, n_chars=10, n_samples=4)


def test_real_data_against_itself_has_diversity_one(evaluation):
    d = diversity(Jitter(z_dim=4, hidden=4), evaluation, n_chars=10, n_samples=4)
    assert d["real_within"] < d["real_between"]  # drawings of one character are closer than different ones
    assert 0 < d["within"] and 0 < d["between"]


def test_evaluation_refuses_a_collapsed_generator(evaluation, pretrained):
    with pytest.raises(ValueError, match="collapsed"):
        paired_evaluation(Constant(z_dim=4, hidden=4), evaluation, episodes=2, pretrained=pretrained, progress=False)


def test_evaluation_rejects_bad_values(evaluation, pretrained):
    g = Jitter(z_dim=4, hidden=4)
    with pytest.raises(ValueError, match="n_gen"):
        paired_evaluation(g, evaluation, episodes=2, n_gen=0, pretrained=pretrained, progress=False)
    with pytest.raises(ValueError, match="episodes"):
        paired_evaluation(g, evaluation, episodes=1, pretrained=pretrained, progress=False)
    with pytest.raises(ValueError, match="k_shot"):
        paired_evaluation(g, evaluation, k_shot=19, episodes=2, pretrained=pretrained, progress=False)


def test_paired_evaluation_shapes_and_copies_leave_prototypes_unchanged(evaluation, pretrained):
    r = paired_evaluation(Copier(z_dim=4, hidden=4), evaluation, episodes=3, n_gen=2, pretrained=pretrained,
                          progress=False, check=False, plain_steps=5, head_steps=5)
    assert set(r) == {*METHODS, "summary"}
    for m in METHODS:
        assert r[m]["base"].shape == (3,) and r[m]["aug"].shape == (3,)
        assert ((0 <= r[m]["aug"]) & (r[m]["aug"] <= 1)).all()
    # exact copies of the support images do not move a class mean
    assert torch.equal(r["proto"]["base"], r["proto"]["aug"])
    assert r["summary"]["proto"]["diff"] == 0.0


def test_paired_evaluation_repeats_with_the_seed(evaluation, pretrained):
    kw = dict(episodes=2, n_gen=1, pretrained=pretrained, progress=False, methods=("plain",), plain_steps=5)
    a = paired_evaluation(Jitter(z_dim=4, hidden=4), evaluation, **kw)
    b = paired_evaluation(Jitter(z_dim=4, hidden=4), evaluation, **kw)
    assert torch.equal(a["plain"]["base"], b["plain"]["base"])


def test_comparison_is_paired_evaluation_per_setting(evaluation, pretrained):
    kw = dict(episodes=2, n_gen=1, pretrained=pretrained, progress=False, methods=("plain", "proto"), plain_steps=5)
    table = comparison(Jitter(z_dim=4, hidden=4), evaluation, {"a": 1, "b": 2}, **kw)
    assert list(table) == ["a", "b"]
    for name, k_shot in (("a", 1), ("b", 2)):
        assert table[name] == paired_evaluation(Jitter(z_dim=4, hidden=4), evaluation, k_shot=k_shot, **kw)["summary"]
    text = format_table(table)
    assert len(text.splitlines()) == 1 + 2 * 2 and "±" in text and "(c) prototypical network" in text
    assert "0.50 of the paper's gain" in format_reference({"base": 0.5, "aug": 0.565, "diff": 0.065})


def test_format_quality_reads_the_verdict(evaluation, pretrained):
    g = Constant(z_dim=4, hidden=4)
    q = check_collapse(g, evaluation)
    text = format_quality(q, {"generated": (0.2, 0.01), "real": (0.9, 0.02), "chance": 0.2}, n_gen=5)
    assert "collapsed: True" in text and "0.2000±0.0100" in text and "0.9000±0.0200" in text


def test_generated_only_accuracy_of_copies_equals_the_real_shot(evaluation, pretrained):
    q = generated_only_accuracy(Copier(z_dim=4, hidden=4), evaluation, episodes=3, n_gen=2, pretrained=pretrained)
    assert q["generated"] == pytest.approx(q["real"]) and q["chance"] == 0.2
    assert q["real"][0] > 0.5


def test_quick_benchmark():
    from helpers import run_quick

    stdout, result = run_quick("gan_augmentation.py")
    assert list(result) == ["plain_base", "plain_aug", "finetune_base", "finetune_aug", "proto_base", "proto_aug",
                            "gen_train_s"]
    for k, v in result.items():
        if k != "gen_train_s":
            assert 0.0 <= float(v) <= 1.0
    assert 0 < float(result["gen_train_s"]) < 60
    assert "DAGAN (Antoniou et al. 2017)" in stdout and f"device: {metakit.device()}" in stdout.splitlines()


def test_gan_experiment_builds_every_network_on_the_device_given(monkeypatch, tmp_path):
    from metakit.gan import augmentation, dagan, dcgan

    seen = {}

    def recorder(name, result):
        def record(*args, device=None, **kwargs):
            seen[name] = device
            return result
        return record
    monkeypatch.setattr(dagan, "train_or_load_dagan", recorder("dagan", (None, {})))
    monkeypatch.setattr(dcgan, "train_or_load_dcgan", recorder("dcgan", (None, {})))
    monkeypatch.setattr(augmentation, "load_pretrained", recorder("pretrained", None))
    monkeypatch.setattr(augmentation, "check_collapse", lambda *args, **kw: {"collapsed": True})
    monkeypatch.setattr(augmentation, "generated_only_accuracy", lambda *args, **kw: {})
    monkeypatch.setattr(augmentation, "dataset_images", lambda dataset: None)
    augmentation.gan_experiment(None, None, folder=tmp_path, progress=False, device="meta")
    assert seen == {"dagan": "meta", "dcgan": "meta", "pretrained": "meta"}
