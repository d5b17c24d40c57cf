"""ANIL, Almost No Inner Loop (Raghu, Raghu, Bengio and Vinyals, ICLR 2020)."""

from __future__ import annotations

from torch import nn

from .maml import MAML


def last_layer_name(model: nn.Module) -> str:
    """The name of the last top-level child with parameters (``head`` in Conv4, ``"4"`` in a Sequential)."""
    names = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
    if not names:
        raise ValueError("the model has no child module with parameters to use as the head; pass head=...")
    return names[-1]


class ANIL(MAML):
    """MAML whose inner loop adapts only the head; the body is meta-learned but fixed within a
    task, which Raghu et al. (2020) show loses almost nothing: MAML's body barely moves anyway.

    Args:
        model: the network, as for :class:`~metakit.gradient.maml.MAML`.
        head: the name of the submodule adapted in the inner loop (default: the last child with
            parameters, ``"head"`` for ``Conv4(out_features=n_way)``).
        **kwargs: ``inner_lr``, ``inner_steps``, ``first_order``, ``loss_fn``, ``vectorize`` as for MAML.
    """

    def __init__(self, model: nn.Module, head: str | None = None, **kwargs):
        super().__init__(model, **kwargs)
        self.head = head or last_layer_name(model)
        self.head_names = [n for n, _ in model.named_parameters() if n.startswith(self.head + ".")]
        if not self.head_names:
            raise ValueError(f"the model has no parameters under {self.head!r}; its parameters are "
                             f"{', '.join(n for n, _ in model.named_parameters())}.")

    def inner_kwargs(self, steps: int) -> dict:
        return {"inner_lr": self.inner_lr, "only": self.head_names}
