"""``python -m lesson_lib demo`` (``make demo``): the whole method on a few held-out images.

For each embedded dataset with a shipped checkpoint and each mask (central square, three squares),
a few held-out images are inpainted with the Yeh et al. loss and with the proposed loss (eq. 4,
alpha 0.1, beta 0.9, eta 0.5), from the same initial codes. Writes ``build/demo.png`` (columns:
input, mask, Yeh loss, proposed, proposed + Poisson, ground truth, harmonic) and prints the metrics.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .checkpoints import available_pretrained, load_pretrained
from .config import ROOT_DIR
from .data import load_dataset
from .evaluate import HELD_OUT_SEED, MASKS, format_table, score
from .inpaint import PAPER, YEH, inpaint_with
from .poisson import harmonic_inpaint

COLUMNS = ("input", "mask", "Yeh loss", "proposed", "proposed + Poisson", "ground truth", "harmonic")
DATASETS = ("house_numbers", "toy_faces")
SCORED = ("Yeh loss", "proposed", "proposed + Poisson", "harmonic")


def demo_columns(generator, critic, images: torch.Tensor, mask: torch.Tensor, steps: int, seed: int = 0) -> dict:
    """The seven columns of the demo figure, each (N, 3, H, W) in [-1, 1].

    ``mask`` is one (H, W) mask or one per image, (N, 1, H, W): the searches are per image (the batch
    loss is a sum), so several masks share one batched search."""
    z0 = torch.randn(len(images), generator.z_dim, generator=torch.Generator().manual_seed(seed))
    yeh = inpaint_with(generator, critic, images, mask, YEH, steps=steps, z_init=z0, progress=False)
    ours = inpaint_with(generator, critic, images, mask, PAPER, steps=steps, z_init=z0, progress=False)
    m = mask.expand_as(images)
    return {"input": images * m,                     # the hole shown grey (0)
            "mask": (2 * m - 1), "Yeh loss": yeh.blended,
            "proposed": ours.overlay, "proposed + Poisson": ours.blended, "ground truth": images,
            "harmonic": harmonic_inpaint(images, mask).clamp(-1, 1)}


def demo_scores(columns: dict, truth: torch.Tensor, mask: torch.Tensor) -> dict:
    """MSE, PSNR, SSIM and hole PSNR of the inpainted columns (``SCORED``) against ``truth``."""
    return {name: score(columns[name], truth, mask) for name in SCORED}


def save_figure(panels: list[tuple[str, dict]], path: Path) -> None:
    """One block of rows per (dataset, mask), one column per entry of ``COLUMNS``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .viz import to_uint8

    rows = [(title, k, cols) for title, cols in panels for k in range(len(cols["input"]))]
    fig, axes = plt.subplots(len(rows), len(COLUMNS), figsize=(1.4 * len(COLUMNS), 1.45 * len(rows)),
                             squeeze=False)
    for r, (title, k, cols) in enumerate(rows):
        for c, name in enumerate(COLUMNS):
            ax = axes[r, c]
            ax.imshow(to_uint8(cols[name][k:k + 1])[0], interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
            if c == 0 and k == 0:
                ax.set_ylabel(title, fontsize=7)
    fig.tight_layout(pad=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=3, help="held-out images per dataset and mask")
    p.add_argument("--steps", type=int, default=1000, help="latent search steps (the paper: 1000)")
    p.add_argument("--out", default=str(ROOT_DIR / "build" / "demo.png"))


def main(args: argparse.Namespace) -> int:
    if args.n < 1 or args.steps < 0:
        raise SystemExit(f"--n must be >= 1 and --steps >= 0, got {args.n} and {args.steps}")
    names = [d for d in DATASETS if f"{d}_32" in available_pretrained()]
    if not names:
        raise SystemExit(f"no shipped checkpoints in data/checkpoints (found {available_pretrained()}); "
                         "train one with `python -m lesson_lib train` (lesson 04)")
    start, panels = time.perf_counter(), []
    for dataset in names:
        generator, critic, cfg = load_pretrained(f"{dataset}_32")
        images = load_dataset(dataset, args.n, size=generator.size, seed=HELD_OUT_SEED)
        masks = {name: make(generator.size) for name, make in MASKS.items()}
        n, size = len(images), generator.size
        both = torch.cat([m.expand(n, 1, size, size) for m in masks.values()])   # every image with each mask
        columns = demo_columns(generator, critic, images.repeat(len(masks), 1, 1, 1), both, args.steps)
        for k, (mask_name, mask) in enumerate(masks.items()):
            part = {name: column[k * n:(k + 1) * n] for name, column in columns.items()}
            title = f"{dataset}, {mask_name}"
            panels.append((title, part))
            print(f"\n{title}: {n} held-out images, {args.steps} steps, checkpoint {cfg['iterations']} iterations")
            print(format_table(demo_scores(part, images, mask)))
    save_figure(panels, Path(args.out))
    print(f"\nwrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0
