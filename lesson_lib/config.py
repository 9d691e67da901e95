"""Run modes, device choice, seeding and paths (built in lesson 00).

``FAST`` (env ``LESSON_FAST=1``) is the reduced-size mode used by CI: notebooks pass smaller
sizes and step counts, never a different code path. (One check needs the full size and is skipped
in FAST: lesson 02's eight bumps of the critic, formed after 1500 iterations, not 150.)
"""
from __future__ import annotations

import numbers
import os
import random
from pathlib import Path

import numpy as np
import torch

ROOT_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT_DIR / "data"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
RESULTS_DIR = DATA_DIR / "results"


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"environment variable {name}={value!r}: expected 1/0, true/false, yes/no")


FAST: bool = _flag("LESSON_FAST")


def get_device() -> torch.device:
    """The device to use: env ``LESSON_DEVICE`` if set (e.g. ``cpu``, ``cuda:0``), else CUDA when
    available, else the CPU."""
    wanted = os.environ.get("LESSON_DEVICE", "").strip()
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as err:
            raise ValueError(f"LESSON_DEVICE={wanted!r} is not a torch device (e.g. cpu, cuda, cuda:0)") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"LESSON_DEVICE={wanted!r} but CUDA is not available on this machine")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_int(value, name: str, minimum: int = 0) -> int:
    """``value`` as a Python int when it is an integer (Python or NumPy; not a bool) >= ``minimum``,
    else a ValueError that names it. The one check behind every count, size and seed argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA); return a CPU ``torch.Generator`` with that
    seed for code that takes an explicit generator."""
    seed = check_int(seed, "seed")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
