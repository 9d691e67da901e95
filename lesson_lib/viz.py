"""Image grids for tensors in [-1, 1] (built in lesson 00)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Map images in [-1, 1] (N,C,H,W) or (C,H,W) to uint8 (N,H,W,C) or (H,W,C), rounding
    (x + 1) * 127.5; values slightly outside [-1, 1] (a Poisson blend's overshoot) are clipped.
    ValueError for what clipping would silently mangle: integer images, values beyond +-2 (the
    0..255 scale), a channel axis that is not 1 or 3 (channels last)."""
    images = torch.as_tensor(images).detach()
    if not images.is_floating_point():
        raise ValueError(f"expected float images in [-1, 1], got {images.dtype} (already uint8?)")
    images = images.float().cpu()
    if images.dim() not in (3, 4) or images.shape[-3] not in (1, 3):
        raise ValueError(f"expected (C,H,W) or (N,C,H,W) images with C = 1 or 3, got shape {tuple(images.shape)}")
    largest = images.abs().max().item() if images.numel() else 0.0
    if largest > 2:
        raise ValueError(f"expected images in [-1, 1], found values up to {largest:.1f} (0..255 scale?)")
    scaled = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.movedim(-3, -1).numpy()


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile (N,C,H,W) images in [-1, 1] into one uint8 (H',W',3) array, ``nrow`` images per row."""
    images = torch.as_tensor(images).detach().float().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N,1|3,H,W) images, got shape {tuple(images.shape)}")
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    pad = int(round((pad_value + 1) * 127.5))
    grid = np.full((nrows * (h + padding) + padding, ncol * (w + padding) + padding, 3), pad, np.uint8)
    tiles = to_uint8(images)
    for k in range(n):
        r, c = divmod(k, ncol)
        y, x = padding + r * (h + padding), padding + c * (w + padding)
        grid[y:y + h, x:x + w] = tiles[k]
    return grid


def show_grid(images: torch.Tensor, nrow: int = 8, title: str | None = None, ax=None, scale: float = 1.0):
    """Draw ``make_grid(images)`` with matplotlib; return the axes."""
    import matplotlib.pyplot as plt

    grid = make_grid(images, nrow=nrow)
    if ax is None:
        _, ax = plt.subplots(figsize=(scale * grid.shape[1] / 40, scale * grid.shape[0] / 40))
    ax.imshow(grid, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_row(images: Sequence[torch.Tensor], titles: Sequence[str], scale: float = 2.0):
    """One row of single images (C,H,W) or masks (H,W) with titles; return the figure."""
    import matplotlib.pyplot as plt

    if len(images) != len(titles):
        raise ValueError(f"{len(images)} images but {len(titles)} titles")
    fig, axes = plt.subplots(1, len(images), figsize=(scale * len(images), scale * 1.1))
    for ax, img, title in zip(np.atleast_1d(axes), images, titles):
        img = torch.as_tensor(img).detach().float().cpu()
        if img.dim() == 2:
            ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(to_uint8(img), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    return fig
