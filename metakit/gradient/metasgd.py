"""Meta-SGD (Li, Zhou, Chen and Li, 2017)."""

from __future__ import annotations

import torch
from torch import nn

from .maml import MAML


class MetaSGD(MAML):
    """MAML that also meta-learns the inner step: one learning rate per parameter element, so the
    inner update ``theta - lr * grad`` picks both a direction and a step size (Li et al., 2017).

    The rates are parameters of this module, trained by the same outer optimiser as theta.

    Args:
        model: the network, as for :class:`~metakit.gradient.maml.MAML`.
        inner_lr: the initial value of every rate (the paper draws them in [0.005, 0.1]).
        **kwargs: ``inner_steps`` (default 1, as in the paper), ``first_order``, ``loss_fn``, ``vectorize``.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, **kwargs):
        super().__init__(model, inner_lr=inner_lr, **kwargs)
        # ParameterDict keys may not contain dots
        self.lrs = nn.ParameterDict({n.replace(".", "__"): nn.Parameter(torch.full_like(p, inner_lr))
                                     for n, p in model.named_parameters()})

    def learning_rates(self) -> dict:
        """``{name: tensor}`` the learned rates, shaped like the parameters they scale."""
        return {n.replace("__", "."): lr for n, lr in self.lrs.items()}

    def inner_kwargs(self, steps: int) -> dict:
        return {"inner_lr": self.inner_lr, "per_param_lr": self.learning_rates()}
