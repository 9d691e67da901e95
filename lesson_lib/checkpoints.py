"""Save and load generator+critic pairs with their config and a checksum (built in lesson 04).

A checkpoint is a plain dict loadable with ``torch.load(..., weights_only=True)``:
``{"format": 1, "config": {...}, "generator": state_dict, "critic": state_dict, "checksum": str,
"training_state": {...} (optional, to resume), "history": {...} (optional, the training curves of an
exported checkpoint)}``. The checksum is a SHA-256 over the networks' tensors (names,
shapes, dtypes and bytes in key order), so a file whose weights were altered or truncated is caught.
Writes go to a temporary file that is renamed into place, so an interrupted save never leaves a
broken checkpoint behind.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from .config import CHECKPOINT_DIR
from .models import Critic, Generator

FORMAT = 1
REQUIRED_CONFIG = ("size", "dim", "z_dim", "dataset", "iterations", "seed")


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable, corrupt, or does not match the model."""


def state_checksum(*state_dicts: dict) -> str:
    h = hashlib.sha256()
    for sd in state_dicts:
        for name in sorted(sd):
            t = sd[name].detach().cpu().contiguous()
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


def atomic_save(obj: dict, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes the file private; use the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | Path, generator: Generator, critic: Critic, config: dict,
                    training_state: dict | None = None, history: dict | None = None) -> dict:
    """Write the pair atomically; ``config`` must hold dataset, iterations and seed (size, dim and
    z_dim are read from the models). Returns the dict written."""
    config = {"size": generator.size, "dim": generator.dim, "z_dim": generator.z_dim, **config}
    missing = [k for k in REQUIRED_CONFIG if k not in config]
    if missing:
        raise ValueError(f"checkpoint config is missing {missing}")
    if (critic.size, critic.dim) != (generator.size, generator.dim):
        raise ValueError(f"generator ({generator.size} px, dim {generator.dim}) and critic "
                         f"({critic.size} px, dim {critic.dim}) do not match")
    g = {k: v.detach().cpu() for k, v in generator.state_dict().items()}
    c = {k: v.detach().cpu() for k, v in critic.state_dict().items()}
    ckpt = {"format": FORMAT, "config": config, "generator": g, "critic": c, "checksum": state_checksum(g, c)}
    if training_state is not None:
        ckpt["training_state"] = training_state
    if history is not None:
        ckpt["history"] = history
    atomic_save(ckpt, path)
    return ckpt


def read_checkpoint(path: str | Path) -> dict:
    """Load and verify a checkpoint file (format, config keys, checksum) without building models."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or not a torch file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a lesson_lib checkpoint (format {FORMAT} expected)")
    missing = [k for k in ("generator", "critic") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint holds no {' and no '.join(missing)} weights")
    missing = [k for k in REQUIRED_CONFIG if k not in ckpt.get("config", {})]
    if missing:
        raise CheckpointError(f"{path}: config is missing {missing}")
    if state_checksum(ckpt["generator"], ckpt["critic"]) != ckpt.get("checksum"):
        raise CheckpointError(f"{path}: checksum mismatch, the weights are corrupt or were modified")
    return ckpt


def _load_into(path: Path, name: str, model: nn.Module, state: dict, config: dict) -> None:
    if (model.size, model.dim) != (config["size"], config["dim"]):
        raise CheckpointError(f"{path}: {name} was saved for size {config['size']}, dim {config['dim']} "
                              f"but the model has size {model.size}, dim {model.dim}")
    if getattr(model, "z_dim", config["z_dim"]) != config["z_dim"]:
        raise CheckpointError(f"{path}: generator was saved with z_dim {config['z_dim']}, model has {model.z_dim}")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{path}: {name} keys do not match the model (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")
    bad = [k for k in own if own[k].shape != state[k].shape]
    if bad:
        raise CheckpointError(f"{path}: {name} tensor shapes do not match the model: {bad[:5]}")
    model.load_state_dict(state)


def load_checkpoint(path: str | Path, generator: Generator | None = None, critic: Critic | None = None) -> dict:
    """Verify a checkpoint and load it into the given models (built from its config when omitted).
    Returns the checkpoint dict with "generator_model" and "critic_model" added."""
    path = Path(path)
    ckpt = read_checkpoint(path)
    cfg = ckpt["config"]
    generator = generator if generator is not None else Generator(cfg["size"], cfg["dim"], cfg["z_dim"])
    critic = critic if critic is not None else Critic(cfg["size"], cfg["dim"])
    _load_into(path, "generator", generator, ckpt["generator"], cfg)
    _load_into(path, "critic", critic, ckpt["critic"], cfg)
    return {**ckpt, "generator_model": generator, "critic_model": critic}


def write_card(path: str | Path) -> Path:
    """Write ``<checkpoint>.json`` beside a checkpoint: its config (command, iterations, wall time,
    ...), checksum and file size, for people and the README to read without loading torch."""
    import json

    path = Path(path)
    ckpt = read_checkpoint(path)
    card = {**ckpt["config"], "checksum": ckpt["checksum"], "file_bytes": path.stat().st_size,
            "resumable": "training_state" in ckpt}
    out = path.with_suffix(".json")
    out.write_text(json.dumps(card, indent=2) + "\n")
    return out


def pretrained_path(name: str) -> Path:
    """The file of the shipped checkpoint ``name``; FileNotFoundError naming those available if none."""
    path = CHECKPOINT_DIR / f"{name}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"no shipped checkpoint {name!r} at {path}; available: {available_pretrained()}")
    return path


def available_pretrained() -> list[str]:
    return sorted(p.stem for p in CHECKPOINT_DIR.glob("*.pt"))


def load_pretrained(name: str, device: torch.device | str = "cpu") -> tuple[Generator, Critic, dict]:
    """A shipped pair from ``data/checkpoints/<name>.pt`` in eval mode: (generator, critic, config)."""
    ckpt = load_checkpoint(pretrained_path(name))
    g, c = ckpt["generator_model"].to(device).eval(), ckpt["critic_model"].to(device).eval()
    return g, c, ckpt["config"]


def training_history(ckpt: dict) -> dict | None:
    """The training curves of a checkpoint (resumable or exported), or None if it kept none."""
    return ckpt.get("history") or ckpt.get("training_state", {}).get("history")


def export_checkpoint(src: str | Path, dst: str | Path) -> dict:
    """Copy a training checkpoint without its optimiser state (for shipping: about a third of the
    size); the training curves are kept."""
    ckpt = load_checkpoint(src)
    return save_checkpoint(dst, ckpt["generator_model"], ckpt["critic_model"],
                           {k: v for k, v in ckpt["config"].items() if k not in ("size", "dim", "z_dim")},
                           history=training_history(ckpt))
