"""Benchmarks: ``python -m lesson_lib bench [train|inpaint|notebooks|all]``.

They PRINT figures and targets (PASS / MISS); they never assert a timing, because a timing depends on
the machine and on what else runs on it. Figures are medians over repeats after warm-up.

* train: one critic step (with the gradient penalty) and one generator step of the training loop
  (section 4; lesson 04), for three configurations; images/s counts the real images the critic sees.
* inpaint: a Poisson blend (eq. 9; lesson 08) of a 64x64 RGB image with the central hole, without and
  with the cached factorisation; the latent search (eq. 4; lesson 07) batched against one image at a time.
* notebooks: the FAST notebook suite under nbval, as ``make test-notebooks`` runs it.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from typing import Callable

import numpy as np
import scipy.sparse.linalg as spla
import torch

from .config import ROOT_DIR, get_device
from .masks import central_square
from .models import Critic, Generator
from .poisson import _assemble, clear_cache, poisson_blend
from .wgan import TrainConfig, Trainer

TARGETS = {"critic_step_s": 1.0, "poisson_cold_ms": 3.0, "poisson_warm_ms": 0.5, "search_speedup": 10.0}
TRAIN_CONFIGS = ((32, 32, 64), (32, 16, 32), (64, 64, 64))     # (size, dim, batch)
WHAT = ("train", "inpaint", "notebooks", "all")


# --- helpers ---------------------------------------------------------------------------------------
def machine_info(device: torch.device | None = None) -> dict:
    """CPU model, cores, torch threads and the device the benchmarks run on."""
    device = device or get_device()
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": model, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "device": str(device)}
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_1min"] = round(os.getloadavg()[0], 2)
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1, device: torch.device | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after ``warmup`` calls."""
    device = device or torch.device("cpu")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:6.1f} min" if seconds < 7200 else f"{seconds / 3600:6.1f} h"


