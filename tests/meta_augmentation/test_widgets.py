
import pytest
import torch
from matplotlib.figure import Figure

from metakit.meta_augmentation.learned import HAND_TUNED, NAMES, Augmentation, trajectory_lists
from metakit.meta_augmentation.nme import nme_run
from metakit.meta_augmentation.widgets import (
    NMETrainer,
    PolicyTrainer,
    inspect_figure,
    inspector,
    nme_figure,
    parse_indices,
    policy_from,
    samples_figure,
    trajectory_figure,
)
from metakit.widgets import run_safely


def policies():
    return {"none": None, "fixed": Augmentation(HAND_TUNED, learnable=False), "learned": Augmentation()}


def images(n=4):
    return (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) > 0.8).float()


def test_nme_and_trajectory_figures():
    r = {"acc": (0.9, 0.01), "acc_shifted": (0.1, 0.02), "new": (0.5, 0.03)}
    fig = nme_figure({"maml": {**r, "acc_0_steps": (0.9, 0.01)}, "proto": r})
    assert isinstance(fig, Figure)
    traj = trajectory_lists([Augmentation().policy(), Augmentation(HAND_TUNED).policy()])
    fig = trajectory_figure({"learned": traj})
    assert len(fig.axes) == len(NAMES)


def test_policy_from_a_trajectory_rebuilds_the_magnitudes():
    traj = trajectory_lists([Augmentation().policy(), Augmentation(HAND_TUNED).policy()])
    policy = policy_from(traj, 1).policy()
    for n in NAMES:
        assert policy[n] == pytest.approx(Augmentation(HAND_TUNED).policy()[n], rel=1e-3, abs=1e-4)


def test_samples_and_inspector_figures():
    fig = samples_figure(policies(), images(2), samples=3)
    assert len(fig.axes) == 3 * 2 * 4
    fig = inspect_figure(policies(), images(), "learned", "0, 3", 2.0, seed=1)
    assert len(fig.axes) == 2 * 7
    assert inspector(policies(), images()).message.value == ""


@pytest.mark.parametrize("values, match", [
    (dict(indices="one, two"), "whole numbers"),
    (dict(indices=""), "image numbers"),
    (dict(indices="0, 9"), "out of range"),
    (dict(indices="0,1,2,3,0,1,2"), "at most 6"),
    (dict(policy="wild"), "no policy"),
    (dict(strength=float("nan")), "strength"),
])
def test_inspector_bad_input_gives_a_message(values, match):
    args = dict(policies=policies(), images=images(), policy="learned", indices="0", strength=1.0) | values
    result, error = run_safely(inspect_figure, **args)
    assert result is None and match in error


def test_parse_indices():
    assert parse_indices("0, 5;2 3", 6) == [0, 5, 2, 3]


def test_run_button_trains_and_reports(glyphs_background, glyphs_evaluation):
    trainer = PolicyTrainer(glyphs_background, glyphs_evaluation, seconds=3, test_episodes=2)
    history = trainer.run()
    assert history["steps"] >= 1 and "test accuracy" in trainer.message.value
    assert len(trainer.results["yours"]["history"]["traj_rotation"]) == history["steps"]
    assert trainer.image.value  # the trajectory plot


def test_run_button_shows_a_message_for_an_impossible_episode(glyphs_evaluation):
    tiny = glyphs_evaluation.subset(glyphs_evaluation.alphabets[0])
    tiny = type(tiny)(tiny.images[:60], tiny.targets[:60], tiny.class_names, name="three classes")
    trainer = PolicyTrainer(tiny, glyphs_evaluation, seconds=3, test_episodes=2)
    assert trainer.run() is None
    assert "Not possible" in trainer.message.value and "n_way=5" in trainer.message.value


def test_nme_run_button_trains_with_the_chosen_shuffle_ways_and_shots(glyphs_background, glyphs_evaluation):
    trainer = NMETrainer(glyphs_background, glyphs_evaluation, seconds=2, test_episodes=2)
    for name, value in dict(shuffle="intra", inner_lr=0.2, n_way=3, k_shot=2).items():
        trainer.controls[name].value = value
    row = trainer.run()
    assert row["steps"] >= 1 and set(row) >= {"acc", "acc_shifted", "acc_0_steps", "new"}
    assert "3-way 2-shot, shuffle=intra" in trainer.message.value and "chance 0.333" in trainer.message.value
    assert "yours (intra)" in trainer.results and trainer.image.value


@pytest.mark.parametrize("values, match", [
    (dict(shuffle="sideways"), "shuffle must be one of"),
    (dict(inner_lr=0.0), "inner_lr must be a positive number"),
    (dict(inner_lr=float("nan")), "inner_lr must be a positive number"),
    (dict(n_way=1), "n_way must be at least 2"),
    (dict(k_shot=16), "Choose k_shot + n_query <= 20"),
    (dict(n_way=600), "Choose n_way <= 579"),
    (dict(seconds=0), "seconds must be between"),
])
def test_nme_run_bad_values_give_a_message(glyphs_background, glyphs_evaluation, values, match):
    args = dict(shuffle="none", inner_lr=0.1, n_way=5, k_shot=1, seconds=2) | values
    result, error = run_safely(nme_run, background=glyphs_background, evaluation=glyphs_evaluation,
                               test_episodes=2, **args)
    assert result is None and match in error, error


def test_nme_run_button_shows_a_message_for_an_impossible_episode(glyphs_evaluation):
    tiny = glyphs_evaluation.subset(glyphs_evaluation.alphabets[0])
    tiny = type(tiny)(tiny.images[:60], tiny.targets[:60], tiny.class_names, name="three classes")
    trainer = NMETrainer(tiny, glyphs_evaluation, seconds=2, test_episodes=2)
    assert trainer.run() is None
    assert "Not possible" in trainer.message.value and "n_way=5" in trainer.message.value
