"""Checkpoints (lesson 04): round trip, atomic writes, corruption, mismatches, safe loading, and every
checkpoint shipped in data/checkpoints/ loaded into the current model code."""
import hashlib
import json
import os
import shlex

import pytest
import torch

from lesson_lib import checkpoints
from lesson_lib.checkpoints import (REQUIRED_CONFIG, CheckpointError, available_pretrained, export_checkpoint,
                                    load_checkpoint, load_pretrained, read_checkpoint, save_checkpoint,
                                    state_checksum, training_history)
from lesson_lib.config import CHECKPOINT_DIR
from lesson_lib.models import Critic, Generator

CONFIG = {"dataset": "toy_faces", "iterations": 7, "seed": 3}


def pair(size=32, dim=4, seed=0, z_dim=128):
    torch.manual_seed(seed)
    return Generator(size, dim, z_dim), Critic(size, dim)


@pytest.fixture
def saved(tmp_path):
    g, c = pair()
    path = tmp_path / "pair.pt"
    save_checkpoint(path, g, c, CONFIG, training_state={"note": torch.arange(3)})
    return path, g, c


def same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- round trip -----------------------------------------------------------------------------------

def test_round_trip_into_given_and_new_models(saved):
    path, g, c = saved
    g2, c2 = pair(seed=1)
    assert not same_state(g, g2)
    ckpt = load_checkpoint(path, g2, c2)
    assert ckpt["generator_model"] is g2 and ckpt["critic_model"] is c2
    assert same_state(g, g2) and same_state(c, c2)
    built = load_checkpoint(path)                                   # models built from the config
    assert same_state(g, built["generator_model"]) and same_state(c, built["critic_model"])
    assert ckpt["config"] == {"size": 32, "dim": 4, "z_dim": 128, **CONFIG}
    assert torch.equal(ckpt["training_state"]["note"], torch.arange(3))
    z = torch.randn(2, 128)
    g.eval(), built["generator_model"].eval()
    assert torch.equal(g(z), built["generator_model"](z))


def test_checksum_is_sha256_of_names_shapes_and_bytes(saved):
    path, g, c = saved
    h = hashlib.sha256()
    for sd in (g.state_dict(), c.state_dict()):
        for name in sorted(sd):
            t = sd[name].contiguous()
            h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.numpy().tobytes())
    assert read_checkpoint(path)["checksum"] == h.hexdigest()


def test_checksum_sees_one_changed_value_and_a_renamed_tensor():
    g, c = pair()
    sg, sc = g.state_dict(), c.state_dict()
    ref = state_checksum(sg, sc)
    changed = {k: v.clone() for k, v in sg.items()}
    changed["out.bias"][0] += 1e-7
    renamed = {("x" + k if k == "out.bias" else k): v for k, v in sg.items()}
    assert len({ref, state_checksum(changed, sc), state_checksum(renamed, sc)}) == 3


def test_export_drops_training_state(saved, tmp_path):
    path, g, _ = saved
    export_checkpoint(path, tmp_path / "small.pt")
    ckpt = load_checkpoint(tmp_path / "small.pt")
    assert "training_state" not in ckpt and training_history(ckpt) is None
    assert ckpt["config"] == read_checkpoint(path)["config"]
    assert same_state(g, ckpt["generator_model"])


def test_export_keeps_the_training_curves(tmp_path):
    g, c = pair()
    history = {"wasserstein": [0.5, 0.25], "gp": [0.1, 0.05]}
    save_checkpoint(tmp_path / "run.pt", g, c, CONFIG, training_state={"history": history, "g_opt": {}})
    export_checkpoint(tmp_path / "run.pt", tmp_path / "small.pt")
    small = read_checkpoint(tmp_path / "small.pt")
    assert "training_state" not in small and training_history(small) == history


