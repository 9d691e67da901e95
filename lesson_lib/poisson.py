"""Poisson blending (Eq. 9) and harmonic inpainting (built in lesson 08).

Eq. 9 (Perez et al. 2003): x = argmin ||grad x - grad G(z)||^2 subject to x = y on the known
pixels. On the 4-neighbourhood this is a sparse linear system over the HOLE pixels only: for a
hole pixel p with in-image neighbours N_p (nothing beyond the image border),

    |N_p| x_p - sum_{q in N_p, q hole} x_q = sum_{q in N_p, q known} y_q + sum_{q in N_p} (s_p - s_q)

with s the guidance (source) image. The matrix is symmetric positive definite and, with the hole
pixels numbered row by row, banded: a pixel's lower and right neighbours come at most one image row
(W pixels) later. So it is factorised by a banded Cholesky decomposition (LAPACK ``pbtrf``; about 3x
faster here than a general sparse LU), which depends only on the mask: it is computed once per mask,
cached (keyed by the mask's bytes), and reused for every channel and every image that shares the
mask, by solving with a multi-column right-hand side.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import torch

from .masks import check_mask

__all__ = ["poisson_blend", "harmonic_inpaint", "seam_error", "clear_cache", "cache_info"]


class _System(NamedTuple):
    hole: np.ndarray                 # flat indices of the hole pixels, (n_hole,)
    cholesky: np.ndarray             # banded Cholesky factor of the (n_hole, n_hole) matrix
    rhs: sp.csr_matrix               # (n_hole, 2*H*W): the right-hand side from [y; s]

    def solve(self, b: np.ndarray) -> np.ndarray:
        return sla.cho_solve_banded((self.cholesky, False), b, check_finite=False)


@lru_cache(maxsize=4)
def _neighbours(h: int, w: int) -> np.ndarray:
    """(H*W, 5) int32 flat indices of the up, left, self, right and down neighbours (increasing
    order), -1 beyond the border."""
    idx = np.pad(np.arange(h * w, dtype=np.int32).reshape(h, w), 1, constant_values=-1)
    nb = np.stack([idx[:-2, 1:-1], idx[1:-1, :-2], idx[1:-1, 1:-1], idx[1:-1, 2:], idx[2:, 1:-1]], -1)
    return nb.reshape(h * w, 5)


def _assemble(known: np.ndarray) -> tuple[sp.csc_matrix, sp.csr_matrix, np.ndarray]:
    """The matrix of Eq. 9 on the hole pixels and the right-hand-side operator acting on the
    stacked [target; source], from a boolean (H, W) map of the known pixels. Vectorised (no loop
    over pixels): the entries of each row are written straight into sorted CSR arrays."""
    h, w = known.shape
    k = known.ravel()
    hole = np.flatnonzero(~k).astype(np.int32)
    n = hole.size
    rank = np.full(h * w + 1, -1, dtype=np.int32)   # rank[-1] (beyond the border) stays -1
    rank[hole] = np.arange(n, dtype=np.int32)
    nb = _neighbours(h, w)[hole]                      # (n, 5), column 2 is the pixel itself
    inside = nb >= 0
    inside[:, 2] = False                              # the 4 neighbours only
    nb_known = inside & k[nb]                         # the wrap of nb = -1 is masked by `inside`
    deg = inside.sum(1)                               # |N_p|
    data = np.where(inside, -1.0, 0.0)
    data[:, 2] = deg
    diag = np.zeros((n, 5), bool)
    diag[:, 2] = True

    def csr(data, cols, keep, n_cols):
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(keep.sum(1), out=indptr[1:])
        return sp.csr_matrix((data[keep], cols[keep], indptr), shape=(n, n_cols))

    # A: |N_p| on the diagonal, -1 for each hole neighbour; symmetric, so its CSR arrays are
    # also its CSC arrays (.T is free)
    matrix = csr(data, rank[nb], diag | (inside & ~nb_known), n).T
    # right-hand side: + y_q for each known neighbour q, + |N_p| s_p - s_q for each neighbour q
    rhs = csr(np.concatenate([-data, data], 1), np.concatenate([nb, nb + h * w], 1),
              np.concatenate([nb_known, diag | inside], 1), 2 * h * w)
    return matrix, rhs, hole


@lru_cache(maxsize=16)
def _system(shape: tuple[int, int], known_bytes: bytes) -> _System | None:
    """Factorise the system of one mask (None when the mask has no hole). Cached (LRU)."""
    known = np.frombuffer(known_bytes, dtype=bool).reshape(shape)
    if known.all():
        return None
    matrix, rhs, hole = _assemble(known)
    return _System(hole, sla.cholesky_banded(_upper_band(matrix), check_finite=False), rhs)


def _upper_band(matrix: sp.spmatrix) -> np.ndarray:
    """LAPACK's upper band storage of a symmetric matrix: ``band[u + i - j, j] = A[i, j]`` for
    ``i <= j <= i + u``, with u the largest distance of an entry from the diagonal."""
    a = matrix.tocoo()
    upper = a.row <= a.col
    rows, cols, values = a.row[upper], a.col[upper], a.data[upper]
    u = int((cols - rows).max())
    band = np.zeros((u + 1, matrix.shape[0]))
    band[u + rows - cols, cols] = values
    return band


def clear_cache() -> None:
    """Forget the cached factorisations (for benchmarks of the cold path)."""
    _system.cache_clear()


def cache_info():
    """Hits, misses and size of the factorisation cache (``functools.lru_cache`` statistics)."""
    return _system.cache_info()


def poisson_blend(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 9: keep ``target`` (y) on the known pixels and fill the hole with the image whose
    gradients best match those of ``source`` (G(z)), in the least-squares sense.

    ``source`` and ``target``: (C, H, W) or (N, C, H, W), same shape; ``mask``: (H, W) shared by
    the batch or (N, 1, H, W) per image (1 = known). Solved per channel in float64 with a cached
    Cholesky factorisation per mask; returns a new tensor with the dtype and device of
    ``target`` (not differentiable: blending is a post-processing step). A mask with no hole
    returns a copy of ``target``; a mask with no known pixel raises ValueError. The result may
    leave [-1, 1] slightly where the guidance asks for it: clamp before saving or scoring.
    """
    if source.shape != target.shape:
        raise ValueError(f"source of shape {tuple(source.shape)} and target of shape "
                         f"{tuple(target.shape)} differ")
    if not (source.is_floating_point() and target.is_floating_point()):
        raise ValueError(f"source and target must be floating point, got {source.dtype} and {target.dtype}")
    single = target.dim() == 3
    t4, s4 = (target[None], source[None]) if single else (target, source)
    if t4.dim() != 4:
        raise ValueError(f"images must be (C, H, W) or (N, C, H, W), got {tuple(target.shape)}")
    known = check_mask(mask, t4)[:, 0].cpu().numpy() > 0
    n, c, h, w = t4.shape
    t = t4.detach().to("cpu", torch.float64).numpy().reshape(n, c, h * w)
    s = s4.detach().to("cpu", torch.float64).numpy().reshape(n, c, h * w)
    if not (np.isfinite(t).all() and np.isfinite(s).all()):
        raise ValueError("source or target contains NaN or infinite values")
    out = t.copy()
    if known.shape[0] == 1:                            # one mask for the whole batch
        groups = {known[0].tobytes(): slice(None)}
    else:                                              # images that share a mask share a solve
        groups: dict[bytes, list[int]] = {}
        for i, m in enumerate(known):
            groups.setdefault(m.tobytes(), []).append(i)
    for key, members in groups.items():
        system = _system((h, w), key)
        if system is None:                             # no hole: nothing to solve
            continue
        tk, sk = t[members].reshape(-1, h * w), s[members].reshape(-1, h * w)
        stacked = np.concatenate([tk.T, sk.T])         # (2 H W, images x channels), contiguous
        x = system.solve(system.rhs @ stacked)         # (n_hole, images x channels)
        filled = out[members]                          # a view for a slice, a copy for a list
        filled[:, :, system.hole] = x.T.reshape(len(filled), c, -1)
        out[members] = filled
    result = torch.from_numpy(out.reshape(n, c, h, w)).to(dtype=target.dtype, device=target.device)
    return result[0] if single else result


