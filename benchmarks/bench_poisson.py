"""Benchmark of Poisson blending (Eq. 9, lesson 08): a 64x64 RGB image with the central hole.

cold: factorisation cache cleared before each call (assembly + sparse LU + solve);
warm: the mask's factorisation is cached (right-hand side + one multi-column solve);
naive: the system rebuilt and solved with ``scipy.sparse.linalg.spsolve`` for each channel.
Figures are medians over repeats, in milliseconds. Run: ``python benchmarks/bench_poisson.py``.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.sparse.linalg as spla
import torch

from lesson_lib.masks import central_square
from lesson_lib.poisson import _assemble, clear_cache, poisson_blend


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _naive(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Rebuild the system and call spsolve once per channel (no factorisation reuse)."""
    known = mask.numpy() > 0
    out = target.double().numpy().copy()
    s = source.double().numpy()
    h, w = known.shape
    for c in range(out.shape[0]):
        matrix, rhs, hole = _assemble(known)
        b = rhs @ np.concatenate([out[c].ravel(), s[c].ravel()])
        out[c].reshape(-1)[hole] = spla.spsolve(matrix, b)
    return torch.from_numpy(out).to(target.dtype)


def bench_poisson(size: int = 64, repeats: int = 50) -> dict:
    """Median times (ms) of the cold, warm and naive blends, and the results' agreement."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    source = torch.rand(3, size, size, generator=g) * 2 - 1
    target = torch.rand(3, size, size, generator=g) * 2 - 1
    mask = central_square(size)

    def cold():
        clear_cache()
        poisson_blend(source, target, mask)

    cold_ms = _median_ms(cold, repeats)
    poisson_blend(source, target, mask)
    warm_ms = _median_ms(lambda: poisson_blend(source, target, mask), repeats * 4)
    naive_ms = _median_ms(lambda: _naive(source, target, mask), max(5, repeats // 5))
    max_diff = float((poisson_blend(source, target, mask) - _naive(source, target, mask)).abs().max())
    return {"size": size, "channels": 3, "hole_pixels": int((mask == 0).sum()),
            "cold_ms": round(cold_ms, 3), "warm_ms": round(warm_ms, 3), "naive_spsolve_ms": round(naive_ms, 3),
            "max_abs_diff_vs_naive": max_diff, "targets_ms": {"cold": 3.0, "warm": 0.5}}


if __name__ == "__main__":
    print(bench_poisson())
