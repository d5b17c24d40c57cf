"""metakit.exercises.gan (notebook 05): each check passes the reference, catches realistic wrong
answers in words, sends a missing answer down the "not yet" path, and raises under autograde."""
import pytest
import torch
import torch.nn.functional as F

from metakit.exercises import gan as ex
from metakit.exercises.core import ExerciseError
from helpers import assert_falls_back


def d_swapped(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.zeros_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits)))


def d_averaged(real_logits, fake_logits):
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))) / 2


def d_probabilities_as_logits(real_logits, fake_logits):  # forgot that the inputs are logits
    return (F.binary_cross_entropy(real_logits.sigmoid().sigmoid(), torch.ones_like(real_logits))
            + F.binary_cross_entropy(fake_logits.sigmoid().sigmoid(), torch.zeros_like(fake_logits)))


def d_maximised(real_logits, fake_logits):
    return torch.log(real_logits.sigmoid()).mean() + torch.log(1 - fake_logits.sigmoid()).mean()


def g_minimax(fake_logits):
    return torch.log(1 - fake_logits.sigmoid()).mean()


def g_sign(fake_logits):
    return torch.log(fake_logits.sigmoid()).mean()


def g_detached(fake_logits):
    return F.binary_cross_entropy_with_logits(fake_logits.detach(), torch.ones_like(fake_logits))


def g_sum(fake_logits):
    return -torch.log(fake_logits.sigmoid()).sum()


def aug_repeat_labels(x_support, y_support, variations):
    n_gen = variations.shape[1]
    return torch.cat([x_support, variations.flatten(0, 1)]), torch.cat([y_support, y_support.repeat(n_gen)])


def aug_transposed_variations(x_support, y_support, variations):
    n_gen = variations.shape[1]
    return (torch.cat([x_support, variations.transpose(0, 1).flatten(0, 1)]),
            torch.cat([y_support, y_support.repeat_interleave(n_gen)]))


def aug_no_real(x_support, y_support, variations):
    return variations.flatten(0, 1), y_support.repeat_interleave(variations.shape[1])


def stub(*args):  # the student version: `pass  # YOUR CODE HERE`
    return None


CHECKS = [(ex.check_discriminator_loss, ex.discriminator_loss),
          (ex.check_generator_loss, ex.non_saturating_generator_loss),
          (ex.check_augmented_support, ex.augmented_support)]


@pytest.mark.parametrize("check, reference", CHECKS)
def test_reference_passes(check, reference, capsys):
    assert check(reference) is reference
    assert capsys.readouterr().out.strip().endswith("correct.")


def test_augmented_reference_labels_follow_sources():
    x, y = torch.arange(3.0).view(3, 1, 1, 1), torch.tensor([2, 0, 1])
    variations = x[:, None].repeat(1, 2, 1, 1, 1) + 10          # variation of image i = i + 10
    xa, ya = ex.augmented_support(x, y, variations)
    assert torch.equal(ya, torch.tensor([2, 0, 1, 2, 2, 0, 0, 1, 1]))
    assert torch.equal(xa.flatten()[3:] - 10, torch.tensor([0.0, 0, 1, 1, 2, 2]))


def _caught(check, reference, wrong, words, capsys):
    assert_falls_back(check, wrong, reference, capsys, words)


@pytest.mark.parametrize("wrong, words", [
    (d_swapped, "real and fake swapped"), (d_averaged, "half the right loss"), (d_maximised, "MINIMISES"),
    (d_probabilities_as_logits, "off by"), (stub, "returned None")])
def test_discriminator_loss_catches(wrong, words, capsys):
    _caught(ex.check_discriminator_loss, ex.discriminator_loss, wrong, words, capsys)


@pytest.mark.parametrize("wrong, words", [
    (g_minimax, "minimax loss"), (g_sign, "wrong sign"), (g_detached, "has no gradient"), (g_sum, "off by"),
    (stub, "returned None")])
def test_generator_loss_catches(wrong, words, capsys):
    _caught(ex.check_generator_loss, ex.non_saturating_generator_loss, wrong, words, capsys)


@pytest.mark.parametrize("wrong, words", [
    (aug_repeat_labels, "carry another image's label"), (aug_transposed_variations, "order of the variations"),
    (aug_no_real, "The images has shape"), (stub, "should return two tensors")])
def test_augmented_support_catches(wrong, words, capsys):
    _caught(ex.check_augmented_support, ex.augmented_support, wrong, words, capsys)


@pytest.mark.parametrize("check, reference", CHECKS)
def test_grading_raises(check, reference, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(ExerciseError, match="not yet"):
        check(stub)
    assert check(reference) is reference
