"""Notebook 05's figures and controls: live GAN curves with a sample grid, a character's generated
variations, and a Run button that re-runs the paired augmented evaluation."""

from __future__ import annotations

import ipywidgets as W
import torch
from IPython.display import display
from matplotlib.figure import Figure

from ..widgets import Explorer, RunPanel, figure_png
from .augmentation import NAMES, augmentation_run
from .dcgan import dataset_images


def _grid(images: torch.Tensor, cols: int) -> torch.Tensor:
    """(N, 1, 28, 28) -> one (rows*28, cols*28) picture, blank cells at the end."""
    n = len(images)
    rows = -(-n // cols)
    pad = torch.zeros(rows * cols - n, *images.shape[1:])
    tiles = torch.cat([images.detach().cpu(), pad]).view(rows, cols, 28, 28)
    return tiles.permute(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def _running_mean(values, width: int = 25):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - width] if i >= width else 0.0)
        out.append(total / min(i + 1, width))
    return out


def gan_progress_figure(history: dict, samples: torch.Tensor, title: str = "DCGAN"):
    """Left: the discriminator's and generator's losses per step (running mean of 25); right: a
    grid of samples (ink dark on white, as the glyphs are drawn)."""
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    ax, ax_img = fig.subplots(1, 2)
    steps = range(1, len(history["d_loss"]) + 1)
    if history["d_loss"]:
        ax.plot(steps, _running_mean(history["d_loss"]), label="discriminator: -log D(x) - log(1 - D(G(z)))")
        ax.plot(steps, _running_mean(history["g_loss"]), label="generator: -log D(G(z))")
    ax.axhline(2 * 0.6931, color="gray", ls=":", lw=1, label="D = 1/2 everywhere (2 log 2, log 2)")
    ax.axhline(0.6931, color="gray", ls=":", lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"{title}: {len(history['d_loss'])} steps, {history.get('clock_seconds', 0.0):.0f} CPU-s", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax_img.imshow(1 - _grid(samples, 8).numpy(), cmap="gray", vmin=0, vmax=1)
    ax_img.set_axis_off()
    ax_img.set_title("samples from fixed noise", fontsize=9)
    return fig


class LiveGANPlot:
    """A picture of :func:`gan_progress_figure` that ``update(history)`` redraws, sampling the
    generator at fixed noise: pass ``update`` as the training loop's ``callback``."""

    def __init__(self, generator, n_samples: int = 32, seed: int = 0, title: str = "DCGAN"):
        self.generator, self.title = generator, title
        self.z = torch.randn(n_samples, generator.z_dim, generator=torch.Generator().manual_seed(seed))
        self.image = W.Image(format="png")
        self.updates = 0

    def samples(self) -> torch.Tensor:
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            out = self.generator(self.z.to(next(self.generator.parameters()).device))
        self.generator.train(was_training)
        return out.cpu()

    def figure(self, history: dict):
        return gan_progress_figure(history, self.samples(), self.title)

    def update(self, history: dict) -> None:
        self.image.value = figure_png(self.figure(history))
        self.updates += 1

    def _ipython_display_(self):
        display(self.image)


def variations_figure(dagan, dataset, character: int = 0, noise_scale: float = 1.0, n_samples: int = 8,
                      seed: int = 0):
    """Top row: one drawing of ``character`` and ``n_samples`` variations the DAGAN makes of it.
    Bottom row: other real drawings of the same character, for comparison."""
    if isinstance(character, bool) or not isinstance(character, int) or not 0 <= character < dataset.num_classes:
        raise ValueError(f"{dataset.name} has characters 0..{dataset.num_classes - 1}; character={character!r} "
                         "was asked.")
    rows = dataset.labels_to_indices[character]
    real = dataset_images(dataset)[torch.tensor(rows)]                                    # (M, 1, 28, 28)
    fake = dagan.generate(real[:1], n_samples, noise_scale, generator=torch.Generator().manual_seed(seed))[0].cpu()
    others = real[1:n_samples + 1]
    fig = Figure(figsize=(1.0 * (n_samples + 1) + 0.6, 2.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1)
    for sub, images, label in ((top, torch.cat([real[:1], fake]), "input, then generated variations"),
                               (bottom, others, "other real drawings of the same character")):
        axes = sub.subplots(1, n_samples + 1)
        for i, ax in enumerate(axes):
            ax.set_axis_off()
            if i < len(images):
                ax.imshow(1 - images[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        if sub is top:
            axes[0].set_title("input", fontsize=8, color="tab:red")
        sub.suptitle(label, fontsize=9)
    fig.suptitle(f"{dataset.class_names[character]} (character {character}), noise scale {noise_scale:g}",
                 fontsize=10)
    return fig


def variations_explorer(dagan, dataset) -> Explorer:
    """Sliders for the character, the noise scale and the number of samples over :func:`variations_figure`."""
    style = {"description_width": "initial"}
    controls = {
        "character": W.IntSlider(0, min=0, max=dataset.num_classes - 1, description="character", style=style),
        "noise_scale": W.FloatSlider(1.0, min=0.0, max=3.0, step=0.1, description="noise scale", style=style),
        "n_samples": W.IntSlider(8, min=1, max=12, description="samples", style=style),
    }
    return Explorer(variations_figure, controls, dagan=dagan, dataset=dataset)


def difference_figure(summary: dict, title: str = ""):
    """One bar per learner: accuracy with GAN augmentation minus without, with its paired 95% interval."""
    fig = Figure(figsize=(7, 2.8), layout="constrained")
    ax = fig.subplots()
    names = [NAMES.get(m, m) for m in summary]
    diffs = [100 * r["diff"] for r in summary.values()]
    cis = [100 * r["diff_ci"] for r in summary.values()]
    colors = ["tab:green" if d - c > 0 else "tab:red" if d + c < 0 else "tab:gray" for d, c in zip(diffs, cis)]
    ax.barh(names, diffs, xerr=cis, color=colors, capsize=4)
    ax.axvline(0, color="k", lw=1)
    ax.invert_yaxis()
    ax.set_xlabel("accuracy with GAN images minus without (points, 95% interval, paired)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="x")
    return fig


def summary_text(summary: dict) -> str:
    """One line per learner for the message area: accuracy without and with GAN images, and the difference."""
    return "; ".join(f"{NAMES.get(m, m)}: {100 * r['base']:.1f}% → {100 * r['aug']:.1f}% "
                     f"({100 * r['diff']:+.1f} ± {100 * r['diff_ci']:.1f} points)" for m, r in summary.items())


class AugmentationRunner(RunPanel):
    """Sliders for the generated images per real shot, the noise scale and the episodes' ways and
    shots; Run re-runs the paired evaluation (with a progress bar) and shows the new differences.
    Errors, including a collapsed generator, become a message.

    Args:
        dagan: a generator, or ``{name: generator}`` to choose from in a dropdown (the first is
            selected).
    """

    def __init__(self, dagan, dataset, pretrained, episodes: int = 100):
        self.generators = dict(dagan) if isinstance(dagan, dict) else {"generator": dagan}
        self.dataset, self.pretrained, self.episodes = dataset, pretrained, episodes
        style = {"description_width": "initial"}
        controls = {
            "n_gen": W.IntSlider(5, min=1, max=10, description="generated per real shot", style=style),
            "noise_scale": W.FloatSlider(1.0, min=0.0, max=3.0, step=0.1, description="noise scale", style=style),
            "n_way": W.IntSlider(5, min=2, max=20, description="n_way"),
            "k_shot": W.Dropdown(options=[1, 5], value=1, description="k_shot"),
        }
        rows = [["n_gen", "noise_scale"], ["n_way", "k_shot"]]
        if len(self.generators) > 1:
            controls["generator"] = W.Dropdown(options=list(self.generators), description="generator")
            rows[0].insert(0, "generator")
        super().__init__(controls, rows=rows)

    @property
    def dagan(self):
        """The generator selected now."""
        return self.generators[self.controls["generator"].value if "generator" in self.controls else "generator"]

    def run(self):
        """Evaluate with the current values; returns the summary, or None after showing the error."""
        v = self.values
        summary = self.call(augmentation_run, dagan=self.dagan, dataset=self.dataset, pretrained=self.pretrained,
                            episodes=self.episodes, **{k: x for k, x in v.items() if k != "generator"})
        if summary is None:
            return None
        self.message.value = summary_text(summary)
        self.image.value = figure_png(difference_figure(
            summary, f"{v.get('generator', '') + ': ' if len(self.generators) > 1 else ''}"
                     f"{v['n_way']}-way {v['k_shot']}-shot, {v['n_gen']} generated per real shot, "
                     f"noise {v['noise_scale']:g}, "
                     f"{self.episodes} episodes"))
        return summary