def harmonic_inpaint(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the hole with the harmonic function (discrete Laplace equation) that matches the known
    pixels around it: Eq. 9 with zero guidance. The classical "local method" baseline of
    lesson 08 (smooth, no semantics)."""
    return poisson_blend(torch.zeros_like(image), image, mask)


def seam_error(image: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """How visible the hole border is, per image (N,): the mean over all 4-neighbour pairs
    (p in the hole, q known) and channels of |x_p - x_q|, in the units of the image.

    With a ``reference`` (the ground truth), the mean of |(x_p - x_q) - (r_p - r_q)| instead:
    the gradient error across the border, 0 for a perfect seam. Lesson 08 shows it dropping
    after Poisson blending. Raises ValueError for a mask with no hole."""
    single = image.dim() == 3
    x = image[None] if single else image
    if reference is not None:
        if reference.shape != image.shape:
            raise ValueError(f"reference of shape {tuple(reference.shape)} and image of shape "
                             f"{tuple(image.shape)} differ")
        x = x - (reference[None] if single else reference)
    m = check_mask(mask, x)
    total, count = 0, 0
    for dim in (-1, -2):
        jump = (x.diff(dim=dim)).abs()
        across = (m.diff(dim=dim) != 0).to(x.dtype)   # one pixel in the hole, the other known
        total = total + (jump * across).sum(dim=(1, 2, 3))
        count = count + across.sum(dim=(1, 2, 3)) * x.shape[1]
    if torch.any(count == 0):
        raise ValueError("mask has no hole (or no known pixel next to it): no seam to measure")
    return total / count
