import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from torchvision.transforms.functional import rotate

import metakit
from metakit.continual.methods import AGEM, EWC, GEM, STRATEGIES, Replay, gem_project, make_strategy
from metakit.continual.stream import (
    ContinualLearner,
    Task,
    TaskMemory,
    continual_metrics,
    glyph_stream,
    mlp,
    run_stream,
)
from metakit.datasets import ImageClassDataset


def toy_stream(n_tasks=3, n=40, n_classes=4, dim=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(n_tasks):
        centres = torch.randn(n_classes, dim, generator=g) * 2
        y = torch.arange(n) % n_classes
        x = centres[y] + 0.3 * torch.randn(n, dim, generator=g)
        tasks.append(Task(f"toy {t}", x[: n // 2], y[: n // 2], x[n // 2:], y[n // 2:]))
    return tasks


def small_net(dim=12, n_classes=4):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(dim, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_classes))


# --- GEM's projection -------------------------------------------------------------------------

def conflicting_problem(K=4, P=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(K, P, generator=g, dtype=torch.float64)
    x = torch.randn(P, generator=g, dtype=torch.float64)
    return x - 3 * G.mean(0), G      # g conflicts with most rows of G


def test_gem_projection_satisfies_the_constraints_and_moves_least():
    g, G = conflicting_problem()
    assert (G @ g < 0).sum() >= 2
    z = gem_project(g, G)
    assert (G @ z >= -1e-8 * G.norm() * z.norm()).all()
    # the primal, min 1/2 |z - g|^2 s.t. G z >= 0, solved by a generic solver
    res = minimize(lambda v: 0.5 * np.sum((v - g.numpy()) ** 2), g.numpy(), jac=lambda v: v - g.numpy(),
                   constraints=[{"type": "ineq", "fun": lambda v: G.numpy() @ v, "jac": lambda v: G.numpy()}],
                   method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    assert res.success
    assert np.allclose(z.numpy(), res.x, atol=1e-5)
    assert (z - g).norm() <= np.linalg.norm(res.x - g.numpy()) + 1e-6


def test_gem_projection_kkt_and_no_op_without_conflict():
    g, G = conflicting_problem(K=3, P=10, seed=1)
    z = gem_project(g, G)
    v = torch.linalg.lstsq(G.T, z - g).solution        # z = g + G^T v
    assert torch.allclose(G.T @ v, z - g, atol=1e-8)
    assert (v >= -1e-7).all()                           # dual feasibility
    assert ((v * (G @ z)).abs() < 1e-6).all()           # complementary slackness
    free = G[0] * (G[0] @ G[0])                          # a gradient along the first memory: no conflict
    assert torch.allclose(gem_project(free, G[:1]), free, atol=1e-8)


def test_gem_margin_pushes_towards_the_memories():
    g, G = conflicting_problem()
    assert ((G @ gem_project(g, G, margin=0.5)) > (G @ gem_project(g, G)) - 1e-9).all()


# --- metrics ----------------------------------------------------------------------------------

def test_metrics_on_a_hand_made_matrix():
    R = [[0.9, 0.2, 0.1],
         [0.6, 0.8, 0.3],
         [0.5, 0.7, 0.95]]
    b = [0.1, 0.1, 0.2]
    m = continual_metrics(R, b)
    assert m["acc"] == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert m["bwt"] == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    assert m["fwt"] == pytest.approx(((0.2 - 0.1) + (0.3 - 0.2)) / 2)
    one = continual_metrics([[0.7]], [0.1])
    assert one["acc"] == 0.7 and math.isnan(one["bwt"]) and math.isnan(one["fwt"])
    assert math.isnan(continual_metrics(R)["fwt"])


def test_metrics_reject_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        continual_metrics([[0.1, 0.2]])
    with pytest.raises(ValueError, match="one baseline accuracy per task"):
        continual_metrics(np.eye(3), [0.1, 0.2])


# --- memory -----------------------------------------------------------------------------------

def test_memory_respects_its_size_and_samples_uniformly():
    memory = TaskMemory(per_task=5)
    for t in range(3):
        for _ in range(4):
            memory.add(torch.randn(7, 2), torch.full((7,), t), t)
    assert [len(memory.get(t)[1]) for t in range(3)] == [5, 5, 5] and len(memory) == 15
    assert all((memory.get(t)[1] == t).all() for t in range(3))
    x, y = memory.sample(8, before=2)
    assert len(y) == 8 and set(y.tolist()) <= {0, 1}
    small = TaskMemory(per_task=10)
    small.add(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), 0)
    assert len(small) == 3
    # reservoir sampling: every one of 100 examples is equally likely to be kept
    kept = torch.zeros(100)
    for seed in range(300):
        m = TaskMemory(per_task=10, seed=seed)
        m.add(torch.arange(100.0)[:, None], torch.zeros(100, dtype=torch.long), 0)
        kept[m.get(0)[0][:, 0].long()] += 1
    assert kept[:50].sum() / kept.sum() == pytest.approx(0.5, abs=0.06)
    with pytest.raises(ValueError, match="at least one example"):
        TaskMemory(per_task=0)


# --- strategies -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_follows_the_contract(name):
    stream = toy_stream()
    learner = make_strategy(name, small_net(), lr=0.1, memory_per_task=6, ewc_strength=1.0)
    assert isinstance(learner, ContinualLearner)
    before = [p.detach().clone() for p in learner.parameters()]
    for t, task in enumerate(stream):
        for k in range(0, len(task.y_train), 5):
            loss = learner.observe(task.x_train[k:k + 5], task.y_train[k:k + 5], t)
            assert isinstance(loss, float) and math.isfinite(loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, learner.parameters()))
    pred = learner.predict(stream[0].x_test)
    assert pred.shape == stream[0].y_test.shape and pred.dtype == torch.long
    assert torch.equal(pred, learner.predict(stream[0].x_test, task_id=0))
    if hasattr(learner, "memory"):
        assert len(learner.memory) <= 6 * len(stream)
    if name == "ewc":
        assert len(learner.anchors) == len(stream) - 1


def test_gem_and_agem_steps_never_conflict_with_the_memories():
    stream = toy_stream(n_tasks=2)
    for cls in (GEM, AGEM):
        learner = cls(small_net(), lr=0.5, memory_per_task=10)
        for k in range(0, 20, 5):
            learner.observe(stream[0].x_train[k:k + 5], stream[0].y_train[k:k + 5], 0)
        x, y = stream[1].x_train[:5], stream[1].y_train[:5]
        xm, ym = learner.memory.get(0)
        g_mem = learner.flat_grad(learner.loss(xm, ym))
        before = [p.detach().clone() for p in learner.net.parameters()]
        learner.observe(x, y, 1)
        step = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, learner.net.parameters())])
        # step = lr * (projected gradient), which must not conflict with the memory's gradient
        assert step @ g_mem >= -1e-6 * step.norm() * g_mem.norm(), cls.__name__


