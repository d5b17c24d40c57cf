"""Data parallelism for the training command: each process takes a share of a step's tasks (or
episodes), and one all-reduce of the gradients makes every process take the same update.

The processes are started by ``torchrun`` (which sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
the rendezvous variables) or by :func:`spawn` (tests and benchmarks, on one machine). gloo on the
CPU, NCCL on CUDA, where process ``LOCAL_RANK`` uses ``cuda:LOCAL_RANK``.

Gradients, not models, are averaged: each process's loss is its share's mean loss times
``len(share) / total``, so the all-reduced *sum* of the gradients is the gradient of the mean
loss over the whole step, the same number a single process computes (up to the order of the
floating-point sums). Every process then applies the same optimiser step to the same weights.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ..runtime import device as default_device


@dataclass(frozen=True)
class World:
    """Where this process stands: its ``rank`` among ``size`` processes and its ``device``."""
    rank: int = 0
    size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """Whether this process prints, shows the progress bar and writes the checkpoint."""
        return self.rank == 0

    def share(self, total: int) -> range:
        """The indices ``0..total-1`` this process handles: a contiguous block, sizes differing by at most one."""
        return range(self.rank * total // self.size, (self.rank + 1) * total // self.size)

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` summed over the processes (in place, and returned)."""
        if self.size > 1:
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def all_stop(self, stop: bool) -> bool:
        """True on every process when any process says stop (a time budget ends on one clock first)."""
        flag = torch.tensor([float(stop)], device=self.device)
        return bool(self.sum(flag).item() > 0)

    def from_main(self, fn):
        """``fn()`` run by the main process alone, its result (or its error) sent to every process:
        a checkpoint that only the first node's disk holds is still read by all."""
        if self.size == 1:
            return fn()
        box = [None]
        if self.main:
            try:
                box[0] = ("result", fn())
            except (ValueError, FileNotFoundError) as e:
                box[0] = ("error", e)
        dist.broadcast_object_list(box, src=0)
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def sum_gradients(self, parameters) -> None:
        """Replace each parameter's ``.grad`` by its sum over the processes, in one flat all-reduce.

        Parameters whose gradient is None (unused, the same on every process) are left alone.
        """
        grads = [p.grad for p in parameters if p.grad is not None]
        if self.size == 1 or not grads:
            return
        flat = self.sum(torch.cat([g.reshape(-1) for g in grads]))
        for g, part in zip(grads, flat.split([g.numel() for g in grads])):
            g.copy_(part.view_as(g))

    def average_buffers(self, module: torch.nn.Module) -> None:
        """Average the floating-point buffers (BatchNorm running statistics), which each process
        updated on its own episodes, so that the copies stay equal."""
        buffers = [b for b in module.buffers() if torch.is_floating_point(b)]
        if self.size == 1 or not buffers:
            return
        flat = self.sum(torch.cat([b.reshape(-1) for b in buffers])) / self.size
        for b, part in zip(buffers, flat.split([b.numel() for b in buffers])):
            b.copy_(part.view_as(b))


def start(device: torch.device | None = None) -> World:
    """Join the process group ``torchrun`` (or :func:`spawn`) set up, or stand alone without one.

    Args:
        device: where to compute (default :func:`metakit.device`, so ``$METAKIT_DEVICE`` overrides);
            under several processes a CUDA device becomes ``cuda:LOCAL_RANK``.
    Returns:
        The :class:`World` of this process.
    """
    device = torch.device(device) if device is not None else default_device()
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(0, 1, device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"process {local_rank} on this node has no GPU of its own: the node has "
                             f"{torch.cuda.device_count()} GPU(s); start at most that many (--nproc_per_node).")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), device)


def stop() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port nobody listens on now (for a rendezvous on this machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, size: int, port: int, fn, args) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(size), LOCAL_WORLD_SIZE=str(size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        fn(*args)
    finally:
        stop()


def spawn(fn, size: int, *args, start_method: str = "spawn") -> None:
    """Run ``fn(*args)`` in ``size`` processes on this machine, set up as ``torchrun`` would (``fn``
    calls :func:`start`); returns when all are done, raises if one failed.

    Args:
        start_method: ``"spawn"`` starts fresh interpreters (clean, as torchrun does, but each
            imports torch and metakit again); ``"fork"`` copies this process at once (Linux).
    """
    mp.start_processes(_entry, args=(size, free_port(), fn, args), nprocs=size, join=True, start_method=start_method)
