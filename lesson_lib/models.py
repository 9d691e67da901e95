"""The improved WGAN architecture of the paper (section 3.1, Fig. 3; built in lesson 03).

Residual generator and critic after Gulrajani et al.'s ResNet, with the paper's choices:
residual blocks in both networks, no fully connected stack (one linear layer to a 4x4 tensor in the
generator, one from the last 4x4 features to a scalar in the critic), batch norm in the generator but
layer norm in the critic (a per-sample gradient penalty needs per-sample outputs), ReLU everywhere and
tanh at the generator's output. The number of blocks follows the image size: log2(size) - 2.
"""
from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

SIZES = (32, 64, 128)


def check_size(size: int) -> int:
    """The number of residual blocks for ``size`` (4 -> size by doubling); ValueError otherwise."""
    if size not in SIZES:
        raise ValueError(f"image size {size!r} is not supported: choose one of {SIZES}")
    return int(math.log2(size)) - 2


def channel_multipliers(size: int) -> list[int]:
    """Channels (in units of ``dim``) from the 4x4 end to the full-size end: [8, 8, 4, 2, 1] at 64 px,
    [8, 4, 2, 1] at 32 px, as in Gulrajani et al.'s 64 px ResNet."""
    n = check_size(size)
    return [min(8, 2 ** (n - i)) for i in range(n + 1)]


class LayerNorm2d(nn.Module):
    """Layer norm over (C, H, W) of each sample with a per-channel scale and shift (Ba et al. 2016).

    This is ``nn.GroupNorm(1, C)`` and runs as ``F.group_norm`` (faster than the written-out formula in
    a critic step with the gradient penalty); lesson 03 writes it out (mean and biased variance over
    (C, H, W)) and compares.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"LayerNorm2d expects (N, C, H, W), got shape {tuple(x.shape)}")
        return F.group_norm(x, 1, self.weight, self.bias, self.eps)


def box_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The (k+1)x(k+1) kernel whose taps are the sums of each 2x2 window of a zero-padded kxk kernel."""
    return (F.pad(weight, (0, 1, 0, 1)) + F.pad(weight, (1, 0, 0, 1))
            + F.pad(weight, (0, 1, 1, 0)) + F.pad(weight, (1, 0, 1, 0)))


def _check_3x3(conv: nn.Conv2d) -> None:
    if (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups) != ((3, 3), (1, 1), (1, 1), (1, 1), 1):
        raise ValueError("conv_mean_pool and upsample_conv need a 3x3 convolution with stride 1, padding 1, "
                         f"no dilation and one group, got {conv}")


def conv_mean_pool(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``avg_pool2d(conv(x), 2)`` for a 3x3 ``conv`` with padding 1, as ONE stride-2 convolution (padding
    1) with the 4x4 kernel ``box_kernel(w) / 4``: the same function (equal up to float rounding) with
    16 instead of 4 x 9 = 36 multiplications per pooled output. Lesson 03 derives it."""
    _check_3x3(conv)
    return F.conv2d(x, box_kernel(conv.weight) / 4, conv.bias, stride=2, padding=1)


def upsample_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(nearest_upsample(x, 2))`` for a 3x3 ``conv`` with padding 1, as ONE stride-2 transposed
    convolution (padding 1) with the 4x4 kernel ``box_kernel(w)`` flipped (``conv2d`` is a
    cross-correlation and ``conv_transpose2d`` its adjoint; PyTorch stores a transposed kernel as
    (in, out, kH, kW), hence the transpose): the same function (equal up to float rounding) with 4
    instead of 9 multiplications per output pixel. Lesson 03 derives it."""
    _check_3x3(conv)
    kernel = box_kernel(conv.weight).flip(2, 3).transpose(0, 1)
    return F.conv_transpose2d(x, kernel, conv.bias, stride=2, padding=1)


class UpBlock(nn.Module):
    """Residual block that doubles the resolution (Fig. 3, bottom left):
    x -> BN, ReLU, upsample, conv3x3, BN, ReLU, conv3x3;  shortcut: upsample, conv1x1.
    "upsample, conv3x3" runs as one transposed convolution (``upsample_conv``), and the shortcut's
    1x1 convolution runs before the upsampling (a per-pixel map commutes with copying pixels)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.bn2, self.conv2 = nn.BatchNorm2d(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = upsample_conv(F.relu(self.bn1(x)), self.conv1)
        h = self.conv2(F.relu(self.bn2(h)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2, mode="nearest")  # = conv1x1(upsample(x))


class DownBlock(nn.Module):
    """Residual block that halves the resolution (Fig. 3, bottom right):
    x -> LN, ReLU, conv3x3, LN, ReLU, conv3x3, mean-pool;  shortcut: mean-pool, conv1x1.
    Layer norm, never batch norm: each output depends on its own sample only.
    "conv3x3, mean-pool" runs as one stride-2 convolution (``conv_mean_pool``)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.ln1, self.conv1 = LayerNorm2d(in_ch), nn.Conv2d(in_ch, in_ch, 3, padding=1)
        self.ln2, self.conv2 = LayerNorm2d(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.ln1(x)))
        h = conv_mean_pool(F.relu(self.ln2(h)), self.conv2)
        return h + self.shortcut(F.avg_pool2d(x, 2))


class Generator(nn.Module):
    """G: z (z_dim) -> linear -> 4x4x(8 dim) -> up blocks -> BN, ReLU, conv3x3, tanh -> (3, size, size)."""

    def __init__(self, size: int = 64, dim: int = 64, z_dim: int = 128):
        super().__init__()
        mult = channel_multipliers(size)
        self.size, self.dim, self.z_dim = size, dim, z_dim
        self.linear = nn.Linear(z_dim, 4 * 4 * mult[0] * dim)
        self.blocks = nn.Sequential(*[UpBlock(a * dim, b * dim) for a, b in zip(mult, mult[1:])])
        self.bn = nn.BatchNorm2d(dim)
        self.out = nn.Conv2d(dim, 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"generator expects z of shape (N, {self.z_dim}), got {tuple(z.shape)}")
        h = self.linear(z).view(z.shape[0], -1, 4, 4)
        h = self.blocks(h)
        return torch.tanh(self.out(F.relu(self.bn(h))))


class Critic(nn.Module):
    """D: (3, size, size) -> conv3x3 -> down blocks -> flatten -> linear -> one score per image."""

    def __init__(self, size: int = 64, dim: int = 64):
        super().__init__()
        mult = channel_multipliers(size)[::-1]
        self.size, self.dim = size, dim
        self.inp = nn.Conv2d(3, dim, 3, padding=1)
        self.blocks = nn.Sequential(*[DownBlock(a * dim, b * dim) for a, b in zip(mult, mult[1:])])
        self.linear = nn.Linear(4 * 4 * mult[-1] * dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, self.size, self.size):
            raise ValueError(
                f"critic expects images of shape (N, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
        h = self.blocks(self.inp(x))
        return self.linear(h.flatten(1)).squeeze(1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
