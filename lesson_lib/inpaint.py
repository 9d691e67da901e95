"""Semantic inpainting by latent search (paper sec. 3.2, eq. 4; built in lesson 07).

    z_hat = argmin_z  alpha L_c(z|y,M) + beta L_g(z|y,M) + eta L_p(z)          (eq. 4)

Adam on z (lr 0.03, betas (0.9, 0.999)), z ~ N(0, I) at the start and clipped to [-1, 1] after
every step, 1000 steps; then the known pixels of y are pasted onto G(z_hat) (the overlay) and the
seam is removed by Poisson blending (eq. 9).

Batched: N images are searched at once with N latent codes (N x restarts). Every loss is a sum of
per-image values, the generator runs in eval mode (batch norm uses its running statistics) and the
critic uses layer norm, so an image's result never depends on the other images of the batch.

The losses are the paper's norms, i.e. SUMS over pixels and channels (see ``lesson_lib.losses``);
the prior is one critic score per image. Lesson 09 measures how that balance plays out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from .losses import contextual_loss, gradient_loss, prior_loss
from .masks import check_mask, context_weights
from .poisson import poisson_blend

Prior = Literal["wgan", "yeh"]


@dataclass(frozen=True)
class LossWeights:
    """The weights of eq. 4 and the form of the prior term.

    ``prior="wgan"``: eq. 8, L_p = -D(G(z)) (the paper). ``prior="yeh"``: Yeh et al.'s perceptual
    loss log(1 - D(G(z))) with the critic score read as a logit, log(1 - sigmoid(D)) = -softplus(D).
    """
    alpha: float = 0.1
    beta: float = 0.9
    eta: float = 0.5
    prior: Prior = "wgan"

    def __post_init__(self):
        for name in ("alpha", "beta", "eta"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.prior not in ("wgan", "yeh"):
            raise ValueError(f"prior must be 'wgan' or 'yeh', got {self.prior!r}")


PAPER = LossWeights(0.1, 0.9, 0.5, "wgan")
#: Yeh et al. (2017): weighted contextual loss + lambda * perceptual (prior) loss, lambda = 0.003,
#: no gradient loss.
YEH = LossWeights(1.0, 0.0, 0.003, "yeh")


@dataclass
class InpaintResult:
    """What a latent search returns; tensors are on the CPU, images (N, C, H, W) in [-1, 1]."""
    z: torch.Tensor            # (N, z_dim) the final code per image (of the restart with the lowest final loss)
    generated: torch.Tensor    # G(z_hat)
    overlay: torch.Tensor      # M * y + (1 - M) * G(z_hat)
    blended: torch.Tensor      # Poisson blend of G(z_hat) into y (eq. 9), clamped to [-1, 1]
    loss: torch.Tensor         # (N,) final total loss per image
    history: dict = field(default_factory=dict)  # per step: batch means of total and each term


def search_losses(generator, critic, z, y, mask, weights: torch.Tensor, w: LossWeights) -> dict[str, torch.Tensor]:
    """The per-image terms of eq. 4 for codes ``z`` (each (N,)), and their weighted total."""
    gz = generator(z)
    terms = {"contextual": contextual_loss(gz, y, mask, weights)}
    terms["gradient"] = gradient_loss(gz, y, mask, weights) if w.beta else torch.zeros_like(terms["contextual"])
    if w.eta:
        lp = prior_loss(critic, gz)                  # eq. 8: -D(G(z)), one score per image (checked)
        terms["prior"] = lp if w.prior == "wgan" else -F.softplus(-lp)   # or Yeh's log(1 - sigmoid(D))
    else:
        terms["prior"] = torch.zeros_like(terms["contextual"])
    terms["total"] = w.alpha * terms["contextual"] + w.beta * terms["gradient"] + w.eta * terms["prior"]
    return terms


def _check_inputs(generator, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.as_tensor(image).float()
    if image.dim() == 3:
        image = image[None]
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (3, H, W) or (N, 3, H, W), got {tuple(image.shape)}")
    if image.shape[-1] != generator.size or image.shape[-2] != generator.size:
        raise ValueError(f"image is {image.shape[-2]}x{image.shape[-1]} but the generator makes "
                         f"{generator.size}x{generator.size} images")
    if not torch.isfinite(image).all():
        raise ValueError("image contains NaN or infinite values")
    lo, hi = image.min().item(), image.max().item()
    if lo < -1 - 1e-5 or hi > 1 + 1e-5:
        raise ValueError(f"image values must lie in [-1, 1], found [{lo:.3f}, {hi:.3f}]")
    return image, check_mask(mask, image)


def inpaint(generator, critic, image: torch.Tensor, mask: torch.Tensor, alpha: float = 0.1,
            beta: float = 0.9, eta: float = 0.5, steps: int = 1000, lr: float = 0.03, restarts: int = 1,
            seed: int = 0, progress: bool = True, prior: Prior = "wgan", z_init: torch.Tensor | None = None,
            blend: bool = True) -> InpaintResult:
    """Fill the hole (mask == 0) of ``image`` by searching the latent space (eq. 4), batched.

    ``restarts`` > 1 runs that many codes per image and keeps the one with the lowest final loss.
    ``z_init`` ((N * restarts, z_dim), image-major) replaces the N(0, I) draw from ``seed``.
    ``blend=False`` skips the Poisson step (``blended`` is then the overlay).
    """
    w = LossWeights(alpha, beta, eta, prior)
    y, m = _check_inputs(generator, image, mask)
    if steps < 0 or restarts < 1 or not lr > 0:
        raise ValueError(f"steps must be >= 0, restarts >= 1 and lr > 0, got {steps}, {restarts} and {lr}")
    no_hole = [i for i, has in enumerate((m == 0).flatten(1).any(1).tolist()) if not has]
    if no_hole:
        where = f" of image(s) {no_hole}" if m.shape[0] > 1 else ""
        raise ValueError(f"the mask{where} has no hole (no pixel is 0): nothing to inpaint")
    n, device = y.shape[0], next(generator.parameters()).device
    if z_init is None:
        z_init = torch.randn(n * restarts, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    elif tuple(z_init.shape) != (n * restarts, generator.z_dim):
        raise ValueError(f"z_init must be ({n * restarts}, {generator.z_dim}), got {tuple(z_init.shape)}")

    # Each image is repeated `restarts` times (image-major), so row k belongs to image k // restarts.
    y_rep = y.repeat_interleave(restarts, 0).to(device)
    m_rep = (m if m.shape[0] == n else m.expand(n, -1, -1, -1)).repeat_interleave(restarts, 0).to(device)
    weights = context_weights(m_rep)
    z = z_init.clone().float().to(device).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr, betas=(0.9, 0.999))
    history = {k: [] for k in ("total", "contextual", "gradient", "prior")}

    modes = generator.training, critic.training
    generator.eval(), critic.eval()
    frozen = [p for p in (*generator.parameters(), *critic.parameters()) if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        from tqdm.auto import tqdm
        for _ in tqdm(range(steps), disable=not progress, desc="latent search", unit="step"):
            terms = search_losses(generator, critic, z, y_rep, m_rep, weights, w)
            opt.zero_grad(set_to_none=True)
            terms["total"].sum().backward()
            opt.step()
            with torch.no_grad():
                z.clamp_(-1, 1)                      # the paper restricts z to [-1, 1] every step
            for k in history:
                history[k].append(terms[k].mean().item())
        with torch.no_grad():
            final = search_losses(generator, critic, z, y_rep, m_rep, weights, w)
            best = final["total"].view(n, restarts).argmin(1) + torch.arange(n, device=device) * restarts
            z_best = z.detach()[best]
            gz = generator(z_best).cpu()
    finally:
        for p in frozen:
            p.requires_grad_(True)
        generator.train(modes[0]), critic.train(modes[1])

    y, m = y.cpu(), m.cpu()                          # the result lives on the CPU (gz already does)
    overlay = m * y + (1 - m) * gz
    blended = poisson_blend(gz, y, m).clamp(-1, 1) if blend else overlay.clone()
    return InpaintResult(z_best.cpu(), gz, overlay, blended, final["total"][best].cpu(), history)


def inpaint_with(generator, critic, image, mask, weights: LossWeights, **kwargs) -> InpaintResult:
    """``inpaint`` with the weights and prior of eq. 4 given as one ``LossWeights`` (e.g. ``PAPER``)."""
    return inpaint(generator, critic, image, mask, weights.alpha, weights.beta, weights.eta,
                   prior=weights.prior, **kwargs)


def inpaint_yeh(generator, critic, image, mask, **kwargs) -> InpaintResult:
    """The Yeh et al. (2017) loss as a preset: weighted contextual loss + 0.003 x their prior."""
    return inpaint_with(generator, critic, image, mask, YEH, **kwargs)
