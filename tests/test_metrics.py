"""MSE, PSNR, SSIM (Eq. 10; lesson 09) against skimage.metrics."""
import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from lesson_lib.masks import central_square, random_mask, three_squares
from lesson_lib.metrics import mse, psnr, psnr_from_mse, semantic_accuracy, ssim, ssim_map


def to_255(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> (H, W, C) float64 on 0..255, as skimage wants it."""
    return ((x.double().numpy() + 1) * 127.5).transpose(1, 2, 0)


def sk_ssim(a, b, full=False):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=-1, full=full)


def structured(n: int, size: int, seed: int) -> torch.Tensor:
    """Smooth ramps, a disc and stripes, plus noise: images with real local structure."""
    g = torch.Generator().manual_seed(seed)
    i, j = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    out = []
    for _ in range(n):
        a, b, r = torch.rand(3, generator=g)
        disc = ((i - a + 0.5) ** 2 + (j - b + 0.5) ** 2 < (0.2 + 0.3 * r) ** 2).float()
        chans = [0.6 * i * a - 0.4 * j, disc - 0.5, 0.5 * torch.sin(8 * (i + j) * (0.5 + b))]
        img = torch.stack(chans) + 0.1 * torch.randn(3, size, size, generator=g)
        out.append(img.clamp(-1, 1))
    return torch.stack(out)


@pytest.fixture(params=["random", "structured"])
def pair(request):
    g = torch.Generator().manual_seed(1)
    if request.param == "random":
        x = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
        y = (x + 0.3 * torch.randn(3, 3, 32, 32, generator=g)).clamp(-1, 1)
    else:
        x = structured(3, 32, seed=2)
        y = (structured(3, 32, seed=2) * 0.8 + 0.1 * torch.randn(3, 3, 32, 32, generator=g)).clamp(-1, 1)
    return x, y


def test_paper_psnr_is_computed_from_the_mean_mse():
    # Table 1, (Yeh et al., 2017) row: CelebA and SVHN
    assert psnr_from_mse(872.8672) == pytest.approx(18.7213, abs=5e-5)
    assert psnr_from_mse(1535.8693) == pytest.approx(16.2673, abs=5e-5)
    assert torch.allclose(psnr_from_mse(torch.tensor([872.8672], dtype=torch.float64)),
                          torch.tensor([18.7213], dtype=torch.float64), atol=5e-5)
    assert psnr_from_mse(0.0) == float("inf")


def test_mse_and_psnr_match_skimage(pair):
    x, y = pair
    m, p = mse(x, y), psnr(x, y)
    assert m.shape == p.shape == (3,) and m.dtype == torch.float64
    for n in range(3):
        a, b = to_255(x[n]), to_255(y[n])
        assert m[n].item() == pytest.approx(mean_squared_error(a, b), rel=1e-10)
        assert p[n].item() == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), rel=1e-10)


def test_ssim_matches_skimage(pair):
    x, y = pair
    s = ssim(x, y)
    assert s.shape == (3,)
    for n in range(3):
        assert s[n].item() == pytest.approx(sk_ssim(to_255(x[n]), to_255(y[n])), rel=1e-6)
    assert torch.allclose(ssim(x, x), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("shape", [(1, 40, 52), (3, 64, 64), (3, 11, 17)])
def test_ssim_map_matches_skimage_full(shape):
    g = torch.Generator().manual_seed(4)
    x = torch.rand(*shape, generator=g) * 2 - 1
    y = (x + 0.5 * torch.rand(*shape, generator=g) - 0.25).clamp(-1, 1)
    mssim, full = sk_ssim(to_255(x), to_255(y), full=True)
    np.testing.assert_allclose(ssim_map(x, y)[0].numpy().transpose(1, 2, 0), full, rtol=1e-6, atol=1e-9)
    assert ssim(x, y).item() == pytest.approx(mssim, rel=1e-6)


@pytest.mark.parametrize("mask", [central_square(32), three_squares(32)])
def test_hole_only_metrics(pair, mask):
    x, y = pair
    inside = mask.numpy() == 0
    m, p, s = mse(x, y, hole_of=mask), psnr(x, y, hole_of=mask), ssim(x, y, hole_of=mask)
    for n in range(3):
        a, b = to_255(x[n]), to_255(y[n])
        expected_mse = ((a - b) ** 2)[inside].mean()
        assert m[n].item() == pytest.approx(expected_mse, rel=1e-10)
        assert p[n].item() == pytest.approx(10 * np.log10(255**2 / expected_mse), rel=1e-10)
        _, full = sk_ssim(a, b, full=True)
        assert s[n].item() == pytest.approx(full[inside].mean(), rel=1e-6)


def test_hole_only_per_image_masks(pair):
    x, y = pair
    masks = random_mask(32, n=3, seed=5)
    for metric in (mse, psnr, ssim):
        batch = metric(x, y, hole_of=masks)
        single = torch.cat([metric(x[n], y[n], hole_of=masks[n, 0]) for n in range(3)])
        assert torch.allclose(batch, single)
    # the hole-only MSE only sees the hole: changing known pixels does not move it
    y2 = torch.where(masks == 1, x, y)
    assert torch.allclose(mse(x, y2, hole_of=masks), mse(x, y, hole_of=masks))
    assert torch.all(mse(x, y2) < mse(x, y))


def test_metric_errors():
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(ValueError, match="differ"):
        mse(x, x[:1])
    with pytest.raises(ValueError, match="outside"):
        psnr(x, x + 1.5)
    with pytest.raises(ValueError, match="NaN"):
        mse(x, torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="no hole"):
        mse(x, x, hole_of=torch.ones(16, 16))
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="labelled embedded dataset"):
        semantic_accuracy(x, ["1", "2"], "celeba")
