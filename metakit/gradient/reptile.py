"""Reptile (Nichol, Achiam and Schulman, 2018)."""

from __future__ import annotations

import torch
from torch import nn

from .maml import MAML


class Reptile(MAML):
    """Move the initialisation toward the weights that plain SGD reaches on each task:
    ``theta <- theta + eps * mean_tasks(theta_adapted - theta)`` (Nichol et al., 2018); no second
    derivatives and no query set in the update, yet it approximates first-order MAML.

    :meth:`meta_loss` returns the surrogate ``0.5 * |theta - stopgrad(mean theta_adapted)|^2``,
    whose gradient is the pseudo-gradient ``theta - mean theta_adapted``, so the usual
    ``loss.backward(); optimizer.step()`` performs the update: with ``torch.optim.SGD(lr=eps)`` it
    is exactly Reptile's; with Adam the step is rescaled per parameter. The inner loop runs on
    the support set; the query set only measures how well the adapted networks did.

    Args:
        model: the network, as for :class:`~metakit.gradient.maml.MAML`.
        inner_lr, inner_steps: SGD on each task (Reptile needs several steps: with one it reduces
            to joint training on all tasks).
        **kwargs: ``loss_fn``, ``vectorize``.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.1, inner_steps: int = 5, **kwargs):
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **kwargs)

    def meta_loss(self, tasks, step_weights=None, keep_adapted: bool = False):
        """The surrogate loss whose gradient is ``theta - mean theta_adapted``, and query metrics.

        Args:
            tasks: ``(x_support, y_support, x_query, y_query)`` stacked over T tasks: (T, N, ...).
        Returns:
            ``(surrogate, metrics)`` with ``metrics["loss"]`` the mean query loss after adaptation.
        """
        theta = self.init_params()
        with torch.no_grad():  # the inner steps are data for the outer update, not part of its graph
            result = self._meta_loss(tasks, keep_adapted=True, params={n: p.detach() for n, p in theta.items()})
        target = {n: phi.mean(0) for n, phi in result.adapted.items()}  # (*shape) mean over tasks
        surrogate = 0.5 * sum(((theta[n] - target[n]) ** 2).sum() for n in target)
        return surrogate, self.metrics(result.loss, result.outputs, tasks[3])
