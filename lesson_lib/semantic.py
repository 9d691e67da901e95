"""Semantic accuracy: does an inpainted image keep its meaning? (lesson 09; beyond the paper)

PSNR rewards blur: a smooth harmonic fill can beat a learned prior on PSNR while losing the digit
or the eye. The embedded datasets are labelled, so a small classifier trained on CLEAN images can
score what the visible context determines:

* house numbers: the digit string (its strokes cross the hole border, so the context determines
  it); the score is the exact-match rate of the read string;
* toy faces: whether the face holds a plausible set of features at all (a detector trained on
  clean faces against faces with an eye or the mouth erased (filled smoothly) or blurred), and
  attributes that stay partly visible (glasses, smiling, mouth open).

Classifier training uses data seed ``SEMANTIC_SEED`` (the GANs use 0, evaluation 10 000).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

SEMANTIC_SEED = 50_000
FACE_ATTRIBUTES = ("glasses", "smiling", "mouth_open")
# Regions (rows, cols as fractions of the side) of the features a corrupted face loses.
FACE_REGIONS = {"left_eye": (0.37, 0.57, 0.28, 0.48), "right_eye": (0.37, 0.57, 0.52, 0.72),
                "mouth": (0.62, 0.80, 0.36, 0.66)}


class SemanticNet(nn.Module):
    """A small CNN with one linear head per label (name -> number of classes)."""

    def __init__(self, heads: dict[str, int], width: int = 32):
        super().__init__()
        self.heads_spec = dict(heads)
        c = width
        self.features = nn.Sequential(
            nn.Conv2d(3, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 4 * c, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
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


# --- toy faces ------------------------------------------------------------------------------------
FACE_HEADS = {"intact": 2, **{a: 2 for a in FACE_ATTRIBUTES}}


def region_mask(size: int, region: str) -> torch.Tensor:
    """(size, size) mask, 1 = kept, 0 on the named feature region."""
    top, bottom, left, right = (round(f * size) for f in FACE_REGIONS[region])
    m = torch.ones(size, size)
    m[top:bottom, left:right] = 0
    return m


def corrupt_faces(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Erase (harmonic fill) or blur an eye, both eyes or the mouth of each face."""
    from .poisson import harmonic_inpaint

    size, out = images.shape[-1], images.clone()
    choices = [("left_eye",), ("right_eye",), ("left_eye", "right_eye"), ("mouth",)]
    blurred = F.avg_pool2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    for k in range(len(images)):
        regions = choices[int(torch.randint(len(choices), (1,), generator=generator))]
        m = torch.ones(size, size)
        for r in regions:
            m = m * region_mask(size, r)
        if torch.rand(1, generator=generator) < 0.5:
            out[k] = harmonic_inpaint(images[k], m)
        else:
            out[k] = m * images[k] + (1 - m) * blurred[k]
    return out


def face_targets(labels: list[dict]) -> dict[str, torch.Tensor]:
    return {a: torch.tensor([int(l[a]) for l in labels]) for a in FACE_ATTRIBUTES}


# --- training and scoring -------------------------------------------------------------------------
def train_scorer(dataset: str, n: int = 6000, epochs: int = 4, batch_size: int = 64, seed: int = SEMANTIC_SEED,
                 size: int = 32, progress: bool = False) -> SemanticNet:
    """Train the scorer of ``dataset`` on clean embedded images (and, for faces, corrupted ones)."""
    from .data import house_numbers, toy_faces

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if dataset == "house_numbers":
        x, labels = house_numbers(n, size=size, seed=seed, return_labels=True)
        targets, net = digit_targets(labels), SemanticNet(DIGIT_HEADS)
        weights = {k: torch.ones(n) for k in targets}
    elif dataset == "toy_faces":
        clean, labels = toy_faces(n, size=size, seed=seed, return_labels=True)
        x = torch.cat([clean, corrupt_faces(clean, g)])
        attrs = face_targets(labels)
        targets = {"intact": torch.cat([torch.ones(n), torch.zeros(n)]).long(),
                   **{a: t.repeat(2) for a, t in attrs.items()}}
        weights = {"intact": torch.ones(2 * n), **{a: torch.cat([torch.ones(n), torch.zeros(n)]) for a in attrs}}
        net = SemanticNet(FACE_HEADS)
    else:
        raise ValueError(f"no semantic scorer for {dataset!r}: choose house_numbers or toy_faces")
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    from tqdm.auto import tqdm
    for _ in tqdm(range(epochs), disable=not progress, desc=f"scorer {dataset}"):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            out = net(x[idx])
            loss = sum((F.cross_entropy(out[k], targets[k][idx], reduction="none") * weights[k][idx]).sum()
                       for k in targets) / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval()


def semantic_scores(net: SemanticNet, dataset: str, images: torch.Tensor, labels: list) -> dict[str, float]:
    """Rates in [0, 1]: ``digits`` (exact string) for house numbers; ``intact`` (judged to have
    plausible features) and each attribute's accuracy for toy faces."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if dataset == "house_numbers":
        return {"digits": sum(p == t for p, t in zip(read_digits(net, images), labels)) / len(labels)}
    with torch.no_grad():
        out = net(images)
    scores = {"intact": out["intact"].argmax(1).float().mean().item()}
    for a, t in face_targets(labels).items():
        scores[a] = (out[a].argmax(1) == t).float().mean().item()
    return scores
