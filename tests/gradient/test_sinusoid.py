import matplotlib.figure
import pytest
import torch

from metakit.gradient.sinusoid import adaptation_figure, finetune_path, mse_after_steps, sinusoid_mlp, train_pretrained


def test_finetune_path_lowers_the_support_loss_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = sinusoid_mlp()
    before = [p.clone() for p in model.parameters()]
    x = torch.linspace(-4, 4, 10)[:, None]
    y = 2 * torch.sin(x)
    path = finetune_path(model, x, y, inner_lr=0.01, steps=5, x_eval=x)
    assert path.shape == (6, 10, 1)
    losses = ((path - y) ** 2).mean((1, 2))
    assert losses[-1] < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_diverging_inner_lr_is_a_clear_error():
    model = sinusoid_mlp()
    x = torch.linspace(-4, 4, 10)[:, None]
    with pytest.raises(FloatingPointError, match="Lower inner_lr"):
        finetune_path(model, x, 4 * torch.sin(x), inner_lr=50.0, steps=10)


def test_pretraining_lowers_the_loss():
    torch.manual_seed(0)
    history = train_pretrained(sinusoid_mlp(), steps=60, progress=False)
    assert history["steps"] == 60 and len(history["loss"]) == 60 and "clock_seconds" in history
    assert sum(history["loss"][-10:]) < sum(history["loss"][:10])


def test_mse_table_has_every_model_and_step_on_the_same_tasks():
    torch.manual_seed(0)
    m = sinusoid_mlp()
    table = mse_after_steps({"a": m, "b": m}, k_shot=5, inner_lr=0.01, steps=(1, 3), n_tasks=4)
    assert set(table) == {("a", 1), ("a", 3), ("b", 1), ("b", 3)}
    assert table["a", 3] == table["b", 3]


def test_adaptation_figure_and_bad_k_shot():
    m = sinusoid_mlp()
    fig = adaptation_figure({"MAML": m, "pretrained": m}, k_shot=5, inner_lr=0.01, inner_steps=3,
                            amplitude=2.0, phase=0.5)
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) == 2
    with pytest.raises(ValueError, match="k_shot"):
        adaptation_figure({"MAML": m}, k_shot=0, inner_lr=0.01, inner_steps=1, amplitude=1.0, phase=0.0)
