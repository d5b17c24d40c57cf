"""A faster functional forward for :class:`~metakit.models.Conv4`, the same function as the module's.

Two rewrites, both exact in real arithmetic (float64 meta-gradients agree with the module's to about
1e-13; float32 ones to round-off, 1e-6 to 1e-5 of each tensor's norm, but 4.5e-4 on the benchmark's
first batch, where an activation at a ReLU kink rounds the other way):

- The first block's convolution and batch normalisation run as one convolution. With one input
  channel, a 3x3 convolution's output at a pixel is ``w_c . p + b_c`` for that pixel's 9-value patch
  ``p``, so its batch mean and variance are ``w_c . m + b_c`` and ``w_c^T S w_c``, where ``m`` and ``S``
  are the mean and covariance of the patches of the input images (a 9x9 matrix, computed in float64,
  float32 on MPS, from the data alone). Normalising is then a per-channel scale and shift of ``w``
  and ``b`` (the shift added after pooling), and the (B, 64, 28, 28) tensor, the largest of the
  network, is never normalised: neither its batch norm forward nor its backward nor their double
  backward run.
- ``MaxPool2d`` before ``ReLU``: ``max(relu(a), relu(b)) = relu(max(a, b))``, so the ReLU runs on a
  quarter of the values. The gradient differs only where two positive values in a window tie.

learn2learn runs the module as written; :func:`metakit.gradient.functional.functional_forward`
uses this forward for Conv4 networks. Measured in ``benchmarks/maml_speed.py`` (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models import Conv4

FOLD_MAX_PATCH = 32  # fold the first block when a patch (in_channels * k * k values) is at most this long


def folded_first_block(x, weight, bias, gamma, beta, eps: float):
    """``batch_norm(conv2d(x, weight, bias))`` with batch statistics as ``conv2d(x, weight', bias') + shift``.

    ``weight' = s * weight`` and ``bias' = s * bias`` with ``s = gamma / sqrt(var + eps)`` per channel,
    and ``shift = beta - s * mean``. The shift is a per-channel constant, so it may be added after
    max pooling, on a quarter of the values. (The conv bias then enters twice, through ``bias'`` and
    through the mean, and its gradient is zero up to round-off, as through the module's BatchNorm.)

    Args:
        x: (B, C_in, H, W) images (data: no gradient flows to them).
        weight: (C, C_in, k, k); bias, gamma, beta: (C,) or None.
    Returns:
        ``(weight', bias', shift)``: (C, C_in, k, k), (C,) or None, and (C,), differentiable in the parameters.
    """
    k = weight.shape[-1]
    acc = torch.float32 if x.device.type == "mps" else torch.float64  # MPS has no float64
    patches = F.unfold(x.detach().to(acc), k, padding=k // 2).transpose(1, 2).reshape(-1, weight[0].numel())
    mean = patches.mean(0)  # (C_in*k*k,)
    centred = patches - mean
    cov = centred.T @ centred / patches.shape[0]  # (C_in*k*k, C_in*k*k), biased as batch norm's variance
    w = weight.reshape(weight.shape[0], -1)  # (C, C_in*k*k)
    w_acc = w.to(acc)
    channel_mean = w_acc @ mean + (bias.to(acc) if bias is not None else 0)  # (C,)
    channel_var = ((w_acc @ cov) * w_acc).sum(1)
    scale = torch.rsqrt(channel_var + eps)
    if gamma is not None:
        scale = gamma.to(acc) * scale
    shift = -scale * channel_mean
    if beta is not None:
        shift = beta.to(acc) + shift
    scale = scale.to(w.dtype)
    return (w * scale[:, None]).view_as(weight), (bias * scale if bias is not None else None), shift.to(w.dtype)


def _block_names(model: Conv4):
    """Per block, the parameter names of its conv and batch norm, and the batch norm module; None if
    a block is not conv3x3 (stride 1, same padding) - BatchNorm2d (batch statistics) - ReLU - MaxPool2d(2)."""
    blocks = []
    for i, block in enumerate(model.features[:-1]):
        conv, norm, relu, pool = (list(block) + [None] * 4)[:4] if isinstance(block, nn.Sequential) else [None] * 4
        if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and isinstance(relu, nn.ReLU)
                and isinstance(pool, nn.MaxPool2d) and len(block) == 4 and not norm.track_running_stats
                and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
                and conv.kernel_size[0] == conv.kernel_size[1] and conv.kernel_size[0] % 2 == 1
                and conv.padding == (conv.kernel_size[0] // 2,) * 2 and conv.padding_mode == "zeros"
                and pool.kernel_size == 2 and pool.stride == 2 and pool.padding == 0 and not pool.ceil_mode):
            return None
        prefix = f"features.{i}"
        blocks.append((f"{prefix}.0.weight", f"{prefix}.0.bias" if conv.bias is not None else None,
                       f"{prefix}.1.weight" if norm.affine else None, f"{prefix}.1.bias" if norm.affine else None,
                       norm.eps))
    if not isinstance(model.features[-1], nn.Flatten):
        return None
    return blocks


def conv4_forward(model):
    """``forward(params, x, step=0)`` for a :class:`~metakit.models.Conv4` with batch-statistics
    BatchNorm, or None for any other model (then ``functional_call`` runs it).

    A params dict without all of the Conv4's parameter names also falls back to ``functional_call``.
    """
    if type(model) is not Conv4:
        return None
    blocks = _block_names(model)
    if blocks is None:
        return None
    head = None if model.head is None else ("head.weight", "head.bias" if model.head.bias is not None else None)
    fold_first = model.features[0][0].weight[0].numel() <= FOLD_MAX_PATCH
    names = {n for n, _ in model.named_parameters()}
    fallback = None

    def forward(params, x, step=0):
        nonlocal fallback
        if not names <= params.keys():
            if fallback is None:
                from torch.func import functional_call
                fallback = lambda p, x: functional_call(model, p, (x,))  # noqa: E731
            return fallback(params, x)
        h = x  # (B, C_in, H, W)
        for i, (w, b, g, be, eps) in enumerate(blocks):
            weight, bias = params[w], params[b] if b else None
            gamma, beta = params[g] if g else None, params[be] if be else None
            if i == 0 and fold_first:
                weight, bias, shift = folded_first_block(h, weight, bias, gamma, beta, eps)
                h = F.max_pool2d(F.conv2d(h, weight, bias, padding=weight.shape[-1] // 2), 2)
                h = F.relu(h + shift[:, None, None])  # (B, C, H/2, W/2)
                continue
            h = F.conv2d(h, weight, bias, padding=weight.shape[-1] // 2)
            h = F.batch_norm(h, None, None, gamma, beta, training=True, eps=eps)
            h = F.relu(F.max_pool2d(h, 2))  # (B, C, H/2, W/2)
        h = h.flatten(1)
        return F.linear(h, params[head[0]], params[head[1]] if head[1] else None) if head else h
    return forward
