"""Datasets: two embedded stand-ins and the real CelebA / SVHN loaders (built in lesson 00).

The paper trains on CelebA faces and SVHN house numbers at 64x64 (Sec. 4). The course ships two
deterministic generators with the same kind of semantic structure, so every lesson runs offline:

* ``house_numbers``: SVHN-like crops, one to three centred digits in varied fonts and colours on
  textured backgrounds, neighbouring digits cut at the left/right border;
* ``toy_faces``: CelebA-like aligned faces with eyes, brows, nose, mouth, hair and varied pose.

Both return float tensors (N, 3, size, size) in [-1, 1] with size 32 (default) or 64. Image ``i``
depends only on ``(seed, i)``: ``house_numbers(n, seed=s)[:k]`` equals ``house_numbers(k, seed=s)``.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import check_int
from .viz import to_uint8  # noqa: F401  (re-exported: ``lesson_lib.data.to_uint8``)

SIZES = (32, 64)
DATASETS = ("house_numbers", "toy_faces", "celeba", "svhn")
_CHUNK = 256  # images rendered per batch (memory bound only; results do not depend on it)


def _check_size(size: int) -> int:
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return size


def _check_n(n: int) -> int:
    return check_int(n, "n")


def _image_rngs(seed: int, n: int, salt: int) -> list[np.random.Generator]:
    """One independent generator per image: image ``i`` sees only ``SeedSequence(seed, (salt, i))``."""
    seed = check_int(seed, "seed")
    return [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(salt, i))) for i in range(n)]


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-1, 1] (x to the right, y down), each (size, size)."""
    t = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    y, x = torch.meshgrid(t, t, indexing="ij")
    return x, y


def _col(v) -> torch.Tensor:
    """(n,) or (n,3) numbers -> tensor broadcastable against (n,3,H,W) or (n,H,W)."""
    t = torch.as_tensor(np.asarray(v), dtype=torch.float32)
    return t[:, :, None, None] if t.dim() == 2 else t[:, None, None]


def _luma(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]))


def _colour_with_luma(rng: np.random.Generator, luma: float, saturation: float) -> np.ndarray:
    """A random hue with the given luminance (approximately, after clipping to [0, 1])."""
    hue = rng.random(3)
    hue = hue - _luma(hue)
    return np.clip(luma + saturation * hue / (np.abs(hue).max() + 1e-6), 0.0, 1.0)


