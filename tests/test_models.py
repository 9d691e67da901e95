"""Section 3.1, Fig. 3 (lesson 03): layer norm, residual blocks, Generator and Critic, checked against
GroupNorm, hand-written block formulas, a Jacobian and parameter counts summed from layer formulas."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from lesson_lib.models import (Critic, DownBlock, Generator, LayerNorm2d, UpBlock, conv_mean_pool, count_parameters,
                               upsample_conv)

# Channel multipliers of Gulrajani et al.'s ResNet, 4x4 end first (the generator's order).
CHANNELS = {32: [8, 4, 2, 1], 64: [8, 8, 4, 2, 1]}


def conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout + cout


def linear(i: int, o: int) -> int:
    return i * o + o


def norm(c: int) -> int:  # batch norm and layer norm: a scale and a shift per channel
    return 2 * c


def expected_generator(size: int, dim: int, z_dim: int = 128) -> int:
    ch = [m * dim for m in CHANNELS[size]]
    blocks = sum(norm(a) + conv(3, a, b) + norm(b) + conv(3, b, b) + conv(1, a, b) for a, b in zip(ch, ch[1:]))
    return linear(z_dim, 4 * 4 * ch[0]) + blocks + norm(dim) + conv(3, dim, 3)


def expected_critic(size: int, dim: int) -> int:
    ch = [m * dim for m in CHANNELS[size][::-1]]
    blocks = sum(norm(a) + conv(3, a, a) + norm(a) + conv(3, a, b) + conv(1, a, b) for a, b in zip(ch, ch[1:]))
    return conv(3, 3, dim) + blocks + linear(4 * 4 * ch[-1], 1)


# --- layer norm ------------------------------------------------------------------------------------

def test_layer_norm_equals_group_norm_with_one_group():
    torch.manual_seed(0)
    ln, gn = LayerNorm2d(5), nn.GroupNorm(1, 5)
    w, b = torch.randn(5), torch.randn(5)
    with torch.no_grad():
        ln.weight.copy_(w), ln.bias.copy_(b)
        gn.weight.copy_(w), gn.bias.copy_(b)
    x = torch.randn(3, 5, 6, 7) * 4 + 2
    torch.testing.assert_close(ln(x), gn(x), rtol=1e-5, atol=1e-5)


def test_layer_norm_by_hand_per_sample():
    """Each sample normalised over all of (C, H, W) with the biased variance, then scaled per channel."""
    torch.manual_seed(1)
    ln = LayerNorm2d(3).double()
    with torch.no_grad():
        ln.weight.copy_(torch.tensor([1.0, 2.0, -0.5]))
        ln.bias.copy_(torch.tensor([0.0, 1.0, 3.0]))
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64) * 3 - 1
    y = ln(x)
    for i in range(2):
        v = x[i].flatten().tolist()
        mean = sum(v) / len(v)
        var = sum((t - mean) ** 2 for t in v) / len(v)
        for c in range(3):
            expected = (x[i, c] - mean) / (var + 1e-5) ** 0.5 * ln.weight[c] + ln.bias[c]
            torch.testing.assert_close(y[i, c], expected)


def test_layer_norm_penalty_gradients_equal_the_written_out_formula():
    """The gradient penalty differentiates layer norm twice: both derivatives equal the formula's."""
    torch.manual_seed(2)
    ln = LayerNorm2d(3).double()
    with torch.no_grad():
        ln.weight.copy_(torch.tensor([1.5, -0.5, 2.0]))
        ln.bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64) * 2 + 1

    def written_out(t):
        mean = t.mean(dim=(1, 2, 3), keepdim=True)
        var = ((t - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
        return (t - mean) / torch.sqrt(var + ln.eps) * ln.weight.view(1, -1, 1, 1) + ln.bias.view(1, -1, 1, 1)

    def penalty_and_grads(forward):
        x_ = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(torch.sin(forward(x_)).sum(), x_, create_graph=True)
        penalty = (g.flatten(1).norm(dim=1) - 1).pow(2).sum()
        return [penalty, *torch.autograd.grad(penalty, [ln.weight, ln.bias])]

    for lib, formula in zip(penalty_and_grads(ln), penalty_and_grads(written_out)):
        torch.testing.assert_close(lib, formula)


def test_layer_norm_statistics_do_not_mix_samples():
    x = torch.randn(4, 2, 3, 3)
    y_batch = LayerNorm2d(2)(x)
    y_alone = torch.cat([LayerNorm2d(2)(x[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(y_batch, y_alone)


# --- the critic is per sample, a batch-norm critic is not -----------------------------------------

def _off_diagonal_jacobian(critic: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Norms of the blocks d critic(x)_i / d x_j on (off) the diagonal."""
    jac = jacobian(critic, x).flatten(2)           # (N, N, C*H*W)
    norms = jac.norm(dim=2)
    eye = torch.eye(len(x), dtype=torch.bool)
    return norms[eye], norms[~eye]


def _tiny_critic() -> Critic:
    torch.manual_seed(0)
    return Critic(32, dim=2).double()


def test_critic_output_i_does_not_depend_on_sample_j():
    critic = _tiny_critic().train()
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64) * 2 - 1
    diag, off = _off_diagonal_jacobian(critic, x)
    assert torch.all(diag > 0)
    assert torch.all(off == 0)


def test_batch_norm_in_the_critic_would_couple_samples():
    """The counter-example that gives the previous test its meaning: the same critic with batch norm."""
    critic = _tiny_critic().train()
    for block in critic.blocks:
        block.ln1 = nn.BatchNorm2d(block.conv1.in_channels).double()
        block.ln2 = nn.BatchNorm2d(block.conv2.in_channels).double()
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64) * 2 - 1
    diag, off = _off_diagonal_jacobian(critic, x)
    assert torch.all(off > 1e-6 * diag.mean())


def test_critic_has_no_batch_norm_and_generator_has():
    def kinds(m):
        return {type(x) for x in m.modules()}
    for size in (32, 64):
        critic, gen = kinds(Critic(size, 4)), kinds(Generator(size, 4))
        assert not any(issubclass(k, nn.modules.batchnorm._NormBase) for k in critic)
        assert LayerNorm2d in critic
        assert nn.BatchNorm2d in gen and LayerNorm2d not in gen


# --- residual blocks ----------------------------------------------------------------------------------

def _upsample(x):  # nearest neighbour, written without F.interpolate
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def _mean_pool(x):  # 2x2 mean, written without avg_pool2d
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


def _bn_train(x, bn):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]


def _randomise(module):
    torch.manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return module


def _up_by_formula(block: UpBlock, x: torch.Tensor) -> torch.Tensor:
    """Fig. 3's up block written layer by layer: upsample, then a 3x3 convolution."""
    h = F.conv2d(_upsample(F.relu(_bn_train(x, block.bn1))), block.conv1.weight, block.conv1.bias, padding=1)
    h = F.conv2d(F.relu(_bn_train(h, block.bn2)), block.conv2.weight, block.conv2.bias, padding=1)
    return h + F.conv2d(_upsample(x), block.shortcut.weight, block.shortcut.bias)


def _down_by_formula(block: DownBlock, x: torch.Tensor) -> torch.Tensor:
    """Fig. 3's down block written layer by layer: a 3x3 convolution, then a 2x2 mean pool."""
    gn = lambda t, ln: F.group_norm(t, 1, ln.weight, ln.bias, ln.eps)  # noqa: E731
    h = F.conv2d(F.relu(gn(x, block.ln1)), block.conv1.weight, block.conv1.bias, padding=1)
    h = _mean_pool(F.conv2d(F.relu(gn(h, block.ln2)), block.conv2.weight, block.conv2.bias, padding=1))
    return h + F.conv2d(_mean_pool(x), block.shortcut.weight, block.shortcut.bias)


def test_up_block_is_fig3_residual_up():
    block = _randomise(UpBlock(4, 2)).double().train()
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    out = block(x)
    assert out.shape == (3, 2, 10, 10)
    torch.testing.assert_close(out, _up_by_formula(block, x))


def test_down_block_is_fig3_residual_down():
    block = _randomise(DownBlock(2, 4)).double()
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    out = block(x)
    assert out.shape == (3, 4, 3, 3)
    torch.testing.assert_close(out, _down_by_formula(block, x))


@pytest.mark.parametrize("cin,cout,side", [(3, 5, 4), (4, 2, 6), (1, 1, 2)])
def test_conv_mean_pool_is_conv_then_mean_pool(cin, cout, side):
    conv = _randomise(nn.Conv2d(cin, cout, 3, padding=1)).double()
    x = torch.randn(2, cin, side, side, dtype=torch.float64)
    out = conv_mean_pool(x, conv)
    assert out.shape == (2, cout, side // 2, side // 2)
    torch.testing.assert_close(out, _mean_pool(conv(x)))


@pytest.mark.parametrize("cin,cout,side", [(3, 5, 4), (4, 2, 5), (1, 1, 1)])
def test_upsample_conv_is_upsample_then_conv(cin, cout, side):
    conv = _randomise(nn.Conv2d(cin, cout, 3, padding=1)).double()
    x = torch.randn(2, cin, side, side, dtype=torch.float64)
    out = upsample_conv(x, conv)
    assert out.shape == (2, cout, 2 * side, 2 * side)
    torch.testing.assert_close(out, conv(_upsample(x)))


def test_the_fused_convolutions_refuse_other_convolutions():
    for conv in (nn.Conv2d(2, 2, 5, padding=2), nn.Conv2d(2, 2, 3), nn.Conv2d(2, 2, 3, padding=1, stride=2)):
        for fused in (conv_mean_pool, upsample_conv):
            with pytest.raises(ValueError, match="3x3 convolution with stride 1, padding 1"):
                fused(torch.randn(1, 2, 4, 4), conv)


@pytest.mark.parametrize("kind", ["up", "down"])
def test_one_stride_2_convolution_gives_the_same_penalty_gradients(kind):
    """The gradient penalty differentiates twice (the input gradient, then the parameters): both
    derivatives of the blocks equal those of the layer-by-layer formula."""
    block = _randomise(UpBlock(3, 2) if kind == "up" else DownBlock(2, 3)).double().train()
    formula = _up_by_formula if kind == "up" else _down_by_formula
    x = torch.randn(3, block.conv1.in_channels, 4, 4, dtype=torch.float64)

    def penalty_and_grads(forward):
        x_ = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(forward(block, x_).pow(2).sum(), x_, create_graph=True)
        penalty = (g.flatten(1).norm(dim=1) - 1).pow(2).sum()
        return [penalty, *torch.autograd.grad(penalty, list(block.parameters()))]

    for fused, direct in zip(penalty_and_grads(type(block).forward), penalty_and_grads(formula)):
        torch.testing.assert_close(fused, direct)


def test_blocks_without_residual_branch_are_the_shortcut():
    up, down = UpBlock(3, 5), DownBlock(3, 5)
    for block in (up, down):
        with torch.no_grad():
            block.conv2.weight.zero_(), block.conv2.bias.zero_()
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(up(x), up.shortcut(_upsample(x)))
    torch.testing.assert_close(down(x), down.shortcut(_mean_pool(x)))


# --- shapes, parameter counts, errors ---------------------------------------------------------------

@pytest.mark.parametrize("size, dim", [(32, 4), (64, 4), (32, 16)])
def test_shapes_through_the_networks(size, dim):
    torch.manual_seed(0)
    gen, critic = Generator(size, dim), Critic(size, dim)
    shapes = []
    for block in gen.blocks:
        block.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    x = gen(torch.randn(2, 128))
    ch = [m * dim for m in CHANNELS[size]]
    assert shapes == [(c, 4 * 2 ** (k + 1), 4 * 2 ** (k + 1)) for k, c in enumerate(ch[1:])]
    assert x.shape == (2, 3, size, size)
    shapes.clear()
    for block in critic.blocks:
        block.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
    y = critic(x)
    assert shapes == [(c, size // 2 ** (k + 1), size // 2 ** (k + 1)) for k, c in enumerate(ch[::-1][1:])]
    assert y.shape == (2,)
    assert len(gen.blocks) == len(critic.blocks) == {32: 3, 64: 4}[size]


@pytest.mark.parametrize("size, dim", [(64, 64), (32, 16), (32, 8), (64, 4)])
def test_parameter_counts(size, dim):
    assert count_parameters(Generator(size, dim)) == expected_generator(size, dim)
    assert count_parameters(Critic(size, dim)) == expected_critic(size, dim)


def test_paper_configuration_counts():
    """64 px, dim 64: a 4x4x512 start tensor (sec. 3.1), z of dimension 128 (sec. 4)."""
    gen = Generator(64, 64)
    assert gen.linear.out_features == 4 * 4 * 512 and gen.linear.in_features == 128
    assert count_parameters(gen) == expected_generator(64, 64)
    assert count_parameters(Critic(64, 64)) == expected_critic(64, 64)


def test_generator_output_in_range_even_for_large_z():
    torch.manual_seed(0)
    gen = Generator(32, 4)
    x = gen(torch.randn(4, 128) * 100)
    assert x.min() >= -1 and x.max() <= 1
    assert x.abs().max() > 0.5  # saturates towards the tanh bounds, not a constant


@pytest.mark.parametrize("size", [48, 16, 0, 256])
def test_unsupported_sizes(size):
    with pytest.raises(ValueError, match="not supported"):
        Generator(size, 4)
    with pytest.raises(ValueError, match="not supported"):
        Critic(size, 4)


@pytest.mark.parametrize("shape", [(2, 3, 64, 64), (2, 1, 32, 32), (3, 32, 32), (2, 3, 32, 31)])
def test_critic_rejects_wrong_images(shape):
    with pytest.raises(ValueError, match="critic expects"):
        Critic(32, 4)(torch.zeros(shape))


def test_layer_norm_rejects_a_single_image():
    with pytest.raises(ValueError, match=r"LayerNorm2d expects \(N, C, H, W\)"):
        LayerNorm2d(3)(torch.zeros(3, 8, 8))


@pytest.mark.parametrize("shape", [(2, 64), (128,), (2, 128, 1)])
def test_generator_rejects_wrong_z(shape):
    with pytest.raises(ValueError, match="z of shape"):
        Generator(32, 4)(torch.zeros(shape))
