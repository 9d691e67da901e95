"""Eq. 9 (lesson 08): the sparse hole system against independent pixel loops and a dense solve."""
import numpy as np
import pytest
import torch

from lesson_lib.masks import central_square, random_mask, three_squares
from lesson_lib.poisson import cache_info, clear_cache, harmonic_inpaint, poisson_blend, seam_error


def neighbours(i, j, h, w):
    return [(a, b) for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)) if 0 <= a < h and 0 <= b < w]


def residual_loop(x, s, t, known):
    """Largest residual of the discrete Eq. 9 over hole pixels, one (H, W) channel."""
    h, w = known.shape
    worst = 0.0
    for i in range(h):
        for j in range(w):
            if known[i, j]:
                continue
            nbs = neighbours(i, j, h, w)
            lhs = len(nbs) * x[i, j] - sum(x[q] for q in nbs if not known[q])
            rhs = sum(t[q] for q in nbs if known[q]) + sum(s[i, j] - s[q] for q in nbs)
            worst = max(worst, abs(lhs - rhs))
    return worst


def dense_blend(s, t, known):
    """Eq. 9 as a dense system built pixel by pixel and solved with np.linalg.solve."""
    h, w = known.shape
    holes = [(i, j) for i in range(h) for j in range(w) if not known[i, j]]
    rank = {p: r for r, p in enumerate(holes)}
    a, b = np.zeros((len(holes), len(holes))), np.zeros(len(holes))
    for p in holes:
        nbs = neighbours(*p, h, w)
        a[rank[p], rank[p]] = len(nbs)
        for q in nbs:
            if known[q]:
                b[rank[p]] += t[q]
            else:
                a[rank[p], rank[q]] -= 1
            b[rank[p]] += s[p] - s[q]
    x = t.copy()
    for p, v in zip(holes, np.linalg.solve(a, b)):
        x[p] = v
    return x


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    source = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    target = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1
    return source, target


@pytest.mark.parametrize("mask", [central_square(16), three_squares(16), random_mask(16, seed=7)])
def test_own_gradients_give_the_target_back(pair, mask):
    _, target = pair
    assert torch.allclose(poisson_blend(target, target, mask), target, atol=1e-12)


def test_offset_guidance_recovers_the_truth(pair):
    # G(z) = truth + a brightness error: blending keeps its gradients and removes the error
    truth, _ = pair
    mask = central_square(16)
    overlay = truth * mask + (1 - mask) * 0.7
    assert torch.allclose(poisson_blend(truth + 0.25, overlay, mask), truth, atol=1e-12)


def _one_pixel(value: int) -> torch.Tensor:
    """A 16x16 mask that is ``1 - value`` everywhere but one pixel."""
    mask = torch.full((16, 16), float(1 - value))
    mask[5, 9] = value
    return mask


# the extremes of the banded factorisation: a 1x1 system, and a hole of all pixels but one
@pytest.mark.parametrize("mask", [central_square(16), three_squares(16), random_mask(16, seed=2),
                                  _one_pixel(0), _one_pixel(1)])
def test_discrete_equation_holds_on_the_hole(pair, mask):
    source, target = pair
    out = poisson_blend(source, target, mask)
    known = mask.numpy() > 0
    for n in range(2):
        for c in range(3):
            r = residual_loop(out[n, c].numpy(), source[n, c].numpy(), target[n, c].numpy(), known)
            assert r < 1e-12


def test_tiny_case_matches_dense_solve():
    g = torch.Generator().manual_seed(3)
    s = torch.rand(6, 6, generator=g, dtype=torch.float64)
    t = torch.rand(6, 6, generator=g, dtype=torch.float64)
    mask = torch.ones(6, 6)
    mask[1:4, 2:5] = 0
    mask[4:6, 0] = 0   # a second hole touching the border
    out = poisson_blend(s[None], t[None], mask)[0]
    np.testing.assert_allclose(out.numpy(), dense_blend(s.numpy(), t.numpy(), mask.numpy() > 0), atol=1e-12)


def test_known_pixels_unchanged_and_dtype(pair):
    source, target = pair
    mask = three_squares(16)
    out = poisson_blend(source.float(), target.float(), mask)
    assert out.dtype == torch.float32 and out.shape == target.shape
    assert torch.equal(out[:, :, mask == 1], target.float()[:, :, mask == 1])
    assert not torch.allclose(out[:, :, mask == 0], target.float()[:, :, mask == 0])


def test_harmonic_reproduces_a_ramp_inside():
    i, j = torch.meshgrid(torch.arange(20.0, dtype=torch.float64),
                          torch.arange(24.0, dtype=torch.float64), indexing="ij")
    ramp = (0.03 * i - 0.02 * j + 0.1).expand(3, 20, 24)
    mask = torch.ones(20, 24)
    mask[5:14, 6:17] = 0   # the hole does not touch the border
    assert torch.allclose(harmonic_inpaint(ramp, mask), ramp, atol=1e-12)
    # touching the border, nothing holds the ramp beyond it (no neighbour there): not reproduced
    mask[5:14, 6:] = 0
    assert (harmonic_inpaint(ramp, mask) - ramp).abs().max() > 1e-2


