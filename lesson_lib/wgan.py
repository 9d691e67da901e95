"""WGAN-GP losses (eq. 3 with Gulrajani et al.'s gradient penalty; built in lesson 02) and the
training loop of the improved WGAN (section 4; built in lesson 04)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .data import random_flip


def gradient_penalty(critic: Callable, real: torch.Tensor, fake: torch.Tensor,
                     eps: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean over the batch of (||grad_x critic(x_hat)||_2 - 1)^2 at x_hat = eps real + (1 - eps) fake,
    one eps ~ U[0, 1) per sample (not multiplied by lambda). Differentiable w.r.t. the critic's
    parameters (``create_graph=True``)."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    n = real.shape[0]
    if eps is None:
        eps = torch.rand(n, generator=generator, device="cpu" if generator is not None else real.device)
    if eps.numel() != n:
        raise ValueError(f"eps must hold one coefficient per sample ({n}), got shape {tuple(eps.shape)}")
    eps = eps.to(real.device, real.dtype).reshape(n, *([1] * (real.dim() - 1)))
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def critic_loss(critic: Callable, real: torch.Tensor, fake: torch.Tensor, gp_weight: float = 10.0,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """The critic maximises E[D(real)] - E[D(fake)] (eq. 3); we minimise its negative plus lambda GP.
    Returns the loss and a dict of floats: wasserstein (the estimate), gp, critic_loss."""
    d_real, d_fake = critic(real).mean(), critic(fake.detach()).mean()
    gp = gradient_penalty(critic, real, fake, generator=generator)
    loss = d_fake - d_real + gp_weight * gp
    return loss, {"wasserstein": (d_real - d_fake).item(), "gp": gp.item(), "critic_loss": loss.item()}


def generator_loss(critic: Callable, fake: torch.Tensor) -> torch.Tensor:
    """The generator minimises -E[D(G(z))] (eq. 3, the second term)."""
    return -critic(fake).mean()


@dataclass
class TrainConfig:
    """The paper's training settings (section 4) as defaults; ``iters`` counts generator steps."""
    iters: int = 50_000
    batch_size: int = 64
    n_critic: int = 5
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    gp_weight: float = 10.0
    flip: bool = True
    seed: int = 0


