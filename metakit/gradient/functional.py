"""The functional core of gradient-based meta-learning (MAML and its family), with ``torch.func``.

Parameters live in a dict ``{name: tensor}`` (``dict(model.named_parameters())``) and the network
runs as ``functional_call(model, (params, buffers), (x,))``, so one module serves the initial
parameters and every task's adapted copy. The inner step takes its gradient with
``torch.func.grad``, which works inside ``vmap`` and stays differentiable for the outer backward.
"""

from __future__ import annotations

import contextlib
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap

from .fast_conv4 import conv4_forward
from .vmap_batchnorm import DecomposedBatchNorm

Forward = Callable[..., torch.Tensor]  # forward(params, x, step) -> outputs


class MetaLoss(NamedTuple):
    loss: torch.Tensor           # () mean query loss over the tasks, to backpropagate
    outputs: torch.Tensor        # (T, n_query_total, ...) query outputs of the adapted networks
    adapted: dict | None         # {name: (T, *shape)} adapted parameters, if asked for


def functional_forward(model: nn.Module, fast: bool = False) -> Forward:
    """``forward(params, x, step=0)``: the model run with ``params``; ``step`` is ignored here.

    ``forward.batch_norm`` says whether the model has BatchNorm (see :class:`DecomposedBatchNorm`).

    BatchNorm with running statistics is refused: a task's support set would leak into averages
    shared by all tasks, and ``vmap`` cannot update them in place. With ``fast=True`` a
    :class:`~metakit.models.Conv4` runs through :func:`~metakit.gradient.fast_conv4.conv4_forward`
    (the same function computed another way: 1.05x to 1.11x faster on 2 CPU cores, float32
    gradients up to 4.5e-4 from the module's; an option, not the default).
    """
    if isinstance(model, nn.Module):
        for name, m in model.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
                raise ValueError(f"{name or 'the model'} is a BatchNorm with running statistics; inner loops need "
                                 "batch statistics: build it with track_running_stats=False "
                                 "(for example Conv4(..., track_running_stats=False)).")
    buffers = dict(model.named_buffers())
    fast_forward = conv4_forward(model) if fast else None

    def forward(params, x, step=0):
        if fast_forward is not None:
            return fast_forward(params, x)
        return functional_call(model, (params, buffers), (x,))
    forward.batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    return forward


def default_vectorize(model) -> bool:
    """Whether :func:`meta_loss` should ``vmap`` over tasks by default: yes for MLPs, no for conv nets.

    Measured with ``benchmarks/maml_speed.py`` (torch 2.14 on 2 CPU threads, second order, 1 inner
    step; median ms per meta-iteration, loop / vmap / learn2learn):
      - sinusoid MLP 1-40-40-1, 25 tasks of 10 + 10 points: 24.7 / 3.2 / 19.4 (vmap 7.7x the loop);
      - Conv4(track_running_stats=False), 32 tasks of 5-way 1-shot with 15 queries per class:
        2268 / 11009 / 2154 (vmap 4.9x slower: grouped convolutions and the decomposed BatchNorm
        of :class:`~metakit.gradient.vmap_batchnorm.DecomposedBatchNorm` cost more than the loop saves);
        with the Conv4 fast forward of :mod:`~metakit.gradient.fast_conv4` (``fast=True``), 1907 / 3987 / 2118.
    The vmap path's many small ops also suffer most when other processes share the cores.
    """
    return not any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()) \
        if isinstance(model, nn.Module) else True


def step_rates(inner_lr, per_param_lr, per_step_lr, steps: int) -> Callable[[str, int], object]:
    """``rate(name, k)``: the learning rate of parameter ``name`` at inner step ``k`` (0-based)."""
    if isinstance(inner_lr, dict):  # a dict of tensors is Meta-SGD's per-parameter rates
        per_param_lr, inner_lr = {**inner_lr, **(per_param_lr or {})}, None
    if per_step_lr is not None:
        lengths = [len(v) for v in (per_step_lr.values() if isinstance(per_step_lr, dict) else [per_step_lr])]
        if lengths and min(lengths) < steps:
            raise ValueError(f"per_step_lr holds {min(lengths)} rates per parameter; steps={steps} were asked. "
                             f"Choose steps <= {min(lengths)}.")

    def rate(name, k):
        if isinstance(per_step_lr, torch.Tensor):
            return per_step_lr[k]
        if per_step_lr is not None and name in per_step_lr:
            return per_step_lr[name][k]
        if per_param_lr is not None and name in per_param_lr:
            return per_param_lr[name]
        if inner_lr is None:
            raise KeyError(f"no inner learning rate for parameter {name!r}")
        return inner_lr
    return rate


