"""Masks and the weights W of Eq. 5 (lesson 05), checked against a direct pixel loop."""
import numpy as np
import pytest
import torch

from lesson_lib.masks import (central_square, check_mask, context_weights, pad_symmetric,
                              random_mask, three_squares)


def weights_loop(mask: np.ndarray, window: int, mode: str = "symmetric") -> np.ndarray:
    """Eq. 5 pixel by pixel, the border handled by numpy.pad(mode='symmetric')."""
    r = window // 2
    padded = np.pad(mask, r, mode=mode)
    out = np.zeros(mask.shape)
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            if mask[i, j] != 0:
                out[i, j] = (1 - padded[i:i + window, j:j + window]).sum() / window**2
    return out


@pytest.mark.parametrize("size", [8, 32, 64])
def test_central_square(size):
    m = central_square(size)
    assert m.shape == (size, size) and m.dtype == torch.float32
    s, side = size // 4, size // 2
    holes = (m == 0).nonzero()
    assert holes[:, 0].min() == s and holes[:, 0].max() == s + side - 1
    assert holes[:, 1].min() == s and holes[:, 1].max() == s + side - 1
    assert int((m == 0).sum()) == side * side
    assert torch.equal(m, m.flip(0)) and torch.equal(m, m.flip(1))      # centred: as many rows above as below


def test_central_square_refuses_an_odd_size():
    with pytest.raises(ValueError, match="even size"):
        central_square(33)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_three_squares_fraction_and_layout(size):
    m = three_squares(size)
    assert m.shape == (size, size)
    assert 0.17 <= float((m == 0).float().mean()) <= 0.23
    # three separate rectangles: 3 connected components of the hole
    from scipy.ndimage import label
    _, n_components = label((m == 0).numpy())
    assert n_components == 3


def test_three_squares_documented_positions():
    m = three_squares(32)
    expected = torch.ones(32, 32)
    for (t, b), (l, r) in [((8, 15), (5, 14)), ((21, 29), (10, 22)), ((11, 21), (23, 29))]:
        expected[t:b, l:r] = 0
    assert torch.equal(m, expected)
    m = three_squares(64)
    expected = torch.ones(64, 64)
    for (t, b), (l, r) in [((16, 30), (10, 28)), ((42, 58), (20, 44)), ((22, 42), (46, 58))]:
        expected[t:b, l:r] = 0
    assert torch.equal(m, expected)


def test_random_mask_seeded_and_batched():
    a, b = random_mask(32, seed=5), random_mask(32, seed=5)
    assert torch.equal(a, b)
    assert not torch.equal(a, random_mask(32, seed=6))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(random_mask(32, generator=g1), random_mask(32, generator=g2))
    batch = random_mask(32, n=4, seed=0)
    assert batch.shape == (4, 1, 32, 32)
    assert not torch.equal(batch[0], batch[1])
    assert set(batch.unique().tolist()) <= {0.0, 1.0} and (batch == 0).any()


def test_random_mask_rectangle_sizes():
    m = random_mask(40, n_rects=1, min_side=6, max_side=9, seed=3)
    rows, cols = (m == 0).nonzero().unbind(1)
    h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    assert 6 <= h <= 9 and 6 <= w <= 9 and int((m == 0).sum()) == h * w


def test_random_mask_bad_arguments():
    with pytest.raises(ValueError, match="exactly one"):
        random_mask(32, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="never uses the global RNG"):
        random_mask(32)
    with pytest.raises(ValueError, match="min_side"):
        random_mask(32, min_side=10, max_side=5)
    with pytest.raises(ValueError, match="no known pixel"):
        random_mask(8, n_rects=50, min_side=8, max_side=8, seed=0)
    with pytest.raises(ValueError, match="min_side must be an int"):
        random_mask(32, min_side=2.5, seed=0)
    with pytest.raises(ValueError, match="max_side must be an int"):
        random_mask(32, max_side=True, seed=0)
    with pytest.raises(ValueError, match="seed must be an int"):
        random_mask(32, seed=1.5)


def test_pad_symmetric_matches_numpy():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    for r in (1, 2, 5):
        expected = np.pad(x.numpy(), ((0, 0), (0, 0), (r, r), (r, r)), mode="symmetric")
        assert np.array_equal(pad_symmetric(x, r).numpy(), expected)


@pytest.mark.parametrize("window", [1, 3, 7, 9])
@pytest.mark.parametrize("maker", [central_square, three_squares, lambda s: random_mask(s, seed=2)])
def test_context_weights_against_pixel_loop(window, maker):
    m = maker(20)
    w = context_weights(m, window)
    assert w.shape == m.shape
    np.testing.assert_allclose(w.numpy(), weights_loop(m.numpy(), window), atol=1e-6)


def test_context_weights_border_is_symmetric_not_reflect():
    # a hole touching the border: 'symmetric' and 'reflect' padding give different weights
    m = torch.ones(10, 10)
    m[0, 3:6] = 0
    w = context_weights(m, 7).numpy()
    np.testing.assert_allclose(w, weights_loop(m.numpy(), 7, "symmetric"), atol=1e-6)
    assert not np.allclose(w, weights_loop(m.numpy(), 7, "reflect"), atol=1e-3)


def test_context_weights_properties_and_batch():
    masks = random_mask(24, n=3, seed=1)
    w = context_weights(masks)
    assert w.shape == (3, 1, 24, 24)
    assert torch.all(w[masks == 0] == 0) and w.min() >= 0 and w.max() <= 1
    for k in range(3):
        assert torch.allclose(w[k, 0], context_weights(masks[k, 0]))
    # known pixels far from any hole get weight 0, pixels touching the hole a positive weight
    m = central_square(32)
    w = context_weights(m)
    assert w[0, 0] == 0 and w[4, 16] == 0 and w[7, 7] > 0 and w[7, 16] > 0
    assert w[7, 16] == pytest.approx(3 * 7 / 49)  # 3 hole rows of the 7x7 window


def test_context_weights_bad_window():
    for window in (0, 2, -3, 3.0, True):
        with pytest.raises(ValueError, match="positive odd int"):
            context_weights(central_square(16), window)


def test_check_mask():
    image = torch.zeros(2, 3, 16, 16)
    m = check_mask(central_square(16), image)
    assert m.shape == (1, 1, 16, 16) and m.dtype == image.dtype
    assert check_mask(torch.ones(2, 1, 16, 16) > 0, image).shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match="binary"):
        check_mask(torch.full((16, 16), 0.5))
    with pytest.raises(ValueError, match=r"\(16, 16\).*\(2, 3, 8, 8\)"):
        check_mask(central_square(16), torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="no known pixel"):
        check_mask(torch.stack([torch.ones(16, 16), torch.zeros(16, 16)])[:, None])
    with pytest.raises(ValueError, match="shape"):
        check_mask(torch.ones(3, 16, 16))
    with pytest.raises(ValueError, match="3 masks for 2 images"):
        check_mask(torch.ones(3, 1, 16, 16), image)