def test_save_needs_dataset_iterations_seed_and_a_matching_pair(tmp_path):
    g, c = pair()
    with pytest.raises(ValueError, match="missing.*iterations"):
        save_checkpoint(tmp_path / "a.pt", g, c, {"dataset": "x", "seed": 0})
    with pytest.raises(ValueError, match="do not match"):
        save_checkpoint(tmp_path / "a.pt", g, Critic(32, 8), CONFIG)
    assert not (tmp_path / "a.pt").exists()


# --- atomic writes --------------------------------------------------------------------------------

def test_save_leaves_no_temporary_file(saved):
    path = saved[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["pair.pt"]


def test_failed_save_keeps_the_old_file(saved, monkeypatch):
    path, g, c = saved
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints.torch, "save", broken_save)
    g2, c2 = pair(seed=1)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, g2, c2, CONFIG)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["pair.pt"]
    assert same_state(g, load_checkpoint(path)["generator_model"])


# --- corrupt and mismatched files ----------------------------------------------------------------

def test_truncated_file(saved):
    path = saved[0]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=str(path)):
        read_checkpoint(path)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_not_a_lesson_lib_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a lesson_lib checkpoint"):
        read_checkpoint(path)


def test_modified_weight_fails_the_checksum(saved):
    path = saved[0]
    ckpt = torch.load(path, weights_only=True)
    ckpt["critic"]["linear.weight"][0, 0] += 0.01
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_missing_config_key(saved):
    path = saved[0]
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config"]["seed"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="missing.*seed"):
        read_checkpoint(path)


@pytest.mark.parametrize("model_args, message", [
    ((64, 4), "size 32, dim 4 but the model has size 64, dim 4"),
    ((32, 8), "size 32, dim 4 but the model has size 32, dim 8"),
])
def test_wrong_size_or_dim(saved, model_args, message):
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(saved[0], Generator(*model_args), Critic(*model_args))


def test_wrong_z_dim(saved):
    with pytest.raises(CheckpointError, match="z_dim 128, model has 64"):
        load_checkpoint(saved[0], Generator(32, 4, z_dim=64), Critic(32, 4))


def test_mismatched_keys_are_named(tmp_path):
    g, c = pair()
    path = tmp_path / "keys.pt"
    ckpt = save_checkpoint(path, g, c, CONFIG)
    ckpt["critic"]["extra.weight"] = ckpt["critic"].pop("linear.weight")
    ckpt["checksum"] = state_checksum(ckpt["generator"], ckpt["critic"])     # a consistent file
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"critic keys .*missing \['linear.weight'\].*unexpected \['extra.weight'\]"):
        load_checkpoint(path)


def test_mismatched_shapes_are_named(tmp_path):
    g, c = pair()
    path = tmp_path / "shape.pt"
    ckpt = save_checkpoint(path, g, c, CONFIG)
    ckpt["generator"]["out.bias"] = torch.zeros(4)
    ckpt["checksum"] = state_checksum(ckpt["generator"], ckpt["critic"])
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=r"generator tensor shapes .*out.bias"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt")


# --- safe loading ---------------------------------------------------------------------------------