@dataclass
class Trainer:
    """Train a generator/critic pair on a tensor of images in [-1, 1].

    All randomness (batches, flips, z, the GP's eps) comes from one CPU ``torch.Generator`` whose
    state is saved in every checkpoint, so a resumed run is identical to an uninterrupted one on CPU.
    """
    generator: nn.Module
    critic: nn.Module
    images: torch.Tensor
    config: TrainConfig = field(default_factory=TrainConfig)
    meta: dict = field(default_factory=dict)
    device: torch.device | str = "cpu"

    def __post_init__(self):
        if self.images.dim() != 4 or self.images.shape[1:] != (3, self.critic.size, self.critic.size):
            raise ValueError(f"training images must be (N, 3, {self.critic.size}, {self.critic.size}), "
                             f"got {tuple(self.images.shape)}")
        lo, hi = self.images.min().item(), self.images.max().item()
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -1 - 1e-5 or hi > 1 + 1e-5:
            raise ValueError(f"training images must lie in [-1, 1] (the generator ends in tanh), found "
                             f"[{lo:.3f}, {hi:.3f}]: rescale x in [0, 1] with 2 * x - 1")
        c = self.config
        if c.n_critic < 1 or c.batch_size < 1:
            raise ValueError(f"n_critic and batch_size must be >= 1, got {c.n_critic} and {c.batch_size}")
        if not (c.lr > 0 and c.gp_weight >= 0):
            raise ValueError(f"lr must be > 0 and gp_weight >= 0, got {c.lr} and {c.gp_weight}")
        self.device = torch.device(self.device)
        self.generator.to(self.device).train()
        self.critic.to(self.device).train()
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr=c.lr, betas=tuple(float(b) for b in c.betas))
        self.c_opt = torch.optim.Adam(self.critic.parameters(), lr=c.lr, betas=tuple(float(b) for b in c.betas))
        self.rng = torch.Generator().manual_seed(c.seed)
        self.iteration = 0
        self.elapsed = 0.0
        self.history: dict[str, list[float]] = {k: [] for k in ("wasserstein", "gp", "critic_loss", "generator_loss")}

    def _batch(self) -> torch.Tensor:
        idx = torch.randint(len(self.images), (self.config.batch_size,), generator=self.rng)
        x = self.images[idx]
        if self.config.flip:
            x = random_flip(x, self.rng)
        return x.to(self.device)

    def _z(self) -> torch.Tensor:
        return torch.randn(self.config.batch_size, self.generator.z_dim, generator=self.rng).to(self.device)

    def critic_step(self) -> dict:
        """One critic step: a real batch, G(z) without gradients, eq. 3 with the penalty, Adam."""
        real = self._batch()
        with torch.no_grad():
            fake = self.generator(self._z())
        loss, stats = critic_loss(self.critic, real, fake, self.config.gp_weight, generator=self.rng)
        self.c_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.c_opt.step()
        return stats

    def generator_step(self) -> torch.Tensor:
        """One generator step on -critic(G(z)) with the critic frozen; returns the loss."""
        self.critic.requires_grad_(False)
        g_loss = generator_loss(self.critic, self.generator(self._z()))
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        self.critic.requires_grad_(True)
        return g_loss

    def step(self) -> dict:
        """One generator iteration: n_critic critic steps with GP, then one generator step."""
        for _ in range(self.config.n_critic):
            stats = self.critic_step()
        g_loss = self.generator_step()
        stats["generator_loss"] = g_loss.item()
        for k, v in stats.items():
            self.history[k].append(v)
        self.iteration += 1
        return stats

    def train(self, until: int | None = None, checkpoint: str | Path | None = None, every: int = 100,
              progress: bool = True, on_checkpoint: Callable[["Trainer"], None] | None = None) -> dict:
        """Run generator iterations until ``until`` (default: config.iters), saving a resumable
        checkpoint every ``every`` iterations and at the end."""
        from tqdm.auto import tqdm

        until = self.config.iters if until is None else until
        bar = tqdm(total=until, initial=self.iteration, disable=not progress, desc="train", unit="it")
        start = time.perf_counter()
        while self.iteration < until:
            stats = self.step()
            bar.update(1)
            bar.set_postfix(W=f"{stats['wasserstein']:.3f}", gp=f"{stats['gp']:.3f}")
            if checkpoint and (self.iteration % every == 0 or self.iteration == until):
                self.elapsed += time.perf_counter() - start
                start = time.perf_counter()
                self.save(checkpoint)
                if on_checkpoint:
                    on_checkpoint(self)
        bar.close()
        self.elapsed += time.perf_counter() - start
        return self.history

    # --- checkpoints -----------------------------------------------------------------------------
    def state(self) -> dict:
        return {"g_opt": self.g_opt.state_dict(), "c_opt": self.c_opt.state_dict(),
                "rng": self.rng.get_state(), "history": self.history, "elapsed": self.elapsed,
                "train_config": {**self.config.__dict__, "betas": list(self.config.betas)}}

    def save(self, path: str | Path) -> None:
        from .checkpoints import save_checkpoint

        save_checkpoint(path, self.generator, self.critic,
                        {**self.meta, "iterations": self.iteration, "seed": self.config.seed,
                         "wall_time_s": round(self.elapsed, 1)},
                        training_state=self.state())

    def resume(self, path: str | Path) -> None:
        """Restore networks, optimisers, RNG and history from a checkpoint written by ``save``."""
        from .checkpoints import load_checkpoint

        ckpt = load_checkpoint(path, self.generator, self.critic)
        state = ckpt.get("training_state")
        if state is None:
            raise ValueError(f"{path}: checkpoint has no training state (an exported checkpoint cannot be resumed)")
        saved = {k: v for k, v in state["train_config"].items() if k != "iters"}
        current = {**self.config.__dict__, "betas": list(self.config.betas)}
        changed = {k: (v, current[k]) for k, v in saved.items() if current.get(k) != v}
        if changed:
            raise ValueError(f"{path}: cannot resume with other training settings (saved, now): {changed}")
        self.g_opt.load_state_dict(state["g_opt"])
        self.c_opt.load_state_dict(state["c_opt"])
        self.rng.set_state(state["rng"])
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.elapsed = float(state["elapsed"])
        self.iteration = int(ckpt["config"]["iterations"])