def _paint(canvas: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Alpha-composite ``colour`` (n,3,1,1) or (n,3,H,W) over ``canvas`` (n,3,H,W), in place;
    alpha (n,H,W) in [0, 1]."""
    return canvas.lerp_(colour.expand_as(canvas), alpha[:, None])


# --------------------------------------------------------------------------------------------
# house numbers (SVHN stand-in)
# --------------------------------------------------------------------------------------------

# Upright fonts with strokes that stay legible at 32 px (sans, bold sans, mono, serif; no italics):
# a small GAN learns their digits in a few thousand CPU iterations (lesson 04).
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif-Bold.ttf",
    "STIXGeneralBol.ttf",
)


@lru_cache(maxsize=4)
def _glyphs(height: int) -> tuple[tuple[np.ndarray, ...], ...]:
    """Coverage masks in [0, 1], ``[font][digit]`` of shape (height, width): each digit of each of
    matplotlib's bundled fonts, cropped to its ink and scaled to ``height`` pixels. Rendered once."""
    import matplotlib
    from PIL import Image, ImageDraw, ImageFont

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = []
    for name in FONT_FILES:
        font = ImageFont.truetype(str(font_dir / name), size=3 * height)
        digits = []
        for d in range(10):
            img = Image.new("L", (6 * height, 6 * height))
            ImageDraw.Draw(img).text((height, height), str(d), fill=255, font=font)
            img = img.crop(img.getbbox())
            width = max(1, round(img.width * height / img.height))
            img = img.resize((width, height), Image.Resampling.LANCZOS)
            digits.append(np.asarray(img, dtype=np.float32) / 255.0)
        fonts.append(tuple(digits))
    return tuple(fonts)


def _house_params(rng: np.random.Generator, n_fonts: int) -> dict:
    """Every random choice of one house-number image, drawn from that image's own generator."""
    p = {}
    p["font"] = int(rng.integers(n_fonts))
    n_centre = int(rng.choice([1, 2, 3], p=[0.35, 0.45, 0.2]))
    left, *centre, right = (int(d) for d in rng.integers(0, 10, size=n_centre + 2))
    p["centre"] = centre                                  # the label; the neighbours, cut at the border,
    p["left"] = [left] if rng.random() < 0.5 else []     # are context, at most one per side
    p["right"] = [right] if rng.random() < 0.5 else []
    p["gap"] = float(rng.uniform(0.04, 0.22))             # spacing in glyph heights
    p["height"] = float(rng.uniform(0.58, 0.8))          # digit height / image side
    p["aspect"] = float(rng.uniform(0.85, 1.2))          # horizontal stretch
    p["angle"] = float(rng.normal(0.0, 0.07))            # radians (about 4 degrees)
    p["shear"] = float(rng.normal(0.0, 0.08))
    p["shift"] = rng.uniform(-0.06, 0.06, size=2)        # in image sides
    bg_luma = float(rng.uniform(0.05, 0.95))
    delta = float(rng.uniform(0.45, 0.8))                # luminance contrast digit vs background
    lighter, darker = bg_luma + delta <= 1.0, bg_luma - delta >= 0.0
    if lighter and darker:
        lighter = bool(rng.random() < 0.5)
    elif not (lighter or darker):
        lighter = bg_luma < 0.5                          # the side with more room
    fg_luma = bg_luma + delta if lighter else bg_luma - delta
    p["bg"] = _colour_with_luma(rng, bg_luma, float(rng.uniform(0.0, 0.5)))
    p["bg2"] = np.clip(p["bg"] + rng.normal(0.0, 0.12, size=3), 0.0, 1.0)
    p["fg"] = _colour_with_luma(rng, float(np.clip(fg_luma, 0.0, 1.0)), float(rng.uniform(0.0, 0.5)))
    p["grad_angle"] = float(rng.uniform(0.0, 2 * math.pi))
    p["texture"] = float(rng.uniform(0.0, 0.06)) * rng.standard_normal((1, 1, 6, 6)).astype(np.float32)
    p["edge"] = rng.random() < 0.2                       # a plate border or wall near one side
    p["edge_angle"] = float(rng.uniform(0.0, 2 * math.pi))
    p["edge_offset"] = float(rng.uniform(0.55, 0.9))
    p["edge_colour"] = _colour_with_luma(rng, float(np.clip(bg_luma + rng.normal(0.0, 0.3), 0, 1)), 0.3)
    p["shadow"] = rng.random() < 0.15
    p["shadow_shift"] = rng.uniform(0.5, 1.5, size=2) * rng.choice([-1.0, 1.0], size=2)  # output px at 32
    p["blur"] = float(rng.uniform(0.0, 1.0)) ** 2
    p["noise"] = float(rng.uniform(0.0, 0.04))
    return p


def _house_layout(p: dict, glyphs, height: int, canvas: np.ndarray) -> float:
    """Paste the digits of one image into its text canvas (centre group centred); return the
    centre group's width in canvas pixels."""
    font = glyphs[p["font"]]
    gap = p["gap"] * height
    centre = [font[d] for d in p["centre"]]
    widths = [g.shape[1] for g in centre]
    centre_w = sum(widths) + gap * (len(centre) - 1)
    hc, wc = canvas.shape
    top = (hc - height) // 2
    x = wc / 2 - centre_w / 2
    placed = []
    for g in centre:
        placed.append((x, g))
        x += g.shape[1] + gap
    for d in p["right"]:
        placed.append((wc / 2 + centre_w / 2 + gap, font[d]))
    for d in p["left"]:
        placed.append((wc / 2 - centre_w / 2 - gap - font[d].shape[1], font[d]))
    for x0, g in placed:
        x0 = int(round(x0))
        a, b = max(x0, 0), min(x0 + g.shape[1], wc)
        if a < b:
            region = canvas[top:top + height, a:b]
            np.maximum(region, g[:, a - x0:b - x0], out=region)
    return centre_w


def _affine_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
    """``F.affine_grid(theta, [n, 1, size, size], align_corners=False)``, written out (faster on CPU)."""
    t = (torch.arange(size, dtype=torch.float32) + 0.5) * (2.0 / size) - 1.0
    col, row = t[None, None, :], t[None, :, None]
    gx = theta[:, 0, 0, None, None] * col + theta[:, 0, 1, None, None] * row + theta[:, 0, 2, None, None]
    gy = theta[:, 1, 0, None, None] * col + theta[:, 1, 1, None, None] * row + theta[:, 1, 2, None, None]
    return torch.stack([gx, gy], dim=-1)


def _box_blur(img: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over a k x k window (edges replicated), as separable sums of shifted copies."""
    h, w = img.shape[-2:]
    padded = F.pad(img, [k // 2] * 4, mode="replicate")
    rows = sum(padded[..., i:i + h, :] for i in range(k))
    return sum(rows[..., j:j + w] for j in range(k)) / (k * k)


def _house_batch(params: list[dict], size: int, rngs: list[np.random.Generator]) -> torch.Tensor:
    n = len(params)
    height = 3 * size // 2                                 # glyph height in canvas pixels
    glyphs = _glyphs(height)
    hc, wc = 2 * height, 4 * height
    canvas = np.zeros((n, hc, wc), np.float32)
    theta = np.zeros((n, 2, 3), np.float32)
    for i, p in enumerate(params):
        centre_w = _house_layout(p, glyphs, height, canvas[i])
        # forward map canvas px -> output px: scale s, stretch, shear, rotation
        s = min(p["height"] * size / height, 0.92 * size / (centre_w * p["aspect"]))
        c, si = math.cos(p["angle"]), math.sin(p["angle"])
        fwd = s * np.array([[c, -si], [si, c]]) @ np.array([[p["aspect"], p["shear"]], [0.0, 1.0]])
        inv = np.linalg.inv(fwd)                           # output px -> canvas px
        shift = -inv @ (p["shift"] * size)                 # canvas px offset of the view centre
        theta[i, 0] = [inv[0, 0] * size / wc, inv[0, 1] * size / wc, 2 * shift[0] / wc]
        theta[i, 1] = [inv[1, 0] * size / hc, inv[1, 1] * size / hc, 2 * shift[1] / hc]
    canvas_t = torch.from_numpy(canvas)[:, None]
    # sample at twice the resolution, then average 2x2: anti-aliased glyph edges
    grid = _affine_grid(torch.from_numpy(theta), 2 * size)
    ink = F.avg_pool2d(F.grid_sample(canvas_t, grid, align_corners=False), 2)[:, 0]
    # a drop shadow: the same ink seen from a view shifted by about one pixel (some images only)
    shadow = torch.zeros_like(ink)
    on = np.flatnonzero([p["shadow"] for p in params])
    if on.size:
        offsets = np.stack([params[i]["shadow_shift"] for i in on]) * (2.0 / 32)   # normalised units
        delta = torch.from_numpy((theta[on, :, :2] @ offsets[:, :, None])[:, :, 0]).float()
        shifted = grid[on] - delta[:, None, None]
        shadow[on] = F.avg_pool2d(F.grid_sample(canvas_t[on], shifted, align_corners=False), 2)[:, 0]

    x, y = _grid(size)
    ang = _col([p["grad_angle"] for p in params])
    ramp = (0.5 + 0.5 * (x * torch.cos(ang) + y * torch.sin(ang)) / math.sqrt(2)).clamp(0, 1)
    bg = _col(np.stack([p["bg"] for p in params]))
    bg2 = _col(np.stack([p["bg2"] for p in params]))
    img = bg + ramp[:, None] * (bg2 - bg)
    texture = torch.from_numpy(np.concatenate([p["texture"] for p in params]))
    img = img + F.interpolate(texture, size=(size, size), mode="bicubic", align_corners=False)
    e_ang = _col([p["edge_angle"] for p in params])
    e_dist = x * torch.cos(e_ang) + y * torch.sin(e_ang) - _col([p["edge_offset"] for p in params])
    edge = (0.5 + e_dist * size / 2).clamp(0, 1) * _col([float(p["edge"]) for p in params])
    img = _paint(img, edge, _col(np.stack([p["edge_colour"] for p in params])))
    img = _paint(img, 0.7 * shadow, _col(np.stack([p["fg"] * 0.2 for p in params])))
    img = _paint(img, ink, _col(np.stack([p["fg"] for p in params])))
    blurred = _box_blur(img, 3 if size == 32 else 5)
    img = img + _col([p["blur"] for p in params])[:, None] * (blurred - img)
    noise = torch.from_numpy(np.stack([r.standard_normal((3, size, size), dtype=np.float32) for r in rngs]))
    img = img + _col([p["noise"] for p in params])[:, None] * noise
    return (img * 2 - 1).clamp(-1, 1)


def house_numbers(n: int, size: int = 32, seed: int = 0, *, return_labels: bool = False):
    """``n`` SVHN-like house-number crops, float (n,3,size,size) in [-1, 1] (size 32 or 64).

    The centred one to three digits are the label; neighbouring digits may show, cut at the
    left/right border, as in SVHN's 32x32 crops. With ``return_labels=True`` returns
    ``(images, labels)`` where ``labels[i]`` is the centred number as a string, e.g. ``"47"``.
    """
    n, size = _check_n(n), _check_size(size)
    rngs = _image_rngs(seed, n, salt=1)
    params = [_house_params(r, len(FONT_FILES)) for r in rngs]
    out = torch.empty(n, 3, size, size)
    for a in range(0, n, _CHUNK):
        out[a:a + _CHUNK] = _house_batch(params[a:a + _CHUNK], size, rngs[a:a + _CHUNK])
    if return_labels:
        return out, ["".join(map(str, p["centre"])) for p in params]
    return out


# --------------------------------------------------------------------------------------------
# toy faces (CelebA stand-in)
# --------------------------------------------------------------------------------------------

SKIN_TONES = ((0.98, 0.84, 0.72), (0.94, 0.76, 0.62), (0.85, 0.64, 0.48), (0.72, 0.52, 0.36),
              (0.55, 0.38, 0.25), (0.40, 0.27, 0.18))
HAIR_COLOURS = {"black": (0.08, 0.07, 0.07), "dark_brown": (0.25, 0.15, 0.09), "brown": (0.45, 0.29, 0.15),
                "blond": (0.90, 0.76, 0.45), "red": (0.65, 0.27, 0.12), "grey": (0.70, 0.70, 0.70)}
HAIR_STYLES = ("bald", "short", "fringe", "long", "curly")
IRIS_COLOURS = ((0.25, 0.15, 0.08), (0.15, 0.30, 0.55), (0.20, 0.40, 0.25), (0.08, 0.06, 0.05))


def _face_params(rng: np.random.Generator) -> dict:
    """Every random choice of one face, drawn from that image's own generator."""
    p = {}
    p["skin_tone"] = int(rng.integers(len(SKIN_TONES)))
    p["skin"] = np.clip(np.array(SKIN_TONES[p["skin_tone"]]) + rng.normal(0, 0.025, 3), 0, 1)
    p["hair_colour"] = str(rng.choice(list(HAIR_COLOURS), p=[0.25, 0.25, 0.2, 0.15, 0.08, 0.07]))
    p["hair"] = np.clip(np.array(HAIR_COLOURS[p["hair_colour"]]) * rng.uniform(0.85, 1.15), 0, 1)
    p["hair_style"] = str(rng.choice(HAIR_STYLES, p=[0.08, 0.27, 0.2, 0.33, 0.12]))
    p["bg"] = 0.6 * rng.uniform(0.05, 0.95, 3) + 0.4 * rng.uniform(0.1, 0.9)   # muted colours
    p["bg2"] = np.clip(p["bg"] * rng.uniform(0.5, 1.1) + rng.normal(0, 0.08, 3), 0, 1)
    p["bg_angle"] = float(rng.uniform(0, 2 * math.pi))
    p["shirt"] = rng.uniform(0.05, 0.9, 3)
    p["centre"] = rng.normal(0.0, 0.03, 2)                # face shift (image half-widths)
    p["angle"] = float(rng.normal(0.0, 0.06))            # in-plane roll (radians)
    p["yaw"] = float(rng.normal(0.0, 0.03))              # features shifted inside the head
    p["rx"], p["ry"] = float(rng.uniform(0.5, 0.58)), float(rng.uniform(0.64, 0.72))
    p["eye_x"] = float(rng.uniform(0.2, 0.27))
    p["eye_y"] = float(rng.uniform(-0.17, -0.08))
    p["eye_size"] = float(rng.uniform(0.9, 1.15))
    p["iris"] = np.array(IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))])
    p["gaze"] = float(rng.normal(0.0, 0.012))
    p["eyes_open"] = bool(rng.random() < 0.85)
    p["brow_gap"] = float(rng.uniform(0.12, 0.16))
    p["brow_width"] = float(rng.uniform(0.04, 0.06))
    p["brow_tilt"] = float(rng.normal(0.0, 0.12))
    p["nose_len"] = float(rng.uniform(0.17, 0.24))
    p["nose_width"] = float(rng.uniform(0.05, 0.075))
    p["mouth_y"] = float(rng.uniform(0.3, 0.38))
    p["mouth_w"] = float(rng.uniform(0.15, 0.22))
    p["smiling"] = bool(rng.random() < 0.5)
    p["mouth_open"] = bool(rng.random() < 0.3)
    p["lips"] = np.clip(p["skin"] * np.array([0.85, 0.45, 0.45]) + rng.normal(0, 0.03, 3), 0, 1)
    p["glasses"] = bool(rng.random() < 0.15)
    p["frame"] = rng.uniform(0.0, 0.35, 3)
    p["light"] = float(rng.uniform(0.03, 0.12)) * float(rng.choice([-1.0, 1.0]))  # side lighting
    return p


