"""MAML++ (Antoniou, Edwards and Storkey, "How to train your MAML", ICLR 2019)."""

from __future__ import annotations

import torch
from torch import nn

from .functional import functional_forward
from .maml import MAML


class MAMLPlusPlus(MAML):
    """MAML made stable and better by learning more of the inner loop (Antoniou et al., 2019).

    Implemented, with the paper's names:
      - multi-step loss (MSL): the query loss after every inner step, weighted; the weights start
        uniform and anneal over ``msl_iterations`` meta-iterations toward the last step
        (non-final weights decay to 0.03/steps), after which only the last step counts;
      - learned per-layer per-step inner learning rates (LSLR): one rate per parameter tensor and
        step, started at ``inner_lr``, trained by the outer optimiser;
      - per-step batch-norm weights and biases (BNWB): each BatchNorm weight and bias becomes a
        (inner_steps, C) tensor in the parameter dict and inner step k uses row k; they are
        meta-learned, not adapted in the inner loop (the paper's default);
      - derivative-order annealing (DA): first order for the first ``first_order_iterations``.
    Not implemented: per-step batch-norm running statistics (BNRS); BatchNorm always uses the
    statistics of the batch at hand (``track_running_stats=False``), as the authors' code does
    in effect by normalising with ``training=True``. Cosine annealing of the meta learning rate
    (CA) belongs to the outer loop: use ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    Each :meth:`meta_loss` call in training mode (``.train()``) counts as one meta-iteration.
    ``model``'s own BatchNorm weights and biases stay in ``parameters()`` but are unused when
    ``per_step_bn`` is on (their gradient stays None, so optimisers skip them).

    Args:
        model: the network, as for :class:`~metakit.gradient.maml.MAML`.
        inner_lr: the initial value of every learned rate.
        inner_steps: inner steps in training; adaptation may use fewer, not more (one rate per step).
        msl_iterations: meta-iterations over which the step weights anneal.
        first_order_iterations: meta-iterations run first order before switching to second order.
        per_step_bn: BNWB on or off.
        **kwargs: ``first_order``, ``loss_fn``, ``vectorize``.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.1, inner_steps: int = 5, msl_iterations: int = 500,
                 first_order_iterations: int = 0, per_step_bn: bool = True, **kwargs):
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, **kwargs)
        if self.inner_steps < 1:
            raise ValueError(f"MAML++ needs inner_steps >= 1; got {inner_steps!r}.")
        self.msl_iterations, self.first_order_iterations = msl_iterations, first_order_iterations
        norms = [name for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.bn_names = [n for n, _ in model.named_parameters() if per_step_bn and n.rsplit(".", 1)[0] in norms]
        self.bn_per_step = nn.ParameterDict({  # (inner_steps, C) per BatchNorm weight and bias
            n.replace(".", "__"): nn.Parameter(p.detach().expand(self.inner_steps, *p.shape).clone())
            for n, p in model.named_parameters() if n in self.bn_names})
        self.adapted_names = [n for n, _ in model.named_parameters() if n not in self.bn_names]
        self.step_lrs = nn.ParameterDict({  # LSLR: (inner_steps,) per parameter tensor
            n.replace(".", "__"): nn.Parameter(torch.full((self.inner_steps,), float(inner_lr)))
            for n in self.adapted_names})
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    def forward_fn(self):
        """``forward(params, x, step)`` with row ``step`` of each per-step BatchNorm weight and bias."""
        plain, per_step, last = functional_forward(self.model), set(self.bn_names), self.inner_steps - 1

        def forward(params, x, step=last):
            row = min(step, last)  # more steps than trained reuse the last step's BatchNorm row
            return plain({n: p[row] if n in per_step else p for n, p in params.items()}, x)
        forward.batch_norm = plain.batch_norm
        return forward

    def init_params(self) -> dict:
        per_step = {n.replace("__", "."): p for n, p in self.bn_per_step.items()}
        return {n: per_step.get(n, p) for n, p in self.model.named_parameters()}

    def learning_rates(self) -> dict:
        """``{name: (inner_steps,)}`` the learned per-layer per-step rates."""
        return {n.replace("__", "."): lr for n, lr in self.step_lrs.items()}

    def inner_kwargs(self, steps: int) -> dict:
        return {"inner_lr": self.inner_lr, "per_step_lr": self.learning_rates(), "only": self.adapted_names}

    def use_first_order(self) -> bool:
        return self.first_order or (self.training and int(self.iteration) < self.first_order_iterations)

    def step_weights(self, iteration: int | None = None) -> list[float]:
        """The multi-step-loss weights at a meta-iteration (default: the current one); they sum to 1."""
        i, s = int(self.iteration if iteration is None else iteration), self.inner_steps
        decay, floor = 1.0 / s / self.msl_iterations, 0.03 / s
        early = max(1.0 / s - i * decay, floor)
        return [early] * (s - 1) + [min(1.0 / s + i * (s - 1) * decay, 1.0 - (s - 1) * floor)]

    def meta_loss(self, tasks, step_weights=None, keep_adapted: bool = False):
        annealing = self.training and int(self.iteration) < self.msl_iterations
        weights = step_weights if step_weights is not None else self.step_weights() if annealing else None
        out = super().meta_loss(tasks, step_weights=weights, keep_adapted=keep_adapted)
        if self.training:
            self.iteration += 1
        return out
