"""Meta-transfer learning (Sun, Liu, Chua and Schiele, CVPR 2019, "Meta-Transfer Learning for
Few-Shot Learning"): the bridge between pretraining and meta-learning.

A Conv-4 is first pretrained as an ordinary classifier over every background class (Baseline's
pretraining, :func:`metakit.transfer.finetune.pretrain`). Its weights are then frozen, and a
per-channel *scaling and shifting* (SS) of every convolution is meta-learned over episodes: a
convolution's weights ``W`` and bias ``b`` become ``W * s`` (one ``s`` per output channel) and
``b + t``. The base learner is a linear head, adapted to each task's support set by a few gradient
steps from a meta-learned initialisation, as in ANIL; the query loss after those steps is
differentiated through them into ``s``, ``t`` and the head's initialisation, as in MAML.

Left out: the paper's hard-task meta-batch (re-sampling the classes each meta-batch got most wrong),
which pays off over tens of thousands of meta-iterations, not the few hundred a CPU budget allows.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..gradient import family
from ..gradient.maml import MAML
from ..models import Conv4
from .finetune import pretrain

SS_MODES = ("scale and shift", "scale only", "shift only", "off")
# Inner loop of the head on frozen features, in training and at test time: 10 steps of SGD at 0.01 from
# a zero head. Chosen on 5-way 1-shot episodes of the background alphabets with Baseline's pretrained
# features (no scaling or shifting): 0.985 there, against 0.952 at 0.5 and 0.941 after a single step.
INNER = dict(inner_lr=0.01, inner_steps=10)
PRETRAIN_SHARE = 0.8  # of the training budget spent pretraining the backbone; the rest meta-learns SS
# The outer learning rate of the scaling and shifting, as a fraction of the head's: the authors' code
# uses Adam at 1e-4 for the scaling and shifting and 1e-3 for the head (its meta_lr1 and meta_lr2).
SS_LR_RATIO = 0.1


class ScaledConv4(nn.Module):
    """A frozen, pretrained Conv-4 with a learnable scaling and shifting of each convolution, and a
    linear head.

    BatchNorm, used at test time with its running statistics, is an affine map per channel, so it
    is folded into the convolution before it (``W' = W g / sqrt(v + eps)``, ``b' = (b - m) g /
    sqrt(v + eps) + beta``); the frozen weights are buffers, so only ``scale``, ``shift`` and
    ``head`` are parameters.

    Args:
        backbone: a Conv-4 pretrained with BatchNorm running statistics (None: a fresh one, to be
            replaced by :meth:`load_backbone` or a checkpoint).
        n_way: the head's outputs.
    """

    def __init__(self, backbone: Conv4 | None = None, n_way: int = 5):
        super().__init__()
        backbone = backbone if backbone is not None else Conv4()
        channels = [block[0].out_channels for block in backbone.features[:4]]
        for i, block in enumerate(backbone.features[:4]):
            self.register_buffer(f"weight{i}", torch.empty_like(block[0].weight))
            self.register_buffer(f"bias{i}", torch.empty(channels[i]))
        self.scale = nn.ParameterList([nn.Parameter(torch.ones(c)) for c in channels])
        self.shift = nn.ParameterList([nn.Parameter(torch.zeros(c)) for c in channels])
        self.head = nn.Linear(channels[-1], n_way)
        nn.init.zeros_(self.head.weight)  # before its support set, a new task's classes are all alike
        nn.init.zeros_(self.head.bias)
        self.embedding_dim = channels[-1]
        self.mode = SS_MODES[0]
        self.load_backbone(backbone)

    @torch.no_grad()
    def load_backbone(self, backbone: Conv4) -> None:
        """Fold ``backbone``'s four blocks (conv, then BatchNorm at its running statistics) into
        this network's frozen weights."""
        for i, block in enumerate(backbone.features[:4]):
            conv, bn = block[0], block[1]
            if bn.running_var is None:
                raise ValueError("the backbone's BatchNorm keeps no running statistics, so it has no fixed test-time "
                                 "map to fold: pretrain it with track_running_stats=True (as Conv4() is by default).")
            g = bn.weight / torch.sqrt(bn.running_var + bn.eps)  # (C,)
            getattr(self, f"weight{i}").copy_(conv.weight * g[:, None, None, None])
            getattr(self, f"bias{i}").copy_((conv.bias - bn.running_mean) * g + bn.bias)

    def set_mode(self, mode: str) -> None:
        """Which part of the scaling and shifting the features use: one of :data:`SS_MODES`
        (``"off"``: the pretrained features unchanged)."""
        if mode not in SS_MODES:
            raise ValueError(f"mode must be one of {', '.join(repr(m) for m in SS_MODES)}; got {mode!r}.")
        self.mode = mode

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, 64) embeddings, through the scaled and shifted convolutions."""
        for i in range(4):
            w, b = getattr(self, f"weight{i}"), getattr(self, f"bias{i}")
            if self.mode in ("scale and shift", "scale only"):
                w = w * self.scale[i][:, None, None, None]
            if self.mode in ("scale and shift", "shift only"):
                b = b + self.shift[i]
            x = F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=1)), 2)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) images -> (B, n_way) logits of the unadapted head."""
        return self.head(self.features(x))