def _smooth(d: torch.Tensor, size: int) -> torch.Tensor:
    """Coverage of a shape from its (approximate) signed distance ``d`` (< 0 inside), one pixel wide edge."""
    return (0.5 - d * (size / 2)).clamp(0, 1)


def _ellipse(u, v, cx, cy, rx, ry) -> torch.Tensor:
    """Approximate signed distance to an ellipse (Quilez's k0 (k0 - 1) / k1)."""
    du, dv = (u - cx) / rx, (v - cy) / ry
    k0 = torch.hypot(du, dv)
    k1 = torch.hypot(du / rx, dv / ry).clamp_min(1e-6)
    return k0 * (k0 - 1) / k1


def _segment(u, v, ax, ay, bx, by, r) -> torch.Tensor:
    """Signed distance to a capsule (segment a-b with radius r)."""
    pu, pv, eu, ev = u - ax, v - ay, bx - ax, by - ay
    t = ((pu * eu + pv * ev) / (eu * eu + ev * ev + 1e-9)).clamp(0, 1)
    return torch.sqrt((pu - t * eu) ** 2 + (pv - t * ev) ** 2) - r


def _arc(u, v, cx, cy, half_w, bend, r) -> torch.Tensor:
    """Signed distance (approx.) to a parabolic stroke v = cy + bend (1 - (u/half_w)^2) - bend/2."""
    t = ((u - cx) / half_w).clamp(-1, 1)
    curve = cy + bend * (1 - t * t) - bend / 2
    slope = -2 * bend * t / half_w
    dv = (v - curve) / torch.sqrt(1 + slope * slope)
    du = ((u - cx).abs() - half_w).clamp_min(0)
    return torch.sqrt(du * du + dv * dv) - r