class Payload:
    """Unpickling this object would create a directory: a stand-in for arbitrary code."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (str(self.target),)


def test_load_names_missing_weights(tmp_path):
    g, c = pair()
    path = tmp_path / "no_critic.pt"
    ckpt = save_checkpoint(path, g, c, CONFIG)
    del ckpt["critic"]
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match="no_critic.pt: the checkpoint holds no critic weights"):
        load_checkpoint(path)


def test_load_refuses_arbitrary_objects(tmp_path):
    g, c = pair()
    path, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    ckpt = save_checkpoint(path, g, c, CONFIG)
    ckpt["extra"] = Payload(marker)              # otherwise a valid checkpoint
    torch.save(ckpt, path)
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    assert not marker.exists()


def test_load_asks_for_weights_only(saved, monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "load", spy)
    load_checkpoint(saved[0])
    assert calls == [True]


# --- shipped checkpoints --------------------------------------------------------------------------

def test_unknown_pretrained_name_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match=r"no_such_pair.*available: \[") as err:
        load_pretrained("no_such_pair")
    assert str(available_pretrained()) in str(err.value)


SHIPPED = ("house_numbers_32", "toy_faces_32")      # the course's pairs (lessons 04, 07, 09, the demo)


def test_the_course_checkpoints_are_shipped():
    assert set(SHIPPED) <= set(available_pretrained()), f"missing in {CHECKPOINT_DIR}: {available_pretrained()}"


@pytest.mark.parametrize("name", available_pretrained())
def test_shipped_checkpoint_loads_into_current_models(name):
    path = CHECKPOINT_DIR / f"{name}.pt"
    ckpt = read_checkpoint(path)                                          # verifies the checksum
    assert ckpt["checksum"] == state_checksum(ckpt["generator"], ckpt["critic"])
    cfg = ckpt["config"]
    assert set(REQUIRED_CONFIG) <= set(cfg)
    assert cfg["iterations"] > 0 and cfg["dataset"] in ("toy_faces", "house_numbers", "celeba", "svhn")
    g, c, config = load_pretrained(name)
    assert config == cfg
    assert not g.training and not c.training
    assert (g.size, g.dim, g.z_dim) == (cfg["size"], cfg["dim"], cfg["z_dim"])
    with torch.no_grad():
        x = g(torch.randn(8, cfg["z_dim"], generator=torch.Generator().manual_seed(0)))
        scores = c(x)
    assert x.shape == (8, 3, cfg["size"], cfg["size"])
    assert x.min() >= -1 and x.max() <= 1 and x.std() > 0.05                 # images, not a constant
    assert scores.shape == (8,) and torch.isfinite(scores).all()
    card = json.loads(path.with_suffix(".json").read_text())      # the human-readable card
    assert card["checksum"] == ckpt["checksum"] and card["iterations"] == cfg["iterations"]
    assert card["command"].startswith("python -m lesson_lib train") and card["wall_time_s"] > 0
    if cfg["dataset"] in ("house_numbers", "svhn"):     # a digit flipped left-right is mirror writing (lesson 04)
        assert "--no-flip" in shlex.split(cfg["command"]), f"{name} was trained with flips: {cfg['command']}"
    assert path.with_suffix(".png").stat().st_size > 1000            # its sample grid
    assert path.stat().st_size < 5e6                                 # small enough to ship


RESUME_DIR = CHECKPOINT_DIR / "resume"


@pytest.mark.parametrize("path", sorted(RESUME_DIR.glob("*.pt")), ids=lambda p: p.stem)
def test_resumable_state_continues_the_shipped_run(path):
    """A resumable training state shipped beside a checkpoint continues that checkpoint's run: the same command,
    the shipped checkpoint's training curves as the start of its own (the same weights if it stopped there),
    and the trainer resumes from it."""
    from lesson_lib.wgan import TrainConfig, Trainer

    ckpt = read_checkpoint(path)
    shipped = read_checkpoint(CHECKPOINT_DIR / path.name)
    cfg, shipped_cfg = ckpt["config"], shipped["config"]
    assert cfg["command"] == shipped_cfg["command"], f"{path.name} is another training run than the shipped one"
    assert cfg["iterations"] >= shipped_cfg["iterations"]
    if cfg["iterations"] == shipped_cfg["iterations"]:
        assert ckpt["checksum"] == shipped["checksum"]
    ours, theirs = training_history(ckpt), training_history(shipped)
    assert ours.keys() == theirs.keys() and all(ours[k][:len(theirs[k])] == theirs[k] for k in theirs)
    state = ckpt["training_state"]
    settings = {**state["train_config"], "betas": tuple(state["train_config"]["betas"])}
    trainer = Trainer(Generator(cfg["size"], cfg["dim"], cfg["z_dim"]), Critic(cfg["size"], cfg["dim"]),
                      torch.zeros(cfg["batch_size"], 3, cfg["size"], cfg["size"]), TrainConfig(**settings))
    trainer.resume(path)
    assert trainer.iteration == cfg["iterations"] and trainer.g_opt.state and trainer.c_opt.state
    assert json.loads(path.with_suffix(".json").read_text())["resumable"] is True
