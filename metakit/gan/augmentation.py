"""Few-shot learning with and without DAGAN augmentation, on the same episodes (paired), plus the
sample-quality figures and the collapse check that guard the generator's use.

Three learners, each given the support set alone ("base") or the support set plus ``n_gen``
generated variations of every support image ("aug"):

- ``plain``: a small CNN trained from scratch on the support set (the DAGAN paper's low-data
  classifier, Antoniou et al., 2017, Sec. 5);
- ``finetune``: the committed prototypical network's Conv-4 backbone (``proto-5way-60000img.pt``,
  notebook 04) frozen, with a new linear head trained on the support set;
- ``proto``: that prototypical network itself, the generated images joining the support set
  before the prototypes are computed.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..checkpoints import CHECKPOINTS, load_weights
from ..episodes import EpisodeSampler, check_episode
from ..metric.protonet import PrototypicalNetwork
from ..models import Conv4
from ..runtime import seed_everything
from ..stats import format_ci, mean_ci
from ..training import model_device
from . import dagan as dagan_module
from . import dcgan
from .dcgan import dataset_images

METHODS = ("plain", "finetune", "proto")
NAMES = {"plain": "(a) plain CNN from scratch", "finetune": "(b) pretrained Conv-4, new head",
         "proto": "(c) prototypical network"}
PRETRAINED = "proto-5way-60000img.pt"
SETTINGS = {"5w1s": 1, "5w5s": 5}  # the comparison's settings: name -> k_shot, 5-way
#: the DAGAN paper's plain low-data Omniglot classifier without / with its generated images (Antoniou et al. 2017)
REFERENCE = (0.69, 0.82)
# Below these, generated variations are "all alike": their spread is under a tenth of what real
# drawings of one character show (within), or variations of different characters are closer
# than a tenth of what real different characters are (between).
COLLAPSE_WITHIN, COLLAPSE_BETWEEN = 0.1, 0.1
_SAMPLERS: dict = {}


def episode_sampler(dataset, n_way: int, k_shot: int, n_query: int) -> EpisodeSampler:
    """An :class:`~metakit.episodes.EpisodeSampler`, built once per dataset and setting (building
    learn2learn's Taskset over hundreds of classes takes seconds; drawing from it does not, and the
    episodes drawn depend only on the seed)."""
    key = (id(dataset), n_way, k_shot, n_query)
    if key not in _SAMPLERS or _SAMPLERS[key][0] is not dataset:
        _SAMPLERS[key] = (dataset, EpisodeSampler(dataset, n_way, k_shot, n_query))
    return _SAMPLERS[key][1]


def load_pretrained(path=PRETRAINED, device=None) -> PrototypicalNetwork:
    """The prototypical network of notebook 04 (Conv-4 trained on glyph background episodes), in eval
    mode, on ``device`` (None: the CPU)."""
    model = PrototypicalNetwork(Conv4())
    load_weights(model, path)
    return model.to(device).eval()


def plain_cnn(n_way: int, hidden: int = 8) -> nn.Module:
    """Two conv-ReLU-pool blocks and a linear layer: the from-scratch learner (a)."""
    return nn.Sequential(
        nn.Conv2d(1, hidden, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(hidden, 2 * hidden, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * hidden * 49, n_way))


def fit_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float,
                   batch_size: int = 50) -> nn.Module:
    """Adam on cross-entropy, ``steps`` steps on batches of at most ``batch_size`` examples (the
    whole set when it is smaller), so augmented sets cost no more steps than plain ones;
    ``FloatingPointError`` if the loss stops being finite."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        batch = torch.randperm(len(x))[:batch_size] if len(x) > batch_size else slice(None)
        loss = F.cross_entropy(model(x[batch]), y[batch])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"The classifier's loss became {loss.item()} with lr={lr:g}; lower it.")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