def _face_batch(params: list[dict], size: int, rngs: list[np.random.Generator]) -> torch.Tensor:
    def g(key):  # one parameter for the whole batch, broadcastable against (n,H,W) or (n,3,H,W)
        return _col(np.stack([np.asarray(p[key], dtype=np.float32) for p in params]))

    n = len(params)
    x, y = _grid(size)
    ang = g("bg_angle")
    ramp = (0.5 + 0.5 * (x * torch.cos(ang) + y * torch.sin(ang)) / math.sqrt(2)).clamp(0, 1)
    img = g("bg") + ramp[:, None] * (g("bg2") - g("bg"))

    centre = np.stack([p["centre"] for p in params]).astype(np.float32)
    cx, cy = _col(centre[:, 0]), _col(centre[:, 1] + 0.06)
    a = g("angle")
    u0, v0 = x - cx, y - cy
    u, v = torch.cos(a) * u0 + torch.sin(a) * v0, -torch.sin(a) * u0 + torch.cos(a) * v0
    rx, ry = g("rx"), g("ry")
    skin, hair = g("skin"), g("hair")
    style = np.array([HAIR_STYLES.index(p["hair_style"]) for p in params])
    is_style = {s: _col((style == k).astype(np.float32)) for k, s in enumerate(HAIR_STYLES)}

    # behind the head: long hair, shoulders, neck, ears
    back = torch.minimum(_ellipse(u, v, 0.0, -0.04, rx + 0.14, ry + 0.1),
                         torch.maximum((u.abs() - rx - 0.14), (v - 0.85).abs() - 0.85))
    img = _paint(img, _smooth(back, size) * is_style["long"], hair * 0.8)
    img = _paint(img, _smooth(_ellipse(u, v, 0.0, ry + 0.65, 1.05, 0.55), size), g("shirt"))
    neck = torch.maximum(u.abs() - 0.2, (v - ry - 0.1).abs() - 0.3)
    img = _paint(img, _smooth(neck, size), skin * 0.8)
    ears = _ellipse(u.abs(), v, rx + 0.005, g("eye_y") + 0.1, 0.075, 0.13)
    img = _paint(img, _smooth(ears, size), skin * 0.9)

    # the face, shaded towards its rim and by a side light
    face = _ellipse(u, v, 0.0, 0.0, rx, ry)
    rim = ((u / rx) ** 2 + (v / ry) ** 2).clamp(0, 1)
    shade = (1 - 0.22 * rim ** 2 + g("light") * u / rx)[:, None]
    img = _paint(img, _smooth(face, size), skin * shade)

    # hair over the head: a cap above a hairline that depends on the style
    curly = is_style["curly"]
    cap = _ellipse(u, v, 0.0, -0.04 - 0.03 * curly, rx + 0.06 + 0.06 * curly, ry + 0.08 + 0.05 * curly)
    cap = cap + 0.025 * curly * torch.sin(14 * torch.atan2(v, u))
    r = (u / rx).abs()
    hairline = (is_style["short"] * (-0.42 + 0.38 * r ** 4) + is_style["fringe"] * (-0.29 + 0.3 * r ** 6)
                + is_style["long"] * (-0.47 + 0.45 * r ** 1.5) + curly * (-0.4 + 0.3 * r ** 4))
    cap_alpha = _smooth(torch.maximum(cap, v - hairline), size) * (1 - is_style["bald"])
    img = _paint(img, cap_alpha, hair)

    # eyes, brows, nose, mouth (shifted by the yaw)
    f = u - g("yaw")
    ex, ey, es = g("eye_x"), g("eye_y"), g("eye_size")
    fa = f.abs()
    open_ = g("eyes_open")
    sclera = _ellipse(fa, v, ex, ey, 0.1 * es, 0.062 * es)
    img = _paint(img, _smooth(sclera, size) * open_, _col(np.full((n, 3), 0.96, np.float32)))
    side = torch.sign(f)
    iris = torch.maximum(_ellipse(f - side * g("gaze"), v, side * ex, ey, 0.052 * es, 0.052 * es), sclera)
    img = _paint(img, _smooth(iris, size) * open_, g("iris") * 0.7)
    pupil = _ellipse(f - side * g("gaze"), v, side * ex, ey, 0.022 * es, 0.022 * es)
    img = _paint(img, _smooth(pupil, size) * open_, _col(np.zeros((n, 3), np.float32)))
    closed = _arc(fa, v, ex, ey + 0.01, 0.09 * es, 0.03, 0.022)
    img = _paint(img, _smooth(closed, size) * (1 - open_), skin * 0.35)
    tilt = g("brow_tilt")
    by = ey - g("brow_gap")
    brow = _segment(fa, v, ex - 0.09, by + 0.09 * tilt, ex + 0.09, by - 0.09 * tilt, g("brow_width") / 2)
    img = _paint(img, _smooth(brow, size), hair * 0.75)

    tip = ey + 0.08 + g("nose_len")
    nw = g("nose_width")
    dark_side = -0.035 * torch.sign(g("light"))           # the bridge casts a shadow away from the light
    bridge = _segment(f, v, dark_side, ey + 0.06, dark_side, tip - 0.03, 0.02)
    img = _paint(img, 0.6 * _smooth(bridge, size), skin * 0.7)
    img = _paint(img, 0.9 * _smooth(_ellipse(f, v, 0.0, tip, nw, 0.05), size), skin * 0.62)
    nostrils = _ellipse(f.abs(), v, 0.55 * nw, tip + 0.012, 0.022, 0.016)
    img = _paint(img, _smooth(nostrils, size), skin * 0.35)

    my, mw = g("mouth_y"), g("mouth_w")
    bend = 0.005 + 0.06 * g("smiling")
    mouth_open = g("mouth_open")
    lips = _arc(f, v, 0.0, my, mw, bend, 0.03)
    img = _paint(img, _smooth(lips, size) * (1 - mouth_open), g("lips"))
    hole_ry = 0.05 + 0.03 * g("smiling")
    lips_open = _ellipse(f, v, 0.0, my + 0.02, mw * 0.85 + 0.02, hole_ry + 0.025)
    img = _paint(img, _smooth(lips_open, size) * mouth_open, g("lips"))
    hole = _ellipse(f, v, 0.0, my + 0.02, mw * 0.85, hole_ry)
    img = _paint(img, _smooth(hole, size) * mouth_open, _col(np.tile([0.25, 0.05, 0.05], (n, 1))))
    teeth = torch.maximum(hole, v - my)
    img = _paint(img, _smooth(teeth, size) * mouth_open * g("smiling"), _col(np.full((n, 3), 0.95, np.float32)))

    rim_r = 0.135 * es
    lens = (torch.sqrt((fa - ex) ** 2 + (v - ey) ** 2) - rim_r).abs() - 0.018
    bridge_g = _segment(f, v, -(ex - rim_r), ey - 0.02, ex - rim_r, ey - 0.02, 0.018)
    img = _paint(img, _smooth(torch.minimum(lens, bridge_g), size) * g("glasses"), g("frame"))

    noise = torch.from_numpy(np.stack([r.standard_normal((3, size, size), dtype=np.float32) for r in rngs]))
    img = img + 0.015 * noise
    return (img * 2 - 1).clamp(-1, 1)