def test_harmonic_is_smooth_and_between_the_border_values(pair):
    _, target = pair
    mask = central_square(16)
    out = harmonic_inpaint(target, mask)
    hole = mask == 0
    ring = ~hole & (hole.roll(1, 0) | hole.roll(-1, 0) | hole.roll(1, 1) | hole.roll(-1, 1))  # known 4-neighbours
    inside, border = out[:, :, hole], target[:, :, ring]
    # maximum principle, per image and channel: the fill stays within the values on the hole's border
    assert (inside.amax(-1) <= border.amax(-1) + 1e-6).all() and (inside.amin(-1) >= border.amin(-1) - 1e-6).all()
    # discrete Laplace equation: every hole pixel is the mean of its four neighbours
    neighbours = (out.roll(1, -2) + out.roll(-1, -2) + out.roll(1, -1) + out.roll(-1, -1)) / 4
    assert torch.allclose(out[:, :, hole], neighbours[:, :, hole], atol=1e-5)


def test_cache_reuse_gives_identical_results(pair):
    source, target = pair
    mask = three_squares(16)
    clear_cache()
    first = poisson_blend(source, target, mask)
    misses = cache_info().misses
    second = poisson_blend(source, target, mask)
    assert cache_info().misses == misses and cache_info().hits >= 1
    assert torch.equal(first, second)


def test_batch_equals_per_image(pair):
    source, target = pair
    masks = torch.stack([three_squares(16), central_square(16)])[:, None]
    batch = poisson_blend(source, target, masks)
    for n in range(2):
        assert torch.allclose(batch[n], poisson_blend(source[n], target[n], masks[n, 0]), atol=1e-14)
    shared = poisson_blend(source, target, central_square(16))
    per_image = poisson_blend(source, target, central_square(16).expand(2, 1, 16, 16))
    assert torch.allclose(shared, per_image, atol=1e-14)


def test_no_hole_and_bad_masks(pair):
    source, target = pair
    out = poisson_blend(source, target, torch.ones(16, 16))
    assert torch.equal(out, target) and out.data_ptr() != target.data_ptr()
    mixed = torch.stack([torch.ones(16, 16), central_square(16)])[:, None]
    out = poisson_blend(source, target, mixed)
    assert torch.equal(out[0], target[0]) and not torch.equal(out[1], target[1])
    with pytest.raises(ValueError, match="no known pixel"):
        poisson_blend(source, target, torch.zeros(16, 16))
    with pytest.raises(ValueError, match="differ"):
        poisson_blend(source[:1], target, central_square(16))
    with pytest.raises(ValueError, match="does not match"):
        poisson_blend(source, target, central_square(8))
    with pytest.raises(ValueError, match="floating point"):
        poisson_blend(source, ((target + 1) * 127.5).to(torch.uint8), central_square(16))
    with pytest.raises(ValueError, match="NaN"):
        poisson_blend(torch.full_like(source, float("nan")), target, central_square(16))


def test_seam_error_matches_loop(pair):
    source, target = pair
    mask = three_squares(16)
    known = mask.numpy() > 0
    err = seam_error(source, mask)
    ref_err = seam_error(source, mask, reference=target)
    for n in range(2):
        x, r = source[n].numpy(), target[n].numpy()
        jumps, rel = [], []
        for i in range(16):
            for j in range(16):
                for q in ((i + 1, j), (i, j + 1)):
                    if q[0] < 16 and q[1] < 16 and known[i, j] != known[q]:
                        jumps += list(np.abs(x[:, i, j] - x[:, q[0], q[1]]))
                        rel += list(np.abs((x[:, i, j] - x[:, q[0], q[1]]) - (r[:, i, j] - r[:, q[0], q[1]])))
        assert err[n].item() == pytest.approx(np.mean(jumps), rel=1e-12)
        assert ref_err[n].item() == pytest.approx(np.mean(rel), rel=1e-12)
    with pytest.raises(ValueError, match="no hole"):
        seam_error(source, torch.ones(16, 16))


def test_blending_removes_the_seam(pair):
    truth, _ = pair
    mask = central_square(16)
    generated = truth + 0.4                       # right structure, wrong brightness
    overlay = truth * mask + generated * (1 - mask)
    blended = poisson_blend(generated, overlay, mask)
    before = seam_error(overlay, mask, reference=truth)
    after = seam_error(blended, mask, reference=truth)
    assert torch.all(before > 0.3) and torch.all(after < 1e-10)
