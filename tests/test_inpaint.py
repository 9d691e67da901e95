"""The latent search of Sec. 3.2 (eq. 4, prior eq. 8; lesson 07) on a tiny random generator/critic pair.

The pair is untrained, so "known answer" means an image the generator can make: y = G(z*).
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from lesson_lib.inpaint import PAPER, YEH, LossWeights, inpaint, inpaint_yeh, search_losses
from lesson_lib.losses import contextual_loss, gradient_loss, prior_loss
from lesson_lib.masks import central_square, context_weights, three_squares
from lesson_lib.metrics import psnr
from lesson_lib.models import Critic, Generator
from lesson_lib.poisson import poisson_blend

SIZE, DIM, Z = 32, 4, 128


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks: one thread is much faster than two fighting over a busy 2-core CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    g, d = Generator(SIZE, DIM, Z).eval(), Critic(SIZE, DIM).eval()
    with torch.no_grad():
        g.out.weight *= 4      # an untrained G makes nearly flat grey images; this spreads them over [-1, 1]
    return g, d


def codes(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, Z, generator=torch.Generator().manual_seed(seed))


def truth(g, n: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """n images the generator can make exactly, y = G(z*) with z* uniform in [-1, 1]^128."""
    z_star = torch.rand(n, Z, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        return g(z_star), z_star


def state(module) -> dict:
    return {k: v.clone() for k, v in module.state_dict().items()}


# ---------------------------------------------------------------- eq. 8 and eq. 4 as computed by the search

def test_prior_is_minus_critic_and_total_is_eq4(pair):
    g, d = pair
    y, _ = truth(g, 3)
    mask, z = three_squares(SIZE), codes(3, 5).clamp(-1, 1)
    with torch.no_grad():
        gz = g(z)
        scores = torch.stack([d(gz[i:i + 1])[0] for i in range(3)])     # one image at a time
        assert torch.allclose(prior_loss(d, gz), -scores, atol=1e-6)    # eq. 8
        w = LossWeights(0.3, 0.7, 0.2)
        terms = search_losses(g, d, z, y, mask[None, None], context_weights(mask), w)
    lc, lg = contextual_loss(gz, y, mask), gradient_loss(gz, y, mask)
    assert torch.allclose(terms["contextual"], lc) and torch.allclose(terms["gradient"], lg)
    assert torch.allclose(terms["prior"], -scores, atol=1e-6)
    assert torch.allclose(terms["total"], 0.3 * lc + 0.7 * lg - 0.2 * scores, atol=1e-5)
    assert lc.min() > 0 and lg.min() > 0          # the check is not 0 == 0


def test_first_history_entry_is_eq4_at_z_init(pair):
    """The search minimises the paper's total: at step 0 it is alpha Lc + beta Lg - eta D(G(z0))."""
    g, d = pair
    y, _ = truth(g, 2)
    mask, z0 = central_square(SIZE), codes(2, 6)
    r = inpaint(g, d, y, mask, steps=1, z_init=z0, progress=False, blend=False)
    with torch.no_grad():
        gz = g(z0)
        lc, lg, lp = contextual_loss(gz, y, mask), gradient_loss(gz, y, mask), -d(gz)
    a, b, e = PAPER.alpha, PAPER.beta, PAPER.eta
    assert (a, b, e) == (0.1, 0.9, 0.5)
    assert r.history["total"][0] == pytest.approx((a * lc + b * lg + e * lp).mean().item(), rel=1e-5)
    for name, value in (("contextual", lc), ("gradient", lg), ("prior", lp)):
        assert r.history[name][0] == pytest.approx(value.mean().item(), rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------- known answer

def test_known_answer_recovers_the_hole(pair):
    g, d = pair
    y, _ = truth(g, 2)
    mask, z0 = central_square(SIZE), codes(2, 3)
    with torch.no_grad():
        before = psnr(g(z0.clamp(-1, 1)), y, hole_of=mask)
    r = inpaint(g, d, y, mask, eta=0.0, steps=100, z_init=z0, progress=False, blend=False)
    after = psnr(r.generated, y, hole_of=mask)
    # Measured: hole PSNR 25.2 / 21.3 dB at z0 -> 40.0 / 33.6 dB after 100 steps; loss 16.8 -> 1.96.
    assert after.min() > 30 and (after - before).min() > 8
    h = r.history["total"]
    assert len(h) == 100 and h[-1] < h[0] / 5
    known = mask.bool().expand_as(y)
    assert torch.equal(r.overlay[known], y[known])        # known pixels reproduced exactly


# ---------------------------------------------------------------- what the search leaves alone

def test_z_clipped_networks_untouched_and_eval_mode_during_search(pair):
    g, d = copy.deepcopy(pair[0]), copy.deepcopy(pair[1])
    g.train(), d.train()                                  # BN in train mode would update running stats
    g.linear.bias.requires_grad_(False)                   # a frozen parameter stays frozen
    before_g, before_d = state(g), state(d)
    seen = []
    g.register_forward_pre_hook(lambda m, a: seen.append(("G", m.training)))
    d.register_forward_pre_hook(lambda m, a: seen.append(("D", m.training)))
    y, _ = truth(pair[0], 2)
    z0 = 3 * codes(2, 7)                                  # far outside [-1, 1] at the start
    r = inpaint(g, d, y, central_square(SIZE), steps=10, z_init=z0, progress=False)
    assert z0.abs().max() > 1 and r.z.abs().max() <= 1
    assert seen and {s for s in seen} == {("G", False), ("D", False)}  # both ran in eval mode
    for k, v in state(g).items():
        assert torch.equal(v, before_g[k]), k             # includes the BN running_mean / running_var
    for k, v in state(d).items():
        assert torch.equal(v, before_d[k]), k
    assert g.training and d.training
    assert not g.linear.bias.requires_grad
    assert all(p.requires_grad for n, p in g.named_parameters() if n != "linear.bias")
    assert all(p.requires_grad for p in d.parameters())
    with torch.no_grad():
        assert torch.allclose(r.generated, g.eval()(r.z), atol=1e-6)


def test_batch_independence(pair):
    """Each z gets the gradient of its own image only, so an image inpainted in a batch of 8 is the
    image inpainted alone from the same z_init (up to float summation order)."""
    g, d = pair
    y, _ = truth(g, 8, seed=2)
    z0 = codes(8, 8)
    mask = three_squares(SIZE)
    grads = []
    for zz, yy in ((z0, y), (z0[5:6], y[5:6])):
        zz = zz.clone().requires_grad_(True)
        search_losses(g, d, zz, yy, mask[None, None], context_weights(mask), PAPER)["total"].sum().backward()
        grads.append(zz.grad)
    assert torch.allclose(grads[0][5:6], grads[1], rtol=1e-5, atol=1e-6 * grads[1].abs().max())

    mask = central_square(SIZE)
    batch = inpaint(g, d, y, mask, steps=20, z_init=z0, progress=False, blend=False)
    alone = inpaint(g, d, y[5], mask, steps=20, z_init=z0[5:6], progress=False, blend=False)
    assert (batch.z[5] - z0[5].clamp(-1, 1)).abs().max() > 0.1    # it moved: the comparison means something
    # Measured: max |dz| 7e-7. Adam can amplify float noise at a kink of the L1 losses (1e-3 was seen
    # after 20 steps with the three-squares mask), hence the gradient check above as well.
    assert torch.allclose(batch.z[5:6], alone.z, atol=1e-4)
    assert torch.allclose(batch.generated[5:6], alone.generated, atol=1e-4)
    assert batch.loss[5].item() == pytest.approx(alone.loss.item(), rel=1e-4)


def test_one_mask_per_image(pair):
    """A batch may mix masks, (N, 1, H, W): each image is searched with its own (the demo batches both)."""
    g, d = pair
    y, _ = truth(g, 2, seed=4)
    z0 = codes(2, 9)
    masks = torch.stack([central_square(SIZE), three_squares(SIZE)])[:, None]
    mixed = inpaint(g, d, y, masks, steps=10, z_init=z0, progress=False)
    alone = inpaint(g, d, y[1], three_squares(SIZE), steps=10, z_init=z0[1:2], progress=False)
    assert torch.allclose(mixed.z[1:2], alone.z, atol=1e-4)
    assert torch.allclose(mixed.blended[1:2], alone.blended, atol=1e-4)
    known = masks.expand_as(y).bool()
    assert torch.allclose(mixed.blended[known], y[known], atol=1e-5)


def test_restarts_keep_the_best_code(pair):
    g, d = pair
    y, _ = truth(g, 2, seed=4)
    mask, z0 = central_square(SIZE), codes(6, 9)          # image-major: rows 0-2 image 0, rows 3-5 image 1
    r = inpaint(g, d, y, mask, steps=15, restarts=3, z_init=z0, progress=False, blend=False)
    assert r.z.shape == (2, Z) and r.loss.shape == (2,)
    for i in range(2):
        singles = [inpaint(g, d, y[i], mask, steps=15, z_init=z0[3 * i + k:3 * i + k + 1], progress=False,
                           blend=False) for k in range(3)]
        losses = torch.stack([s.loss[0] for s in singles])
        assert losses.max() - losses.min() > 1e-2          # three different answers to choose from
        best = int(losses.argmin())
        assert r.loss[i].item() == pytest.approx(losses.min().item(), rel=1e-4)
        assert torch.allclose(r.z[i], singles[best].z[0], atol=2e-4)


def test_overlay_and_blend(pair):
    g, d = pair
    y, _ = truth(g, 2, seed=5)
    y = y.flip(-1)                                        # not exactly reachable: a seam to blend away
    mask = three_squares(SIZE)
    r = inpaint(g, d, y, mask, steps=5, z_init=codes(2, 10), progress=False)
    assert torch.allclose(r.overlay, mask * y + (1 - mask) * r.generated)
    known = mask.bool().expand_as(y)
    assert torch.equal(r.blended[known], y[known])
    assert r.blended.min() >= -1 and r.blended.max() <= 1
    assert torch.allclose(r.blended, poisson_blend(r.generated, y, mask).clamp(-1, 1))
    assert (r.blended - r.overlay).abs().max() > 1e-3      # blending did change the hole
    plain = inpaint(g, d, y, mask, steps=5, z_init=codes(2, 10), progress=False, blend=False)
    assert torch.equal(plain.blended, plain.overlay)
    assert torch.allclose(plain.generated, r.generated)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("change, match", [
    (dict(mask=torch.ones(16, 16)), "does not match image"),
    (dict(mask=central_square(SIZE) * 0.5), "binary"),
    (dict(mask=torch.zeros(SIZE, SIZE)), "no known pixel"),
    (dict(image=torch.full((3, SIZE, SIZE), 1.5)), r"\[-1, 1\]"),
    (dict(image=torch.full((3, SIZE, SIZE), float("nan"))), "NaN"),
    (dict(image=torch.zeros(3, 64, 64), mask=central_square(64)), "generator makes 32x32"),
    (dict(image=torch.zeros(1, SIZE, SIZE)), r"image must be \(3, H, W\)"),
    (dict(z_init=torch.zeros(2, Z)), r"z_init must be \(1, 128\)"),
    (dict(z_init=torch.zeros(1, 64)), r"z_init must be \(1, 128\)"),
    (dict(alpha=-0.1), "alpha must be >= 0"),
    (dict(beta=-1.0), "beta must be >= 0"),
    (dict(eta=-0.5), "eta must be >= 0"),
    (dict(prior="vanilla"), "prior must be 'wgan' or 'yeh'"),
    (dict(steps=-1), "steps must be >= 0"),
    (dict(restarts=0), "restarts >= 1"),
    (dict(lr=0.0), "lr > 0"),
])
def test_bad_input(pair, change, match):
    g, d = pair
    kwargs = dict(image=torch.zeros(3, SIZE, SIZE), mask=central_square(SIZE), steps=1, progress=False)
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        inpaint(g, d, **kwargs)


def test_a_mask_without_hole_is_refused(pair):
    g, d = pair
    y, _ = truth(g, 2, seed=6)
    with pytest.raises(ValueError, match="has no hole"):
        inpaint(g, d, y, torch.ones(SIZE, SIZE), steps=5, progress=False)
    per_image = torch.stack([central_square(SIZE), torch.ones(SIZE, SIZE)])[:, None]
    with pytest.raises(ValueError, match=r"mask of image\(s\) \[1\] has no hole"):
        inpaint(g, d, y, per_image, steps=5, progress=False)


# ---------------------------------------------------------------- the Yeh et al. preset

def test_yeh_preset(pair):
    g, d = pair
    y, _ = truth(g, 2, seed=7)
    mask, z0 = central_square(SIZE), codes(2, 11)
    r = inpaint_yeh(g, d, y, mask, steps=5, z_init=z0, progress=False, blend=False)
    assert (YEH.alpha, YEH.beta, YEH.eta, YEH.prior) == (1.0, 0.0, 0.003, "yeh")
    assert r.history["gradient"] == [0.0] * 5
    with torch.no_grad():
        gz = g(z0)
        log_1_minus_d = torch.log(1 - torch.sigmoid(d(gz)))       # Yeh's log(1 - D(G(z))), D a logit
        lc = contextual_loss(gz, y, mask)
    assert r.history["prior"][0] == pytest.approx(log_1_minus_d.mean().item(), rel=1e-5)
    assert r.history["total"][0] == pytest.approx((lc + 0.003 * log_1_minus_d).mean().item(), rel=1e-5)
    with torch.no_grad():                                 # the final loss is that of the returned code
        gz = g(r.z)
        final = contextual_loss(gz, y, mask) - 0.003 * F.softplus(d(gz))
    assert torch.allclose(r.loss, final, rtol=1e-5)
    same = inpaint(g, d, y, mask, alpha=1.0, beta=0.0, eta=0.003, prior="yeh", steps=5, z_init=z0,
                   progress=False, blend=False)
    assert torch.equal(same.z, r.z)


@pytest.mark.parametrize("prior", ["wgan", "yeh"])
def test_both_priors_take_one_critic_score_per_image(pair, prior):
    g, _ = pair
    y, _ = truth(g, 1, seed=8)
    w, mask = LossWeights(0.1, 0.9, 0.5, prior=prior), central_square(SIZE)[None, None]
    column = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 1))   # (N, 1) scores
    terms = search_losses(g, column, codes(1, 3), y, mask, context_weights(mask), w)
    assert all(t.shape == (1,) for t in terms.values())
    pairs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * SIZE * SIZE, 2))    # two per image
    with pytest.raises(ValueError, match="one score per image"):
        search_losses(g, pairs, codes(1, 3), y, mask, context_weights(mask), w)
