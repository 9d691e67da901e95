"""Benchmark of Poisson blending (Eq. 9, lesson 08): a 64x64 RGB image with the central hole.

The code lives in ``lesson_lib.bench.bench_poisson`` (cold: factorisation cache cleared; warm: cached
factorisation; naive: ``spsolve`` per channel; medians in ms). Run: ``python benchmarks/bench_poisson.py``
or, with the other benchmarks, ``python -m lesson_lib bench inpaint``.
"""
from lesson_lib.bench import bench_poisson

if __name__ == "__main__":
    print(bench_poisson())
