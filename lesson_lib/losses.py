"""The inpainting losses of Sec. 3.2: contextual (Eq. 6), gradient (Eq. 7) and prior (Eq. 8).

Built in lessons 05 (contextual), 06 (image gradients, gradient loss) and 07 (prior). Images are
(N, C, H, W) in [-1, 1] (a single (C, H, W) image is accepted and counts as N = 1); masks are
1 on known pixels, 0 in the hole, (H, W) or (N, 1, H, W). Every loss returns one value per image,
shape (N,): the batch total used for the latent search is their sum, so each z only receives
gradients from its own image.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .masks import check_mask, context_weights

__all__ = ["image_gradients", "contextual_loss", "gradient_loss", "prior_loss"]


def _diff(f: torch.Tensor, known: torch.Tensor, dim: int) -> torch.Tensor:
    """Finite difference of f along ``dim`` (-1 or -2) using only neighbours that are known."""
    pad = (1, 1, 0, 0) if dim == -1 else (0, 0, 1, 1)
    n = f.shape[dim]
    fp, kp = F.pad(f, pad), F.pad(known, pad)  # outside the image counts as "not known"
    f_prev, f_next = fp.narrow(dim, 0, n), fp.narrow(dim, 2, n)
    k_prev, k_next = kp.narrow(dim, 0, n) > 0, kp.narrow(dim, 2, n) > 0
    zero = torch.zeros((), dtype=f.dtype, device=f.device)
    return torch.where(k_prev & k_next, (f_next - f_prev) / 2,
                       torch.where(k_next, f_next - f,
                                   torch.where(k_prev, f - f_prev, zero)))


def image_gradients(x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Image gradients (gx along the width, gy along the height) that never read a hole pixel.

    For each pixel and axis: the central difference (f[i+1] - f[i-1]) / 2 when both neighbours
    are known pixels inside the image; the forward difference f[i+1] - f[i] or the backward
    difference f[i] - f[i-1] when only one is (at the hole border and at the image border, like
    ``numpy.gradient(edge_order=1)``); 0 when neither is. The stencil depends only on the mask, so
    the same stencil is applied to G(z) and to y (Sec. 3.2: "forward or backward differences
    depending on whether the non-corrupted information is available"). Hole pixels follow the
    same rule (their own value is read by a one-sided difference); they get weight 0 in Eq. 7.
    ``mask=None``: every pixel known, i.e. ``numpy.gradient`` on the full image.
    Returns two tensors shaped like ``x`` (differentiable). Built in lesson 06.
    """
    single = x.dim() == 3
    x4 = x.unsqueeze(0) if single else x
    if x4.dim() != 4:
        raise ValueError(f"x must be (C, H, W) or (N, C, H, W), got {tuple(x.shape)}")
    known = torch.ones_like(x4[:1, :1]) if mask is None else check_mask(mask, x4)
    gx, gy = _diff(x4, known, -1), _diff(x4, known, -2)
    return (gx[0], gy[0]) if single else (gx, gy)


def _prepare(gz: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
             weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if gz.shape != y.shape:
        raise ValueError(f"G(z) of shape {tuple(gz.shape)} and y of shape {tuple(y.shape)} differ")
    if not (gz.is_floating_point() and y.is_floating_point()):
        raise ValueError(f"images must be floating point in [-1, 1], got {gz.dtype} and {y.dtype} "
                         "(convert uint8 with x.float() / 127.5 - 1)")
    lo, hi = y.min().item(), y.max().item()
    if not (lo >= -1 - 1e-5 and hi <= 1 + 1e-5):                     # written so that NaN fails too
        raise ValueError(f"y must lie in [-1, 1] (no NaN), found [{lo:.3f}, {hi:.3f}]")
    if gz.dim() == 3:
        gz, y = gz.unsqueeze(0), y.unsqueeze(0)
    if gz.dim() != 4:
        raise ValueError(f"images must be (C, H, W) or (N, C, H, W), got {tuple(gz.shape)}")
    m = check_mask(mask, gz)
    no_hole = (m.flatten(1) > 0).all(dim=1)
    if bool(no_hole.any()):
        raise ValueError(f"the mask of image {int(no_hole.nonzero()[0])} has no hole (no pixel is 0): "
                         "the loss would be 0 whatever G(z) is")
    if weights is None:
        w = context_weights(m)
    else:
        w = torch.as_tensor(weights, dtype=gz.dtype, device=gz.device)
        shape = tuple(w.shape)
        w = w[None, None] if w.dim() == 2 else w
        if w.dim() != 4 or w.shape[1] != 1 or w.shape[-2:] != gz.shape[-2:] or w.shape[0] not in (1, gz.shape[0]):
            raise ValueError(f"weights of shape {shape} do not fit images of shape "
                             f"{tuple(gz.shape)}: expected (H, W) or (N, 1, H, W)")
        if bool((w < 0).any()):
            raise ValueError("weights must be >= 0 (eq. 5 gives shares in [0, 1])")
    return gz, y, m, w


def contextual_loss(gz: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                    weights: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6: L_c(z | y, M) = || W * M * (G(z) - y) ||_1, one value per image (N,).

    The L1 norm is the plain SUM of absolute values over channels and pixels (no mean), as in
    the paper; the batch total is the sum of the per-image values. ``weights`` defaults to
    ``context_weights(mask, 7)`` (Eq. 5); pass them to reuse one computation. Built in lesson 05.
    """
    gz, y, m, w = _prepare(gz, y, mask, weights)
    return (w * m * (gz - y).abs()).sum(dim=(1, 2, 3))


def gradient_loss(gz: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7: L_g(z | y, M) = || W * M * (grad G(z) - grad y) ||_1, one value per image (N,):
    the sum over channels and pixels of W * M * (|gx(G) - gx(y)| + |gy(G) - gy(y)|), with the
    masked gradients of ``image_gradients`` (same stencil for both images). Built in lesson 06.
    """
    gz, y, m, w = _prepare(gz, y, mask, weights)
    gx_g, gy_g = image_gradients(gz, m)
    gx_y, gy_y = image_gradients(y, m)
    return (w * m * ((gx_g - gx_y).abs() + (gy_g - gy_y).abs())).sum(dim=(1, 2, 3))


def prior_loss(critic: Callable[[torch.Tensor], torch.Tensor], gz: torch.Tensor) -> torch.Tensor:
    """Eq. 8: L_p(z) = -D(G(z)), one value per image (N,): a high critic score (more realistic)
    gives a low loss. Built in lesson 07."""
    if gz.dim() == 3:
        gz = gz.unsqueeze(0)
    scores = critic(gz)
    if scores.numel() != gz.shape[0]:
        raise ValueError(f"critic returned {tuple(scores.shape)} for {gz.shape[0]} images; "
                         "expected one score per image")
    return -scores.reshape(gz.shape[0])
