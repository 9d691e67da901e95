"""The ablation of the paper's Tables 1-2 on held-out images (lesson 09, ``python -m lesson_lib evaluate``).

Rows, all on the SAME generator and critic and from the same initial codes, so the table isolates
the loss (the paper's Yeh et al. rows also used a different, DCGAN, generator):

* Yeh et al. (2017): weighted contextual loss + 0.003 x their prior log(1 - D), no gradient loss;
* Yeh + gradient loss, with the paper's four (alpha, beta, eta) settings (their prior);
* the proposed loss (eq. 4, prior -D of eq. 8) with the same four settings;
* the proposed loss (0.1, 0.9, 0.5) without Poisson blending (the overlay);
* harmonic inpainting (the classical local method, no learning).

Columns: mean MSE, PSNR of the mean MSE, mean SSIM (whole image, as the paper) and hole-only PSNR
(of the mean hole MSE), all on the 0..255 scale.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import torch

from .config import ROOT_DIR
from .inpaint import PAPER, YEH, LossWeights, inpaint_with
from .masks import central_square, three_squares
from .metrics import mse, psnr_from_mse, ssim
from .poisson import harmonic_inpaint
from .semantic import rates

SETTINGS = ((0.1, 0.9, 1.0), (0.5, 0.5, 1.0), (0.1, 0.9, 0.5), (0.5, 0.5, 0.5))
MASKS = {"central": central_square, "three_squares": three_squares}
HELD_OUT_SEED = 10_000   # embedded data: training uses seed 0; image i depends only on (seed, i)

#: The paper's figures (Tables 1-2, CelebA and SVHN at 64 px): (MSE, PSNR, SSIM).
PAPER_TABLES = {
    "central": {
        "Yeh et al. (2017)": {"celeba": (872.8672, 18.7213, 0.9071), "svhn": (1535.8693, 16.2673, 0.4925)},
        "Yeh + gradient (0.1, 0.9, 1.0)": {"celeba": (832.9295, 18.9247, 0.9087), "svhn": (1566.8592, 16.1805, 0.4775)},
        "Yeh + gradient (0.5, 0.5, 1.0)": {"celeba": (862.9393, 18.7710, 0.9117), "svhn": (1635.2378, 15.9950, 0.4931)},
        "Yeh + gradient (0.1, 0.9, 0.5)": {"celeba": (794.3374, 19.1308, 0.9130), "svhn": (1472.6770, 16.4438, 0.5041)},
        "Yeh + gradient (0.5, 0.5, 0.5)": {"celeba": (876.9104, 18.7013, 0.9063), "svhn": (1587.2998, 16.1242, 0.4818)},
        "Proposed (0.1, 0.9, 1.0)": {"celeba": (855.3476, 18.8094, 0.9158), "svhn": (631.0078, 20.1305, 0.8169)},
        "Proposed (0.5, 0.5, 1.0)": {"celeba": (785.2562, 19.1807, 0.9196), "svhn": (743.8718, 19.4158, 0.8030)},
        "Proposed (0.1, 0.9, 0.5)": {"celeba": (862.4890, 18.7733, 0.9135), "svhn": (622.9391, 20.1863, 0.8005)},
        "Proposed (0.5, 0.5, 0.5)": {"celeba": (833.9951, 18.9192, 0.9146), "svhn": (703.8026, 19.6563, 0.8000)},
    },
    "three_squares": {
        "Yeh et al. (2017)": {"celeba": (622.1092, 20.1921, 0.9087), "svhn": (1531.4601, 16.2797, 0.4791)},
        "Yeh + gradient (0.1, 0.9, 1.0)": {"celeba": (584.3051, 20.4644, 0.9067), "svhn": (1413.7107, 16.6272, 0.4875)},
        "Yeh + gradient (0.5, 0.5, 1.0)": {"celeba": (600.9579, 20.3424, 0.9080), "svhn": (1427.5251, 16.5850, 0.4889)},
        "Yeh + gradient (0.1, 0.9, 0.5)": {"celeba": (580.8126, 20.4904, 0.9115), "svhn": (1446.3560, 16.5281, 0.5120)},
        "Yeh + gradient (0.5, 0.5, 0.5)": {"celeba": (563.4620, 20.6222, 0.9103), "svhn": (1329.8546, 16.8928, 0.4974)},
        "Proposed (0.1, 0.9, 1.0)": {"celeba": (424.7942, 21.8490, 0.9281), "svhn": (168.9121, 25.8542, 0.8960)},
        "Proposed (0.5, 0.5, 1.0)": {"celeba": (380.4035, 22.3284, 0.9314), "svhn": (221.7906, 24.6714, 0.9018)},
        "Proposed (0.1, 0.9, 0.5)": {"celeba": (321.3023, 23.0617, 0.9341), "svhn": (154.5582, 26.2399, 0.8969)},
        "Proposed (0.5, 0.5, 0.5)": {"celeba": (411.8664, 21.9832, 0.9292), "svhn": (171.7974, 25.7806, 0.8939)},
    },
}


def loss_rows() -> dict[str, LossWeights]:
    """The searched rows of Tables 1-2, in the paper's order."""
    rows = {"Yeh et al. (2017)": YEH}
    rows.update({f"Yeh + gradient {s}": LossWeights(*s, prior="yeh") for s in SETTINGS})
    rows.update({f"Proposed {s}": LossWeights(*s, prior="wgan") for s in SETTINGS})
    return rows


