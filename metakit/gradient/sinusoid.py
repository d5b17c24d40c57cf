"""Sinusoid regression (Finn et al., 2017, Sec. 5.1): the network, a pretrained baseline, and
fine-tuning curves for notebook 02's plots and widgets."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from matplotlib import cm
from matplotlib.figure import Figure
from torch import nn
from torch.func import functional_call, grad

from ..datasets import SinusoidTasks
from ..runtime import Budget
from ..stats import mean_ci
from ..training import model_device

X_PLOT = torch.linspace(-5, 5, 200)[:, None]  # (200, 1) where the curves are drawn


def sinusoid_mlp(hidden: int = 40) -> nn.Sequential:
    """The paper's regressor: 1 -> hidden -> hidden -> 1 with ReLUs."""
    return nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def train_pretrained(model: nn.Module, *, tasks: SinusoidTasks | None = None, lr: float = 1e-3,
                     meta_batch_size: int = 25, k_shot: int = 10, steps: int | None = None,
                     seconds: float | None = None, progress: bool = True, clock=time.perf_counter,
                     device=None) -> dict:
    """The paper's baseline: one regressor trained on points from all tasks at once, with no
    adaptation in training (Adam on the mean squared error of each batch of tasks' points).

    Args:
        steps, seconds, clock: the budget (:class:`~metakit.runtime.Budget`; wall clock by default).
        device: where to train (default: where the model's parameters are).
    Returns:
        ``{"loss": [per step], "steps", "seconds", "clock_seconds"}``.
    """
    tasks = tasks or SinusoidTasks()
    device = torch.device(device) if device is not None else model_device(model)
    model.to(device)
    budget = Budget(steps, seconds, clock=clock, device=device, desc="pretraining", progress=progress)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in budget:
        x, y, *_ = tasks.sample(meta_batch_size, k_shot, 1, device=device)
        loss = F.mse_loss(model(x.reshape(-1, 1)), y.reshape(-1, 1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        budget.log(loss=loss.item())
    return {**budget.history, **budget.summary()}


def finetune_path(model: nn.Module, x_support, y_support, *, inner_lr: float, steps: int, x_eval=X_PLOT):
    """Plain SGD on one task's support points, as at meta-test time.

    Args:
        model: the regressor; its own parameters are left untouched.
        x_support, y_support: (K, 1) points of the task.
        inner_lr, steps: the SGD step size and number of steps.
        x_eval: (M, 1) where to evaluate the network after each step.
    Returns:
        (steps + 1, M, 1) predictions at ``x_eval`` before any step and after each, on the CPU
        (the points go to the model's device for the computation).
    Raises:
        FloatingPointError: when the parameters or predictions stop being finite (inner_lr too large).
    """
    params = {n: p.detach() for n, p in model.named_parameters()}
    device = model_device(model)
    x_support, y_support, x_eval = x_support.to(device), y_support.to(device), x_eval.to(device)
    run = lambda p, x: functional_call(model, p, (x,))  # noqa: E731
    support_grad = grad(lambda p: F.mse_loss(run(p, x_support), y_support))
    with torch.no_grad():
        preds = [run(params, x_eval)]
    for k in range(steps):
        g = support_grad(params)
        params = {n: p - inner_lr * g[n] for n, p in params.items()}
        with torch.no_grad():
            preds.append(run(params, x_eval))
        if not torch.isfinite(preds[-1]).all() or preds[-1].abs().max() > 1e4:
            raise FloatingPointError(f"Fine-tuning diverged at step {k + 1} with inner_lr={inner_lr:g}: the "
                                     "predictions blew up. Lower inner_lr.")
    return torch.stack(preds).cpu()


def mse_after_steps(models: dict, *, k_shot: int, inner_lr: float, steps=(1, 5, 10), n_tasks: int = 600,
                    n_query: int = 100, seed: int = 0) -> dict:
    """Mean squared error on fresh query points after fine-tuning on ``k_shot`` points, per model
    and number of steps, all models on the same tasks.

    Returns:
        ``{(model name, steps): (mean mse, 95% half-width)}`` (:func:`metakit.stats.mean_ci`).
    """
    g = torch.Generator().manual_seed(seed)
    xs, ys, xq, yq, *_ = SinusoidTasks().sample(n_tasks, k_shot, n_query, generator=g)
    out = {}
    for name, model in models.items():
        errs = torch.stack([((finetune_path(model, xs[t], ys[t], inner_lr=inner_lr, steps=max(steps), x_eval=xq[t])
                              - yq[t]) ** 2).mean((1, 2)) for t in range(n_tasks)])  # (n_tasks, max+1)
        for s in steps:
            out[name, s] = mean_ci(errs[:, s])
    return out


def adaptation_figure(models: dict, k_shot: int, inner_lr: float, inner_steps: int, amplitude: float,
                      phase: float, seed: int = 0):
    """Notebook 02's widget callback: each model fine-tuned on ``k_shot`` points of one sine,
    a curve per step, next to the true function."""
    if k_shot < 1:
        raise ValueError(f"k_shot must be at least 1; k_shot={k_shot} was asked.")
    g = torch.Generator().manual_seed(seed)
    x_support = -5 + 10 * torch.rand(k_shot, 1, generator=g)
    y_support = SinusoidTasks.function(x_support, amplitude, phase)
    paths = {name: finetune_path(m, x_support, y_support, inner_lr=inner_lr, steps=inner_steps)
             for name, m in models.items()}
    truth = SinusoidTasks.function(X_PLOT, amplitude, phase)
    fig = Figure(figsize=(4.2 * len(models), 3.2), layout="constrained")
    axes = fig.subplots(1, len(models), sharey=True, squeeze=False)[0]
    colours = cm.viridis(torch.linspace(0, 0.9, inner_steps + 1).numpy())
    for ax, (name, path) in zip(axes, paths.items()):
        ax.plot(X_PLOT, truth, color="k", lw=2, label="true function")
        for k, pred in enumerate(path):
            ax.plot(X_PLOT, pred, color=colours[k], lw=1.8 if k in (0, inner_steps) else 0.8,
                    ls="--" if k == 0 else "-", label=("before adapting" if k == 0 else
                                                       f"after {k} step{'s' * (k > 1)}" if k == inner_steps else None))
        ax.scatter(x_support, y_support, color="red", zorder=3, label=f"{k_shot} support points")
        mse = ((path[-1] - truth) ** 2).mean().item()
        ax.set_title(f"{name}: MSE {mse:.2f} after {inner_steps} step{'s' * (inner_steps != 1)}", fontsize=9)
        ax.set_ylim(-6, 6)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower left")
    return fig