def augment(dagan, x_support, y_support, n_gen: int, noise_scale: float = 1.0, seed: int = 0):
    """The support set plus ``n_gen`` generated variations of each image, labelled as their source.

    Returns:
        x (n_support * (1 + n_gen), 1, 28, 28) and y (n_support * (1 + n_gen),), real images first.
    """
    if n_gen == 0:
        return x_support, y_support
    g = torch.Generator().manual_seed(seed)
    fake = dagan.generate(x_support, n_gen, noise_scale, generator=g).flatten(0, 1)  # (n_support*n_gen, 1, 28, 28)
    return torch.cat([x_support, fake]), torch.cat([y_support, y_support.repeat_interleave(n_gen)])


class HandSet(nn.Module):
    """The usual augmentation in a generator's place: random rotation, scaling, shear, shift and pen
    width (:class:`metakit.meta_augmentation.Augmentation` with fixed magnitudes, by default notebook
    06's hand-set :data:`~metakit.meta_augmentation.learned.HAND_TUNED`, chosen by eye on glyphs).

    It has the generator's :meth:`generate`, so :func:`augment`, the episode comparisons and the
    DAGAN paper's protocol (:mod:`metakit.gan.low_data`) take it as they take a DAGAN: the fair
    baseline for "do *generated* images help more than simple deformations?".
    """

    def __init__(self, magnitudes: dict | None = None):
        super().__init__()
        from ..meta_augmentation.learned import HAND_TUNED, Augmentation
        self.augmentation = Augmentation({**HAND_TUNED, **(magnitudes or {})}, learnable=False)

    @torch.no_grad()
    def generate(self, x: torch.Tensor, n_samples: int, noise_scale: float = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``n_samples`` deformed copies of each image, ``noise_scale`` scaling every magnitude (0: copies).

        Args:
            x: (N, 1, 28, 28) images, ink 1 on 0.
        Returns:
            (N, n_samples, 1, 28, 28) deformed copies, on ``x``'s device.
        """
        dagan_module.check_generate(n_samples, noise_scale)
        xs = x.repeat_interleave(n_samples, 0)                  # (N*n_samples, 1, 28, 28)
        draws = self.augmentation(xs.cpu(), strength=noise_scale, generator=generator)  # a CPU generator's draws
        return draws.to(x.device).view(len(x), n_samples, *x.shape[1:])


@torch.no_grad()
def _accuracy(logits, y):
    return (logits.argmax(1) == y).float().mean().item()


def episode_accuracies(x, y, x_query, y_query, n_way: int, pretrained: PrototypicalNetwork, seed: int,
                       methods=METHODS, plain_steps: int = 40, plain_lr: float = 3e-3, head_steps: int = 100,
                       head_lr: float = 0.05) -> dict:
    """Query accuracy of each learner given the labelled images ``x, y`` (support, maybe augmented).

    ``seed`` fixes the plain CNN's and the head's initial weights, so that "base" and "aug" runs of
    one episode differ only in their training images.
    """
    out = {}
    if "plain" in methods:
        torch.manual_seed(seed)
        model = fit_classifier(plain_cnn(n_way).to(x.device), x, y, plain_steps, plain_lr)
        with torch.no_grad():
            out["plain"] = _accuracy(model(x_query), y_query)
    if "finetune" in methods or "proto" in methods:
        with torch.no_grad():
            z, z_query = pretrained.backbone(x), pretrained.backbone(x_query)  # (n, 64), (n_query_total, 64)
        if "finetune" in methods:
            torch.manual_seed(seed)
            head = fit_classifier(nn.Linear(z.shape[1], n_way).to(z.device), z, y, head_steps, head_lr)
            with torch.no_grad():
                out["finetune"] = _accuracy(head(z_query), y_query)
        if "proto" in methods:
            with torch.no_grad():
                pretrained.fit_support(x, y)
                out["proto"] = _accuracy(pretrained(x_query), y_query)
    return out


def paired_evaluation(dagan, dataset, n_way: int = 5, k_shot: int = 1, n_query: int = 15, episodes: int = 600,
                      n_gen: int = 5, noise_scale: float = 1.0, pretrained: PrototypicalNetwork | None = None,
                      methods=METHODS, seed: int = 0, progress: bool = True, check: bool = True, **fit) -> dict:
    """Every learner with and without augmentation on the same ``episodes`` episodes of ``dataset``.

    Args:
        dagan: a trained :class:`~metakit.gan.dagan.DAGANGenerator`; refused if it has collapsed. The
            episodes are computed on its device (``pretrained`` must be there too).
        n_gen: generated images per real support image.
        check: run :func:`check_collapse` first and refuse a collapsed generator (``ValueError``).
        **fit: passed to :func:`episode_accuracies` (training steps and learning rates).
    Returns:
        ``{method: {"base": tensor, "aug": tensor}}`` of per-episode accuracies (float64), and
        under ``"summary"`` :func:`summarize`'s table.
    """
    if isinstance(n_gen, bool) or not isinstance(n_gen, int) or n_gen < 1:
        raise ValueError(f"n_gen (generated images per real shot) must be a positive whole number; got {n_gen!r}.")
    if episodes < 2:
        raise ValueError(f"episodes must be at least 2 for an interval; got {episodes!r}.")
    device = model_device(dagan)
    pretrained = pretrained if pretrained is not None else load_pretrained(device=device)
    if check:
        assert_not_collapsed(dagan, dataset, noise_scale=noise_scale)
    sampler = episode_sampler(dataset, n_way, k_shot, n_query)
    seed_everything(seed)
    accs = {m: {"base": [], "aug": []} for m in methods}
    for e in tqdm(range(episodes), desc=f"{n_way}-way {k_shot}-shot episodes", disable=not progress):
        x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
        x_aug, y_aug = augment(dagan, x_support, y_support, n_gen, noise_scale, seed=seed * 1_000_003 + e)
        for name, (x, y) in (("base", (x_support, y_support)), ("aug", (x_aug, y_aug))):
            for m, a in episode_accuracies(x, y, x_query, y_query, n_way, pretrained, seed * 1_000_003 + e,
                                           methods, **fit).items():
                accs[m][name].append(a)
    result = {m: {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()} for m, d in accs.items()}
    result["summary"] = summarize(result)
    return result


def paired_summary(base: torch.Tensor, aug: torch.Tensor) -> dict:
    """``{base, base_ci, aug, aug_ci, diff, diff_ci}`` of paired accuracies (per episode, or per
    run); the difference's interval comes from the paired differences, not from the two separate
    intervals."""
    (b, bci), (a, aci), (df, dci) = mean_ci(base), mean_ci(aug), mean_ci(aug - base)
    return {"base": b, "base_ci": bci, "aug": a, "aug_ci": aci, "diff": df, "diff_ci": dci}


def summarize(result: dict) -> dict:
    """``{method: paired_summary}`` of :func:`paired_evaluation`'s per-episode accuracies."""
    return {m: paired_summary(d["base"], d["aug"]) for m, d in result.items() if m != "summary"}


def comparison(dagan, dataset, settings: dict = SETTINGS, episodes: int = 600, **kwargs) -> dict:
    """Notebook 05's table: :func:`paired_evaluation` in every 5-way setting, on the same seed.

    Args:
        settings: name -> k_shot.
        **kwargs: the rest of :func:`paired_evaluation`'s arguments (``n_gen``, ``pretrained``, ...).
    Returns:
        ``{setting: summary}``, what :func:`format_table` prints.
    """
    return {name: paired_evaluation(dagan, dataset, n_way=5, k_shot=k_shot, episodes=episodes, **kwargs)["summary"]
            for name, k_shot in settings.items()}


def augmentation_run(dagan, dataset, pretrained, n_gen: int = 5, noise_scale: float = 1.0, k_shot: int = 1,
                     episodes: int = 100, seed: int = 0, progress: bool = True, n_way: int = 5, **fit) -> dict:
    """Notebook 05's Run button: :func:`paired_evaluation` on ``n_way``-way ``k_shot``-shot episodes;
    returns its summary. A collapsed generator, or an episode the dataset cannot supply, raises
    ``ValueError``. ``fit`` goes to :func:`episode_accuracies` (training steps, rates)."""
    if isinstance(n_way, int) and not isinstance(n_way, bool) and n_way < 2:
        raise ValueError(f"n_way must be at least 2 (one class has nothing to tell apart); got {n_way!r}.")
    check_episode(dataset, n_way, k_shot, 15)
    result = paired_evaluation(dagan, dataset, n_way=n_way, k_shot=k_shot, episodes=episodes, n_gen=n_gen,
                               noise_scale=noise_scale, pretrained=pretrained, seed=seed, progress=progress, **fit)
    return result["summary"]


def format_table(summaries: dict) -> str:
    """``summaries``: setting name -> :func:`summarize` output. One row per (setting, method)."""
    lines = [f"{'setting':<6} {'method':<32} {'without GAN':>15} {'with GAN':>15} {'difference (paired)':>21}"]
    for setting, table in summaries.items():
        for m, r in table.items():
            lines.append(f"{setting:<6} {NAMES.get(m, m):<32} {format_ci(r['base'], r['base_ci'])}  "
                         f"{format_ci(r['aug'], r['aug_ci'])}  {100 * r['diff']:+8.2f}±{100 * r['diff_ci']:.2f} pts")
    return "\n".join(lines)


@torch.no_grad()
def _mean_pairwise(x: torch.Tensor) -> torch.Tensor:
    """(G, S, 1, 28, 28) -> (G,) mean Euclidean pixel distance between the S images of each group."""
    flat = x.flatten(2)                                     # (G, S, 784)
    d = torch.cdist(flat, flat)                             # (G, S, S)
    s = flat.shape[1]
    return d.sum((1, 2)) / (s * (s - 1))


@torch.no_grad()
def diversity(dagan, dataset, n_chars: int = 50, n_samples: int = 8, noise_scale: float = 1.0, seed: int = 0) -> dict:
    """How different the generated variations are, measured against real drawings (pixel distance).

    Returns:
        ``within``: mean distance between variations of one image, over the mean distance between
        real drawings of one character (1.0: as varied as real drawings; near 0: all alike);
        ``between``: mean distance between variations of different characters, over the mean
        distance between real drawings of different characters (near 0: every input gives the
        same picture); and the four raw distances.
    """
    g = torch.Generator().manual_seed(seed)
    images = dataset_images(dataset)
    classes = torch.randperm(dataset.num_classes, generator=g)[: min(n_chars, dataset.num_classes)]
    rows = torch.stack([torch.tensor(dataset.labels_to_indices[int(c)][:n_samples]) for c in classes])
    real = images[rows]                                     # (n_chars, n_samples, 1, 28, 28)
    fake = dagan.generate(real[:, 0], n_samples, noise_scale, generator=g)  # (n_chars, n_samples, 1, 28, 28)
    real_within, fake_within = _mean_pairwise(real).mean().item(), _mean_pairwise(fake).mean().item()
    real_between = _mean_pairwise(real[:, 0][None]).item()  # first drawings of different characters
    fake_between = _mean_pairwise(fake[:, 0][None]).item()
    return {"within": fake_within / real_within, "between": fake_between / real_between,
            "fake_within": fake_within, "real_within": real_within,
            "fake_between": fake_between, "real_between": real_between}


@torch.no_grad()
def conditioning(dagan, dataset, n_chars: int = 20, n_samples: int = 4, embed=None, noise_scale: float = 1.0,
                 seed: int = 0) -> dict:
    """Does the generator draw *its input's* character? For ``n_chars`` characters (one drawing
    each), the mean embedding of the variations is compared with the embeddings of all the inputs.

    Args:
        embed: a fixed map (B, 1, 28, 28) -> (B, D); default the committed prototypical network's
            backbone; ``"pixels"`` compares raw pixels.
    Returns:
        ``closer`` (the fraction of characters whose variations are closer to their own input than
        to the other inputs on average), ``nearest_own`` (the fraction whose nearest input is
        their own), ``own`` and ``others`` (mean distance to the own input and to the other inputs).
    """
    device = model_device(dagan)
    if embed is None:
        embed = load_pretrained(device=device).backbone
    elif embed == "pixels":
        embed = lambda x: x.flatten(1)  # noqa: E731
    step = max(dataset.num_classes // n_chars, 1)
    rows = torch.tensor([dataset.labels_to_indices[c][0] for c in range(0, step * n_chars, step)])
    x = dataset_images(dataset)[rows].to(device)                                    # (n_chars, 1, 28, 28)
    v = dagan.generate(x, n_samples, noise_scale, generator=torch.Generator().manual_seed(seed))
    zv = embed(v.flatten(0, 1)).view(len(x), n_samples, -1).mean(1)                 # (n_chars, D)
    d = torch.cdist(zv, embed(x))                                                   # (n_chars, n_chars)
    own = d.diagonal()
    others = (d.sum(1) - own) / (len(x) - 1)
    return {"closer": (own < others).float().mean().item(),
            "nearest_own": (d.argmin(1) == torch.arange(len(x), device=d.device)).float().mean().item(),
            "own": own.mean().item(), "others": others.mean().item()}


def check_collapse(dagan, dataset, noise_scale: float = 1.0, within: float = COLLAPSE_WITHIN,
                   between: float = COLLAPSE_BETWEEN, **kwargs) -> dict:
    """:func:`diversity` plus a verdict: ``collapsed`` and a ``message`` a learner can read."""
    d = diversity(dagan, dataset, noise_scale=noise_scale, **kwargs)
    problems = []
    if d["within"] < within:
        problems.append(f"variations of one image are nearly identical (their spread is {d['within']:.3f} of real "
                        f"drawings', below {within})")
    if d["between"] < between:
        problems.append(f"different characters give the same picture (spread across characters {d['between']:.3f} "
                        f"of real, below {between})")
    d["collapsed"] = bool(problems)
    d["message"] = ("The generator has collapsed: " + "; ".join(problems) + ". Its images would add nothing, so "
                    "they are not used. Raise the noise scale or retrain the generator.") if problems else ""
    return d


def assert_not_collapsed(dagan, dataset, noise_scale: float = 1.0, **kwargs) -> dict:
    """:func:`check_collapse`, raising ``ValueError`` with its message when the generator has collapsed."""
    d = check_collapse(dagan, dataset, noise_scale=noise_scale, **kwargs)
    if d["collapsed"]:
        raise ValueError(d["message"])
    return d


@torch.no_grad()
def generated_only_accuracy(dagan, dataset, n_way: int = 5, n_gen: int = 5, episodes: int = 200,
                            noise_scale: float = 1.0, pretrained: PrototypicalNetwork | None = None,
                            n_query: int = 15, seed: int = 0) -> dict:
    """Sample quality a learner can read: nearest-prototype accuracy on real queries when the
    prototypes come only from generated images (``n_gen`` variations of one real drawing per class,
    the drawing itself left out), beside the same classifier built on the one real drawing.

    Returns:
        ``{"generated": (mean, ci95), "real": (mean, ci95), "chance": 1 / n_way}``; computed on the
        generator's device (``pretrained`` must be there too).
    """
    device = model_device(dagan)
    pretrained = pretrained if pretrained is not None else load_pretrained(device=device)
    sampler = episode_sampler(dataset, n_way, 1, n_query)
    seed_everything(seed)
    gen, real = [], []
    for e in range(episodes):
        x_support, y_support, x_query, y_query = (t.to(device) for t in sampler.sample())
        fake = dagan.generate(x_support, n_gen, noise_scale, generator=torch.Generator().manual_seed(seed + e))
        pretrained.fit_support(fake.flatten(0, 1), y_support.repeat_interleave(n_gen))
        gen.append(_accuracy(pretrained(x_query), y_query))
        pretrained.fit_support(x_support, y_support)
        real.append(_accuracy(pretrained(x_query), y_query))
    return {"generated": mean_ci(torch.tensor(gen)), "real": mean_ci(torch.tensor(real)), "chance": 1 / n_way}


def gan_experiment(background, evaluation, dagan_seconds: float = dagan_module.CPU_SECONDS,
                   dcgan_seconds: float = dcgan.CPU_SECONDS, episodes: int = 600, quality_episodes: int = 300,
                   n_gen: int = 5, noise_scale: float = 1.0, folder=None, retrain: bool = True,
                   progress: bool = True, seed: int = 0, device=None) -> dict:
    """The chapter end to end (``benchmarks/gan_augmentation.py``), on ``device`` (None: the CPU): the
    DAGAN and the DCGAN trained on the background alphabets for CPU-second budgets (``time.process_time``)
    and saved in ``folder`` (default ``data/checkpoints``), the DAGAN's sample quality on the evaluation
    alphabets, which it never saw, and, unless it has collapsed, :func:`comparison`.

    Returns:
        ``{"dagan", "dcgan"}``: each generator's training record; ``"quality"``: :func:`check_collapse`;
        ``"generated_only"``: :func:`generated_only_accuracy`; ``"summaries"``: :func:`comparison`'s
        (None for a collapsed generator); ``"seconds"``: CPU-seconds of each comparison setting.
    """
    folder = Path(folder) if folder is not None else CHECKPOINTS
    generator, da = dagan_module.train_or_load_dagan(background, path=folder / dagan_module.CHECKPOINT,
                                                     seconds=dagan_seconds, retrain=retrain, progress=progress,
                                                     seed=seed, device=device)
    _, dc = dcgan.train_or_load_dcgan(dataset_images(background), path=folder / dcgan.CHECKPOINT,
                                      seconds=dcgan_seconds, retrain=retrain, progress=progress, seed=seed,
                                      device=device)
    pretrained = load_pretrained(device=device)
    out = {"dagan": da, "dcgan": dc, "quality": check_collapse(generator, evaluation, noise_scale=noise_scale),
           "generated_only": generated_only_accuracy(generator, evaluation, n_gen=n_gen, episodes=quality_episodes,
                                                     noise_scale=noise_scale, pretrained=pretrained, seed=seed),
           "summaries": None, "seconds": {}}
    if out["quality"]["collapsed"]:
        return out
    out["summaries"] = {}
    for name, k_shot in SETTINGS.items():
        start = time.process_time()
        out["summaries"] |= comparison(generator, evaluation, {name: k_shot}, episodes, n_gen=n_gen,
                                       noise_scale=noise_scale, pretrained=pretrained, seed=seed, progress=progress,
                                       check=False)  # checked above
        out["seconds"][name] = time.process_time() - start
    return out


def format_quality(quality: dict, generated_only: dict, n_gen: int) -> str:
    """:func:`check_collapse`'s and :func:`generated_only_accuracy`'s figures in three lines."""
    q, acc = quality, generated_only
    return "\n".join([
        f"  diversity: variations of one drawing spread {q['within']:.3f} as far as real drawings of one "
        f"character ({q['fake_within']:.2f} vs {q['real_within']:.2f} pixels L2); across characters "
        f"{q['between']:.3f} of real",
        f"  collapsed: {q['collapsed']}" + (f" ({q['message']})" if q["collapsed"] else ""),
        f"  5-way nearest-prototype accuracy on real queries, prototypes from {n_gen} generated images only: "
        f"{format_ci(*acc['generated'])}; from the one real drawing: {format_ci(*acc['real'])}; "
        f"chance {acc['chance']:.2f}"])


def format_reference(plain: dict) -> str:
    """The plain classifier's gain beside the DAGAN paper's (:data:`REFERENCE`)."""
    base, aug = REFERENCE
    return "\n".join([
        f"{'plain classifier':<34} {'without':>8} {'with':>8} {'difference':>11}",
        f"{'DAGAN (Antoniou et al. 2017)':<34} {base:8.4f} {aug:8.4f} {100 * (aug - base):+8.2f} pts"
        "   (Omniglot, their low-data setting)",
        f"{'ours, glyphs 5-way 1-shot':<34} {plain['base']:8.4f} {plain['aug']:8.4f} {100 * plain['diff']:+8.2f} pts"
        f"   ({plain['diff'] / (aug - base):.2f} of the paper's gain)"])
