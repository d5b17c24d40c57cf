"""metakit.exercises.meta_augmentation (notebook 06): each check passes the reference, catches
realistic wrong answers in words, sends a missing answer down the "not yet" path, and raises under
autograde."""
import pytest
import torch

from metakit.exercises import meta_augmentation as ex
from metakit.exercises.core import ExerciseError
from helpers import assert_falls_back


# --- wrong label shuffles ---------------------------------------------------------------------------
def shuffle_separately(y_support, y_query, n_way, generator=None):  # a permutation each for support and query
    return (torch.randperm(n_way, generator=generator)[y_support],
            torch.randperm(n_way, generator=generator)[y_query])


def shuffle_examples(y_support, y_query, n_way, generator=None):  # moves labels between examples
    return (y_support[torch.randperm(len(y_support), generator=generator)],
            y_query[torch.randperm(len(y_query), generator=generator)])


def shuffle_random_labels(y_support, y_query, n_way, generator=None):  # a random label per class, not a permutation
    new = torch.randint(n_way, (n_way,), generator=generator)
    return new[y_support], new[y_query]


def shuffle_shift(y_support, y_query, n_way, generator=None):  # a random cyclic shift only
    s = int(torch.randint(n_way, (1,), generator=generator))
    return (y_support + s) % n_way, (y_query + s) % n_way


def shuffle_fixed(y_support, y_query, n_way, generator=None):  # the same permutation for every task
    perm = torch.arange(n_way).flip(0)
    return perm[y_support], perm[y_query]


def shuffle_support_only(y_support, y_query, n_way, generator=None):
    return torch.randperm(n_way, generator=generator)[y_support], y_query


def shuffle_floats(y_support, y_query, n_way, generator=None):
    perm = torch.randperm(n_way, generator=generator).float()
    return perm[y_support], perm[y_query]


# --- wrong augmented supports -----------------------------------------------------------------------
def support_one_call(x_support, y_support, augment, copies):  # one draw, copied
    a = augment(x_support)
    return torch.cat([x_support] + [a] * copies), torch.cat([y_support] * (1 + copies))


def support_interleaved_labels(x_support, y_support, augment, copies):
    return (torch.cat([x_support] + [augment(x_support) for _ in range(copies)]),
            y_support.repeat_interleave(1 + copies))


def support_without_real(x_support, y_support, augment, copies):
    return torch.cat([augment(x_support) for _ in range(1 + copies)]), torch.cat([y_support] * (1 + copies))


# --- wrong hypergradients ---------------------------------------------------------------------------
def hyper_no_create_graph(support_loss, theta, rho, query_grads, alpha):
    inner = torch.autograd.grad(support_loss(theta), theta)
    return -alpha * torch.autograd.grad(sum((g * v).sum() for g, v in zip(inner, query_grads)), rho)[0]


def hyper_plus_sign(support_loss, theta, rho, query_grads, alpha):
    return -ex.augmentation_hypergradient(support_loss, theta, rho, query_grads, alpha)


def hyper_no_alpha(support_loss, theta, rho, query_grads, alpha):
    inner = torch.autograd.grad(support_loss(theta), theta, create_graph=True)
    return torch.autograd.grad(sum((g * v).sum() for g, v in zip(inner, query_grads)), rho)[0]


def hyper_first_order(support_loss, theta, rho, query_grads, alpha):
    return torch.zeros_like(rho)


def hyper_support_loss_gradient(support_loss, theta, rho, query_grads, alpha):  # d L^s / d rho, not through theta'
    return -alpha * torch.autograd.grad(support_loss(theta), rho)[0]


def stub(*args):  # the student version: `pass  # YOUR CODE HERE`
    return None


CHECKS = [(ex.check_shuffle_labels, ex.shuffle_labels),
          (ex.check_augment_support, ex.augment_support),
          (ex.check_augmentation_hypergradient, ex.augmentation_hypergradient)]


@pytest.mark.parametrize("check, reference", CHECKS)
def test_reference_passes(check, reference, capsys):
    assert check(reference) is reference
    assert capsys.readouterr().out.strip().endswith("correct.")


def test_shuffle_reference_keeps_classes_together():
    y_support, y_query = torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([2, 1, 0])
    new_support, new_query = ex.shuffle_labels(y_support, y_query, 3, torch.Generator().manual_seed(3))
    perm = {int(o): int(n) for o, n in zip(y_support, new_support)}
    assert sorted(perm.values()) == [0, 1, 2]
    assert [perm[int(o)] for o in y_query] == new_query.tolist()


def test_slot_share_is_one_over_n_for_the_reference_and_one_without_shuffling():
    assert abs(ex.slot_share(ex.shuffle_labels, n_way=5) - 0.2) < 0.03
    assert ex.slot_share(lambda ys, yq, n, g: (ys, yq)) == 1.0


def test_augment_support_reference_is_the_kits():
    counter = ex._CountingAugmentation()
    x, y = torch.zeros(2, 1, 1, 1), torch.tensor([1, 0])
    xa, ya = ex.augment_support(x, y, counter, 2)
    assert xa.flatten().tolist() == [0, 0, 10, 10, 20, 20] and ya.tolist() == [1, 0, 1, 0, 1, 0]


def test_hypergradient_reference_matches_autograd_through_the_inner_step():
    support_loss, theta, rho, query_grads = ex._hypergradient_problem(0, 4, 3, 6)
    alpha = 0.5
    inner = torch.autograd.grad(support_loss(theta), theta, create_graph=True)
    adapted = [p - alpha * g for p, g in zip(theta, inner)]
    through = torch.autograd.grad(sum((a * v).sum() for a, v in zip(adapted, query_grads)), rho)[0]
    assert torch.allclose(ex.augmentation_hypergradient(support_loss, theta, rho, query_grads, alpha), through)
    assert through.abs().min() > 1e-6  # both entries of rho are reached


def _caught(check, reference, wrong, words, capsys):
    assert_falls_back(check, wrong, reference, capsys, words)


@pytest.mark.parametrize("wrong, words", [
    (shuffle_separately, "support and the query were relabelled differently"),
    (shuffle_examples, "same class got different new labels"),
    (shuffle_random_labels, "same new label"),
    (shuffle_shift, "shift of every label"),
    (shuffle_fixed, "every task the same way"),
    (shuffle_support_only, "relabelled differently"),
    (shuffle_floats, "floats"),
    (stub, "should return two tensors")])
def test_shuffle_catches(wrong, words, capsys):
    _caught(ex.check_shuffle_labels, ex.shuffle_labels, wrong, words, capsys)


@pytest.mark.parametrize("wrong, words", [
    (support_one_call, "once per copy"), (support_interleaved_labels, "wrong labels"),
    (support_without_real, "real support images should come first"), (stub, "should return two tensors")])
def test_augment_support_catches(wrong, words, capsys):
    _caught(ex.check_augment_support, ex.augment_support, wrong, words, capsys)


@pytest.mark.parametrize("wrong, words", [
    (hyper_no_create_graph, "create_graph=True"), (hyper_plus_sign, "wrong sign"), (hyper_no_alpha, "-alpha"),
    (hyper_first_order, "first-order shortcut"), (hyper_support_loss_gradient, "off by"),
    (stub, "returned None")])
def test_hypergradient_catches(wrong, words, capsys):
    _caught(ex.check_augmentation_hypergradient, ex.augmentation_hypergradient, wrong, words, capsys)


@pytest.mark.parametrize("check, reference", CHECKS)
def test_grading_raises(check, reference, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="not yet"):
        check(stub)
    assert check(reference) is reference
