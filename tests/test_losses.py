"""Eq. 6-8 (lessons 05-07) against independent pixel loops and numpy.gradient."""
import numpy as np
import pytest
import torch

from lesson_lib.losses import contextual_loss, gradient_loss, image_gradients, prior_loss
from lesson_lib.masks import central_square, random_mask, three_squares


def grad_loop(f: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The masked differences of Sec. 3.2 written pixel by pixel for one (H, W) channel."""
    h, w = f.shape
    gx, gy = np.zeros((h, w)), np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            for out, (a, b) in ((gx, ((i, j - 1), (i, j + 1))), (gy, ((i - 1, j), (i + 1, j)))):
                ok_a = 0 <= a[0] < h and 0 <= a[1] < w and known[a] == 1
                ok_b = 0 <= b[0] < h and 0 <= b[1] < w and known[b] == 1
                if ok_a and ok_b:
                    out[i, j] = (f[b] - f[a]) / 2
                elif ok_b:
                    out[i, j] = f[b] - f[i, j]
                elif ok_a:
                    out[i, j] = f[i, j] - f[a]
    return gx, gy


def weights_loop(mask: np.ndarray, window: int = 7) -> np.ndarray:
    r = window // 2
    padded = np.pad(mask.astype(np.float64), r, mode="symmetric")
    out = np.zeros(mask.shape)
    for i in range(mask.shape[0]):
        for j in range(mask.shape[1]):
            if mask[i, j]:
                out[i, j] = (1 - padded[i:i + window, j:j + window]).mean()
    return out


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * 2 - 1


def test_gradients_without_mask_are_numpy_gradient(images):
    gx, gy = image_gradients(images)
    np.testing.assert_allclose(gx.numpy(), np.gradient(images.numpy(), axis=-1), atol=1e-12)
    np.testing.assert_allclose(gy.numpy(), np.gradient(images.numpy(), axis=-2), atol=1e-12)


@pytest.mark.parametrize("mask", [central_square(16), three_squares(16), random_mask(16, seed=4)])
def test_gradients_match_pixel_loop(images, mask):
    gx, gy = image_gradients(images, mask)
    for n in range(2):
        for c in range(3):
            ex, ey = grad_loop(images[n, c].numpy(), mask.numpy())
            np.testing.assert_allclose(gx[n, c].numpy(), ex, atol=1e-12)
            np.testing.assert_allclose(gy[n, c].numpy(), ey, atol=1e-12)


def test_gradients_never_read_the_hole(images):
    mask = three_squares(16)
    changed = images.clone()
    changed[:, :, mask == 0] = torch.randn_like(changed[:, :, mask == 0])
    for a, b in zip(image_gradients(images, mask), image_gradients(changed, mask)):
        assert torch.equal(a[:, :, mask == 1], b[:, :, mask == 1])
    # and pixels with both neighbours known use numpy.gradient's central difference
    gx, _ = image_gradients(images, mask)
    both = (torch.roll(mask, 1, 1) == 1) & (torch.roll(mask, -1, 1) == 1)
    both[:, [0, -1]] = False
    ref = torch.from_numpy(np.gradient(images.numpy(), axis=-1))
    assert torch.allclose(gx[:, :, both], ref[:, :, both])
    assert not torch.allclose(gx, ref)  # the hole border does change something


def test_gradients_single_image_and_per_image_masks(images):
    masks = random_mask(16, n=2, seed=1)
    gx, gy = image_gradients(images, masks)
    for n in range(2):
        gx1, gy1 = image_gradients(images[n], masks[n, 0])
        assert gx1.shape == (3, 16, 16)
        assert torch.equal(gx1, gx[n]) and torch.equal(gy1, gy[n])


def test_contextual_loss_matches_loop(images):
    y = images[0:1].expand(2, -1, -1, -1).clone()
    for mask in (central_square(16), three_squares(16)):
        w = weights_loop(mask.numpy())
        loss = contextual_loss(images, y, mask)
        assert loss.shape == (2,)
        for n in range(2):
            expected = (w * mask.numpy() * np.abs(images[n].numpy() - y[n].numpy())).sum()
            assert loss[n].item() == pytest.approx(expected, rel=1e-10)
        assert loss[0] == 0  # identical images


def test_gradient_loss_matches_loop(images):
    y = torch.flip(images, dims=[0])
    mask = three_squares(16)
    w = weights_loop(mask.numpy())
    loss = gradient_loss(images, y, mask)
    for n in range(2):
        expected = 0.0
        for c in range(3):
            gxg, gyg = grad_loop(images[n, c].numpy(), mask.numpy())
            gxy, gyy = grad_loop(y[n, c].numpy(), mask.numpy())
            expected += (w * mask.numpy() * (np.abs(gxg - gxy) + np.abs(gyg - gyy))).sum()
        assert loss[n].item() == pytest.approx(expected, rel=1e-10)


def test_gradient_loss_ignores_a_constant_shift(images):
    # gradients do not see a brightness offset; the contextual loss does
    mask = central_square(16)
    gz = 0.5 * images                       # room for the offset inside [-1, 1]
    y = gz + 0.3
    assert torch.allclose(gradient_loss(gz, y, mask), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    assert torch.all(contextual_loss(gz, y, mask) > 0)


def test_losses_per_image_masks_and_explicit_weights(images):
    y = images.flip(-1)
    masks = random_mask(16, n=2, seed=3)
    for loss_fn in (contextual_loss, gradient_loss):
        batch = loss_fn(images, y, masks)
        single = torch.stack([loss_fn(images[n], y[n], masks[n, 0])[0] for n in range(2)])
        assert torch.allclose(batch, single)
        w = torch.rand(16, 16, dtype=torch.float64)
        expected = loss_fn(images, y, central_square(16), weights=w)
        w_rep = w.expand(2, 1, 16, 16)
        assert torch.allclose(expected, loss_fn(images, y, central_square(16), weights=w_rep))


def test_losses_are_differentiable(images):
    mask = three_squares(16)
    y = images[:1].detach()
    z = images[1:].clone().requires_grad_(True)
    for loss_fn in (contextual_loss, gradient_loss):
        assert torch.autograd.gradcheck(lambda t: loss_fn(t, y, mask), (z,))
        (grad,) = torch.autograd.grad(loss_fn(z, y, mask).sum(), z)
        assert torch.all(grad[:, :, mask == 0] == 0)  # the hole gets no gradient from Eq. 6 / 7


def test_loss_shape_errors(images):
    with pytest.raises(ValueError, match="differ"):
        contextual_loss(images, images[:1], central_square(16))
    with pytest.raises(ValueError, match="does not match"):
        gradient_loss(images, images, central_square(8))
    with pytest.raises(ValueError, match="weights of shape \\(8, 8\\)"):
        contextual_loss(images, images, central_square(16), weights=[[1.0] * 8] * 8)     # a list, too
    with pytest.raises(ValueError, match="weights must be >= 0"):
        contextual_loss(images, images, central_square(16), weights=-torch.ones(16, 16))


@pytest.mark.parametrize("loss", [contextual_loss, gradient_loss])
def test_losses_refuse_a_mask_without_hole(images, loss):
    masks = torch.stack([central_square(16), torch.ones(16, 16)])[:, None]   # image 1 has no hole
    with pytest.raises(ValueError, match="image 1 has no hole"):
        loss(images[:2], images[:2], masks)


@pytest.mark.parametrize("loss", [contextual_loss, gradient_loss])
def test_losses_reject_images_outside_the_convention(images, loss):
    as_bytes = ((images + 1) * 127.5).to(torch.uint8)
    with pytest.raises(ValueError, match="floating point"):
        loss(as_bytes, as_bytes, central_square(16))
    with pytest.raises(ValueError, match=r"y must lie in \[-1, 1\]"):
        loss(images, (images + 1) * 127.5, central_square(16))
    with pytest.raises(ValueError, match="NaN"):
        loss(images, torch.full_like(images, float("nan")), central_square(16))


def test_prior_loss():
    critic = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 1))
    gz = torch.randn(5, 3, 4, 4)
    loss = prior_loss(critic, gz)
    assert loss.shape == (5,)
    assert torch.allclose(loss, -critic(gz)[:, 0])
    assert prior_loss(critic, gz[0]).shape == (1,)
    with pytest.raises(ValueError, match="one score per image"):
        prior_loss(lambda t: t.mean(), gz)
