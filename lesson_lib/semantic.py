"""Semantic accuracy: does an inpainted image keep its meaning? (lesson 09; beyond the paper)

PSNR rewards blur: a smooth harmonic fill can beat a learned prior on PSNR while losing the digit
or the eye. The embedded datasets are labelled, so a small classifier trained on CLEAN images can
score what the visible context determines:

* house numbers: the digit string (its strokes cross the hole border, so the context determines
  it); the score is the exact-match rate of the read string;
* toy faces: whether the face holds a plausible set of features at all (a detector trained on
  clean faces against faces with an eye or the mouth erased: filled smoothly, blurred, filled
  with noise or with a flat colour), and
  attributes that stay partly visible (glasses, smiling, mouth open).

Classifier training uses data seed ``SEMANTIC_SEED`` (the GANs use 0, evaluation 10 000).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
import torch.nn.functional as F

from .config import CHECKPOINT_DIR
from .data import random_flip

SEMANTIC_SEED = 50_000   # training data of the scorers
VALIDATION_SEED = 60_000 # their clean validation images
SCORER_SIZE = 32
FACE_ATTRIBUTES = ("glasses", "smiling", "mouth_open")
# Regions (rows, cols as fractions of the side) of the features a corrupted face loses.
FACE_REGIONS = {"left_eye": (0.37, 0.57, 0.28, 0.48), "right_eye": (0.37, 0.57, 0.52, 0.72),
                "mouth": (0.62, 0.80, 0.36, 0.66)}


class SemanticNet(nn.Module):
    """A small CNN with one linear head per label (name -> number of classes). Batch norm is fine
    here: a classifier has no per-sample gradient penalty (lesson 03)."""

    def __init__(self, heads: dict[str, int], width: int = 32):
        super().__init__()
        self.heads_spec = dict(heads)
        c = width
        self.width = width

        def block(i: int, o: int) -> list[nn.Module]:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.features = nn.Sequential(
            *block(3, c), *block(c, c), nn.MaxPool2d(2),
            *block(c, 2 * c), nn.MaxPool2d(2),
            *block(2 * c, 4 * c), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.heads = nn.ModuleDict({k: nn.Linear(16 * c, n) for k, n in heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(x)
        return {k: head(h) for k, head in self.heads.items()}


# --- house numbers -------------------------------------------------------------------------------
DIGIT_HEADS = {"length": 3, "d0": 10, "d1": 11, "d2": 11}  # 10 = no digit at that position


def digit_targets(labels: list[str]) -> dict[str, torch.Tensor]:
    if any(not (1 <= len(s) <= 3 and s.isdigit()) for s in labels):
        raise ValueError("house-number labels must be strings of 1 to 3 digits")
    pad = [s + "x" * (3 - len(s)) for s in labels]
    t = {"length": torch.tensor([len(s) - 1 for s in labels])}
    for i in range(3):
        t[f"d{i}"] = torch.tensor([10 if s[i] == "x" else int(s[i]) for s in pad])
    return t


def read_digits(net: SemanticNet, images: torch.Tensor) -> list[str]:
    with torch.no_grad():
        out = net(images)
    length = out["length"].argmax(1) + 1
    digits = [out[f"d{i}"][:, :10].argmax(1) for i in range(3)]
    return ["".join(str(int(digits[i][k])) for i in range(int(length[k]))) for k in range(len(images))]


def reading_confidence(net: SemanticNet, images: torch.Tensor) -> torch.Tensor:
    """How sure the reader is of what ``read_digits`` reads, per image (N,): the probability of the
    read length times that of each read digit (heads taken as independent). Near 1 on clean embedded
    images; lesson 09 uses it to measure whether a generator writes readable digits."""
    with torch.no_grad():
        out = net(images)
    length = out["length"].softmax(1)
    n = length.argmax(1)
    confidence = length.max(1).values
    for i in range(3):
        p = out[f"d{i}"].softmax(1)[:, :10].max(1).values
        confidence = confidence * torch.where(n >= i, p, torch.ones_like(p))
    return confidence


# --- toy faces ------------------------------------------------------------------------------------
FACE_HEADS = {"intact": 2, **{a: 2 for a in FACE_ATTRIBUTES}}


def region_mask(size: int, region: str) -> torch.Tensor:
    """(size, size) mask, 1 = kept, 0 on the named feature region."""
    top, bottom, left, right = (round(f * size) for f in FACE_REGIONS[region])
    m = torch.ones(size, size)
    m[top:bottom, left:right] = 0
    return m


def corrupt_faces(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Remove an eye, both eyes or the mouth of each face: the region is filled smoothly (harmonic),
    blurred, filled with noise (raw or smoothed) or with one flat colour, chosen at random."""
    from .poisson import harmonic_inpaint

    size, out = images.shape[-1], images.clone()
    choices = [("left_eye",), ("right_eye",), ("left_eye", "right_eye"), ("mouth",)]
    blurred = F.avg_pool2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    for k in range(len(images)):
        regions = choices[int(torch.randint(len(choices), (1,), generator=generator))]
        m = torch.ones(size, size)
        for r in regions:
            m = m * region_mask(size, r)
        fill = int(torch.randint(5, (1,), generator=generator))
        if fill == 0:
            out[k] = harmonic_inpaint(images[k], m)
            continue
        if fill == 1:
            patch = blurred[k]
        elif fill in (2, 3):
            patch = torch.rand(images[k].shape, generator=generator) * 2 - 1
            if fill == 3:
                patch = F.avg_pool2d(patch[None], 3, stride=1, padding=1, count_include_pad=False)[0]
        else:
            patch = (images[k] * m).sum((1, 2), keepdim=True) / m.sum() * torch.ones_like(images[k])
        out[k] = m * images[k] + (1 - m) * patch
    return out