def _describe_lr(inner_lr, per_param_lr, per_step_lr) -> str:
    learned = per_step_lr if per_step_lr is not None else per_param_lr if per_param_lr is not None else inner_lr
    if isinstance(learned, dict):
        learned = torch.cat([torch.as_tensor(v).detach().flatten() for v in learned.values()])
    if torch.is_tensor(learned) and learned.numel() > 1:
        return f"inner_lr=learned rates from {learned.min().item():.3g} to {learned.max().item():.3g}"
    return f"inner_lr={float(learned):g}"


def inner_loop(forward: Forward, params: dict, x_support, y_support, *, steps: int, rate, loss_fn,
               first_order: bool = False, only=None) -> tuple[list[dict], torch.Tensor]:
    """Gradient steps ``theta_{k+1} = theta_k - rate * grad L_support(theta_k)`` on one task; vmap-safe.

    Args:
        forward: ``forward(params, x, step)``; params: ``{name: tensor}`` at the start.
        x_support, y_support: (N, ...) and (N, ...) one task's support set.
        rate: ``rate(name, k)`` from :func:`_rates`; only: names to adapt (None: all).
    Returns:
        The params after each step (a list of ``steps`` dicts) and the support losses (steps,),
        each measured before its step.
    """
    names = [n for n in params if only is None or n in only]
    if only is not None and len(names) != len(set(only)):
        raise ValueError(f"only names {sorted(set(only) - set(params))}, which are not parameters; "
                         f"the parameters are {', '.join(params)}.")
    path, losses = [], []
    for k in range(steps):
        def support_loss(adapted, k=k, params=params):
            return loss_fn(forward({**params, **adapted}, x_support, k), y_support)
        grads, loss = grad_and_value(support_loss)({n: params[n] for n in names})
        if first_order:  # FOMAML: the step counts as a constant for the meta-gradient
            grads = {n: g.detach() for n, g in grads.items()}
        params = {**params, **{n: params[n] - rate(n, k) * grads[n] for n in names}}
        path.append(params)
        losses.append(loss)
    return path, torch.stack(losses) if losses else torch.zeros(0)


def check_finite(support_losses, inner_lr, per_param_lr, per_step_lr) -> None:
    """Raise FloatingPointError naming the first inner step whose loss is not finite."""
    finite = torch.isfinite(support_losses.detach())  # (..., steps)
    if not bool(finite.all()):
        k = int((~finite).reshape(-1, finite.shape[-1]).any(0).nonzero()[0]) + 1
        value = support_losses.detach().reshape(-1, finite.shape[-1])[:, k - 1]
        value = value[~torch.isfinite(value)][0].item()
        if k == 1:  # measured before any inner update: theta itself (or the data) is the problem
            raise FloatingPointError(f"The inner loss became {value} at step 1, before any inner update, so the "
                                     "initial parameters or the data are at fault: if meta-training led here, "
                                     "lower meta_lr.")
        raise FloatingPointError(f"The inner loss became {value} at step {k} with "
                                 f"{_describe_lr(inner_lr, per_param_lr, per_step_lr)}; lower inner_lr.")


