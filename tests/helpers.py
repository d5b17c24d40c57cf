"""Pieces several test modules need (pytest puts tests/ on sys.path, so ``from helpers import ...``)."""

import torch

from metakit.episodes import import_learn2learn


def random_episode(n_way, k_shot, n_query, seed=0):
    """Random 28x28 images with labels in support order: (x_support, y_support, x_query)."""
    g = torch.Generator().manual_seed(seed)
    x_support = torch.rand(n_way * k_shot, 1, 28, 28, generator=g)
    y_support = torch.arange(n_way).repeat_interleave(k_shot)
    x_query = torch.rand(n_way * n_query, 1, 28, 28, generator=g)
    return x_support, y_support, x_query


def learn2learn_meta_loss(model, tasks, *, inner_lr, steps, first_order, loss_fn):
    """The reference: learn2learn's MAML wrapper, one clone per task, adapt() per inner step."""
    l2l = import_learn2learn()
    maml = l2l.algorithms.MAML(model, lr=inner_lr, first_order=first_order)
    total = 0.0
    for x_support, y_support, x_query, y_query in zip(*tasks):
        learner = maml.clone()
        for _ in range(steps):
            learner.adapt(loss_fn(learner(x_support), y_support))
        total = total + loss_fn(learner(x_query), y_query)
    return total / len(tasks[0])
