"""One step of every training loop in the kit under :class:`~metakit.device_check.DeviceCheck`.

No step may make a tensor on the default device that then meets the model's tensors: on a GPU
that operation would fail. The models go to ``metakit.device()``: the CPU here, and a real GPU under
``make gpu-check`` (which sets ``METAKIT_DEVICE=cuda``), where each step then really runs there."""

import pytest
import torch

import metakit
from metakit.continual import methods, oml, stream
from metakit.device_check import DeviceCheck
from metakit.gan import dagan, dcgan
from metakit.gradient import family
from metakit.meta_augmentation import learned, nme
from metakit.metadata import columns, encoder
from metakit.metric import experiments as metric
from metakit.transfer import finetune

DEVICE = metakit.device()


def checked(modules, step, data=()):
    for module in modules:
        module.to(DEVICE)
    with DeviceCheck(*modules, data=data) as check:
        step()
    assert not check.problems, check.report()


def glyph_data(dataset):
    return dataset.images, dataset.targets


def test_check_catches_a_tensor_made_without_device():
    model = torch.nn.Linear(3, 2)
    with DeviceCheck(model) as check:
        model(torch.ones(4, 3, device="cpu")) + torch.zeros(2)      # the bug: torch.zeros without device=
    assert len(check.problems) == 1 and "add" in check.problems[0]
    with DeviceCheck(model) as check:
        out = model(torch.ones(4, 3).to("cpu"))
        out + torch.zeros(2, device=out.device) + torch.tensor(1.0)   # placed, and a scalar: both fine
    assert check.problems == []


@pytest.mark.parametrize("name", sorted(family.FAMILY))
def test_gradient_family_step(name, glyphs_background):
    alg = family.make_algorithm(name, hidden=4)
    checked([alg], lambda: family.train(alg, glyphs_background, steps=1, progress=False),
            glyph_data(glyphs_background))


@pytest.mark.parametrize("method", ["proto", "matching", "metaopt"])
def test_metric_step(method, glyphs_background):
    model = metric.make_model(method, hidden=4)
    checked([model], lambda: metric.train(model, glyphs_background, steps=1, n_way=5, progress=False),
            glyph_data(glyphs_background))


def test_gan_steps(glyphs_background):
    g, d = dcgan.DCGANGenerator(hidden=4), dcgan.DCGANDiscriminator(hidden=4)
    images = dcgan.dataset_images(glyphs_background)[:64]
    checked([g, d], lambda: dcgan.train_dcgan(g, images, discriminator=d, steps=1, batch_size=8, progress=False),
            (images,))
    dg, dd = dagan.DAGANGenerator(hidden=4), dcgan.DCGANDiscriminator(in_channels=2, hidden=4)
    checked([dg, dd], lambda: dagan.train_dagan(dg, glyphs_background, discriminator=dd, steps=1, batch_size=8,
                                              progress=False), glyph_data(glyphs_background))


@pytest.mark.parametrize("kind", ["maml", "proto"])
def test_nme_step(kind, glyphs_background):
    learner = nme.make_nme_learner(kind, hidden=4)
    sampler = nme.NMESampler(glyphs_background, 5, 1, 2, shuffle="intra")
    checked([learner], lambda: nme.train_nme(learner, sampler, steps=1, progress=False),
            glyph_data(glyphs_background))


def test_learned_augmentation_step(glyphs_background):
    alg = learned.make_augmented("learned", hidden=4)
    checked([alg], lambda: learned.train_augmented(alg, glyphs_background, steps=1, progress=False),
            glyph_data(glyphs_background))


@pytest.mark.parametrize("strategy", ["naive", "ewc", "replay", "gem", "agem"])
def test_continual_observe(strategy, glyphs_evaluation):
    tasks = stream.glyph_stream(glyphs_evaluation, n_tasks=2, n_classes=3, train_per_class=4)
    learner = methods.make_strategy(strategy, stream.mlp(3, hidden=8), memory_per_task=4)

    def steps():
        for task_id, task in enumerate(tasks):
            learner.observe(task.x_train[:6], task.y_train[:6], task_id)
    checked([learner], steps, [t for task in tasks for t in (task.x_train, task.y_train)])


@pytest.mark.parametrize("kind", ["oml", "anml"])
def test_online_meta_step(kind, glyphs_background):
    model = (oml.OnlineLearner if kind == "oml" else oml.ANML)(glyphs_background.num_classes, width=4)
    checked([model], lambda: oml.meta_train_online(model, glyphs_background, steps=1, classes=2, shots=1,
                                                         remember=2, progress=False), glyph_data(glyphs_background))
    checked([model], lambda: oml.pretrain(model, glyphs_background, steps=1, batch_size=4, progress=False),
            glyph_data(glyphs_background))


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_transfer_steps(head, glyphs_background):
    backbone = metakit.Conv4(hidden=4)
    checked([backbone], lambda: finetune.pretrain(backbone, glyphs_background, head, steps=1, batch_size=4,
                                                  progress=False), glyph_data(glyphs_background))
    tuner = finetune.FineTuner(backbone, head=head, steps=2)
    x_support, y_support, x_query, _ = metakit.sample_episode(glyphs_background, 3, 1, 1, device=DEVICE)
    checked([tuner], lambda: (tuner.fit_support(x_support, y_support), tuner(x_query)))


def test_column_encoder_step():
    background, _ = columns.split_datasets(columns_per_type=6)
    model = encoder.ColumnPrototypes()
    checked([model], lambda: encoder.train_column_prototypes(model, background, n_way=3, k_shot=2, n_query=1,
                                                              steps=1, seconds=None, progress=False))


# The evaluation and experiment paths the notebooks and Run buttons call with device=: one short step each.