#: The eta values of the balance study (lesson 09): the paper's 0.5, a decade around it, and 0.25. The
#: weights W of eq. 5 live on a ring around the hole, so the sum of W is about 2.06x larger at 64 px
#: than at 32 px (central square); 0.25 keeps the paper's contextual-to-prior balance at 32 px.
BALANCE_ETAS = (0.05, 0.25, 0.5, 2.0)


def balance_rows() -> dict[str, LossWeights]:
    """The Yeh et al. row and the proposed loss (0.1, 0.9, eta) for each eta of ``BALANCE_ETAS``."""
    rows = {"Yeh et al. (2017)": YEH}
    rows.update({f"Proposed (0.1, 0.9, {eta})": LossWeights(0.1, 0.9, eta, prior="wgan") for eta in BALANCE_ETAS})
    return rows


def paper_rows() -> dict[str, LossWeights]:
    """Only the Yeh et al. row and the paper's choice (0.1, 0.9, 0.5)."""
    return {"Yeh et al. (2017)": YEH, "Proposed (0.1, 0.9, 0.5)": PAPER}


ROW_SETS = {"tables": loss_rows, "balance": balance_rows, "paper": paper_rows}


def score(result: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Table columns for a batch of inpainted images against the ground truth."""
    m = mse(result, truth).mean().item()
    hole_m = mse(result, truth, hole_of=mask).mean().item()
    return {"mse": m, "psnr": psnr_from_mse(m), "ssim": ssim(result, truth).mean().item(),
            "hole_psnr": psnr_from_mse(hole_m)}


def ablation(generator, critic, images: torch.Tensor, mask_name: str, steps: int = 1000, seed: int = 0,
             progress: bool = True, semantic=None, rows: dict[str, LossWeights] | None = None,
             per_image: dict | None = None, table: dict | None = None, after_row=None) -> dict[str, dict]:
    """Every row of the table (``rows``, default ``loss_rows()``), the proposed loss without Poisson
    blending when the paper's row is among them, and harmonic inpainting, for ``images`` (held out)
    with the named mask. A ``per_image`` dict is filled with each row's per-image MSE and SSIM
    (for paired comparisons: on how many images does one row beat another?). ``semantic`` is an
    optional callable (inpainted images) -> {name: per-image values in [0, 1]}: their means are added
    to each row, the values to ``per_image``.

    Resuming: rows already in ``table`` are not searched again (every row starts from the same codes,
    so a resumed table equals an uninterrupted one); ``after_row(table)`` is called after each search."""
    if mask_name not in MASKS:
        raise ValueError(f"unknown mask {mask_name!r}; choose one of {list(MASKS)}")
    mask = MASKS[mask_name](images.shape[-1])
    z0 = torch.randn(len(images), generator.z_dim, generator=torch.Generator().manual_seed(seed))
    table = {} if table is None else table

    def record(name: str, out: torch.Tensor) -> None:
        table[name] = score(out, images, mask)
        if per_image is not None:
            per_image[name] = {"mse": [round(v, 4) for v in mse(out, images).tolist()],
                               "ssim": [round(v, 6) for v in ssim(out, images).tolist()]}
        if semantic is not None:
            outcomes = semantic(out)
            table[name].update(rates(outcomes))
            if per_image is not None:
                per_image[name].update({k: [round(x, 4) for x in v] for k, v in outcomes.items()})

    for name, w in (rows if rows is not None else loss_rows()).items():
        if name in table:
            continue
        r = inpaint_with(generator, critic, images, mask, w, steps=steps, z_init=z0, progress=progress)
        record(name, r.blended)
        if name == "Proposed (0.1, 0.9, 0.5)":
            record("Proposed (0.1, 0.9, 0.5) without Poisson", r.overlay)
        if after_row is not None:
            after_row(table)
    record("Harmonic inpainting", harmonic_inpaint(images, mask).clamp(-1, 1))
    return table


def paired_vs_yeh(per_image: dict) -> dict[str, dict[str, int]]:
    """For each row: on how many images it has a lower MSE, and a higher SSIM, than the Yeh et al. row
    (a paired comparison: a mean can hide that a row wins on only a few images)."""
    yeh = per_image["Yeh et al. (2017)"]
    return {name: {"lower_mse": sum(a < b for a, b in zip(v["mse"], yeh["mse"])),
                   "higher_ssim": sum(a > b for a, b in zip(v["ssim"], yeh["ssim"]))}
            for name, v in per_image.items() if name != "Yeh et al. (2017)"}


def discordant(per_image: dict, row: str, other: str, key: str) -> tuple[int, int]:
    """For a yes/no semantic column (``digits``, ``intact``): on how many images only ``row`` scores 1,
    and on how many only ``other`` does. Images where both agree say nothing about which is better; an
    exact McNemar test is the sign test on these two counts, ``binomtest(a, a + b)``."""
    if key not in per_image[row] or key not in per_image[other]:
        raise KeyError(f"no per-image {key!r} for {row!r} and {other!r} (tables made before they were stored)")
    pairs = list(zip(per_image[row][key], per_image[other][key]))
    if any(v not in (0, 1) for pair in pairs for v in pair):
        raise ValueError(f"{key!r} is not a yes/no column")
    return sum(a > b for a, b in pairs), sum(b > a for a, b in pairs)


def format_table(table: dict[str, dict]) -> str:
    """The table as aligned text, one column per metric (semantic rates after MSE/PSNR/SSIM)."""
    cols = list(dict.fromkeys(c for row in table.values() for c in row))
    lines = [f"{'row':44s}" + "".join(f"{c:>11s}" for c in cols)]
    for name, row in table.items():
        lines.append(f"{name:44s}" + "".join(f"{row[c]:11.4f}" if c in row else f"{'-':>11s}" for c in cols))
    return "\n".join(lines)


def git_commit() -> str:
    """The checked-out commit of the course (``unknown`` outside a git clone)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT_DIR, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def add_arguments(p) -> None:
    p.add_argument("--dataset", required=True, choices=("house_numbers", "toy_faces", "celeba"))
    p.add_argument("--mask", required=True, choices=tuple(MASKS))
    p.add_argument("--n", type=int, default=64, help="held-out images")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="seed of the initial codes")
    p.add_argument("--checkpoint", default=None, help="default: the shipped <dataset>_32 checkpoint")
    p.add_argument("--celeba-root", default=None, help="CelebA JPEG folder (held-out files 009001-010000)")
    p.add_argument("--out", default=None, help="write the table as JSON here")
    p.add_argument("--rows", default="tables", choices=tuple(ROW_SETS),
                   help="tables: the rows of Tables 1-2; balance: the eta study; paper: Yeh and (0.1, 0.9, 0.5)")
    p.add_argument("--no-semantic", action="store_true", help="skip the semantic-accuracy columns")
    p.add_argument("--numbers-out", default=None,
                   help="also write the table without per-image values, with paired counts (for CelebA's licence)")
    p.add_argument("--resume", action="store_true",
                   help="continue the partial table in --out (it is written after every row)")