FACE_LABEL_KEYS = ("hair_style", "hair_colour", "skin_tone", "smiling", "mouth_open", "eyes_open", "glasses")


def toy_faces(n: int, size: int = 32, seed: int = 0, *, return_labels: bool = False):
    """``n`` CelebA-like aligned toy faces, float (n,3,size,size) in [-1, 1] (size 32 or 64).

    Each face has eyes (open or closed), brows, nose, mouth (neutral, smiling, open), ears, hair
    (one of ``HAIR_STYLES``), optional glasses, a small pose change and a gradient background.
    The centred square hole of half the side covers the nose and most of the eyes and mouth.
    With ``return_labels=True`` returns ``(images, labels)``, ``labels[i]`` a dict with the keys
    ``FACE_LABEL_KEYS``: hair_style (str), hair_colour (str), skin_tone (index into
    ``SKIN_TONES``, light to dark), smiling, mouth_open, eyes_open, glasses (bools).
    """
    n, size = _check_n(n), _check_size(size)
    rngs = _image_rngs(seed, n, salt=2)
    params = [_face_params(r) for r in rngs]
    out = torch.empty(n, 3, size, size)
    for a in range(0, n, _CHUNK):
        out[a:a + _CHUNK] = _face_batch(params[a:a + _CHUNK], size, rngs[a:a + _CHUNK])
    if return_labels:
        return out, [{k: p[k] for k in FACE_LABEL_KEYS} for p in params]
    return out


# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------

def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image of (N,C,H,W) left-right with probability 1/2 (the paper's augmentation, Sec. 4);
    the coins come from ``generator`` (never from the global RNG)."""
    if images.dim() != 4:
        raise ValueError(f"expected (N,C,H,W) images, got shape {tuple(images.shape)}")
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"random_flip needs a torch.Generator for its coins, got {generator!r}")
    flip = (torch.rand(images.shape[0], generator=generator, device=generator.device) < 0.5).to(images.device)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


# --------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def celeba_crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The DCGAN centre crop of ``img_align_celeba``: 108x108 out of 178x218 at offset (35, 55),
    scaled with the image (54x54 at (17.5, 27.5) for the 89x109 half-resolution copy).
    Returns (left, top, right, bottom) in pixels, as PIL's ``box``."""
    scale = min(width / 178, height / 218)
    side = 108 * scale
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def _select_files(files: list[Path], start: int | None, stop: int | None) -> list[Path]:
    """Files with 1-based index in [start, stop] (both inclusive): the number in the file name when
    every name is a number (``000001.jpg``), else the position in name order."""
    if start is None and stop is None:
        return files
    numeric = all(f.stem.isdigit() for f in files)
    index = [int(f.stem) if numeric else k + 1 for k, f in enumerate(files)]
    lo = 1 if start is None else start
    hi = math.inf if stop is None else stop
    return [f for f, i in zip(files, index) if lo <= i <= hi]


def load_celeba(root: str | Path, size: int = 64, limit: int | None = None,
                start: int | None = None, stop: int | None = None) -> torch.Tensor:
    """A folder of ``img_align_celeba``-style images -> float (N,3,size,size) in [-1, 1].

    Files (.jpg/.jpeg/.png) are taken in file-name order; ``start``/``stop`` keep the 1-based
    indices start..stop inclusive (the number in the name, e.g. ``009001.jpg`` is 9001, or the
    position when names are not numbers), then ``limit`` keeps the first ``limit``. Each image
    gets the DCGAN centre crop (``celeba_crop_box``) and a Lanczos resize to ``size`` x ``size``.
    """
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"CelebA folder {root} does not exist (or is not a folder)")
    size = check_int(size, "size", 1)
    files = sorted(f for f in root.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"CelebA folder {root} contains no .jpg/.jpeg/.png images")
    files = _select_files(files, start, stop)
    if not files:
        raise ValueError(f"no image in {root} with index in [{start}, {stop}]")
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        files = files[:limit]
    out = np.empty((len(files), size, size, 3), np.uint8)
    for k, path in enumerate(files):
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                out[k] = np.asarray(im.resize((size, size), Image.Resampling.LANCZOS, box=celeba_crop_box(*im.size)))
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"cannot read image {path}: {err}") from err
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 127.5 - 1