def test_sinusoid_pretraining_and_fine_tuning():
    from metakit.gradient import sinusoid
    net = sinusoid.sinusoid_mlp(hidden=4)
    checked([net], lambda: sinusoid.train_pretrained(net, steps=1, progress=False))
    checked([net], lambda: sinusoid.mse_after_steps({"net": net}, k_shot=2, inner_lr=0.01, steps=(1,), n_tasks=2,
                                                    n_query=3))


def test_gradient_family_evaluations(glyphs_evaluation):
    alg = family.make_algorithm("maml", hidden=4)
    checked([alg], lambda: family.adaptation_curve(alg, glyphs_evaluation, k_shot=1, inner_steps=1, episodes=1),
            glyph_data(glyphs_evaluation))
    checked([alg], lambda: family.feature_reuse(alg, glyphs_evaluation, episodes=1, progress=False, n_query=1),
            glyph_data(glyphs_evaluation))


def test_metric_evaluations(glyphs_evaluation):
    model = metric.make_model("proto", hidden=4)
    checked([model], lambda: metric.episode_accuracies(model, glyphs_evaluation, 3, 1, n_query=1, episodes=1),
            glyph_data(glyphs_evaluation))
    checked([model], lambda: metric.embedding_2d(model, glyphs_evaluation, 3, 1, n_query=1),
            glyph_data(glyphs_evaluation))


def test_gan_augmentation_evaluations(glyphs_evaluation):
    from metakit.gan import augmentation
    from metakit.metric.protonet import PrototypicalNetwork
    generator = dagan.DAGANGenerator(hidden=4)
    pretrained = PrototypicalNetwork(metakit.Conv4(hidden=4)).eval()
    data = glyph_data(glyphs_evaluation)
    checked([generator, pretrained], lambda: augmentation.paired_evaluation(
        generator, glyphs_evaluation, n_way=2, n_query=1, episodes=2, n_gen=1, pretrained=pretrained, check=False,
        progress=False, plain_steps=1, head_steps=1), data)
    checked([generator, pretrained], lambda: augmentation.conditioning(generator, glyphs_evaluation, n_chars=2,
                                                                       n_samples=1, embed=pretrained.backbone), data)
    checked([generator, pretrained], lambda: augmentation.generated_only_accuracy(
        generator, glyphs_evaluation, n_way=2, n_gen=1, episodes=1, pretrained=pretrained, n_query=1), data)
    checked([generator], lambda: augmentation.diversity(generator, glyphs_evaluation, n_chars=2, n_samples=2), data)


def test_nme_probe(glyphs_background):
    learner = nme.make_nme_learner("maml", hidden=4)
    for shuffle in ("none", "inter"):
        def step():   # the sampler made where the learner is (checked() may have moved it)
            sampler = nme.NMESampler(glyphs_background, 3, 1, 1, shuffle=shuffle,
                                     device=next(learner.parameters()).device)
            nme.probe(learner, sampler, episodes=1, zero_steps=True)
        checked([learner], step, glyph_data(glyphs_background))


def test_learned_augmentation_evaluation(glyphs_evaluation):
    from metakit.compare import compare
    alg = learned.make_augmented("learned", hidden=4)
    checked([alg], lambda: compare({"learned": alg}, {"glyphs": glyphs_evaluation},
                                   {"s": dict(n_way=3, k_shot=1, n_query=1)}, episodes=1, progress=False),
            glyph_data(glyphs_evaluation))


def test_continual_stream_and_online_evaluation(glyphs_evaluation):
    tasks = stream.glyph_stream(glyphs_evaluation, n_tasks=2, n_classes=3, train_per_class=2)
    learner = methods.make_strategy("gem", stream.mlp(3, hidden=8), memory_per_task=2)
    data = [t for task in tasks for t in (task.x_train, task.y_train, task.x_test, task.y_test)]
    checked([learner], lambda: stream.run_stream(learner, tasks, progress=False), data)
    model = oml.OnlineLearner(glyphs_evaluation.num_classes, width=4)
    checked([model], lambda: oml.stream_accuracy(model.features, glyphs_evaluation, n_classes=2, train_per_class=2),
            glyph_data(glyphs_evaluation))


def test_transfer_fine_tuning_curve(glyphs_evaluation):
    from metakit.transfer import experiments as transfer
    backbone = metakit.Conv4(hidden=4)
    reference = metric.make_model("proto", hidden=4)
    checked([backbone, reference], lambda: transfer.finetune_curve(backbone, glyphs_evaluation, "cosine", 3, 1, steps=2,
                                                                   lr=0.01, layers="head", episodes=1,
                                                                   references={"proto": reference}),
            glyph_data(glyphs_evaluation))


def test_column_prototypes_evaluation():
    from metakit.metadata import experiments as metadata
    from metakit.metadata import library
    _, held_out = columns.split_datasets(columns_per_type=6)
    model = encoder.ColumnPrototypes()
    checked([model], lambda: metadata.compare_methods({"proto": model}, held_out, shots=(1,), n_way=3, n_query=1,
                                                      episodes=1, progress=False))
    checked([model], lambda: metadata.episode_predictions({"proto": model}, held_out, 3, 1))
    checked([model], lambda: library.TypeLibrary(model, columns.HELD_OUT_TYPES[:2], k_shot=2).predict(["a@b.c"]))


def test_a_result_brought_back_with_cpu_counts_as_moved_off_the_device():
    model = torch.nn.Linear(3, 2)
    with DeviceCheck(model) as check:
        out = model(torch.ones(4, 3).to("cpu")).cpu()       # on a CPU machine, .cpu() is the tensor itself
        out + torch.zeros(2)                               # fine on a GPU too: both on the CPU
        model.weight.cpu() @ torch.ones(3, 1, device="cpu")  # the model's own tensors stay placed
    assert check.problems == []
