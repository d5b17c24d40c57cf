"""Catch, on a machine without a GPU, the tensor that would sit on the wrong device on one.

On a GPU, a step that makes a tensor with ``torch.zeros(n)`` (no ``device=``) gets it on the CPU,
and the first operation that meets the model's CUDA tensors fails. On a CPU-only machine both are
on the CPU and nothing fails, so the bug waits for the first learner with a GPU.

:class:`DeviceCheck` finds these bugs without a GPU. It is a ``TorchFunctionMode``, so it sees
every torch call a step makes, and it follows where each tensor came from:

- *placed*: the model's parameters and buffers, anything made with ``device=`` set or moved with
  ``.to(device)``, and everything computed from a placed tensor;
- *unplaced*: anything made by a factory (``zeros``, ``tensor``, ``arange``, ``randn``...) with
  no ``device=``, and everything computed from unplaced tensors only.

An operation that takes both a placed and an unplaced tensor (not a scalar: 0-dimensional CPU
tensors mix with CUDA ones) is exactly the operation that would fail on a GPU, so it is recorded
with the line of the kit that made the unplaced tensor. Tensors the check never saw made (the
dataset, or a batch drawn before the step) count as neither. Indexing and ``copy_`` are left out,
since they work across devices.

Usage::

    with DeviceCheck(model) as check:
        one_training_step(model)
    assert not check.problems, check.report()
"""

from __future__ import annotations

import traceback
import weakref
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

FACTORIES = {"zeros", "ones", "empty", "full", "eye", "arange", "linspace", "logspace", "tensor", "as_tensor",
             "rand", "randn", "randint", "randperm", "bernoulli_", "normal", "tril_indices", "triu_indices"}
MOVES = {"to", "cuda", "type_as"}                      # placed when they name a device or a tensor
INDEXING = {"__getitem__", "index_select", "gather", "take"}   # work across devices; keep the data's status
IGNORED = {"__setitem__", "copy_", "item", "tolist", "numpy", "__get__", "__len__", "size", "dim", "numel"}
PACKAGE = Path(__file__).resolve().parent


def _name(func) -> str:
    return getattr(func, "__name__", str(func))


def _where() -> str:
    """The innermost line of the kit (outside this file) on the call stack."""
    for frame in reversed(traceback.extract_stack()):
        path = Path(frame.filename).resolve()
        if PACKAGE in path.parents and path.name != Path(__file__).name:
            return f"{path.relative_to(PACKAGE.parent)}:{frame.lineno}: {frame.line}"
    return "outside the kit"


def _names_device(args, kwargs) -> bool:
    """Whether ``Tensor.to``'s arguments name a device (or a tensor to follow), not only a dtype."""
    return (kwargs.get("device") is not None
            or any(isinstance(a, (torch.device, str, torch.Tensor)) for a in args))


class DeviceCheck(TorchFunctionMode):
    """Record every operation that mixes the model's tensors with tensors made on the default device.

    Args:
        *modules: the model(s) whose parameters and buffers are the placed tensors to start from.
        data: tensors that live on the CPU by design (a dataset's images and labels): what is cut
            from them counts as unplaced until it is moved with ``.to(device)``.
    Attributes:
        problems: one line per mixing operation: the operation and where the unplaced tensor was made.
    """

    def __init__(self, *modules: torch.nn.Module, data=()):
        super().__init__()
        self._seen: dict[int, tuple[weakref.ref, str | None]] = {}   # id -> (tensor, None if placed else where made)
        self._own: set[int] = set()                                   # the modules' parameters and buffers
        for module in modules:
            own = [*module.parameters(), *module.buffers()]
            self._own.update(id(t) for t in own)
            self._mark(own, placed=True)
        self._mark(list(data), placed=False, where="the data (moved to the model's device nowhere)")
        self.problems: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = _name(func)
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if name in FACTORIES and not inputs:
            if "device" in kwargs and kwargs["device"] is not None:
                self._mark(outputs, placed=True)
            else:
                self._mark([t for t in outputs if t.dim() > 0], placed=False, where=_where())
            return out
        if name in MOVES and (name != "to" or _names_device(args[1:], kwargs)):
            self._mark(outputs, placed=True)
            return out
        if name == "cpu":
            # on a CPU machine .cpu() returns the tensor itself; it still stands for one moved off the
            # model's device (the modules' own tensors excepted), as it would be on a GPU
            moved = [t for t in outputs if t.dim() > 0 and id(t) not in self._own]
            self._mark(moved, placed=False, where=_where(), force=True)
            return out
        if name in INDEXING:
            status = self._status(inputs[0]) if inputs else None
            if status is not None:
                self._mark(outputs, placed=status == "", where=status)
            return out
        if name in IGNORED:
            return out
        status = [self._status(t) for t in inputs]
        placed = any(s == "" for s in status)
        unplaced = [s for s, t in zip(status, inputs) if s and t.dim() > 0]
        if placed and unplaced:
            self.problems.append(f"{name}() mixes the model's tensors with one made without device= at "
                                 f"{unplaced[0]} (called from {_where()})")
        if placed:
            self._mark(outputs, placed=True)
        elif unplaced:
            self._mark(outputs, placed=False, where=unplaced[0])
        return out

    def _status(self, t: torch.Tensor) -> str | None:
        """"" for a placed tensor, where it was made for an unplaced one, None for one never seen."""
        ref, where = self._seen.get(id(t), (None, None))
        if ref is None or ref() is not t:
            return None
        return where if where is not None else ""

    def _mark(self, tensors, placed: bool, where: str = "", force: bool = False) -> None:
        for t in tensors:
            if not placed and not force and self._status(t) == "":
                continue                      # an in-place op on a placed tensor keeps it placed
            try:
                self._seen[id(t)] = (weakref.ref(t), None if placed else where)
            except TypeError:                 # a tensor that cannot be weakly referenced
                pass

    def report(self) -> str:
        """The problems, one per line (deduplicated), or a line saying there are none."""
        if not self.problems:
            return "no tensor made on the default device met the model's tensors"
        return "\n".join(dict.fromkeys(self.problems))