def _resume(out: Path, key: dict) -> tuple[dict, dict, dict]:
    """The rows, per-image values and provenance of the table that ``key`` (the run's settings) continues."""
    if not out.exists():
        return {}, {}, {}
    saved = json.loads(out.read_text())
    prov = saved["provenance"]
    differ = [k for k in key if prov.get(k) != key[k]]
    if differ:
        raise SystemExit(f"cannot resume {out}: it was made with a different {', '.join(differ)}")
    table, per_image = saved["table"], saved.get("per_image", {})
    table.pop("Harmonic inpainting", None)                 # always recomputed last (it is cheap)
    print(f"resuming {out}: {len(table)} rows done")
    return table, per_image, prov


def main(args) -> int:
    import shlex
    import sys

    from .checkpoints import load_checkpoint, pretrained_path, state_checksum
    from .data import load_celeba
    from .semantic import labelled, load_scorer, semantic_outcomes

    start = time.perf_counter()
    ck = load_checkpoint(args.checkpoint or pretrained_path(f"{args.dataset}_32"))
    g, c, cfg = ck["generator_model"].eval(), ck["critic_model"].eval(), ck["config"]
    # channels-last convolutions: the same numbers (to float rounding), about 1.3x faster searches
    # on one CPU thread (measured: dim 16, 200 images, 1.4-1.8 s -> 1.1-1.4 s per step)
    g, c = g.to(memory_format=torch.channels_last), c.to(memory_format=torch.channels_last)
    if args.dataset == "celeba":
        if not args.celeba_root:
            raise SystemExit("--celeba-root is required for --dataset celeba")
        images = load_celeba(args.celeba_root, size=g.size, start=9001, stop=10000, limit=args.n)
        data_seed = "files 009001-010000"
    else:
        images, labels = labelled(args.dataset, args.n, HELD_OUT_SEED, size=g.size)
        data_seed = HELD_OUT_SEED
    key = {"dataset": args.dataset, "mask": args.mask, "n": len(images), "steps": args.steps, "z_seed": args.seed,
           "held_out": data_seed, "rows": args.rows, "checkpoint_checksum": ck["checksum"]}
    semantic = None
    if args.dataset != "celeba" and not args.no_semantic:
        net = load_scorer(args.dataset)
        semantic = lambda out: semantic_outcomes(net, args.dataset, out, labels)  # noqa: E731
        key["scorer_checksum"] = state_checksum(net.state_dict())
    out = Path(args.out) if args.out else None
    if args.resume and out is None:
        raise SystemExit("--resume needs --out (the partial table to continue)")
    table, per_image, earlier = _resume(out, key) if args.resume else ({}, {}, {})
    command = "python -m lesson_lib " + shlex.join(sys.argv[1:])
    commit = git_commit()              # read once: the code that runs is the code checked out at the start
    first_commit = earlier.get("commit", commit)                    # where the table was started
    resumed_at = [*earlier.get("resumed_at", []), commit] if earlier else []   # the runs that continued it

    def write(table: dict, partial: bool, path: Path | None = out, numbers_only: bool = False) -> None:
        if path is None:
            return
        info = {"command": command, "commit": first_commit,
                "wall_time_s": round(earlier.get("wall_time_s", 0.0) + time.perf_counter() - start, 1),
                **key, "model": cfg}
        if resumed_at:
            info["resumed_at"] = resumed_at
        if partial:
            info["partial"] = True                             # a later --resume completes it
        result = {"provenance": info, "table": table}
        if numbers_only:
            result["paired_vs_yeh"] = paired_vs_yeh(per_image)
        else:
            result["per_image"] = per_image
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")

    table = ablation(g, c, images, args.mask, steps=args.steps, seed=args.seed, semantic=semantic,
                     rows=ROW_SETS[args.rows](), per_image=per_image, table=table,
                     after_row=lambda t: write(t, partial=True))
    print(format_table(table))
    if out is not None:
        write(table, partial=False)
        print(f"wrote {out}")
    if args.numbers_out:
        write(table, partial=False, path=Path(args.numbers_out), numbers_only=True)
        print(f"wrote {args.numbers_out} (no per-image values)")
    return 0