def face_targets(labels: list[dict]) -> dict[str, torch.Tensor]:
    return {a: torch.tensor([int(l[a]) for l in labels]) for a in FACE_ATTRIBUTES}


# --- training and scoring -------------------------------------------------------------------------
SCORED = ("house_numbers", "toy_faces")
HEADS = {"house_numbers": DIGIT_HEADS, "toy_faces": FACE_HEADS}


def labelled(dataset: str, n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, list]:
    """``n`` embedded images of ``dataset`` with their labels."""
    from .data import house_numbers, toy_faces

    if dataset not in SCORED:
        raise ValueError(f"no semantic scorer for {dataset!r}: choose one of {SCORED}")
    make = house_numbers if dataset == "house_numbers" else toy_faces
    return make(n, size=size, seed=seed, return_labels=True)


def scorer_data(dataset: str, n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, dict, dict]:
    """Images, targets and per-sample loss weights for the scorer of ``dataset``. Faces: ``n`` clean
    faces (intact = 1) and the same faces corrupted (intact = 0, attributes not trained on them)."""
    if dataset == "house_numbers":
        x, labels = labelled(dataset, n, seed, size)
        targets = digit_targets(labels)
        return x, targets, {k: torch.ones(n) for k in targets}
    if dataset == "toy_faces":
        clean, labels = labelled(dataset, n, seed, size)
        x = torch.cat([clean, corrupt_faces(clean, torch.Generator().manual_seed(seed))])
        attrs = face_targets(labels)
        targets = {"intact": torch.cat([torch.ones(n), torch.zeros(n)]).long(),
                   **{a: t.repeat(2) for a, t in attrs.items()}}
        weights = {"intact": torch.ones(2 * n), **{a: torch.cat([torch.ones(n), torch.zeros(n)]) for a in attrs}}
        return x, targets, weights
    raise ValueError(f"no semantic scorer for {dataset!r}: choose one of {SCORED}")




