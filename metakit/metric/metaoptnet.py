"""MetaOptNet (Lee, Maji, Ravichandran and Soatto, CVPR 2019): a differentiable SVM head."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..fewshot import FewShotClassifier


def svm_dual_qp(z_support: torch.Tensor, y_support: torch.Tensor, n_way: int, C: float = 0.1, ridge: float = 1.0):
    """The dual of the Crammer-Singer multi-class SVM on support embeddings, as qpth's QP

        minimise 0.5 a^T Q a + p^T a   subject to   G a <= h,  A a = b,

    over ``a = alpha.flatten()``, ``alpha`` of shape (n_support, n_way). The weights of class k
    are ``w_k = sum_i alpha[i, k] z_i``. With ``Y`` the one-hot labels: ``Q = (Z Z^T) kron I +
    ridge * I``, ``p = -Y``, ``alpha <= C * Y`` and ``sum_k alpha[i, k] = 0`` for every i
    (the form of Lee et al.'s code, whose ridge keeps Q well conditioned).

    Args:
        z_support: (n_support, D) embeddings.
        y_support: (n_support,) labels in 0..n_way-1.
        n_way: number of classes.
        C: the SVM's regularisation (the box on alpha).
        ridge: added to Q's diagonal.
    Returns:
        ``(Q, p, G, h, A, b)`` in float64, on z's device; only Q depends on z (and carries its gradient).
    """
    n = len(z_support)
    z = z_support.double()
    eye_way = torch.eye(n_way, dtype=z.dtype, device=z.device)
    Q = torch.kron(z @ z.T, eye_way) + ridge * torch.eye(n * n_way, dtype=z.dtype, device=z.device)
    Y = F.one_hot(y_support, n_way).to(z.dtype).flatten()       # (n * n_way,)
    G = torch.eye(n * n_way, dtype=z.dtype, device=z.device)
    A = torch.kron(torch.eye(n, dtype=z.dtype, device=z.device), torch.ones(1, n_way, dtype=z.dtype, device=z.device))
    return Q, -Y, G, C * Y, A, torch.zeros(n, dtype=z.dtype, device=z.device)


def svm_kkt_residuals(a: torch.Tensor, Q, p, h, A, b, active_tol: float = 1e-6) -> dict[str, float]:
    """How far ``a`` is from satisfying the KKT conditions of :func:`svm_dual_qp`'s QP (G = I).

    The multipliers are recovered from ``a``: lambda = 0 on the box constraints that are not
    active, then nu by least squares from stationarity ``Q a + p + lambda + A^T nu = 0`` on those
    coordinates, and lambda on the active ones from the same equation.

    Returns:
        The largest violation of each condition: ``primal`` (a <= h and A a = b), ``stationarity``
        (on the inactive coordinates), ``dual`` (lambda >= 0) and ``complementarity`` (lambda * (a - h) = 0).
    """
    a, Q, p, h, A, b = (t.detach().double() for t in (a.flatten(), Q, p, h, A, b))
    r = Q @ a + p
    inactive = a < h - active_tol
    nu = torch.linalg.lstsq(A.T[inactive], -r[inactive, None]).solution[:, 0]
    lam = -(r + A.T @ nu)
    lam[inactive] = 0.0
    return {
        "primal": max((a - h).clamp_min(0).max().item(), (A @ a - b).abs().max().item()),
        "stationarity": (r + A.T @ nu)[inactive].abs().max().item() if inactive.any() else 0.0,
        "dual": (-lam).clamp_min(0).max().item(),
        "complementarity": (lam * (a - h)).abs().max().item(),
    }


class MetaOptNet(FewShotClassifier):
    """Fit a linear multi-class SVM to the support embeddings by solving its dual QP with qpth,
    whose solution is differentiable, so the backbone learns features that a max-margin
    classifier separates well (Lee et al., 2019).

    Args:
        backbone: maps (B, C, H, W) images to (B, D) embeddings, for example ``Conv4()``.
        C: the SVM's regularisation (0.1 in the paper).
        max_iter: interior-point iterations of qpth's solver (the paper uses 15 in training).
        scale: the logits' initial scale, learned in training.
    """

    def __init__(self, backbone: nn.Module, C: float = 0.1, max_iter: int = 15, scale: float = 1.0):
        super().__init__(backbone)
        self.C, self.max_iter = C, max_iter
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.alpha: torch.Tensor | None = None
        self.support: torch.Tensor | None = None

    def fit_support(self, x_support: torch.Tensor, y_support: torch.Tensor) -> None:
        """Solve the SVM's dual on the support embeddings.

        Args:
            x_support: (n_way * k_shot, C, H, W) images.
            y_support: (n_way * k_shot,) labels in 0..n_way-1.
        """
        from qpth.qp import QPFunction

        n_way = self.check_support(y_support)
        z = self.backbone(x_support)  # (n_support, D)
        qp = svm_dual_qp(z, y_support, n_way, self.C)
        with warnings.catch_warnings():  # qpth warns when it stops at max_iter, as intended here
            warnings.simplefilter("ignore")
            # verbose=-1: nor does it print its page-long "inaccurate solution" notice (verbose=False is 0, which does)
            alpha = QPFunction(verbose=-1, maxIter=self.max_iter)(*qp)  # (1, n_support * n_way)
        self.alpha = alpha.view(len(z), n_way).to(z.dtype)
        self.qp = qp
        self.support = z
        self.n_way = n_way

    def forward(self, x_query: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x_query: (n_query_total, C, H, W) images.
        Returns:
            (n_query_total, n_way) logits ``scale * w_k^T f(x)`` with ``w_k = sum_i alpha[i, k] f(x_i)``.
        """
        self._check_fitted()
        z = self.backbone(x_query)  # (n_query_total, D)
        return self.scale * (z @ self.support.T) @ self.alpha
