"""Four remedies for catastrophic forgetting, each a :class:`~metakit.continual.ContinualLearner`
(``observe(x, y, task_id)``, ``predict(x, task_id=None)``); naive fine-tuning is the base class."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from qpth.qp import QPFunction
from torch.func import functional_call, grad, vmap

from .stream import ContinualLearner, TaskMemory

STRATEGIES = ["naive", "ewc", "replay", "gem", "agem"]


class EWC(ContinualLearner):
    """Elastic weight consolidation (Kirkpatrick et al., 2017): after each task, pull every weight
    back towards its end-of-task value in proportion to its Fisher information on that task,
    ``loss + strength / 2 * sum_k sum_i F_k,i (theta_i - theta*_k,i)^2``.

    Args:
        strength: lambda, the weight of the quadratic penalty.
        fisher_samples: examples of each task kept (a uniform sample) to estimate its diagonal Fisher.
    """

    def __init__(self, net, lr=0.1, strength: float = 100.0, fisher_samples: int = 200):
        super().__init__(net, lr)
        if not (strength >= 0 and strength < float("inf")):
            raise ValueError(f"the EWC strength must be a number >= 0; got {strength!r}.")
        self.strength = float(strength)
        self.samples = TaskMemory(fisher_samples)
        self.anchors: list[tuple[dict, dict]] = []   # (Fisher diagonal, weights) of each finished task

    def observe(self, x, y, task_id):
        x, y = self.check_batch(x, y, task_id)
        if task_id != self.task and self.task >= 0:
            self.anchors.append(self.consolidate(*self.samples.get(self.task)))
        self.samples.add(x, y, task_id)
        return super().observe(x, y, task_id)

    def consolidate(self, x, y) -> tuple[dict, dict]:
        """The diagonal empirical Fisher, the mean over examples of each squared per-example
        log-likelihood gradient (vmap over examples), and the current weights."""
        params = {k: v.detach() for k, v in self.net.named_parameters()}

        def nll(p, xi, yi):
            return F.cross_entropy(functional_call(self.net, p, (xi[None],)), yi[None])

        per_example = vmap(grad(nll), in_dims=(None, 0, 0))(params, x, y)   # each (N, *param.shape)
        return {k: (g ** 2).mean(0) for k, g in per_example.items()}, {k: v.clone() for k, v in params.items()}

    def loss(self, x, y):
        loss = super().loss(x, y)
        for fisher, anchor in self.anchors:
            loss = loss + self.strength / 2 * sum((fisher[k] * (p - anchor[k]) ** 2).sum()
                                                  for k, p in self.net.named_parameters())
        return loss


class Replay(ContinualLearner):
    """Experience replay: keep a few examples of every task and add a batch of old ones to each
    step's loss (Chaudhry et al., 2019, "On tiny episodic memories in continual learning")."""

    def __init__(self, net, lr=0.1, memory_per_task: int = 50, replay_batch: int = 10):
        super().__init__(net, lr)
        self.memory, self.replay_batch = TaskMemory(memory_per_task), replay_batch

    def loss(self, x, y):
        if self.memory.tasks(before=self.task):
            xm, ym = self.memory.sample(self.replay_batch, before=self.task)
            x, y = torch.cat([x, xm]), torch.cat([y, ym])
        return super().loss(x, y)

    def observe(self, x, y, task_id):
        x, y = self.check_batch(x, y, task_id)
        self.task = task_id
        loss = super().observe(x, y, task_id)
        self.memory.add(x, y, task_id)
        return loss


