"""Tests of lesson_lib.config: run mode flag, device choice, seeding, paths."""
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from lesson_lib import config


@pytest.mark.parametrize("value,expected", [("", False), ("0", False), ("false", False), ("No", False),
                                            ("off", False), ("1", True), ("true", True), (" YES ", True),
                                            ("on", True)])
def test_flag_parsing(monkeypatch, value, expected):
    monkeypatch.setenv("LESSON_FAST", value)
    assert config._flag("LESSON_FAST") is expected


def test_flag_unset_and_bad(monkeypatch):
    monkeypatch.delenv("LESSON_FAST", raising=False)
    assert config._flag("LESSON_FAST") is False
    monkeypatch.setenv("LESSON_FAST", "maybe")
    with pytest.raises(ValueError, match="LESSON_FAST"):
        config._flag("LESSON_FAST")


def test_fast_read_at_import():
    env = dict(os.environ, LESSON_FAST="yes")
    out = subprocess.run([sys.executable, "-c", "import lesson_lib.config as c; print(c.FAST)"],
                         capture_output=True, text=True, check=True, env=env, cwd=config.ROOT_DIR)
    assert out.stdout.strip() == "True"


def test_get_device_override(monkeypatch):
    monkeypatch.setenv("LESSON_DEVICE", "cpu")
    assert config.get_device() == torch.device("cpu")
    monkeypatch.delenv("LESSON_DEVICE")
    assert config.get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_get_device_names_the_variable_for_a_bad_value(monkeypatch):
    monkeypatch.setenv("LESSON_DEVICE", "gpu")
    with pytest.raises(ValueError, match="LESSON_DEVICE='gpu' is not a torch device"):
        config.get_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_get_device_cuda_unavailable(monkeypatch):
    monkeypatch.setenv("LESSON_DEVICE", "cuda:0")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        config.get_device()


def test_seed_everything_reproducible():
    def draw():
        g = config.seed_everything(123)
        return random.random(), np.random.rand(3), torch.rand(3), torch.rand(3, generator=g)

    a, b = draw(), draw()
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    config.seed_everything(124)
    assert not torch.equal(torch.rand(3), a[2])


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_seed_everything_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        config.seed_everything(seed)


def test_numpy_integers_count_as_ints():
    # a seed or size computed with NumPy is accepted, as a plain int would be
    assert torch.equal(torch.rand(3, generator=config.seed_everything(np.int64(3))),
                       torch.rand(3, generator=config.seed_everything(3)))
    assert config.check_int(np.int32(4), "size", 4) == 4 and type(config.check_int(np.int32(4), "size")) is int
    with pytest.raises(ValueError, match="size must be an int >= 4, got 3"):
        config.check_int(3, "size", 4)


def test_paths():
    assert (config.ROOT_DIR / "lesson_lib" / "config.py").is_file()
    assert config.DATA_DIR == config.ROOT_DIR / "data"
    assert config.CHECKPOINT_DIR.parent == config.DATA_DIR
