"""MAML (Finn, Abbeel and Levine, ICML 2017) and first-order MAML, the base of the gradient family."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import functional as gradient


def task_loss_fn(y: torch.Tensor):
    """Cross-entropy for integer labels (classification), mean squared error for float targets."""
    return F.mse_loss if torch.is_floating_point(y) else F.cross_entropy


class MAML(nn.Module):
    """Learn an initialisation theta from which a few gradient steps on a task's support set fit
    its query set: minimise ``sum_tasks L_query(theta - inner_lr * grad L_support(theta))``,
    differentiating through the inner steps (Finn et al., 2017). ``first_order=True`` drops the
    second derivatives (FOMAML, same paper, Sec. 5.2).

    The family shares this interface: ``meta_loss(tasks) -> (loss, metrics)`` for an outer
    optimiser over ``parameters()``, ``adapt(x_support, y_support)`` and ``predict(params, x)``.
    Subclasses change :meth:`init_params`, :meth:`inner_kwargs` or :meth:`forward_fn`.

    Args:
        model: the network; BatchNorm must use batch statistics (``track_running_stats=False``).
        inner_lr: the inner step size (alpha).
        inner_steps: inner gradient steps in meta-training, and by default in :meth:`adapt`.
        first_order: FOMAML.
        loss_fn: ``loss_fn(outputs, y)``; None picks from the labels (:func:`task_loss_fn`).
        vectorize: vmap over tasks or loop; None picks per model
            (:func:`~metakit.gradient.functional.default_vectorize`).
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.4, inner_steps: int = 1, first_order: bool = False,
                 loss_fn=None, vectorize: bool | None = None):
        super().__init__()
        if inner_steps < 0 or int(inner_steps) != inner_steps:
            raise ValueError(f"inner_steps must be a whole number >= 0; got {inner_steps!r}.")
        self.model, self.inner_lr, self.inner_steps = model, inner_lr, int(inner_steps)
        self.first_order, self.loss_fn = first_order, loss_fn
        self.vectorize = gradient.default_vectorize(model) if vectorize is None else vectorize
        gradient.functional_forward(model)  # refuses BatchNorm with running statistics now, not at the first step

    def init_params(self) -> dict:
        """``{name: tensor}`` the initial parameters theta that the inner loop starts from."""
        return dict(self.model.named_parameters())

    def inner_kwargs(self, steps: int) -> dict:
        """The learning-rate and selection arguments of :func:`~metakit.gradient.functional.adapt`."""
        return {"inner_lr": self.inner_lr}

    def forward_fn(self):
        """``forward(params, x, step)`` the network run with a parameter dict (made afresh, so that
        a deep copy or a pickle of this module holds no function bound to another model)."""
        return gradient.functional_forward(self.model)

    def use_first_order(self) -> bool:
        return self.first_order

    def meta_loss(self, tasks, step_weights=None, keep_adapted: bool = False):
        """The loss to backpropagate for a batch of tasks, and how well the adapted networks did.

        Args:
            tasks: ``(x_support, y_support, x_query, y_query)`` stacked over T tasks: (T, N, ...).
        Returns:
            ``(loss, metrics)``: the () loss and a dict of floats, ``loss`` (mean query loss after
            adaptation) and ``acc`` (classification) or ``mse`` (regression).
        """
        result = self._meta_loss(tasks, step_weights, keep_adapted)
        return result.loss, self.metrics(result.loss, result.outputs, tasks[3])

    def _meta_loss(self, tasks, step_weights=None, keep_adapted: bool = False, params=None):
        return gradient.meta_loss(self.forward_fn(), self.init_params() if params is None else params, tasks,
                                  steps=self.inner_steps, loss_fn=self.loss_fn or task_loss_fn(tasks[1]),
                                  first_order=self.use_first_order(), vectorize=self.vectorize,
                                  step_weights=step_weights, keep_adapted=keep_adapted,
                                  **self.inner_kwargs(self.inner_steps))

    @staticmethod
    def metrics(loss, outputs, y_query) -> dict:
        """``loss`` and ``acc`` (integer labels) or ``mse`` (float targets) as floats."""
        out = {"loss": loss.item()}
        if torch.is_floating_point(y_query):
            out["mse"] = F.mse_loss(outputs.detach(), y_query).item()
        else:
            out["acc"] = (outputs.detach().argmax(-1) == y_query).float().mean().item()
        return out

    def adapt(self, x_support, y_support, steps: int | None = None, create_graph: bool = False) -> dict:
        """Fine-tune the initial parameters on one task's support set.

        Args:
            x_support: (N, ...) inputs; y_support: (N,) labels or (N, ...) targets.
            steps: inner steps (default ``inner_steps``).
            create_graph: keep the result differentiable with respect to ``parameters()``; the
                default returns plain tensors, cheap for evaluation.
        Returns:
            ``{name: tensor}`` adapted parameters, for :meth:`predict`.
        """
        steps = self.inner_steps if steps is None else steps
        kwargs = dict(steps=steps, loss_fn=self.loss_fn or task_loss_fn(y_support), **self.inner_kwargs(steps))
        if create_graph:
            return gradient.adapt(self.forward_fn(), self.init_params(), x_support, y_support,
                                  first_order=self.use_first_order(), **kwargs)
        with torch.no_grad():  # torch.func.grad still takes the inner gradients
            params = {n: p.detach() for n, p in self.init_params().items()}
            return gradient.adapt(self.forward_fn(), params, x_support, y_support, first_order=True, **kwargs)

    def adaptation_path(self, x_support, y_support, steps: int | None = None):
        """The parameters before and after every inner step, for plots of adaptation as it happens.

        Returns:
            ``(path, support_losses)``: ``steps + 1`` dicts of plain tensors (``path[0]`` the
            initial parameters) and the (steps,) support losses, each measured before its step.
        Raises:
            FloatingPointError: when an inner loss stops being finite (the rate is too large).
        """
        steps = self.inner_steps if steps is None else steps
        kwargs = dict(self.inner_kwargs(steps))
        only = kwargs.pop("only", None)
        rate = gradient.step_rates(kwargs.pop("inner_lr"), kwargs.pop("per_param_lr", None),
                                   kwargs.pop("per_step_lr", None), steps)
        with torch.no_grad():
            params = {n: p.detach() for n, p in self.init_params().items()}
            path, losses = gradient.inner_loop(self.forward_fn(), params, x_support, y_support, steps=steps,
                                               rate=rate, loss_fn=self.loss_fn or task_loss_fn(y_support),
                                               first_order=True, only=only)
        gradient.check_finite(losses, self.inner_lr, None, None)
        if path and not all(bool(torch.isfinite(p).all()) for p in path[-1].values()):
            raise FloatingPointError(f"The adapted parameters stopped being finite at step {steps}; lower inner_lr.")
        return [params, *path], losses

    def predict(self, params: dict, x) -> torch.Tensor:
        """(N, ...) outputs of the network with ``params`` (logits or regression values)."""
        return self.forward_fn()(params, x, max(self.inner_steps - 1, 0))

    def forward(self, x) -> torch.Tensor:
        """The unadapted network's outputs."""
        return self.predict(self.init_params(), x)