def head_forward(params: dict, z: torch.Tensor, step: int = 0) -> torch.Tensor:
    """The linear head with ``params`` (``{"weight": (N, D), "bias": (N,)}``) on features ``z``."""
    return F.linear(z, params["weight"], params["bias"])


head_forward.batch_norm = False  # lets metakit.gradient.functional vmap it over tasks as it is


class MetaTransfer(MAML):
    """Meta-transfer learning on a :class:`ScaledConv4`: MAML's objective, with the inner loop on
    the head alone and the outer loop on the head's initialisation and the scaling and shifting.

    The features of a task are computed once, before the inner loop (the body does not change
    within a task), so the inner steps cost almost nothing and the meta-gradient reaches the
    scaling and shifting through the features of the support and query sets.

    Args:
        net: the network (its ``scale``, ``shift`` and ``head`` are the meta-parameters).
        inner_lr, inner_steps, first_order: as for :class:`~metakit.gradient.maml.MAML`.
    """

    def __init__(self, net: ScaledConv4, inner_lr: float = INNER["inner_lr"],
                 inner_steps: int = INNER["inner_steps"], first_order: bool = False):
        super().__init__(net, inner_lr=inner_lr, inner_steps=inner_steps, first_order=first_order, vectorize=True)

    def init_params(self) -> dict:
        return {"weight": self.model.head.weight, "bias": self.model.head.bias}

    def param_groups(self, meta_lr: float) -> list[dict]:
        """The outer optimiser's groups: the head's start at ``meta_lr``, the scaling and shifting
        at :data:`SS_LR_RATIO` times it (small steps keep the pretrained features near where they were)."""
        return [{"params": [*self.model.scale, *self.model.shift], "lr": SS_LR_RATIO * meta_lr},
                {"params": list(self.model.head.parameters()), "lr": meta_lr}]

    def forward_fn(self):
        return head_forward

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Features of images stacked any way, ``(..., C, H, W) -> (..., D)``."""
        return self.model.features(x.reshape(-1, *x.shape[-3:])).reshape(*x.shape[:-3], -1)

    def _meta_loss(self, tasks, step_weights=None, keep_adapted: bool = False, params=None):
        x_support, y_support, x_query, y_query = tasks
        return super()._meta_loss((self.features(x_support), y_support, self.features(x_query), y_query),
                                  step_weights, keep_adapted, params)

    def adapt(self, x_support, y_support, steps: int | None = None, create_graph: bool = False) -> dict:
        with torch.enable_grad() if create_graph else torch.no_grad():
            z = self.features(x_support)
        return super().adapt(z, y_support, steps=steps, create_graph=create_graph)

    def adaptation_path(self, x_support, y_support, steps: int | None = None):
        with torch.no_grad():
            z = self.features(x_support)
        return super().adaptation_path(z, y_support, steps=steps)

    def predict(self, params: dict, x) -> torch.Tensor:
        return head_forward(params, self.features(x))


def make_mtl(backbone: Conv4 | None = None, n_way: int = 5, **inner) -> MetaTransfer:
    """Meta-transfer learning on ``backbone`` (None: a fresh Conv-4, for a checkpoint to fill)."""
    return MetaTransfer(ScaledConv4(backbone, n_way), **{**INNER, **inner})


def train(mtl: MetaTransfer, background, seconds: float | None = None, *, pretrain_steps: int | None = None,
          meta_steps: int | None = None, clock=time.perf_counter, progress: bool = True, seed: int = 0) -> dict:
    """Both phases on ``background``: pretrain a Conv-4 over every class (Baseline's recipe, linear
    head, rotated classes) for ``PRETRAIN_SHARE`` of ``seconds`` of ``clock``, fold it into ``mtl``,
    then meta-learn the scaling and shifting and the head's initialisation for the rest, with the
    gradient family's episodes and outer optimiser (:func:`metakit.gradient.family.train`), the
    scaling and shifting at a tenth of its rate (:meth:`MetaTransfer.param_groups`).
    ``pretrain_steps`` and ``meta_steps`` give step budgets instead (tests).

    Returns:
        The meta-training history, with ``pretrain_steps`` and ``pretrain_clock_seconds`` added and
        ``seconds`` / ``clock_seconds`` covering both phases.
    """
    if seconds is None and (pretrain_steps is None or meta_steps is None):
        raise ValueError("give seconds, or both pretrain_steps and meta_steps.")
    backbone = Conv4().to(mtl.model.head.weight.device)
    first = pretrain(backbone, background, "linear", steps=pretrain_steps,
                     seconds=None if seconds is None else PRETRAIN_SHARE * seconds, clock=clock, progress=progress,
                     seed=seed)
    mtl.model.load_backbone(backbone)
    rest = None if seconds is None else max(0.0, seconds - first["clock_seconds"])  # pretraining may overrun a little
    second = family.train(mtl, background, seconds=rest,
                          steps=meta_steps, progress=progress, clock=clock)
    return {**second, "pretrain_steps": first["steps"], "pretrain_clock_seconds": first["clock_seconds"],
            "seconds": first["seconds"] + second["seconds"],
            "clock_seconds": first["clock_seconds"] + second["clock_seconds"]}


def meta_gradient_check(mtl: MetaTransfer, task, directions: int = 8, eps: float = 1e-5, seed: int = 0) -> float:
    """The meta-gradient of the query loss (through the inner steps and the features) against
    central finite differences along random directions (:func:`directional_check`), in float64 on a
    copy of ``mtl``.

    Args:
        task: ``(x_support, y_support, x_query, y_query)`` of one task.
    Returns:
        The relative difference ``|fd - g.v| / |g.v|`` over the directions ``v`` (about 1e-9 when
        the gradient is right).
    """
    model = copy.deepcopy(mtl).double()
    tasks = tuple(t.unsqueeze(0).double() if torch.is_floating_point(t) else t.unsqueeze(0) for t in task)
    params = [p for p in model.parameters() if p.requires_grad]

    def loss():
        with torch.enable_grad():  # the inner loop needs gradients of the head
            return model._meta_loss(tasks).loss

    grads = [torch.zeros_like(p) if d is None else d  # "off" leaves the scaling and shifting unused
             for p, d in zip(params, torch.autograd.grad(loss(), params, allow_unused=True))]
    return directional_check(loss, params, grads, directions=directions, eps=eps, seed=seed)


def directional_check(loss, params: list, grads: list, directions: int = 8, eps: float = 1e-5, seed: int = 0) -> float:
    """``grads`` (of ``loss()`` at ``params``) against central finite differences along random
    unit directions ``v``: the relative difference ``|fd - g.v| / |g.v|`` over the directions.

    A network with ReLUs and max-pooling is only piecewise smooth: a central difference whose
    interval holds a kink is off by up to the size of its step. Among the million or so activations
    of a task, one sometimes lies within ``eps`` of its kink, so each direction is also measured at
    ``eps / 10`` (where such a kink is ten times rarer and costs a tenth as much) and keeps the
    difference that agrees better. A wrong gradient disagrees at both steps.
    """
    g = torch.Generator().manual_seed(seed)
    analytic, numeric = [], []
    with torch.no_grad():
        for _ in range(directions):
            v = [torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device) for p in params]
            norm = torch.sqrt(sum((d * d).sum() for d in v))
            v = [d / norm for d in v]
            analytic.append(sum((a * d).sum() for a, d in zip(grads, v)).item())
            numeric.append(min((central_difference(loss, params, v, step) for step in (eps, eps / 10)),
                               key=lambda fd: abs(fd - analytic[-1])))
    a, n = torch.tensor(analytic, dtype=torch.float64), torch.tensor(numeric, dtype=torch.float64)
    return ((a - n).norm() / a.norm()).item()


def central_difference(loss, params: list, direction: list, step: float) -> float:
    """``(loss(p + step v) - loss(p - step v)) / (2 step)``, moving ``params`` in place and back."""
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(sign * step * d)
        values.append(loss().item())
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(sign * step * d)
    return (values[0] - values[1]) / (2 * step)
