"""MSE, PSNR and SSIM (Eq. 10) as in the paper's tables (built in lesson 09).

Inputs are images in [-1, 1], (N, C, H, W) or (C, H, W), mapped to the 0..255 scale as the float
(x + 1) * 127.5 (no rounding to integers). Every metric returns one float64 value per image (N,)
and takes the same optional ``hole_of`` argument: the inpainting mask in the course's convention
(1 = known, 0 = hole, (H, W) or (N, 1, H, W)); when given, the figure is computed over the HOLE of
that mask only, otherwise over the whole image.

The paper's tables give the mean MSE over the test images and the PSNR of that mean
(``psnr_from_mse(mse(x, y).mean())``), not the mean of per-image PSNRs.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .masks import check_mask, pad_symmetric

__all__ = ["mse", "psnr", "psnr_from_mse", "ssim", "ssim_map", "semantic_accuracy"]

PEAK = 255.0
SSIM_SIGMA, SSIM_RADIUS = 1.5, 5     # 11 x 11 Gaussian window (scipy's truncate 3.5 at sigma 1.5)
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _to_255(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.shape != y.shape:
        raise ValueError(f"images of shapes {tuple(x.shape)} and {tuple(y.shape)} differ")
    if x.dim() == 3:
        x, y = x[None], y[None]
    if x.dim() != 4:
        raise ValueError(f"images must be (C, H, W) or (N, C, H, W), got {tuple(x.shape)}")
    x, y = x.detach().to(torch.float64), y.detach().to(torch.float64)
    for name, im in (("x", x), ("y", y)):
        if not (im.min() >= -1 - 1e-6 and im.max() <= 1 + 1e-6):     # written so that NaN fails too
            raise ValueError(f"{name} has values in [{im.min():.4f}, {im.max():.4f}], outside [-1, 1] "
                             "(or NaN): clamp it first")
    return (x + 1) * 127.5, (y + 1) * 127.5


def _hole_weights(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """1 on the hole pixels of ``mask``, 0 elsewhere, (N or 1, 1, H, W) float64; every image needs a hole."""
    inside = 1 - check_mask(mask, x)
    if not torch.all(inside.flatten(1).sum(1) > 0):
        raise ValueError("hole-only metric asked for, but the mask has no hole (0 pixels) in some image")
    return inside


def _masked_mean(values: torch.Tensor, hole_of: torch.Tensor | None) -> torch.Tensor:
    if hole_of is None:
        return values.mean(dim=(1, 2, 3))
    inside = _hole_weights(hole_of, values)
    return (values * inside).sum(dim=(1, 2, 3)) / (inside.sum(dim=(1, 2, 3)) * values.shape[1])


def mse(x: torch.Tensor, y: torch.Tensor, hole_of: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error on the 0..255 scale over pixels and channels, per image (N,); over the
    hole pixels only when ``hole_of`` (the mask, 1 = known) is given."""
    x, y = _to_255(x, y)
    return _masked_mean((x - y) ** 2, hole_of)


def psnr_from_mse(value):
    """PSNR = 10 log10(255^2 / MSE) in dB (float, numpy array or tensor; inf for MSE 0). The
    paper's tables apply it to the MEAN MSE over the test images."""
    if isinstance(value, torch.Tensor):
        return 10 * torch.log10(PEAK**2 / value)
    if hasattr(value, "__array__"):
        import numpy as np
        with np.errstate(divide="ignore"):
            return 10 * np.log10(PEAK**2 / np.asarray(value, dtype=np.float64))
    return math.inf if value == 0 else 10 * math.log10(PEAK**2 / value)


def psnr(x: torch.Tensor, y: torch.Tensor, hole_of: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR (N,) in dB with peak 255: ``psnr_from_mse(mse(x, y, hole_of))``. Not a table
    figure: the paper's row is ``psnr_from_mse(mse(x, y).mean())``, which the mean of these
    per-image values overstates (Jensen; lesson 09 shows both)."""
    return psnr_from_mse(mse(x, y, hole_of))


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (k / SSIM_SIGMA) ** 2)
    return g / g.sum()


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 11x11 Gaussian filter per channel, border mirrored as scipy.ndimage 'reflect'."""
    c = x.shape[1]
    g = _gaussian_window(x.dtype, x.device)
    x = pad_symmetric(x, SSIM_RADIUS)
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Eq. 10: the local SSIM l * c * s of Wang et al. (2004) at every pixel and channel, (N, C, H, W)
    float64, on the 0..255 scale (L = 255, K1 = 0.01, K2 = 0.03, C3 = C2 / 2), with 11x11 Gaussian
    weights (sigma 1.5) and population (not sample) covariances; the image border is mirrored
    (scipy.ndimage mode 'reflect'). This is the map of ``skimage.metrics.structural_similarity(
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, full=True)``."""
    x, y = _to_255(x, y)
    if min(x.shape[-2:]) < 2 * SSIM_RADIUS + 1:
        raise ValueError(f"SSIM needs images of at least 11x11 pixels, got {tuple(x.shape[-2:])}")
    c = x.shape[1]
    mu_x, mu_y, xx, yy, xy = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1)).split(c, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor, hole_of: torch.Tensor | None = None) -> torch.Tensor:
    """Mean SSIM per image (N,), per channel then averaged. Whole image: the mean of ``ssim_map``
    after cropping 5 pixels on each side, exactly as skimage does (the map there depends on the
    mirrored border). Hole only (``hole_of`` = the mask, 1 = known): the mean of the full map over
    the hole pixels."""
    s = ssim_map(x, y)
    if hole_of is None:
        r = SSIM_RADIUS
        return s[..., r:-r, r:-r].mean(dim=(1, 2, 3))
    return _masked_mean(s, hole_of)


def semantic_accuracy(images: torch.Tensor, labels: list, dataset: str, scorer=None) -> dict[str, float]:
    """Does an inpainted labelled embedded image keep its meaning? Rates in [0, 1] read by a small
    classifier trained on clean images (``lesson_lib.semantic``; the shipped one unless ``scorer``
    is given): ``digits`` for house numbers; ``intact`` and ``attributes`` for toy faces."""
    from .semantic import SCORED, load_scorer, semantic_scores

    if dataset not in SCORED:
        raise ValueError(f"semantic accuracy needs a labelled embedded dataset {SCORED}, got {dataset!r}")
    return semantic_scores(scorer if scorer is not None else load_scorer(dataset), dataset, images, labels)
