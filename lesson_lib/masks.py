"""Inpainting masks and the weights W of the contextual loss (Eq. 5; built in lesson 05).

A mask M is 1 on KNOWN pixels and 0 in the hole (the paper's convention, Sec. 3.2), shape (H, W)
or (N, 1, H, W). Classical libraries (OpenCV, scikit-image) mark the hole with 1: convert with
``1 - M`` at the boundary.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import check_int

__all__ = ["central_square", "three_squares", "random_mask", "context_weights", "check_mask",
           "pad_symmetric", "THREE_SQUARES"]

# The three rectangles of the "three squares" mask as fractions of the side:
# (top, bottom, left, right), rows top..bottom-1 and columns left..right-1 after rounding to
# pixels (round(f * size)). They sit over the left eye, the mouth and chin, and the right cheek
# of a centred face, like the paper's Fig. 5(c) right, and hide about a fifth of the image.
THREE_SQUARES: tuple[tuple[float, float, float, float], ...] = (
    (0.25, 0.47, 0.16, 0.44),   # left eye and brow
    (0.66, 0.91, 0.31, 0.69),   # mouth and chin
    (0.34, 0.66, 0.72, 0.91),   # right cheek
)


def central_square(size: int) -> torch.Tensor:
    """The central-square mask (Fig. 5(c) left): a (size, size) float tensor, 1 = known, with a
    centred square hole of side ``size // 2`` (rows and columns ``size//4 .. size//4 + size//2 - 1``).
    The size must be even (an odd one cannot centre it). The paper gives no size for the hole; half
    the side follows Yeh et al. (2017).
    """
    _check_size(size)
    if size % 2:
        raise ValueError(f"central_square needs an even size (an odd one cannot centre the hole), got {size}")
    mask = torch.ones(size, size)
    start, side = size // 4, size // 2
    mask[start:start + side, start:start + side] = 0
    return mask


def three_squares(size: int) -> torch.Tensor:
    """The three-rectangles mask (Fig. 5(c) right): a (size, size) float tensor, 1 = known.

    The rectangles are fixed fractions of the side (``THREE_SQUARES``), so they scale with the
    image. Pixel rows x columns (end excluded), at 32 px: left eye 8:15 x 5:14, mouth and chin
    21:29 x 10:22, right cheek 11:21 x 23:29 (hidden fraction 0.214); at 64 px: 16:30 x 10:28,
    42:58 x 20:44, 22:42 x 46:58 (hidden fraction 0.214).
    """
    _check_size(size)
    mask = torch.ones(size, size)
    for top, bottom, left, right in THREE_SQUARES:
        mask[round(top * size):round(bottom * size), round(left * size):round(right * size)] = 0
    return mask


def random_mask(size: int, n_rects: int = 3, min_side: int | None = None, max_side: int | None = None,
                n: int | None = None, seed: int | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Random rectangular holes: ``n_rects`` axis-aligned rectangles whose height and width are
    drawn uniformly in [min_side, max_side] (defaults size//8 and size//2) and whose position is
    uniform inside the image. Returns (size, size), or (n, 1, size, size) with a different mask
    per image when ``n`` is given. Pass ``seed`` or a ``generator`` (exactly one: the global RNG is
    never used). Same seed -> same mask.
    """
    _check_size(size)
    min_side = max(1, size // 8) if min_side is None else check_int(min_side, "min_side", 1)
    max_side = max(1, size // 2) if max_side is None else check_int(max_side, "max_side", 1)
    n_rects = check_int(n_rects, "n_rects", 1)
    if not 1 <= min_side <= max_side <= size:
        raise ValueError(f"need 1 <= min_side <= max_side <= size, got {min_side}, {max_side}, {size}")
    n = None if n is None else check_int(n, "n", 1)
    if (seed is None) == (generator is None):
        raise ValueError("pass a seed or a generator (exactly one): random_mask never uses the global RNG")
    if seed is not None:
        generator = torch.Generator().manual_seed(check_int(seed, "seed"))

    def draw(high: int) -> int:  # uniform integer in [0, high)
        return int(torch.randint(high, (1,), generator=generator))

    masks = torch.ones(n or 1, 1, size, size)
    for mask in masks:
        for _ in range(n_rects):
            h = min_side + draw(max_side - min_side + 1)
            w = min_side + draw(max_side - min_side + 1)
            top, left = draw(size - h + 1), draw(size - w + 1)
            mask[0, top:top + h, left:left + w] = 0
    check_mask(masks)  # the rectangles may not hide the whole image
    return masks if n is not None else masks[0, 0]


def pad_symmetric(x: torch.Tensor, r: int) -> torch.Tensor:
    """Pad the last two dims by ``r`` mirroring the border pixels themselves (d c b a | a b c d |
    d c b a), as ``numpy.pad(mode='symmetric')``, ``scipy.ndimage`` mode 'reflect' and
    ``scipy.signal.convolve2d(boundary='symm')`` do. (``torch.nn.functional.pad(mode='reflect')``
    is numpy's 'reflect' instead: d c b | a b c d, without repeating the border.)"""
    rows = torch.from_numpy(np.pad(np.arange(x.shape[-2]), r, mode="symmetric")).to(x.device)
    cols = torch.from_numpy(np.pad(np.arange(x.shape[-1]), r, mode="symmetric")).to(x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def context_weights(mask: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Eq. 5: W(i) = sum_{j in N_i} (1 - M(j)) / |N_i| for known pixels i, 0 in the hole, where
    N_i is the ``window`` x ``window`` square centred at i (7 x 7 in the paper).

    Beyond the image border the window sees the mask mirrored with the border pixel repeated
    (``numpy.pad(mode='symmetric')``, as Yeh et al.'s code does with ``convolve2d(...,
    boundary='symm')``), so every window has |N_i| = window**2 pixels. Returns a tensor of the
    same shape as ``mask`` ((H, W) or (N, 1, H, W)). Built in lesson 05.
    """
    if isinstance(window, bool) or not (isinstance(window, int) and window >= 1 and window % 2 == 1):
        raise ValueError(f"window must be a positive odd int, got {window!r}")
    m = check_mask(mask)
    hole_share = F.avg_pool2d(pad_symmetric(1 - m, window // 2), window, stride=1)
    return (m * hole_share).reshape(mask.shape)


def check_mask(mask: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
    """Validate a mask and return it as a float (N or 1, 1, H, W) tensor (on the image's device
    and dtype when an image is given).

    Raises ValueError when the mask is not (H, W) or (N, 1, H, W), is not binary (0 = hole,
    1 = known), does not match the image's spatial size or batch, or has no known pixel in some
    image. ``image`` may be (C, H, W) or (N, C, H, W).
    """
    mask = torch.as_tensor(mask)
    shape = tuple(mask.shape)
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must have shape (H, W) or (N, 1, H, W), got {tuple(mask.shape)}")
    if mask.dtype == torch.bool:
        mask = mask.float()
    if not torch.all((mask == 0) | (mask == 1)):
        raise ValueError("mask must be binary (0 = hole, 1 = known); "
                         f"found values {torch.unique(mask)[:6].tolist()}")
    if image is not None:
        if image.dim() not in (3, 4):
            raise ValueError(f"image must be (C, H, W) or (N, C, H, W), got {tuple(image.shape)}")
        if mask.shape[-2:] != image.shape[-2:]:
            raise ValueError(f"mask of shape {shape} does not match image of shape "
                             f"{tuple(image.shape)} (spatial sizes differ)")
        n_image = image.shape[0] if image.dim() == 4 else 1
        if mask.shape[0] not in (1, n_image):
            raise ValueError(f"mask of shape {shape} has {mask.shape[0]} masks for "
                             f"{n_image} images of shape {tuple(image.shape)}")
        mask = mask.to(device=image.device, dtype=image.dtype if image.is_floating_point() else None)
    if not mask.is_floating_point():
        mask = mask.float()
    if not torch.all(mask.flatten(1).sum(1) > 0):
        raise ValueError("mask has no known pixel (all 0) in at least one image: nothing to "
                         "condition on")
    return mask


def _check_size(size: int) -> None:
    check_int(size, "size", 4)
