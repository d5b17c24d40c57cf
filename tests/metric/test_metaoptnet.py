import pytest
import torch
import torch.nn.functional as F
from helpers import central_difference, random_episode
from torch import nn

from metakit.metric.metaoptnet import MetaOptNet, svm_dual_qp, svm_kkt_residuals
from metakit.models import Conv4


def episode(n_way=4, k_shot=2, n_query=3, seed=0):
    return random_episode(n_way, k_shot, n_query, seed)


@pytest.mark.parametrize("n_way,k_shot", [(2, 1), (5, 1), (5, 3)])
def test_qp_solution_satisfies_the_kkt_conditions(n_way, k_shot):
    x_support, y_support, _ = episode(n_way, k_shot)
    model = MetaOptNet(Conv4(hidden=16), max_iter=30)
    model.fit_support(x_support, y_support)
    Q, p, G, h, A, b = model.qp
    assert torch.equal(G, torch.eye(len(p), dtype=G.dtype))
    residuals = svm_kkt_residuals(model.alpha, Q, p, h, A, b)
    assert all(v < 1e-4 for v in residuals.values()), residuals


def test_kkt_check_catches_a_point_that_is_not_optimal():
    z = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    y = torch.arange(3).repeat_interleave(2)
    Q, p, G, h, A, b = svm_dual_qp(z, y, 3, C=0.1)
    # a = 0 is feasible but not optimal: its multipliers on the other-class boxes come out
    # negative (each example's dual variable nu_i = 1 pushes against them)
    residuals = svm_kkt_residuals(torch.zeros(18, dtype=torch.float64), Q, p, h, A, b)
    assert residuals["primal"] == 0 and residuals["dual"] > 0.5


def test_dual_weights_are_zero_sum_per_example_and_boxed():
    x_support, y_support, _ = episode()
    model = MetaOptNet(Conv4(hidden=8))
    model.fit_support(x_support, y_support)
    torch.testing.assert_close(model.alpha.sum(1), torch.zeros(len(y_support)), atol=1e-4, rtol=0)
    assert (model.alpha <= 0.1 * F.one_hot(y_support, 4) + 1e-4).all()


def test_logits_shape_and_gradient_through_the_qp():
    x_support, y_support, x_query = episode()
    model = MetaOptNet(Conv4(hidden=8))
    model.fit_support(x_support, y_support)
    logits = model(x_query)
    assert logits.shape == (12, 4)
    F.cross_entropy(logits, torch.arange(4).repeat_interleave(3)).backward()
    assert model.scale.grad is not None
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.backbone.parameters())


