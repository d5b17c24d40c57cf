"""The smoke subset `make test-pythons` runs in each fresh venv: import, one episode, one MAML step
checked against learn2learn's, one qpth QP. Prints one line of versions and exits non-zero on failure.

Run it with the venv's Python from the repository root: ``.venv-3.12/bin/python tools/smoke.py``.
It uses only metakit's stable top-level names; the MAML step is written here with torch.func.
"""

import sys
import warnings

import numpy as np
import torch


def check_import():
    import metakit

    for name in ("load_glyphs", "sample_episode", "Conv4"):
        assert hasattr(metakit, name), f"metakit has no {name}"
    return metakit


def check_episode(metakit):
    data = metakit.load_glyphs("background")
    xs, ys, xq, yq = metakit.sample_episode(data, n_way=5, k_shot=1, n_query=3)
    assert xs.shape[0] == 5 and xq.shape[0] == 15, (xs.shape, xq.shape)
    assert sorted(ys.tolist()) == list(range(5)) and set(yq.tolist()) == set(range(5))
    logits = metakit.Conv4(out_features=5)(xs)
    assert logits.shape == (5, 5), logits.shape


def check_maml_step():
    """One MAML meta-gradient with torch.func, compared with learn2learn's MAML on the same model."""
    from torch.func import functional_call, grad

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import learn2learn as l2l

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    xs, ys = torch.randn(6, 4, dtype=torch.double), torch.randint(0, 3, (6,))
    xq, yq = torch.randn(9, 4, dtype=torch.double), torch.randint(0, 3, (9,))
    lr = 0.4
    loss_fn = torch.nn.functional.cross_entropy

    params = {k: v.detach() for k, v in model.named_parameters()}

    def query_loss(p):
        inner = grad(lambda q: loss_fn(functional_call(model, q, (xs,)), ys))(p)
        adapted = {k: p[k] - lr * inner[k] for k in p}
        return loss_fn(functional_call(model, adapted, (xq,)), yq)

    ours = grad(query_loss)(params)

    maml = l2l.algorithms.MAML(model, lr=lr, first_order=False)
    learner = maml.clone()
    learner.adapt(loss_fn(learner(xs), ys))
    loss_fn(learner(xq), yq).backward()
    for name, p in maml.module.named_parameters():
        torch.testing.assert_close(ours[name], p.grad, rtol=1e-9, atol=1e-10)


def check_qpth():
    """min 1/2|x|^2 - x1 - x2  s.t.  x1 + x2 <= 1 has x = (1/2, 1/2); dx/dp from the KKT system."""
    from qpth.qp import QPFunction

    Q = torch.eye(2, dtype=torch.double)
    p = torch.tensor([-1.0, -1.0], dtype=torch.double, requires_grad=True)
    G = torch.tensor([[1.0, 1.0]], dtype=torch.double)
    h = torch.tensor([1.0], dtype=torch.double)
    e = torch.empty(0, dtype=torch.double)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = QPFunction(verbose=-1)(Q, p, G, h, e, e)
    torch.testing.assert_close(x, torch.tensor([[0.5, 0.5]], dtype=torch.double), atol=1e-6, rtol=0)
    x[0, 0].backward()
    # On the active constraint x = -p - nu*(1,1) with nu = (-p1 - p2 - 1)/2: dx1/dp = (-1/2, 1/2).
    torch.testing.assert_close(p.grad, torch.tensor([-0.5, 0.5], dtype=torch.double), atol=1e-5, rtol=0)


def main():
    metakit = check_import()
    check_episode(metakit)
    check_maml_step()
    check_qpth()
    import learn2learn
    import qpth
    from importlib.metadata import version

    print(f"smoke ok: Python {sys.version.split()[0]}, numpy {np.__version__}, torch {torch.__version__}, "
          f"learn2learn {learn2learn.__version__}, qpth {version('qpth')}")


if __name__ == "__main__":
    main()
