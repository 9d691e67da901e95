"""``python -m lesson_lib train``: train a generator+critic pair from the command line (lesson 04)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from .checkpoints import read_checkpoint, write_card
from .config import get_device, seed_everything
from .data import DATASETS, load_dataset
from .models import Critic, Generator
from .viz import make_grid
from .wgan import TrainConfig, Trainer

# How many embedded images to generate for training (a fixed pool, like a real dataset).
EMBEDDED_POOL = 20_000


def training_images(dataset: str, size: int, data_root: str | None, seed: int, limit: int | None = None) -> torch.Tensor:
    """The training pool: embedded data use generator seed ``seed`` (held-out evaluation uses other
    seeds); CelebA uses files 000001-009000 only (009001-010000 are held out)."""
    if dataset == "celeba":
        from .data import load_celeba
        if data_root is None:
            raise ValueError("--data-root (a folder of img_align_celeba JPEGs) is required for celeba")
        return load_celeba(data_root, size=size, stop=9000, limit=limit)
    return load_dataset(dataset, limit or EMBEDDED_POOL, size=size, seed=seed, data_root=data_root)


def save_samples(generator: Generator, path: Path, n: int = 64, seed: int = 1234) -> None:
    from PIL import Image

    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        x = generator(z.to(next(generator.parameters()).device)).cpu()
    generator.train(was_training)
    Image.fromarray(make_grid(x, nrow=8)).save(path)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--z-dim", type=int, default=128)
    p.add_argument("--iters", type=int, required=True, help="generator iterations (the paper: 50000)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-critic", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="checkpoint path (.pt); samples go beside it (.png)")
    p.add_argument("--every", type=int, default=50, help="checkpoint every N iterations")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--data-root", default=None, help="CelebA folder or SVHN .mat file")
    p.add_argument("--limit", type=int, default=None, help="use at most N training images")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-flip", action="store_true", help="no random horizontal flips (the paper flips)")


def without_resume(command: str) -> str:
    """A command line without its ``--resume`` flag: the same run, however it was started."""
    return shlex.join(a for a in shlex.split(command) if a != "--resume")


def continued_with(saved: dict, command: str) -> list[str]:
    """The commands that continued a run with arguments other than its first command's (e.g. a larger
    ``--iters``): the saved list, plus ``command`` if it is new. Commands are compared as text without
    ``--resume``; each is listed once, in order of first use. (Where each took over is not recorded:
    the card's ``iterations`` says only how far the run got.)"""
    seen, first, command = list(saved.get("continued_with", [])), saved.get("command"), without_resume(command)
    return seen if first is None or command in (without_resume(first), *seen) else seen + [command]


def main(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    device = get_device()
    out = Path(args.out)
    images = training_images(args.dataset, args.size, args.data_root, args.seed, args.limit)
    command = without_resume("python -m lesson_lib " + shlex.join(sys.argv[1:]))
    meta = {"dataset": args.dataset, "command": command, "train_images": len(images), "device": str(device),
            "batch_size": args.batch_size}
    trainer = Trainer(Generator(args.size, args.dim, args.z_dim), Critic(args.size, args.dim), images,
                      TrainConfig(iters=args.iters, batch_size=args.batch_size, n_critic=args.n_critic,
                                  lr=args.lr, seed=args.seed, flip=not args.no_flip), meta=meta, device=device)
    if out.exists():
        if not args.resume:
            raise SystemExit(f"{out} exists: pass --resume to continue it, or choose another --out")
        trainer.resume(out)
        saved = read_checkpoint(out)["config"]
        meta["command"] = saved.get("command", command)
        continued = continued_with(saved, command)
        if continued:
            meta["continued_with"] = continued
        print(f"resumed {out} at iteration {trainer.iteration}")
    print(f"training {args.dataset} {args.size}px dim {args.dim} on {len(images)} images, device {device}")
    def on_checkpoint(t: Trainer) -> None:
        save_samples(t.generator, out.with_suffix(".png"))
        write_card(out)

    trainer.train(checkpoint=out, every=args.every, on_checkpoint=on_checkpoint)
    print(f"done: {trainer.iteration} iterations in {trainer.elapsed / 60:.1f} min -> {out}")
    return 0
