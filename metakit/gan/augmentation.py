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

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..checkpoints import load_weights
from ..episodes import EpisodeSampler
from ..metric.protonet import PrototypicalNetwork
from ..models import Conv4
from ..runtime import seed_everything
from ..stats import mean_ci as interval
from .dcgan import dataset_images

METHODS = ("plain", "finetune", "proto")
NAMES = {"plain": "(a) plain CNN from scratch", "finetune": "(b) pretrained Conv-4, new head",
         "proto": "(c) prototypical network"}
PRETRAINED = "proto-5way-60000img.pt"
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


def load_pretrained(path=PRETRAINED) -> PrototypicalNetwork:
    """The prototypical network of notebook 04 (Conv-4 trained on glyph background episodes), in eval mode."""
    model = PrototypicalNetwork(Conv4())
    load_weights(model, path)
    return model.eval()


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
        model = fit_classifier(plain_cnn(n_way), x, y, plain_steps, plain_lr)
        with torch.no_grad():
            out["plain"] = _accuracy(model(x_query), y_query)
    if "finetune" in methods or "proto" in methods:
        with torch.no_grad():
            z, z_query = pretrained.backbone(x), pretrained.backbone(x_query)  # (n, 64), (n_query_total, 64)
        if "finetune" in methods:
            torch.manual_seed(seed)
            head = fit_classifier(nn.Linear(z.shape[1], n_way), z, y, head_steps, head_lr)
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
        dagan: a trained :class:`~metakit.gan.dagan.DAGANGenerator`; refused if it has collapsed.
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
    pretrained = pretrained if pretrained is not None else load_pretrained()
    if check:
        assert_not_collapsed(dagan, dataset, noise_scale=noise_scale)
    sampler = episode_sampler(dataset, n_way, k_shot, n_query)
    seed_everything(seed)
    accs = {m: {"base": [], "aug": []} for m in methods}
    for e in tqdm(range(episodes), desc=f"{n_way}-way {k_shot}-shot episodes", disable=not progress):
        x_support, y_support, x_query, y_query = sampler.sample()
        x_aug, y_aug = augment(dagan, x_support, y_support, n_gen, noise_scale, seed=seed * 1_000_003 + e)
        for name, (x, y) in (("base", (x_support, y_support)), ("aug", (x_aug, y_aug))):
            for m, a in episode_accuracies(x, y, x_query, y_query, n_way, pretrained, seed * 1_000_003 + e,
                                           methods, **fit).items():
                accs[m][name].append(a)
    result = {m: {k: torch.tensor(v, dtype=torch.float64) for k, v in d.items()} for m, d in accs.items()}
    result["summary"] = summarize(result)
    return result


def summarize(result: dict) -> dict:
    """``{method: {base, base_ci, aug, aug_ci, diff, diff_ci}}``; the difference's interval comes
    from the per-episode differences (paired), not from the two separate intervals."""
    table = {}
    for m, d in result.items():
        if m == "summary":
            continue
        (b, bci), (a, aci), (df, dci) = interval(d["base"]), interval(d["aug"]), interval(d["aug"] - d["base"])
        table[m] = {"base": b, "base_ci": bci, "aug": a, "aug_ci": aci, "diff": df, "diff_ci": dci}
    return table


def format_table(summaries: dict) -> str:
    """``summaries``: setting name -> :func:`summarize` output. One row per (setting, method)."""
    lines = [f"{'setting':<6} {'method':<32} {'without GAN':>15} {'with GAN':>15} {'difference (paired)':>21}"]
    for setting, table in summaries.items():
        for m, r in table.items():
            lines.append(f"{setting:<6} {NAMES.get(m, m):<32} {r['base']:.4f}±{r['base_ci']:.4f}  "
                         f"{r['aug']:.4f}±{r['aug_ci']:.4f}  {100 * r['diff']:+8.2f}±{100 * r['diff_ci']:.2f} pts")
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
    if embed is None:
        embed = load_pretrained().backbone
    elif embed == "pixels":
        embed = lambda x: x.flatten(1)  # noqa: E731
    step = max(dataset.num_classes // n_chars, 1)
    rows = torch.tensor([dataset.labels_to_indices[c][0] for c in range(0, step * n_chars, step)])
    x = dataset_images(dataset)[rows]                                               # (n_chars, 1, 28, 28)
    v = dagan.generate(x, n_samples, noise_scale, generator=torch.Generator().manual_seed(seed))
    zv = embed(v.flatten(0, 1)).view(len(x), n_samples, -1).mean(1)                 # (n_chars, D)
    d = torch.cdist(zv, embed(x))                                                   # (n_chars, n_chars)
    own = d.diagonal()
    others = (d.sum(1) - own) / (len(x) - 1)
    return {"closer": (own < others).float().mean().item(),
            "nearest_own": (d.argmin(1) == torch.arange(len(x))).float().mean().item(),
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
        ``{"generated": (mean, ci95), "real": (mean, ci95), "chance": 1 / n_way}``.
    """
    pretrained = pretrained if pretrained is not None else load_pretrained()
    sampler = episode_sampler(dataset, n_way, 1, n_query)
    seed_everything(seed)
    gen, real = [], []
    for e in range(episodes):
        x_support, y_support, x_query, y_query = sampler.sample()
        fake = dagan.generate(x_support, n_gen, noise_scale, generator=torch.Generator().manual_seed(seed + e))
        pretrained.fit_support(fake.flatten(0, 1), y_support.repeat_interleave(n_gen))
        gen.append(_accuracy(pretrained(x_query), y_query))
        pretrained.fit_support(x_support, y_support)
        real.append(_accuracy(pretrained(x_query), y_query))
    return {"generated": interval(torch.tensor(gen)), "real": interval(torch.tensor(real)), "chance": 1 / n_way}
