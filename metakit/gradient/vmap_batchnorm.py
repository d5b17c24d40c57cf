"""Batch normalisation that ``vmap`` differentiates twice correctly, for the vectorised MAML path."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


class DecomposedBatchNorm(TorchFunctionMode):
    """While active, ``F.batch_norm`` with batch statistics runs as mean, variance and affine ops.

    Under ``vmap``, differentiating through the fused kernel's backward gives wrong second-order
    meta-gradients (seen with torch 2.14 on CPU; first order and the plain loop are right; a
    related report on batch norm's batching rules is pytorch/functorch#534), so the vmap path of
    :func:`metakit.gradient.functional.meta_loss` normalises with this; the loop path keeps the fused kernel.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
        a = {**dict(zip(names, args)), **kwargs}
        if a.get("running_mean") is not None:  # running statistics: refused upstream for inner loops
            return func(*args, **kwargs)
        x = a["input"]  # (B, C, ...)
        dims = [0, *range(2, x.dim())]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        # statistics accumulated in float64, as the fused CPU kernel does: in float32 a support set
        # whose channel barely varies (1-shot glyphs) gave 1e-2 relative meta-gradient errors. The
        # same on every device that has float64 (all but Apple's MPS, which keeps float32).
        acc = torch.promote_types(x.dtype, torch.float32) if x.device.type == "mps" else torch.float64
        wide = x.to(acc)
        mean = wide.mean(dims, keepdim=True)
        invstd = torch.rsqrt(wide.var(dims, unbiased=False, keepdim=True) + a.get("eps", 1e-5))
        y = (x - mean.to(x.dtype)) * invstd.to(x.dtype)
        if a.get("weight") is not None:
            y = y * a["weight"].reshape(shape)
        return y + a["bias"].reshape(shape) if a.get("bias") is not None else y