def load_svhn(mat_path: str | Path, limit: int | None = None, *, size: int = 32, return_labels: bool = False):
    """The official SVHN ``train_32x32.mat`` / ``test_32x32.mat`` -> float (N,3,size,size) in [-1, 1].

    ``X`` is (32,32,3,N) uint8 and ``y`` (N,1) with 10 standing for the digit 0. ``size=64``
    upsamples bicubically (the paper works at 64x64). With ``return_labels=True`` returns
    ``(images, labels)``, labels an int64 tensor of digits 0..9.
    """
    import scipy.io

    mat_path = Path(mat_path)
    if not mat_path.is_file():
        raise FileNotFoundError(f"SVHN file {mat_path} does not exist")
    size = _check_size(size)
    try:
        mat = scipy.io.loadmat(mat_path)
    except Exception as err:  # scipy raises several types for a file that is not a .mat
        raise ValueError(f"cannot read {mat_path} as a MATLAB .mat file: {err}") from err
    missing = [k for k in ("X", "y") if k not in mat]
    if missing:
        raise ValueError(f"{mat_path} lacks the key(s) {missing}: expected 'X' (32,32,3,N) and 'y' (N,1)")
    X, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise ValueError(f"{mat_path}: 'X' has shape {X.shape}, expected (32, 32, 3, N)")
    if X.dtype != np.uint8:
        raise ValueError(f"{mat_path}: 'X' holds {X.dtype} pixels, expected uint8 (0..255) as in the official files")
    if y.shape[0] != X.shape[3]:
        raise ValueError(f"{mat_path}: 'y' has {y.shape[0]} labels for {X.shape[3]} images")
    if y.size and (y.min() < 0 or y.max() > 10):
        raise ValueError(f"{mat_path}: labels must be in 0..10 (10 = digit 0), got {y.min()}..{y.max()}")
    if limit is not None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        X, y = X[..., :limit], y[:limit]
    images = torch.from_numpy(np.ascontiguousarray(X.transpose(3, 2, 0, 1))).float() / 127.5 - 1
    if size != 32:
        images = F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    if return_labels:
        return images, torch.from_numpy((y % 10).astype(np.int64))
    return images


def load_dataset(name: str, n: int, size: int = 32, seed: int = 0, data_root: str | Path | None = None) -> torch.Tensor:
    """One entry point for every dataset of the course: ``house_numbers`` and ``toy_faces``
    (embedded, ``seed`` applies), ``celeba`` (``data_root`` = folder of JPEGs) and ``svhn``
    (``data_root`` = the .mat file); the real ones return their first ``n`` images."""
    if name == "house_numbers":
        return house_numbers(n, size=size, seed=seed)
    if name == "toy_faces":
        return toy_faces(n, size=size, seed=seed)
    if name in ("celeba", "svhn"):
        if data_root is None:
            raise ValueError(f"dataset {name!r} needs data_root (CelebA: a folder of JPEGs; SVHN: a .mat file)")
        if name == "celeba":
            return load_celeba(data_root, size=size, limit=n)
        return load_svhn(data_root, limit=n, size=size)
    raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASETS)}")