def train_scorer(dataset: str, n: int = 20_000, epochs: int = 8, batch_size: int = 64, seed: int = SEMANTIC_SEED,
                 size: int = SCORER_SIZE, progress: bool = False) -> SemanticNet:
    """Train the scorer of ``dataset`` on clean embedded images (and, for faces, corrupted ones):
    Adam, summed cross-entropies of the heads, learning rate decayed linearly to 0."""
    from tqdm.auto import tqdm

    x, targets, weights = scorer_data(dataset, n, seed, size)
    torch.manual_seed(seed)
    net = SemanticNet(HEADS[dataset]).train()
    g = torch.Generator().manual_seed(seed)
    steps = epochs * -(-len(x) // batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps)
    bar = tqdm(total=steps, disable=not progress, desc=f"scorer {dataset}")
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            xb = x[idx] if dataset == "house_numbers" else random_flip(x[idx], g)  # a face flipped keeps its labels
            out = net(xb)
            loss = sum((F.cross_entropy(out[k], targets[k][idx], reduction="none") * weights[k][idx]).sum()
                       for k in targets) / len(idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return net.eval()


def semantic_outcomes(net: SemanticNet, dataset: str, images: torch.Tensor, labels: list) -> dict[str, list[float]]:
    """Per image, in [0, 1]: ``digits`` (1 if the exact string is read) for house numbers; ``intact``
    (1 if judged to have plausible features) and ``attributes`` (the share of glasses, smiling and mouth
    open read right) for toy faces. Kept per image for paired comparisons between two fills."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if images.shape[-1] != SCORER_SIZE:          # the scorers read 32 px images
        images = F.interpolate(images, size=SCORER_SIZE, mode="area")
    net.eval()
    if dataset == "house_numbers":
        return {"digits": [float(p == t) for p, t in zip(read_digits(net, images), labels)]}
    with torch.no_grad():
        out = net(images)
    right = torch.stack([(out[a].argmax(1) == t).float() for a, t in face_targets(labels).items()])
    return {"intact": out["intact"].argmax(1).float().tolist(), "attributes": right.mean(0).tolist()}


def rates(outcomes: dict[str, list[float]]) -> dict[str, float]:
    """The mean of each per-image column: the semantic columns of the tables."""
    return {k: sum(v) / len(v) for k, v in outcomes.items()}


def semantic_scores(net: SemanticNet, dataset: str, images: torch.Tensor, labels: list) -> dict[str, float]:
    """The rates of ``semantic_outcomes`` over the images."""
    return rates(semantic_outcomes(net, dataset, images, labels))


# --- files ------------------------------------------------------------------------------------------
def scorer_path(dataset: str) -> Path:
    return CHECKPOINT_DIR / "scorers" / f"{dataset}.pt"


def save_scorer(net: SemanticNet, dataset: str, path: str | Path, info: dict) -> None:
    from .checkpoints import atomic_save, state_checksum

    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    atomic_save({"format": 1, "kind": "semantic_scorer", "dataset": dataset, "width": net.width,
                 "info": info, "state": state, "checksum": state_checksum(state)}, path)
    Path(path).with_suffix(".json").write_text(json.dumps({"dataset": dataset, "checksum": state_checksum(state),
                                                           **info}, indent=2) + "\n")


def load_scorer(dataset: str, path: str | Path | None = None) -> SemanticNet:
    """The shipped scorer of ``dataset`` (or the file ``path``), checksum verified, in eval mode."""
    from .checkpoints import CheckpointError, state_checksum

    path = Path(path) if path is not None else scorer_path(dataset)
    if not path.is_file():
        raise FileNotFoundError(f"no semantic scorer for {dataset!r} at {path}; make it with "
                                f"`python -m lesson_lib train-scorer --dataset {dataset}`")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "semantic_scorer" or ckpt.get("dataset") != dataset:
        raise CheckpointError(f"{path}: not a semantic scorer for {dataset!r}")
    if state_checksum(ckpt["state"]) != ckpt["checksum"]:
        raise CheckpointError(f"{path}: checksum mismatch, the weights are corrupt or were modified")
    net = SemanticNet(HEADS[dataset], width=ckpt["width"])
    net.load_state_dict(ckpt["state"])
    return net.eval()


def add_arguments(p) -> None:
    p.add_argument("--dataset", required=True, choices=SCORED)
    p.add_argument("--n", type=int, default=20_000, help="training images")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=None, help="default: data/checkpoints/scorers/<dataset>.pt")


def main(args) -> int:
    """Train a scorer, report its accuracy on clean held-out images, save it."""
    import shlex
    import sys
    import time

    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    net = train_scorer(args.dataset, n=args.n, epochs=args.epochs, progress=True)
    images, labels = labelled(args.dataset, 1000, VALIDATION_SEED)
    acc = semantic_scores(net, args.dataset, images, labels)
    info = {"command": "python -m lesson_lib " + shlex.join(sys.argv[1:]), "n": args.n, "epochs": args.epochs,
            "train_seed": SEMANTIC_SEED, "validation_seed": VALIDATION_SEED, "validation_clean_1000": acc,
            "wall_time_s": round(time.perf_counter() - start, 1)}
    out = Path(args.out) if args.out else scorer_path(args.dataset)
    save_scorer(net, args.dataset, out, info)
    print(f"clean held-out accuracy {acc}; saved {out}")
    return 0
