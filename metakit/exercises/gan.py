"""Notebook 05's exercises: the discriminator's loss, the non-saturating generator loss, and a support
set augmented with generated images. The references are the kit's own functions in metakit.gan."""
from __future__ import annotations

from collections.abc import Callable

import torch

from metakit.exercises.core import _call, check_prediction, compare, report  # noqa: F401 (check_prediction: for the notebook)
from metakit.gan.augmentation import augment
from metakit.gan.dcgan import discriminator_loss, generator_loss


def non_saturating_generator_loss(fake_logits) -> torch.Tensor:
    """Reference: ``-log D(G(z))`` averaged, from the discriminator's logits on fakes."""
    return generator_loss(fake_logits, non_saturating=True)


class _GivenVariations:
    """Stands in for a generator whose variations are already drawn, so that the kit's ``augment``
    is the reference for a function that receives them."""

    def __init__(self, variations):
        self.variations = variations

    def generate(self, x, n_samples, noise_scale=1.0, generator=None):
        return self.variations


def augmented_support(x_support, y_support, variations):
    """Reference: the support set plus its generated variations, each labelled as its source.

    Args: x_support (S, C, H, W), y_support (S,), variations (S, n_gen, C, H, W) (``generate``'s output).
    Returns: x (S * (1 + n_gen), C, H, W), real images first, then the variations of support image
    0, of image 1, ...; y (S * (1 + n_gen),).
    """
    return augment(_GivenVariations(variations), x_support, y_support, n_gen=variations.shape[1])


def _logit_cases(seed: int):
    """Logits of every kind: mixed, one sample, a confident discriminator (large magnitudes)."""
    g = torch.Generator().manual_seed(seed)
    yield torch.randn(16, 1, generator=g), torch.randn(16, 1, generator=g), "16 real and 16 fake logits"
    yield torch.randn(1, 1, generator=g), torch.randn(1, 1, generator=g), "a batch of one"
    yield 3 + torch.randn(8, 1, generator=g), -6 + torch.randn(8, 1, generator=g), "a confident discriminator"
    yield torch.randn(5, 1, generator=g), torch.randn(7, 1, generator=g), "5 real and 7 fake logits"


def _check_loss(fn, reference, args_of, name: str, hint: str, seed: int, known=()) -> bool:
    """Compare a loss of the logits and its gradient in the fake logits; ``known`` names wrong answers."""
    problem = None
    for real, fake, where in _logit_cases(seed):
        leaves = [real.clone().requires_grad_(True), fake.clone().requires_grad_(True)]
        answer, problem = _call(fn, args_of(*leaves))
        fresh = [real.clone().requires_grad_(True), fake.clone().requires_grad_(True)]
        expected = reference(*args_of(*fresh))
        if problem is None and isinstance(answer, torch.Tensor) and answer.numel() == 1 and answer.dim() > 0:
            answer = answer.reshape(())
        problem = problem or compare(answer, expected.detach(), "The loss")
        if problem is not None and isinstance(answer, torch.Tensor) and answer.shape == expected.shape:
            for wrong, why in known:
                if torch.allclose(answer.detach(), wrong(*args_of(real, fake)), atol=1e-5):
                    problem += " " + why
                    break
        if problem is None:
            if not answer.requires_grad:
                problem = "The loss is right but has no gradient (was it computed under torch.no_grad, or detached?)."
            else:
                got = torch.autograd.grad(answer, leaves[1])[0]
                ref = torch.autograd.grad(expected, fresh[1])[0]
                problem = compare(got, ref, "Its gradient with respect to the fake logits")
        if problem:
            problem = f"With {where}: {problem}"
            break
    return report(name, problem, hint)


