"""The training command in one process: checkpoints the notebooks load, resuming, bad input."""

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from metakit.checkpoints import load_weights, train_or_load
from metakit.gradient.family import make_algorithm
from metakit.metric.experiments import make_model
from metakit.train import Config, main, train
from metakit.train.distributed import World

TINY = ["--hidden", "4", "--no-progress", "--dtype", "float64"]


def run(capsys, *argv):
    """``main(argv)``'s exit status and what it printed to stderr."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def saved(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_family_run_writes_a_checkpoint_the_notebooks_load(tmp_path, capsys):
    out = tmp_path / "family-maml.pt"
    assert main(["family", "--algorithm", "maml", "--steps", "2", "--eval-episodes", "3", "--out", str(out),
                 *TINY]) == 0
    assert "test on glyphs (evaluation split), 5-way 1-shot, 3 episodes" in capsys.readouterr().out
    algorithm = make_algorithm("maml", hidden=4)  # as notebook 03 builds it, then train_or_load(...)
    info = train_or_load(algorithm, out, train=lambda m: pytest.fail("the checkpoint was not loaded"))
    assert info["loaded"] and info["steps"] == 2 and len(info["loss"]) == len(info["acc"]) == 2
    assert info["name"] == "maml" and 0 <= info["test_acc"] <= 1
    head = saved(out)["state_dict"]["model.head.weight"]
    assert torch.equal(algorithm.state_dict()["model.head.weight"], head.float())


# MAML++ (MAML's step plus a meta-iteration counter in its state) and a metric method (BatchNorm
# running statistics, a parameter without gradient)
@pytest.mark.parametrize("argv", [["family", "--algorithm", "mamlpp"],
                                  ["metric", "--method", "proto", "--episodes", "2"]], ids=lambda a: a[2])
def test_a_resumed_run_repeats_an_uninterrupted_one(tmp_path, argv):
    whole, parts = tmp_path / "whole.pt", tmp_path / "parts.pt"
    common = [*argv, "--eval-episodes", "0", *TINY]
    assert main([*common, "--steps", "3", "--out", str(whole)]) == 0
    assert main([*common, "--steps", "1", "--out", str(parts)]) == 0
    assert saved(parts)["step"] == 1
    assert main([*argv[:3], "--steps", "3", "--out", str(parts), "--resume", "--no-progress",
                 "--eval-episodes", "0"]) == 0  # the run's settings are read back
    a, b = saved(whole), saved(parts)
    assert b["step"] == 3 and b["info"]["steps"] == 3 and len(b["info"]["loss"]) == 3
    assert b["info"]["loss"] == a["info"]["loss"]
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    for i, state in a["optimizer"]["state"].items():
        assert torch.equal(state["exp_avg_sq"], b["optimizer"]["state"][i]["exp_avg_sq"])
    model = make_model("proto", hidden=4) if argv[0] == "metric" else make_algorithm(argv[2], hidden=4)
    assert load_weights(model, parts)["steps"] == 3  # the extra keys do not disturb load_weights


def test_resuming_refuses_other_settings_and_missing_files(tmp_path, capsys):
    out = tmp_path / "run.pt"
    maml = ["family", "--algorithm", "maml", "--steps", "2"]
    assert main([*maml[:-1], "1", "--eval-episodes", "0", "--out", str(out), *TINY]) == 0
    code, err = run(capsys, *maml, "--out", str(out), "--resume", "--n-way", "3")
    assert code == 2 and "was trained with --n-way 5 (now 3)" in err and "another --out" in err
    code, err = run(capsys, "family", "--algorithm", "anil", "--steps", "2", "--out", str(out), "--resume")
    assert code == 2 and "family maml (now family anil)" in err
    code, err = run(capsys, *maml, "--out", str(tmp_path / "no.pt"), "--resume")
    assert code == 2 and "there is no checkpoint at" in err
    weights_only = tmp_path / "plain.pt"
    train_or_load(make_algorithm("maml", hidden=4), weights_only, lambda m: {})
    code, err = run(capsys, "family", "--algorithm", "maml", "--steps", "2", "--out", str(weights_only), "--resume")
    assert code == 2 and "holds weights only" in err


def test_bad_input_gets_a_message_not_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["family", "--algorithm", "mamll", "--steps", "1"])
    assert e.value.code == 2 and "invalid choice: 'mamll'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["metric", "--method", "proto", "--steps", "-1"])
    assert "argument --steps: -1 is not a whole number >= 0" in capsys.readouterr().err
    cases = {
        ("family", "--algorithm", "maml"): "give a budget",
        ("family", "--algorithm", "maml", "--steps", "1", "--data", "folder"): "--data folder needs --root",
        ("family", "--algorithm", "maml", "--steps", "1", "--data", "folder", "--root", str(tmp_path / "nowhere")):
            "does not exist",
        ("metric", "--method", "proto", "--steps", "1", "--data", "omniglot", "--root", str(tmp_path)):
            "omniglot-py/images_background",
        ("family", "--algorithm", "maml", "--steps", "1", "--n-way", "5000"): "n_way=5000 was asked",
        ("family", "--algorithm", "maml", "--steps", "3", "--inner-lr", "1e300", "--eval-episodes", "0"):
            "lower inner_lr",
    }
    for argv, message in cases.items():
        code, err = run(capsys, *argv, "--out", str(tmp_path / "x.pt"), *TINY)
        assert code == 2 and message in err and "Traceback" not in err, (argv, err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_missing_gpu_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("METAKIT_DEVICE", "cuda")
    code, err = run(capsys, "family", "--algorithm", "maml", "--steps", "1", "--out", str(tmp_path / "x.pt"), *TINY)
    assert code == 2 and "no CUDA GPU" in err


def test_more_processes_than_tasks_is_refused_before_any_work(tmp_path):
    world = World(rank=0, size=4)  # no process group is needed: the check comes first
    message = r"4 processes would share a meta-batch of 2 tasks \(--meta-batch-size\), so some would have none"
    with pytest.raises(ValueError, match=message + ": give --meta-batch-size 4 or more"):
        train(Config(kind="family", name="maml", batch=2, steps=1, out=str(tmp_path / "x.pt")), world)
    with pytest.raises(ValueError, match="share 3 episodes per step .* --episodes 4 or more"):
        train(Config(kind="metric", name="proto", batch=3, steps=1, out=str(tmp_path / "x.pt")), world)
    with pytest.raises(ValueError, match=r"no metric 'maml': the commands are family \(maml, fomaml"):
        train(Config(kind="metric", name="maml", steps=1), World())


def write_pngs(root, alphabets=2, characters=3, drawings=4):
    rng = np.random.default_rng(0)
    for a in range(alphabets):
        for c in range(characters):
            folder = root / f"alphabet{a}" / f"character{c}"
            folder.mkdir(parents=True)
            for d in range(drawings):
                Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{d}.png")


def test_trains_on_any_image_folder_and_on_omniglot_layout(tmp_path, capsys):
    write_pngs(tmp_path / "mine")
    write_pngs(tmp_path / "omni" / "omniglot-py" / "images_background")
    episode = ["--n-way", "3", "--k-shot", "1", "--n-query", "1", "--steps", "1", *TINY]
    assert main(["metric", "--method", "proto", "--no-rotations", "--data", "folder", "--root", str(tmp_path / "mine"),
                 "--eval-root", str(tmp_path / "mine"), "--eval-episodes", "2", "--out", str(tmp_path / "a.pt"),
                 *episode]) == 0
    assert "test on evaluation folder, 5-way 1-shot, 2 episodes" in capsys.readouterr().out
    assert saved(tmp_path / "a.pt")["info"]["test_setting"] == "5w1s"
    assert main(["family", "--algorithm", "maml", "--data", "omniglot", "--root", str(tmp_path / "omni"),
                 "--out", str(tmp_path / "b.pt"), *episode]) == 0
    assert "no evaluation set" in capsys.readouterr().out  # images_evaluation is missing: trained, not tested
    assert main(["family", "--algorithm", "maml", "--steps", "2", "--resume", "--out", str(tmp_path / "b.pt"),
                 "--eval-episodes", "0", "--no-progress"]) == 0  # --data and --root come from the checkpoint
    assert saved(tmp_path / "b.pt")["config"]["data"] == "omniglot" and saved(tmp_path / "b.pt")["step"] == 2
    cfg = Config(kind="family", name="maml", data="folder", root=str(tmp_path / "mine"), n_way=3, k_shot=1, n_query=1,
                 steps=0, eval_episodes=0, hidden=4, out=str(tmp_path / "c.pt"), progress=False)
    assert train(dataclasses.replace(cfg), World())["steps"] == 0


def test_an_interrupted_run_saves_what_it_did(tmp_path, monkeypatch, capsys):
    import metakit.train.run as run_module
    real, calls = run_module.gradients, []

    def interrupt_at_third(*args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)
    monkeypatch.setattr(run_module, "gradients", interrupt_at_third)
    out = tmp_path / "run.pt"
    assert main(["family", "--algorithm", "maml", "--steps", "5", "--save-every", "0", "--out", str(out), *TINY]) == 130
    assert saved(out)["step"] == 2 and len(saved(out)["info"]["loss"]) == 2
    assert "interrupted: 2 steps saved" in capsys.readouterr().out