def gem_project(g: torch.Tensor, G: torch.Tensor, margin: float = 0.0, max_iter: int = 50) -> torch.Tensor:
    """GEM's projection: the gradient closest to ``g`` that conflicts with no memory gradient,

        minimise_z 1/2 ||z - g||^2   subject to   G z >= 0,

    solved through its dual (Lopez-Paz & Ranzato 2017, eq. 11), a QP in one variable per task:

        minimise_v 1/2 v^T G G^T v + g^T G^T v   subject to   v >= margin,   then z = g + G^T v.

    Args:
        g: (P,) the gradient of the current batch.
        G: (K, P) the gradients of the K earlier tasks' memories.
        margin: a lower bound on v (GEM's "memory strength"; 0 gives the exact projection, the
            paper's code uses 0.5 to push the step further towards the memories).
    Returns:
        (P,) the projected gradient. The dual is solved with qpth's interior-point solver in float64.
    """
    K = len(G)
    Gd, gd = G.double(), g.double()
    like = {"dtype": Gd.dtype, "device": Gd.device}
    P = Gd @ Gd.T                                            # (K, K)
    P = 0.5 * (P + P.T) + 1e-10 * (P.diagonal().mean() + 1) * torch.eye(K, **like)  # strictly convex
    q = Gd @ gd                                              # (K,)
    empty = torch.empty(0, **like)
    v = QPFunction(verbose=-1, maxIter=max_iter, eps=1e-14)(P, q, -torch.eye(K, **like),
                                                             -margin * torch.ones(K, **like), empty, empty)[0]
    return (gd + Gd.T @ v.clamp_min(margin)).to(g.dtype)


class GEM(ContinualLearner):
    """Gradient episodic memory (Lopez-Paz & Ranzato, 2017): take a step only in a direction
    that increases the loss on no earlier task's memory; when the batch gradient conflicts with
    one, project it with :func:`gem_project` (a QP per step). ``margin`` 0.5 is the "memory
    strength" of the authors' experiments; 0 gives the exact projection."""

    def __init__(self, net, lr=0.1, memory_per_task: int = 50, margin: float = 0.5):
        super().__init__(net, lr)
        self.memory, self.margin = TaskMemory(memory_per_task), margin
        self.projections = 0

    def observe(self, x, y, task_id):
        x, y = self.check_batch(x, y, task_id)
        self.task = task_id
        past = self.memory.tasks(before=task_id)
        G = torch.stack([self.flat_grad(self.loss(*self.memory.get(t))) for t in past]) if past else None
        loss = self.loss(x, y)
        g = self.flat_grad(loss)
        if G is not None and (G @ g < 0).any():
            g = gem_project(g, G, self.margin)
            self.projections += 1
        self.step_with(g)
        self.memory.add(x, y, task_id)
        return loss.item()


class AGEM(ContinualLearner):
    """Averaged GEM (Chaudhry et al., 2019): one constraint instead of one per task, against the
    gradient ``g_ref`` of a random batch from all the memories; the projection is then closed-form,
    ``g - (g . g_ref) / (g_ref . g_ref) * g_ref`` when ``g . g_ref < 0``."""

    def __init__(self, net, lr=0.1, memory_per_task: int = 50, reference_batch: int = 256):
        super().__init__(net, lr)
        self.memory, self.reference_batch = TaskMemory(memory_per_task), reference_batch
        self.projections = 0

    def observe(self, x, y, task_id):
        x, y = self.check_batch(x, y, task_id)
        self.task = task_id
        loss = self.loss(x, y)
        g = self.flat_grad(loss)
        if self.memory.tasks(before=task_id):
            g_ref = self.flat_grad(self.loss(*self.memory.sample(self.reference_batch, before=task_id)))
            dot = g @ g_ref
            if dot < 0:
                g = g - dot / (g_ref @ g_ref) * g_ref
                self.projections += 1
        self.step_with(g)
        self.memory.add(x, y, task_id)
        return loss.item()


def make_strategy(name: str, net, lr: float = 0.1, memory_per_task: int = 50, ewc_strength: float = 100.0):
    """A strategy by name (one of :data:`STRATEGIES`), with the notebook's controls as arguments."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}.")
    if name in ("replay", "gem", "agem") and (int(memory_per_task) != memory_per_task or memory_per_task < 1):
        raise ValueError(f"{name} learns from its memory of earlier tasks, so it needs at least one example "
                         f"per task; got memory_per_task={memory_per_task!r}.")
    if name == "naive":
        return ContinualLearner(net, lr)
    if name == "ewc":
        return EWC(net, lr, strength=ewc_strength)
    cls = {"replay": Replay, "gem": GEM, "agem": AGEM}[name]
    return cls(net, lr, memory_per_task=int(memory_per_task))