def _verdict(value: float, target: float, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


# --- train -----------------------------------------------------------------------------------------
def bench_train_config(size: int, dim: int, batch: int, device: torch.device | None = None,
                       repeats: int | None = None, warmup: int | None = None) -> dict:
    """Median times of one critic step and one generator step for ``Generator/Critic(size, dim)``."""
    device = device or get_device()
    big = device.type == "cpu" and size * dim >= 64 * 64
    repeats = repeats or (10 if device.type == "cuda" else 1 if big else 3)
    warmup = warmup if warmup is not None else (3 if device.type == "cuda" else 0 if big else 1)
    images = torch.rand(max(256, batch), 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    t = Trainer(Generator(size, dim), Critic(size, dim), images, TrainConfig(batch_size=batch), device=device)
    critic_s = median_time(t.critic_step, repeats, warmup, device)
    gen_s = median_time(t.generator_step, repeats, warmup, device)
    iteration_s = t.config.n_critic * critic_s + gen_s
    return {"size": size, "dim": dim, "batch": batch, "repeats": repeats, "critic_step_s": critic_s,
            "generator_step_s": gen_s, "iteration_s": iteration_s,
            "images_per_s": t.config.n_critic * batch / iteration_s}


def bench_train(device: torch.device | None = None, configs=TRAIN_CONFIGS) -> list[dict]:
    device = device or get_device()
    print(f"\n== train: one critic step (with GP) and one generator step; n_critic = 5, device {device}")
    print(f"{'config':>22s} {'critic step':>12s} {'gen step':>10s} {'iteration':>10s} {'images/s':>9s}  1000 its")
    rows = []
    for size, dim, batch in configs:
        r = bench_train_config(size, dim, batch, device)
        rows.append(r)
        print(f"{f'{size} px dim {dim} batch {batch}':>22s} {r['critic_step_s']:>10.3f} s {r['generator_step_s']:>8.3f} s "
              f"{r['iteration_s']:>8.2f} s {r['images_per_s']:>9.1f}  {_duration(r['iteration_s'] * 1000)}"
              f"   (median of {r['repeats']})", flush=True)
    ref = next((r for r in rows if (r["size"], r["dim"], r["batch"]) == (32, 32, 64)), None)
    if ref is not None:
        target = TARGETS["critic_step_s"]
        print(f"target: critic step at 32 px dim 32 batch 64 <= {target:.1f} s: {ref['critic_step_s']:.3f} s "
              f"{_verdict(ref['critic_step_s'], target)}")
    return rows


# --- inpaint ---------------------------------------------------------------------------------------
def _naive_blend(source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 9 without reuse: rebuild the system and call ``spsolve`` once per channel."""
    known = mask.numpy() > 0
    out = target.double().numpy().copy()
    s = source.double().numpy()
    for c in range(out.shape[0]):
        matrix, rhs, hole = _assemble(known)
        b = rhs @ np.concatenate([out[c].ravel(), s[c].ravel()])
        out[c].reshape(-1)[hole] = spla.spsolve(matrix, b)
    return torch.from_numpy(out).to(target.dtype)


def bench_poisson(size: int = 64, repeats: int = 50) -> dict:
    """Median times (ms) of a Poisson blend (eq. 9) of a (3, size, size) image with the central hole:
    cold (factorisation cache cleared: assembly + banded Cholesky + solve), warm (cached factorisation:
    right-hand side + one multi-column solve) and naive (``spsolve`` per channel), and the largest
    difference between the cached and the naive results. Runs on one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = torch.Generator().manual_seed(0)
        source = torch.rand(3, size, size, generator=g) * 2 - 1
        target = torch.rand(3, size, size, generator=g) * 2 - 1
        mask = central_square(size)

        def cold():
            clear_cache()
            poisson_blend(source, target, mask)

        cold_ms = median_time(cold, repeats) * 1e3
        warm_ms = median_time(lambda: poisson_blend(source, target, mask), repeats * 4) * 1e3
        naive_ms = median_time(lambda: _naive_blend(source, target, mask), max(5, repeats // 5)) * 1e3
        max_diff = float((poisson_blend(source, target, mask) - _naive_blend(source, target, mask)).abs().max())
    finally:
        torch.set_num_threads(threads)
    return {"size": size, "channels": 3, "hole_pixels": int((mask == 0).sum()),
            "cold_ms": round(cold_ms, 3), "warm_ms": round(warm_ms, 3), "naive_spsolve_ms": round(naive_ms, 3),
            "max_abs_diff_vs_naive": max_diff,
            "targets_ms": {"cold": TARGETS["poisson_cold_ms"], "warm": TARGETS["poisson_warm_ms"]}}


def bench_search(batch: int = 64, one_by_one: int = 8, steps: int = 20, size: int = 32, dim: int = 16,
                 device: torch.device | None = None) -> dict:
    """Latent search (eq. 4) time per image: ``batch`` images at once against ``one_by_one`` images
    searched one at a time, ``steps`` Adam steps each, Poisson blending off (timed separately)."""
    from .data import toy_faces
    from .inpaint import inpaint

    device = device or get_device()
    generator, critic = Generator(size, dim).to(device).eval(), Critic(size, dim).to(device).eval()
    images, mask = toy_faces(batch, size=size, seed=1), central_square(size)
    run = lambda x: inpaint(generator, critic, x, mask, steps=steps, progress=False, blend=False)  # noqa: E731
    batched_s = median_time(lambda: run(images), repeats=3, warmup=1, device=device)
    single_s = median_time(lambda: [run(images[i]) for i in range(one_by_one)], repeats=1, warmup=0, device=device)
    generator = generator.to(memory_format=torch.channels_last)     # as `evaluate` runs its searches
    critic = critic.to(memory_format=torch.channels_last)
    channels_last_s = median_time(lambda: run(images), repeats=3, warmup=1, device=device)
    per_batched, per_single = batched_s / batch, single_s / one_by_one
    return {"size": size, "dim": dim, "steps": steps, "batch": batch, "one_by_one": one_by_one,
            "batched_ms_per_image": per_batched * 1e3, "single_ms_per_image": per_single * 1e3,
            "channels_last_ms_per_image": channels_last_s / batch * 1e3,
            "speedup": per_single / per_batched, "target_speedup": TARGETS["search_speedup"]}


def bench_inpaint(device: torch.device | None = None) -> dict:
    device = device or get_device()
    print("\n== inpaint: Poisson blend (eq. 9), 64x64 RGB, central hole (CPU, 1 thread)")
    p = bench_poisson()
    print(f"cold (assemble+Cholesky+solve) {p['cold_ms']:8.3f} ms   target <= {p['targets_ms']['cold']} ms "
          f"{_verdict(p['cold_ms'], p['targets_ms']['cold'])}")
    print(f"warm (cached factorisation)    {p['warm_ms']:8.3f} ms   target <= {p['targets_ms']['warm']} ms "
          f"{_verdict(p['warm_ms'], p['targets_ms']['warm'])}")
    print(f"naive (spsolve per channel)    {p['naive_spsolve_ms']:8.3f} ms   "
          f"({p['hole_pixels']} hole pixels; max |cached - naive| = {p['max_abs_diff_vs_naive']:.1e})")
    s = bench_search(device=device)
    print(f"\n== inpaint: latent search (eq. 4), Generator({s['size']}, {s['dim']}), {s['steps']} steps, "
          f"no blending, device {device}")
    print(f"batched ({s['batch']} images at once)   {s['batched_ms_per_image']:8.1f} ms per image")
    print(f"one at a time ({s['one_by_one']} images)     {s['single_ms_per_image']:8.1f} ms per image")
    print(f"batched, channels-last models  {s['channels_last_ms_per_image']:8.1f} ms per image "
          f"({s['batched_ms_per_image'] / s['channels_last_ms_per_image']:.2f}x; `evaluate` uses them)")
    print(f"speed-up per image {s['speedup']:.1f}x   target >= {s['target_speedup']:.0f}x "
          f"{_verdict(s['speedup'], s['target_speedup'], higher_is_better=True)}")
    print(f"(the paper's 1000 steps: about {s['batched_ms_per_image'] * 1000 / s['steps'] / 1e3:.1f} s per image batched)")
    return {"poisson": p, "search": s}


# --- notebooks -------------------------------------------------------------------------------------
def bench_notebooks(folder: str = "notebooks") -> dict:
    """Run the FAST notebook suite under nbval in a subprocess (as ``make test-notebooks``); return the
    wall time, the exit code and the time per notebook (sum of its cells, kernel start included).
    ``folder`` (relative to the repository root) may also name a single notebook."""
    root = ROOT_DIR / folder
    if not root.exists():
        raise FileNotFoundError(f"notebooks not found: {root} (run from a checkout of the course)")
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "nbval.xml")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
               "--nbval-cell-timeout=120", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
               f"--junitxml={report}", folder]
        env = {**os.environ, "LESSON_FAST": "1", "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}   # as make test
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT_DIR, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        per_notebook: dict[str, float] = defaultdict(float)
        if os.path.exists(report):
            for case in ET.parse(report).iter("testcase"):
                name = case.get("file") or case.get("classname", "?")
                per_notebook[os.path.basename(name.replace(".ipynb", "")) + ".ipynb"] += float(case.get("time", 0))
    tail = (proc.stdout.strip().splitlines() or [""])[-1]
    return {"wall_s": wall, "returncode": proc.returncode, "summary": tail, "per_notebook_s": dict(per_notebook)}


def print_notebooks() -> dict:
    print("\n== notebooks: FAST suite under nbval (LESSON_FAST=1), one subprocess", flush=True)
    r = bench_notebooks()
    for name, seconds in sorted(r["per_notebook_s"].items()):
        print(f"{name:45s} {seconds:7.1f} s")
    print(f"{'whole suite (wall, pytest start included)':45s} {r['wall_s']:7.1f} s   exit code {r['returncode']}: {r['summary']}")
    return r


# --- entry point -----------------------------------------------------------------------------------
def main(what: str = "all", threads: int | None = None) -> int:
    if what not in WHAT:
        raise ValueError(f"unknown benchmark {what!r}: choose one of {WHAT}")
    if threads:
        torch.set_num_threads(threads)
    device = get_device()
    info = machine_info(device)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    if info.get("load_1min", 0) > 0.5 * (info.get("cores_usable") or info["cores"] or 1):
        print("note: the machine is busy (load average above half the cores): figures are pessimistic")
    if what in ("train", "all"):
        bench_train(device)
    if what in ("inpaint", "all"):
        bench_inpaint(device)
    if what in ("notebooks", "all"):
        return print_notebooks()["returncode"]
    return 0
