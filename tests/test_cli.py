"""The command line ``python -m lesson_lib train|export`` (lesson 04) on tiny runs."""
import functools
import json
import os
import subprocess
import sys

import pytest
import torch
from PIL import Image

from lesson_lib.__main__ import main
from lesson_lib.checkpoints import read_checkpoint
from lesson_lib.config import ROOT_DIR
from lesson_lib.train import continued_with
from lesson_lib.wgan import Trainer

TINY = ["train", "--dataset", "toy_faces", "--dim", "4", "--every", "1", "--limit", "64", "--batch-size", "4",
        "--n-critic", "2", "--threads", "1"]


@pytest.fixture(autouse=True)
def cpu_and_threads(monkeypatch):
    monkeypatch.setenv("LESSON_DEVICE", "cpu")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_module(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lesson_lib", *args], cwd=ROOT_DIR, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "LESSON_DEVICE": "cpu", "OMP_NUM_THREADS": "1"})


def test_train_writes_checkpoint_and_samples_then_resumes(tmp_path, capsys):
    out = tmp_path / "x.pt"
    assert main([*TINY, "--iters", "2", "--out", str(out)]) == 0
    ckpt = read_checkpoint(out)
    cfg = ckpt["config"]
    assert (cfg["iterations"], cfg["dataset"], cfg["size"], cfg["dim"], cfg["train_images"]) == (2, "toy_faces", 32, 4, 64)
    first = ckpt["training_state"]["history"]
    assert len(first["critic_loss"]) == 2
    png = Image.open(out.with_suffix(".png"))
    assert png.size == (8 * 34 + 2, 8 * 34 + 2)                      # an 8x8 grid of 32 px samples
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.png", "x.pt"]
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["checksum"] == ckpt["checksum"] and card["iterations"] == 2 and card["resumable"]

    with pytest.raises(SystemExit) as err:                            # the same --out again
        main([*TINY, "--iters", "2", "--out", str(out)])
    assert "--resume" in str(err.value.code) and str(out) in str(err.value.code)
    assert read_checkpoint(out)["config"]["iterations"] == 2         # untouched

    capsys.readouterr()
    assert main([*TINY, "--iters", "3", "--out", str(out), "--resume"]) == 0
    assert "resumed" in capsys.readouterr().out
    resumed = read_checkpoint(out)
    history = resumed["training_state"]["history"]
    assert resumed["config"]["iterations"] == 3
    assert all(history[k][:2] == first[k] and len(history[k]) == 3 for k in first)   # continued, not restarted

    small = tmp_path / "small.pt"
    assert main(["export", str(out), str(small)]) == 0
    assert "training_state" not in read_checkpoint(small)
    assert small.stat().st_size < out.stat().st_size


def test_unknown_dataset_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as err:
        main(["train", "--dataset", "mnist", "--iters", "1", "--out", "x.pt"])
    assert err.value.code == 2
    assert "invalid choice: 'mnist'" in capsys.readouterr().err


def test_celeba_needs_data_root(tmp_path):
    with pytest.raises(ValueError, match="--data-root"):
        main(["train", "--dataset", "celeba", "--iters", "1", "--out", str(tmp_path / "c.pt")])
    assert not (tmp_path / "c.pt").exists()


def test_module_entry_point_reports_errors():
    bad = run_module("train", "--dataset", "mnist", "--iters", "1", "--out", "x.pt")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    celeba = run_module("train", "--dataset", "celeba", "--iters", "1", "--out", "/nonexistent/c.pt")
    assert celeba.returncode != 0 and "--data-root" in celeba.stderr


def test_no_flip_is_stored_and_resume_keeps_it(tmp_path):
    out = tmp_path / "nf.pt"
    assert main([*TINY, "--iters", "1", "--out", str(out), "--no-flip"]) == 0
    assert read_checkpoint(out)["training_state"]["train_config"]["flip"] is False
    with pytest.raises(ValueError, match="flip"):                    # resuming with flips would change the run
        main([*TINY, "--iters", "2", "--out", str(out), "--resume"])
    assert main([*TINY, "--iters", "2", "--out", str(out), "--resume", "--no-flip"]) == 0


def test_continued_with_lists_each_new_command_once():
    a, b, c = (f"python -m lesson_lib train --iters {n} --out x.pt" for n in (1, 2, 3))
    assert continued_with({"command": a}, a) == []                              # the same run resumed
    assert continued_with({"command": a + " --resume"}, a) == []                # an old card kept --resume
    assert continued_with({"command": a}, b) == [b]                             # an old card without the field
    assert continued_with({"command": a, "continued_with": [b]}, b) == [b]      # listed once
    assert continued_with({"command": a, "continued_with": [b]}, a) == [b]
    assert continued_with({"command": a, "continued_with": [b]}, c) == [b, c]
    assert continued_with({}, a) == []                                          # no first command to differ from


def test_card_records_the_commands_that_continued_a_run(tmp_path, monkeypatch):
    out = tmp_path / "c.pt"
    real_train = Trainer.train

    def train(*args: str, stop_at: int | None = None) -> dict:
        """One call of the command line, interrupted after iteration ``stop_at`` (as by Ctrl-C)."""
        monkeypatch.setattr(sys, "argv", ["lesson_lib", *args])      # the card reads the command from argv
        monkeypatch.setattr(Trainer, "train", functools.partialmethod(real_train, until=stop_at))
        assert main(list(args)) == 0
        card_path = out.with_suffix(".json")
        card = json.loads(card_path.read_text())
        card_path.unlink()                                             # each call must write its own card
        return card

    first = [*TINY, "--iters", "2", "--out", str(out)]
    card = train(*first, stop_at=1)
    assert card["command"] == "python -m lesson_lib " + " ".join(first) and "continued_with" not in card
    card = train(*first, "--resume")                                   # the same run resumed: nothing to add
    assert card["iterations"] == 2 and "continued_with" not in card
    longer = [*TINY, "--iters", "4", "--out", str(out)]
    card = train(*longer, "--resume", stop_at=3)
    assert card["iterations"] == 3 and card["command"] == "python -m lesson_lib " + " ".join(first)
    assert card["continued_with"] == ["python -m lesson_lib " + " ".join(longer)]    # without --resume
    card = train(*longer, "--resume")
    assert card["iterations"] == 4 and card["continued_with"] == ["python -m lesson_lib " + " ".join(longer)]