def test_separable_support_is_classified_correctly():
    # identity embedding, well separated classes: the SVM fits its own support set
    x_support = torch.zeros(6, 1, 2, 2)
    for i in range(3):
        x_support[2 * i:2 * i + 2, 0, i // 2, i % 2] = 1.0
    y_support = torch.arange(3).repeat_interleave(2)
    model = MetaOptNet(nn.Flatten(), C=1.0)
    model.fit_support(x_support, y_support)
    assert torch.equal(model(x_support).argmax(1), y_support)


def test_stopping_at_max_iter_prints_nothing(capsys):
    # one interior-point iteration on a badly scaled support leaves qpth far from the optimum; it
    # would print a page-long notice at every episode, which the kit's max_iter accepts by design
    x_support, y_support = torch.randn(25, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 100, \
        torch.arange(5).repeat_interleave(5)
    model = MetaOptNet(nn.Flatten(), C=10.0, max_iter=1)
    model.fit_support(x_support, y_support)
    assert model(x_support).shape == (25, 5) and capsys.readouterr().out == ""


def test_bad_support_raises():
    with pytest.raises(ValueError, match="every label"):
        MetaOptNet(nn.Flatten()).fit_support(torch.rand(2, 1, 28, 28), torch.tensor([0, 2]))


def test_meta_gradient_through_the_qp_matches_finite_differences():
    """The backbone's gradient runs through the support embeddings into the QP's solution (issue 22:
    a QP built on detached support embeddings still gives a gradient, through the queries only)."""
    torch.manual_seed(0)
    x_support, y_support, x_query = episode(n_way=3, k_shot=2, n_query=2)
    x_support, x_query = x_support.double(), x_query.double()
    y_query = torch.arange(3).repeat_interleave(2)
    model = MetaOptNet(nn.Sequential(nn.Flatten(), nn.Linear(784, 6)), C=0.1, max_iter=60).double()

    def loss():
        model.fit_support(x_support, y_support)
        return F.cross_entropy(model(x_query), y_query)

    weight = model.backbone[1].weight
    (grad,) = torch.autograd.grad(loss(), weight)
    d = torch.randn(weight.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert (grad * d).sum().item() == pytest.approx(central_difference(loss, weight, d, 1e-5), rel=1e-4)


# --- the QP's data, the KKT checker and the solver's arguments, pinned (issue 22: mutation testing) --

def test_svm_dual_qp_builds_the_documented_matrices_in_float64():
    """Two support points, three classes (the last one absent, so n_way must come from the argument):
    Q = (Z Z^T) kron I + ridge I, p = -Y, G = I, h = C Y, A a = b sums each example's row to 0."""
    z = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    y = torch.tensor([0, 1])
    Q, p, G, h, A, b = svm_dual_qp(z, y, 3, C=0.25, ridge=0.5)
    assert all(t.dtype == torch.float64 for t in (Q, p, G, h, A, b))
    gram = torch.tensor([[5.0, -1.5], [-1.5, 1.25]], dtype=torch.float64)
    want_q = torch.zeros(6, 6, dtype=torch.float64)
    for i in range(2):
        for j in range(2):
            for k in range(3):
                want_q[3 * i + k, 3 * j + k] = gram[i, j]
    want_q += 0.5 * torch.eye(6, dtype=torch.float64)
    one_hot = torch.tensor([1.0, 0, 0, 0, 1, 0], dtype=torch.float64)
    torch.testing.assert_close(Q, want_q)
    torch.testing.assert_close(p, -one_hot)
    torch.testing.assert_close(G, torch.eye(6, dtype=torch.float64))
    torch.testing.assert_close(h, 0.25 * one_hot)
    torch.testing.assert_close(A, torch.tensor([[1.0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float64))
    torch.testing.assert_close(b, torch.zeros(2, dtype=torch.float64))


def test_svm_dual_qp_stays_on_the_embeddings_device():
    """Every matrix is made on z's device (checked on PyTorch's "meta" device, which needs no GPU)."""
    z = torch.empty(4, 3, device="meta")
    Q, _, G, _, A, b = svm_dual_qp(z, torch.tensor([0, 1, 0, 1]), 2)
    assert {t.device.type for t in (Q, G, A, b)} == {"meta"}


def test_kkt_residuals_report_each_condition_by_name():
    """At a = h every box is active: nothing left to check for stationarity, and each example's
    row sums to C instead of the equality's right-hand side b (here 0, then shifted to C)."""
    z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    Q, p, G, h, A, b = svm_dual_qp(z, torch.tensor([0, 1, 0, 1]), 2, C=0.1)
    residuals = svm_kkt_residuals(h, Q, p, h, A, b)
    assert set(residuals) == {"primal", "stationarity", "dual", "complementarity"}
    assert residuals["stationarity"] == 0.0 and residuals["complementarity"] == 0.0
    assert residuals["primal"] == pytest.approx(0.1)
    assert svm_kkt_residuals(h, Q, p, h, A, b + 0.1)["primal"] == pytest.approx(0.0, abs=1e-12)
    assert svm_kkt_residuals(h, Q, p, h, A, b - 0.1)["primal"] == pytest.approx(0.2)


def test_fit_support_passes_C_and_max_iter_to_the_qp_quietly(capsys):
    """The box is C (not the default 0.1); one interior-point iteration is far from the optimum that
    thirty reach, so max_iter reaches the solver; and a converged solve prints nothing."""
    x_support, y_support, _ = episode(n_way=3, k_shot=2)
    torch.manual_seed(0)
    backbone = Conv4(hidden=8)
    model = MetaOptNet(backbone, C=0.5, max_iter=1)
    model.fit_support(x_support, y_support)
    assert model.qp[3].max().item() == 0.5
    rough = svm_kkt_residuals(model.alpha, *model.qp[:2], *model.qp[3:])
    capsys.readouterr()                                 # qpth prints its own note on the rough solve
    model.max_iter = 30
    model.fit_support(x_support, y_support)
    fine = svm_kkt_residuals(model.alpha, *model.qp[:2], *model.qp[3:])
    assert max(fine.values()) < 1e-4 < max(rough.values())
    assert capsys.readouterr().out == ""


def test_documented_defaults():
    """C=0.1 and 15 solver iterations as in Lee et al. (2019); the logits' scale starts at 1."""
    model = MetaOptNet(nn.Flatten())
    assert (model.C, model.max_iter, model.scale.item()) == (0.1, 15, 1.0)
    with pytest.raises(RuntimeError, match="fit_support"):
        model(torch.rand(2, 1, 2, 2))