def adapt(model, params: dict, x_support, y_support, *, inner_lr, steps: int, loss_fn=F.cross_entropy,
          first_order: bool = False, per_param_lr=None, per_step_lr=None, only=None) -> dict:
    """Adapt ``params`` to one task with ``steps`` gradient steps on its support set.

    Args:
        model: an ``nn.Module`` or a ``forward(params, x, step)`` function.
        params: ``{name: tensor}``, for example ``dict(model.named_parameters())``.
        x_support: (N, ...) inputs; y_support: (N,) labels or (N, ...) targets.
        inner_lr: a float, or a dict ``{name: tensor}`` (shorthand for ``per_param_lr``).
        steps: number of inner gradient steps (0 returns ``params``).
        loss_fn: ``loss_fn(outputs, y) -> scalar``.
        first_order: treat the inner gradients as constants (FOMAML); the default keeps second order.
        per_param_lr: ``{name: tensor}`` broadcastable to each parameter (Meta-SGD).
        per_step_lr: ``{name: (steps,)}`` rates per parameter and step, or one (steps,) tensor (MAML++).
        only: names of the parameters to adapt (ANIL: the head); the others pass through unchanged.
    Returns:
        The adapted ``{name: tensor}``, still differentiable with respect to ``params`` and the rates.
    Raises:
        FloatingPointError: when an inner loss or an adapted parameter is not finite.
    """
    forward = functional_forward(model) if isinstance(model, nn.Module) else model
    rate = step_rates(inner_lr, per_param_lr, per_step_lr, steps)
    path, losses = inner_loop(forward, params, x_support, y_support, steps=steps, rate=rate, loss_fn=loss_fn,
                              first_order=first_order, only=only)
    check_finite(losses, inner_lr, per_param_lr, per_step_lr)
    adapted = path[-1] if path else params
    if path and not all(bool(torch.isfinite(p).all()) for p in adapted.values()):
        raise FloatingPointError(f"The adapted parameters stopped being finite at step {steps} with "
                                 f"{_describe_lr(inner_lr, per_param_lr, per_step_lr)}; lower inner_lr.")
    return adapted


def meta_loss(model, params: dict, tasks, *, inner_lr, steps: int, loss_fn=F.cross_entropy,
              first_order: bool = False, per_param_lr=None, per_step_lr=None, only=None,
              vectorize: bool | None = None, step_weights=None, keep_adapted: bool = False) -> MetaLoss:
    """The MAML objective: the mean over tasks of the query loss after adapting on the support set.

    Args:
        model: an ``nn.Module`` or a ``forward(params, x, step)`` function.
        params: ``{name: tensor}`` initial parameters (theta).
        tasks: ``(x_support, y_support, x_query, y_query)``, each stacked over T tasks: (T, N, ...).
        inner_lr, steps, loss_fn, first_order, per_param_lr, per_step_lr, only: as in :func:`adapt`.
        vectorize: ``vmap`` over tasks (True) or a Python loop (False); None picks
            :func:`default_vectorize` for the model (both give the same numbers).
        step_weights: (steps,) weights of the query losses after each step (MAML++'s multi-step
            loss); None uses the last step only.
        keep_adapted: also return the adapted parameters of every task (Reptile needs them).
    Returns:
        ``MetaLoss(loss, outputs, adapted)``: the () loss, the (T, n_query_total, ...) query outputs
        after the last step, and ``{name: (T, *shape)}`` or None.
    """
    forward = functional_forward(model) if isinstance(model, nn.Module) else model
    vectorize = default_vectorize(model) if vectorize is None else vectorize
    rate = step_rates(inner_lr, per_param_lr, per_step_lr, steps)

    def task_loss(params, x_support, y_support, x_query, y_query):
        path, support_losses = inner_loop(forward, params, x_support, y_support, steps=steps, rate=rate,
                                          loss_fn=loss_fn, first_order=first_order, only=only)
        path = path or [params]
        if step_weights is None:
            outputs = forward(path[-1], x_query, len(path) - 1)
            query = loss_fn(outputs, y_query)
        else:  # MAML++: the query loss after every step, weighted
            per_step = [forward(p, x_query, k) for k, p in enumerate(path)]
            outputs = per_step[-1]
            query = sum(w * loss_fn(o, y_query) for w, o in zip(step_weights, per_step))
        return query, support_losses, outputs, (path[-1] if keep_adapted else {})

    if vectorize:
        with DecomposedBatchNorm() if getattr(forward, "batch_norm", True) else contextlib.nullcontext():
            query, support_losses, outputs, adapted = vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(params, *tasks)
    else:
        results = [task_loss(params, *(t[i] for t in tasks)) for i in range(len(tasks[0]))]
        query, support_losses, outputs = (torch.stack([r[j] for r in results]) for j in range(3))
        adapted = {n: torch.stack([r[3][n] for r in results]) for n in results[0][3]}
    check_finite(support_losses, inner_lr, per_param_lr, per_step_lr)  # (T, steps)
    loss = query.mean()
    if not bool(torch.isfinite(loss.detach())):
        raise FloatingPointError(f"The query loss became {loss.item()} after {steps} inner step(s) with "
                                 f"{_describe_lr(inner_lr, per_param_lr, per_step_lr)} while the inner losses "
                                 "were finite: the last inner step diverged; lower inner_lr.")
    return MetaLoss(loss, outputs, adapted if keep_adapted else None)