def test_ewc_penalty_is_zero_at_its_anchor_and_grows_away_from_it():
    stream = toy_stream(n_tasks=2)
    learner = EWC(small_net(), lr=0.1, strength=10.0)
    learner.observe(stream[0].x_train, stream[0].y_train, 0)
    learner.observe(stream[1].x_train[:2], stream[1].y_train[:2], 1)
    fisher, anchor = learner.anchors[0]
    assert all((f >= 0).all() for f in fisher.values())
    with torch.no_grad():
        for k, p in learner.net.named_parameters():
            p.copy_(anchor[k])
    x, y = stream[1].x_train, stream[1].y_train
    plain = ContinualLearner.loss(learner, x, y)
    assert learner.loss(x, y).item() == pytest.approx(plain.item())
    with torch.no_grad():
        for p in learner.net.parameters():
            p.add_(0.1)
    assert learner.loss(x, y).item() > ContinualLearner.loss(learner, x, y).item()


def test_bad_input_gives_clear_errors():
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("sgd", small_net())
    with pytest.raises(ValueError, match="at least one example"):
        make_strategy("gem", small_net(), memory_per_task=0)
    with pytest.raises(ValueError, match="learning rate"):
        make_strategy("naive", small_net(), lr=float("nan"))
    with pytest.raises(ValueError, match="EWC strength"):
        make_strategy("ewc", small_net(), ewc_strength=-1)
    learner = make_strategy("naive", small_net())
    x = torch.randn(4, 12)
    with pytest.raises(ValueError, match="in order 0, 1, 2"):     # no task before the first
        learner.observe(x, torch.zeros(4, dtype=torch.long), -1)
    learner.observe(x, torch.zeros(4, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="in order"):
        learner.observe(x, torch.zeros(4, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="one label per input"):
        learner.observe(x, torch.zeros(3, dtype=torch.long), 1)
    with pytest.raises(FloatingPointError, match="too large"):
        run_stream(make_strategy("naive", small_net(), lr=1e12), toy_stream(), epochs=2, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        run_stream(learner, toy_stream(), epochs=0, progress=False)


def test_run_stream_fills_the_accuracy_matrix():
    stream = toy_stream()
    result = run_stream(make_strategy("replay", small_net(), memory_per_task=5), stream, epochs=3, progress=False)
    R = result["R"]
    assert R.shape == (3, 3) and ((0 <= R) & (R <= 1)).all() and result["b"].shape == (3,)
    assert result["acc"] == pytest.approx(R[-1].mean())
    assert np.diag(R).mean() > 0.8        # each toy task is easy


def test_glyph_streams():
    glyphs = metakit.load_glyphs("evaluation")
    for kind in ("permutations", "rotations"):
        stream = glyph_stream(glyphs, kind=kind, n_tasks=3, n_classes=5)
        assert len(stream) == 3 and stream[0].x_train.shape == (75, 1, 28, 28)
        assert stream[0].x_test.shape == (25, 1, 28, 28)
        assert torch.equal(stream[0].y_train, stream[2].y_train)
        assert not torch.equal(stream[0].x_train, stream[1].x_train)
        # a permutation or rotation keeps the ink (rotation loses a little at the corners)
        assert stream[1].x_train.sum().item() == pytest.approx(stream[0].x_train.sum().item(), rel=0.1)
    with pytest.raises(ValueError, match="kind"):
        glyph_stream(glyphs, "flips")
    with pytest.raises(ValueError, match="more than"):
        glyph_stream(glyphs, n_classes=10_000)
    assert isinstance(mlp(5)(stream[0].x_train[:2]), torch.Tensor)


def test_replay_mixes_old_examples_into_the_loss():
    stream = toy_stream(n_tasks=2)
    learner = Replay(small_net(), memory_per_task=4, replay_batch=3)
    learner.observe(stream[0].x_train[:8], stream[0].y_train[:8], 0)
    learner.task = 1
    seen = []
    learner.net.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
    learner.loss(stream[1].x_train[:5], stream[1].y_train[:5])
    assert seen == [8]


def test_ewc_fisher_by_vmap_matches_a_loop_over_examples():
    stream = toy_stream(n_tasks=1)
    learner = EWC(small_net(), lr=0.1)
    x, y = stream[0].x_train[:7], stream[0].y_train[:7]
    fisher, anchor = learner.consolidate(x, y)
    squares = {k: torch.zeros_like(p) for k, p in learner.net.named_parameters()}
    for xi, yi in zip(x, y):
        learner.net.zero_grad()
        torch.nn.functional.cross_entropy(learner.net(xi[None]), yi[None]).backward()
        for k, p in learner.net.named_parameters():
            squares[k] += p.grad ** 2 / len(y)
    for k, p in learner.net.named_parameters():
        assert torch.allclose(fisher[k], squares[k], atol=1e-7), k
        assert torch.equal(anchor[k], p.detach())


# --- GEM and A-GEM on a forced conflict (issue 22) ---------------------------------------------
# The batch of task 1 is the memory of task 0 with every label moved to another class, so its
# gradient points against the memory's: a projection must happen, and its result is known.

def forced_conflict(cls, **kwargs):
    stream = toy_stream(n_tasks=1)
    learner = cls(small_net().double(), lr=0.3, memory_per_task=8, **kwargs)   # not the default lr
    x0, y0 = stream[0].x_train[:8].double(), stream[0].y_train[:8]
    learner.observe(x0, y0, 0)
    return learner, x0, y0, (y0 + 1) % 4


def step_of(learner, x, y, task_id):
    before = torch.cat([p.detach().reshape(-1).clone() for p in learner.net.parameters()])
    learner.observe(x, y, task_id)
    return (before - torch.cat([p.detach().reshape(-1) for p in learner.net.parameters()])) / learner.lr


def test_agem_projects_a_conflicting_gradient_in_closed_form():
    learner, x0, y0, wrong = forced_conflict(AGEM)
    g = learner.flat_grad(learner.loss(x0, wrong))
    g_ref = learner.flat_grad(learner.loss(x0, y0))   # the reference batch is the whole memory
    assert g @ g_ref < 0                              # the conflict is real
    step = step_of(learner, x0, wrong, 1)
    assert learner.projections == 1
    expected = g - (g @ g_ref) / (g_ref @ g_ref) * g_ref
    torch.testing.assert_close(step, expected, rtol=1e-9, atol=1e-12)
    assert abs(step @ g_ref) < 1e-9 * g.norm() * g_ref.norm()   # on the constraint's boundary


def test_agem_leaves_an_agreeing_gradient_alone():
    learner, x0, y0, _ = forced_conflict(AGEM)
    g = learner.flat_grad(learner.loss(x0, y0))
    step = step_of(learner, x0, y0, 1)                # the same examples, the same labels: no conflict
    assert learner.projections == 0
    torch.testing.assert_close(step, g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_gem_projects_a_conflicting_gradient_onto_every_constraint(margin):
    learner, x0, y0, wrong = forced_conflict(GEM, margin=margin)
    x1, y1 = x0.flip(0), y0.flip(0)
    learner.observe(x1, y1, 1)                        # a second memory, agreeing with the first
    G = torch.stack([learner.flat_grad(learner.loss(x, y)) for x, y in ((x0, y0), (x1, y1))])
    g = learner.flat_grad(learner.loss(x0, wrong))
    assert (G @ g < 0).all()
    step = step_of(learner, x0, wrong, 2)
    assert learner.projections == 1
    assert (G @ step >= -1e-7 * step.norm() * G.norm(dim=1)).all()   # no memory's loss goes up
    torch.testing.assert_close(step, gem_project(g, G, margin), rtol=1e-6, atol=1e-9)
    if margin == 0:                                   # the exact projection: g moved to the closest feasible point
        v = torch.linalg.lstsq(G.T, step - g).solution
        assert (v >= -1e-6).all() and torch.allclose(G.T @ v, step - g, atol=1e-6)
        assert (step - g).norm() <= g.norm()


def test_gem_leaves_an_agreeing_gradient_alone():
    learner, x0, y0, _ = forced_conflict(GEM)
    g = learner.flat_grad(learner.loss(x0, y0))
    step = step_of(learner, x0, y0, 1)
    assert learner.projections == 0
    torch.testing.assert_close(step, g, rtol=1e-9, atol=1e-12)


# --- what mutation testing found unchecked (issue 22; tests/mutants/README.md) ------------------------

def test_every_projection_is_counted():
    for cls in (GEM, AGEM):
        learner, x0, y0, wrong = forced_conflict(cls)
        learner.observe(x0, wrong, 1)
        learner.observe(x0, (y0 + 2) % 4, 1)
        assert learner.projections == 2, cls.__name__


def test_ewc_penalty_is_half_the_strength_times_the_fisher_weighted_square():
    stream = toy_stream(n_tasks=2)
    learner = EWC(small_net().double(), lr=0.3, strength=10.0)
    learner.observe(stream[0].x_train.double(), stream[0].y_train, 0)
    learner.observe(stream[1].x_train[:2].double(), stream[1].y_train[:2], 1)
    fisher, anchor = learner.anchors[0]
    x, y = stream[1].x_train.double(), stream[1].y_train
    with torch.no_grad():
        for p in learner.net.parameters():
            p.add_(0.3)
    expected = sum((fisher[k] * (p - anchor[k]) ** 2).sum() for k, p in learner.net.named_parameters())
    penalty = learner.loss(x, y) - ContinualLearner.loss(learner, x, y)
    assert penalty.item() == pytest.approx(10.0 / 2 * expected.item(), rel=1e-9)


@pytest.mark.parametrize("name", ["ewc", "replay"])
def test_the_first_task_is_plain_sgd_at_the_given_rate(name):
    """No anchor and no memory yet: the step is exactly -lr * gradient (lr is not the default)."""
    stream = toy_stream(n_tasks=1)
    learner = make_strategy(name, small_net().double(), lr=0.3)
    x, y = stream[0].x_train[:5].double(), stream[0].y_train[:5]
    g = learner.flat_grad(learner.loss(x, y))
    torch.testing.assert_close(step_of(learner, x, y, 0) * learner.lr / 0.3, g)


def test_ewc_strength_zero_is_allowed_and_infinity_is_not():
    assert EWC(small_net(), strength=0.0).strength == 0.0
    assert EWC(small_net(), strength=0.5).strength == 0.5
    with pytest.raises(ValueError, match="EWC strength"):
        EWC(small_net(), strength=float("inf"))


def test_documented_defaults():
    learner = GEM(small_net())
    assert (learner.lr, learner.memory.per_task, learner.margin) == (0.1, 50, 0.5)
    learner = AGEM(small_net())
    assert (learner.lr, learner.memory.per_task, learner.reference_batch) == (0.1, 50, 256)
    learner = Replay(small_net())
    assert (learner.lr, learner.memory.per_task, learner.replay_batch) == (0.1, 50, 10)
    learner = EWC(small_net())
    assert (learner.lr, learner.strength, learner.samples.per_task) == (0.1, 100.0, 200)


# --- the stream, the loop, the memory and the metrics pinned (issue 22; mutation testing, mut3) -----------

def tiny_glyphs(n_classes=20, images=16, seed=0):
    """``n_classes`` random classes of ``images`` 28x28 pictures each, as an ImageClassDataset."""
    rng = np.random.default_rng(seed)
    pictures = rng.integers(0, 256, size=(n_classes * images, 28, 28)).astype(np.uint8)
    return ImageClassDataset(pictures, np.arange(n_classes).repeat(images), [f"a/c{i}" for i in range(n_classes)],
                             name="tiny glyphs")


def drawn_images(data, classes, train_per_class):
    """The train and test images glyph_stream takes from ``classes``, in its order."""
    train = [data[i][0] for c in classes for i in data.labels_to_indices[c][:train_per_class]]
    test = [data[i][0] for c in classes for i in data.labels_to_indices[c][train_per_class:]]
    return torch.stack(train), torch.stack(test)


def test_glyph_stream_defaults_are_ten_permuted_tasks_of_twenty_classes_of_fifteen_images():
    data = tiny_glyphs()                                   # 20 classes of 16: just enough for the defaults
    stream = glyph_stream(data)
    assert [t.name for t in stream] == [f"perm {t}" for t in range(10)]
    g = torch.Generator().manual_seed(0)                   # the default seed
    classes = torch.randperm(20, generator=g)[:20].tolist()
    x_train, x_test = drawn_images(data, classes, 15)
    assert torch.equal(stream[0].x_train, x_train) and torch.equal(stream[0].x_test, x_test)   # task 0 as drawn
    for t in range(1, 10):                                 # then one fixed pixel permutation per task
        perm = torch.randperm(28 * 28, generator=g)
        assert torch.equal(stream[t].x_train, x_train.flatten(1)[:, perm].view_as(x_train))
        assert torch.equal(stream[t].x_test, x_test.flatten(1)[:, perm].view_as(x_test))
    for task in stream:                                    # labels 0..19 in the order the classes were drawn
        assert torch.equal(task.y_train, torch.arange(20).repeat_interleave(15))
        assert torch.equal(task.y_test, torch.arange(20))


def test_glyph_stream_rotations_turn_each_task_by_its_share_of_max_angle():
    data = tiny_glyphs(n_classes=6, images=7)
    stream = glyph_stream(data, "rotations", n_tasks=4, n_classes=3, train_per_class=5, seed=2)
    assert [t.name for t in stream] == ["0°", "45°", "90°", "135°"]          # default max_angle=180
    classes = torch.randperm(6, generator=torch.Generator().manual_seed(2))[:3].tolist()
    x_train, x_test = drawn_images(data, classes, 5)
    for t, task in enumerate(stream):
        torch.testing.assert_close(task.x_train, rotate(x_train, 45.0 * t))
        torch.testing.assert_close(task.x_test, rotate(x_test, 45.0 * t))
        assert torch.equal(task.y_train, torch.arange(3).repeat_interleave(5))
        assert torch.equal(task.y_test, torch.arange(3).repeat_interleave(2))
    half = glyph_stream(data, "rotations", n_tasks=2, n_classes=3, train_per_class=5, max_angle=90.0, seed=2)
    assert [t.name for t in half] == ["0°", "45°"]
    torch.testing.assert_close(half[1].x_train, stream[1].x_train)


def test_glyph_stream_is_reproducible_from_its_seed_alone():
    data = tiny_glyphs(n_classes=8, images=4)
    torch.manual_seed(1)
    first = glyph_stream(data, n_tasks=3, n_classes=5, train_per_class=2, seed=4)
    torch.manual_seed(2)                                   # the global generator must not matter
    again = glyph_stream(data, n_tasks=3, n_classes=5, train_per_class=2, seed=4)
    for a, b in zip(first, again):
        assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    other = glyph_stream(data, n_tasks=3, n_classes=5, train_per_class=2, seed=5)
    assert not torch.equal(first[1].x_train, other[1].x_train)


def test_glyph_stream_bounds_and_messages():
    data = tiny_glyphs(n_classes=4, images=3)
    assert len(glyph_stream(data, n_tasks=1, n_classes=4, train_per_class=2)) == 1   # the smallest stream, all classes
    assert len(glyph_stream(data, n_tasks=2, n_classes=1, train_per_class=1)[0].y_test) == 2
    for kwargs, name in [({"n_tasks": 0}, "n_tasks"), ({"n_tasks": 1.5}, "n_tasks"), ({"n_classes": 0}, "n_classes"),
                         ({"train_per_class": 0}, "train_per_class")]:
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            glyph_stream(data, **{"n_tasks": 2, "n_classes": 2, "train_per_class": 1, **kwargs})
    with pytest.raises(ValueError, match="train_per_class=3 leaves no test images: class . has 3"):
        glyph_stream(data, n_tasks=2, n_classes=2, train_per_class=3)


def test_mlp_is_gems_two_hidden_layers_of_100_relus():
    torch.manual_seed(0)
    net = mlp(5)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linears] == [(100, 784), (100, 100), (5, 100)]
    x = torch.randn(3, 1, 28, 28)
    h = torch.relu(linears[0](x.flatten(1)))
    h = torch.relu(linears[1](h))
    torch.testing.assert_close(net(x), linears[2](h))


def test_metrics_of_two_tasks_and_no_warning_for_one():
    m = continual_metrics([[0.9, 0.3], [0.6, 0.8]], [0.1, 0.2])
    assert (m["acc"], m["bwt"], m["fwt"]) == pytest.approx((0.7, -0.3, 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no mean of an empty slice behind the nans
        one = continual_metrics([[0.7]], [0.1])
    assert math.isnan(one["bwt"]) and math.isnan(one["fwt"])


def reservoir(values, per_task, seed):
    """Reservoir sampling written out: keep the first ``per_task``, then the n-th (0-based) replaces
    slot j ~ U{0..n} when j < per_task."""
    rng, kept = np.random.default_rng(seed), []
    for n, v in enumerate(values):
        if n < per_task:
            kept.append(v)
        else:
            j = int(rng.integers(n + 1))
            if j < per_task:
                kept[j] = v
    return kept


@pytest.mark.parametrize("per_task", [1, 4])
def test_memory_is_reservoir_sampling_from_its_seed(per_task):
    for seed in (None, 3):
        memory = TaskMemory(per_task) if seed is None else TaskMemory(per_task, seed=seed)
        for chunk in range(4):                             # arrives in batches of 5
            xs = torch.arange(5.0 * chunk, 5.0 * chunk + 5)
            memory.add(xs[:, None], xs.long() + 100, 0)
        expected = reservoir(range(20), per_task, 0 if seed is None else seed)   # default seed 0
        assert memory.get(0)[0][:, 0].tolist() == expected
        assert memory.get(0)[1].tolist() == [v + 100 for v in expected]   # each label stays with its input


def test_learning_rate_bounds_and_default():
    assert ContinualLearner(small_net()).lr == 0.1
    for lr in (0.0, -0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="learning rate"):
            ContinualLearner(small_net(), lr=lr)


def test_a_batch_of_one_is_observed_and_an_empty_one_refused():
    learner = ContinualLearner(small_net())
    assert math.isfinite(learner.observe(torch.randn(1, 12), torch.tensor([2]), 0))
    with pytest.raises(ValueError, match="non-empty batch"):
        learner.observe(torch.randn(0, 12), torch.zeros(0, dtype=torch.long), 0)


class Recorder(ContinualLearner):
    """Records what run_stream shows it; predicts the class ``task_id`` for everything."""

    def __init__(self):
        super().__init__(torch.nn.Linear(1, 3))
        self.batches, self.asked = [], []

    def observe(self, x, y, task_id):
        self.batches.append((task_id, x[:, 0].long().tolist(), y.tolist()))
        return float(x.sum())

    def predict(self, x, task_id=None):
        self.asked.append(task_id)
        return torch.full((len(x),), -1 if task_id is None else task_id)


def id_stream(n_train=23):
    """Two tasks whose inputs are their own ids (task 1's start at 100) and labels the task id."""
    ids = [torch.arange(n_train) + 100 * t for t in range(2)]
    return [Task(f"ids {t}", i[:, None].float(), i % 3, torch.zeros(4, 1), torch.full((4,), t))
            for t, i in enumerate(ids)]


def test_run_stream_shows_every_example_once_per_epoch_in_its_seeded_order():
    stream, learner = id_stream(), Recorder()
    result = run_stream(learner, stream, epochs=2, batch_size=10, seed=5, progress=False)
    g = torch.Generator().manual_seed(5)
    expected = []
    for t, task in enumerate(stream):
        for _ in range(2):
            order = torch.randperm(23, generator=g)
            expected += [(t, (order[k:k + 10] + 100 * t).tolist(), (task.y_train[order[k:k + 10]]).tolist())
                         for k in range(0, 23, 10)]
    assert learner.batches == expected                     # batches of 10, 10, 3; task ids in order
    assert result["losses"] == [float(sum(ids)) for _, ids, _ in expected]
    assert set(result) == {"R", "b", "acc", "bwt", "fwt", "losses", "seconds"}
    assert 0 <= result["seconds"] < 60


def test_run_stream_defaults_one_epoch_batches_of_ten_seed_zero():
    learner = Recorder()
    run_stream(learner, id_stream(), progress=False)
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    assert [ids for t, ids, _ in learner.batches if t == 0] == [order[k:k + 10].tolist() for k in (0, 10, 20)]
    assert len(learner.batches) == 6


def test_run_stream_tests_each_task_with_its_own_task_id():
    learner = Recorder()
    result = run_stream(learner, id_stream(), epochs=1, progress=False)
    assert learner.asked == [0, 1] * 3                     # b, then R after each of the two tasks
    assert (result["R"] == 1).all() and (result["b"] == 1).all()
    assert (result["acc"], result["bwt"], result["fwt"]) == (1.0, 0.0, 0.0)   # fwt uses b


def test_calling_a_learner_gives_its_networks_logits():
    learner, x = ContinualLearner(small_net()), torch.randn(3, 12)
    torch.testing.assert_close(learner(x), learner.net(x))
    assert torch.equal(learner.predict(x), learner.net(x).argmax(1))


def test_a_loss_that_blows_up_without_overflowing_is_a_divergence(monkeypatch):
    """Some CPUs settle at huge finite losses where others overflow: both are reported, with the task."""
    from metakit.continual import stream as stream_module
    learner = make_strategy("naive", small_net())
    monkeypatch.setattr(learner, "observe", lambda x, y, task_id: 2.5e36)
    tasks = [stream_module.Task("t", torch.randn(4, 12), torch.zeros(4, dtype=torch.long),
                                torch.randn(2, 12), torch.zeros(2, dtype=torch.long))]
    with pytest.raises(FloatingPointError, match="the loss became 2.5e[+]36 on task 0: the learning rate"):
        stream_module.run_stream(learner, tasks, progress=False)


def test_diverged_is_the_one_rule_for_a_training_loss():
    """Not finite, or finite but above LOSS_LIMIT: the rule run_stream and oml.adam_step share."""
    from metakit.continual.stream import LOSS_LIMIT, diverged
    assert not diverged(0.0) and not diverged(2.3) and not diverged(LOSS_LIMIT)
    assert diverged(math.nan) and diverged(math.inf) and diverged(-math.inf) and diverged(LOSS_LIMIT * 10)