def check_discriminator_loss(fn: Callable) -> Callable:
    """Check ``fn(real_logits, fake_logits) -> scalar``."""
    ok = _check_loss(fn, discriminator_loss, lambda r, f: (r, f), "Discriminator loss",
                     "the discriminator labels real images 1 and fakes 0: the binary cross-entropy of "
                     "sigmoid(real_logits) with 1 plus that of sigmoid(fake_logits) with 0, each averaged "
                     "(F.binary_cross_entropy_with_logits takes logits, which avoids log(0)).", seed=7,
                     known=[(lambda r, f: discriminator_loss(f, r),
                             "It is the loss with real and fake swapped: real images should be labelled 1, fakes 0."),
                            (lambda r, f: -discriminator_loss(r, f), "It is minus the right loss: the discriminator "
                             "MINIMISES the cross-entropy (it maximises log D(x) + log(1 - D(G(z))))."),
                            (lambda r, f: discriminator_loss(r, f) / 2, "It is half the right loss: add the two means, "
                             "do not average them.")])
    return fn if ok else discriminator_loss


def check_generator_loss(fn: Callable) -> Callable:
    """Check ``fn(fake_logits) -> scalar``, the non-saturating generator loss."""
    ok = _check_loss(fn, non_saturating_generator_loss, lambda r, f: (f,), "Non-saturating generator loss",
                     "the generator wants D(G(z)) = sigmoid(fake_logits) near 1: minimise -log sigmoid(fake_logits), "
                     "averaged, i.e. F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)); "
                     "not the minimax log(1 - D(G(z))).", seed=8,
                     known=[(lambda f: generator_loss(f, non_saturating=False), "That is the minimax loss "
                             "log(1 - D(G(z))), whose gradient vanishes when the discriminator wins."),
                            (lambda f: -generator_loss(f), "It has the wrong sign: the generator minimises "
                             "-log D(G(z)).")])
    return fn if ok else non_saturating_generator_loss


def _augment_cases(seed: int = 9):
    g = torch.Generator().manual_seed(seed)
    for n_way, k_shot, n_gen in [(5, 1, 3), (3, 2, 2), (1, 1, 4), (4, 1, 1)]:
        x = torch.rand(n_way * k_shot, 1, 4, 4, generator=g)
        y = torch.arange(n_way).repeat_interleave(k_shot)
        if n_way == 4:
            y = y.flip(0)  # labels in another order: a variation takes its own source's label
        variations = torch.rand(len(x), n_gen, 1, 4, 4, generator=g)
        yield x, y, variations, f"a {n_way}-way {k_shot}-shot support set with {n_gen} variation(s) per image"


def check_augmented_support(fn: Callable) -> Callable:
    """Check ``fn(x_support, y_support, variations) -> (x, y)``."""
    problem = None
    for x, y, variations, where in _augment_cases():
        answer, problem = _call(fn, (x, y, variations))
        if problem is None and not (isinstance(answer, (tuple, list)) and len(answer) == 2):
            problem = f"It should return two tensors (x, y), got {type(answer).__name__}."
        if problem is None:
            x_ref, y_ref = augmented_support(x, y, variations)
            problem = compare(answer[0], x_ref, "The images")
            if problem is None:
                problem = compare(answer[1], y_ref, "The labels")
                if problem is not None and isinstance(answer[1], torch.Tensor) and answer[1].shape == y_ref.shape:
                    problem = ("The images are right, but some generated images carry another image's label: "
                               "each variation must keep the label of the image it was made from.")
            elif isinstance(answer[0], torch.Tensor) and answer[0].shape == x_ref.shape and torch.equal(
                    answer[0][: len(x)], x):
                problem += " The real images come first as they should; check the order of the variations."
        if problem:
            problem = f"On {where}: {problem}"
            break
    ok = report("Augmented support set", problem,
                "variations has shape (S, n_gen, C, H, W): flatten its first two dimensions (image 0's "
                "variations, then image 1's, ...), put them after the real images with torch.cat, and "
                "label them y_support.repeat_interleave(n_gen) (not repeat, which cycles through the labels).")
    return fn if ok else augmented_support
