import math

import pytest
import torch

from metakit.compare import episode_accuracy, paired
from metakit.episodes import EpisodeSampler
from metakit.metric.protonet import PrototypicalNetwork
from metakit.models import Conv4
from metakit.runtime import seed_everything
from metakit.stats import mean_ci
from metakit.transfer import experiments
from metakit.transfer import finetune as transfer

from .test_finetune import tiny_backbone
from .test_widgets import tiny_dataset


def test_the_trainers_train_then_load(tmp_path):
    data = tiny_dataset(classes=6, per_class=4)
    backbone, info = experiments.pretrained_backbone("baselinepp", data, 0.05, tmp_path, progress=False)
    assert not info["loaded"] and info["steps"] >= 1 and (tmp_path / "transfer-baselinepp-300s.pt").exists()
    again, info2 = experiments.pretrained_backbone("baselinepp", data, 0.05, tmp_path, progress=False)
    assert info2["loaded"] and all(torch.equal(a, b) for a, b in zip(backbone.state_dict().values(),
                                                                        again.state_dict().values()))
    assert not again.training


def test_compare_methods_meets_every_method_on_the_same_episodes_and_formats_the_table():
    data = tiny_dataset(classes=6, per_class=20)
    backbone = tiny_backbone()
    methods = {"a": transfer.FineTuner(backbone, steps=3), "b": transfer.FineTuner(backbone, steps=3)}
    results = experiments.compare_methods(methods, {"tiny": data}, episodes=4, progress=False)
    assert set(k[2] for k in results) == set(experiments.SETTINGS)
    assert results["a", "tiny", "5w1s"]["accs"] == results["b", "tiny", "5w1s"]["accs"]
    assert paired(results, "a", "b", "tiny", "5w1s") == (0.0, 0.0)
    table = experiments.format_table(results, {"a": {"steps": 7, "clock_seconds": 1.0}}, names={"a": "A", "b": "B"})
    assert "tiny, A" in table and "tiny, B" in table
    r = results["a", "tiny", "5w5s"]
    assert f"{r['acc']:.4f}±{r['ci95']:.4f}" in table
    assert "tiny 5w1s: baselinepp-baseline" not in experiments.paired_table(results, pairs=(("a", "b"),))
    assert "a-b +0.0000±0.0000" in experiments.paired_table(results, pairs=(("a", "b"),))


def test_the_comparison_is_the_old_per_method_loop():
    # what transfer.compare did: reseed, one sampler per (method, set, setting), the fine-tuner fitted with gradients
    data = tiny_dataset(classes=6, per_class=20)
    methods = {"baseline": transfer.FineTuner(tiny_backbone(), steps=3),
               "proto": PrototypicalNetwork(Conv4(hidden=4)).eval()}
    results = experiments.compare_methods(methods, {"tiny": data}, episodes=3, seed=2, progress=False)
    for name, method in methods.items():
        for setting, episode in experiments.SETTINGS.items():
            seed_everything(2)
            sampler = EpisodeSampler(data, **episode)
            accs = [episode_accuracy(method, *sampler.sample()) for _ in range(3)]
            assert results[name, "tiny", setting]["accs"] == accs
            assert (results[name, "tiny", setting]["acc"], results[name, "tiny", setting]["ci95"]) == mean_ci(accs)


def test_rank_orders_lists_the_paper_then_ours():
    results = {(m, "tiny", "5w1s"): {"acc": a} for m, a in (("baseline", 0.5), ("proto", 0.7))}
    lines = experiments.rank_orders(results, paper={"paper": {"baseline": 0.4, "proto": 0.3}}).splitlines()
    assert lines[0].endswith("order: Baseline > ProtoNet") and lines[1].endswith("order: ProtoNet > Baseline")
    assert "ours, tiny 5w1s" in lines[1]


def test_layers_table_scores_every_choice_on_the_same_episodes():
    data = tiny_dataset(classes=6)
    table = experiments.layers_table(tiny_backbone(), {"tiny": data}, "linear", episodes=2, progress=False, steps=0)
    assert set(table) == {(layers, "tiny") for layers in transfer.LAYERS}
    # no fine-tuning steps: the same fresh head on the same episodes, whatever is "tuned"
    assert len({acc for acc, _ in table.values()}) == 1 and all(math.isfinite(acc) for acc, _ in table.values())


def test_finetune_curve_follows_the_steps_and_scores_the_references_on_the_same_episodes(setup):
    backbones, datasets, references = setup
    curve = experiments.finetune_curve(backbones["baseline"], datasets["tiny"], "linear", 5, 2, 50, 0.05, "head",
                                       episodes=2, references=references)
    assert len(curve["loss"]) == 50 and curve["loss"][-1] < curve["loss"][0]
    assert curve["steps"][0] == 0 and curve["steps"][-1] == 50 and len(curve["acc"]) == len(curve["steps"])
    assert set(curve["references"]) == {"proto", "maml"}
    assert all(0 <= a <= 1 for a in [*curve["acc"], *curve["references"].values()])
    again = experiments.finetune_curve(backbones["baseline"], datasets["tiny"], "linear", 5, 2, 50, 0.05, "head",
                                       episodes=2, references=references)
    assert again == curve  # cached episodes and features: the same numbers


def test_maml_reference_is_left_out_when_the_ways_differ_from_its_head(setup):
    backbones, datasets, references = setup
    curve = experiments.finetune_curve(backbones["baseline"], datasets["tiny"], "linear", 3, 1, 5, 0.01, "head",
                                       episodes=1, references=references)
    assert set(curve["references"]) == {"proto"}


def test_mean_accuracy_restores_the_training_mode():
    torch.manual_seed(0)
    proto = PrototypicalNetwork(Conv4(hidden=4)).train()
    seed_everything(0)
    tasks = [EpisodeSampler(tiny_dataset(), 5, 1, 2).sample()]
    assert 0 <= experiments.mean_accuracy(proto, tasks) <= 1 and proto.training


def test_the_shared_episode_accuracy_fits_a_fine_tuner_with_gradients_even_under_no_grad():
    seed_everything(0)
    episode = EpisodeSampler(tiny_dataset(), 5, 1, 2).sample()
    with torch.no_grad():
        acc = episode_accuracy(transfer.FineTuner(tiny_backbone(), steps=5), *episode)
    assert 0 <= acc <= 1 and acc * 10 == pytest.approx(round(acc * 10))
