"""Eq. 3 and the gradient penalty (lessons 02, 04) against critics whose input gradient is known in
closed form, finite differences and direct computations; the trainer's steps and its exact resume."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from lesson_lib.models import Critic, Generator
from lesson_lib.wgan import TrainConfig, Trainer, critic_loss, generator_loss, gradient_penalty


class LinearCritic(nn.Module):
    """f(x) = <w, x> + b over images: grad_x f = w everywhere, so GP = (||w|| - 1)^2."""

    def __init__(self, shape, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(shape, generator=g, dtype=torch.float64) * 0.05)
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b


class QuadraticCritic(nn.Module):
    """f(x) = 1/2 sum a x^2: grad_x f = a * x, different for every sample."""

    def __init__(self, shape, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(torch.rand(shape, generator=g, dtype=torch.float64) + 0.5)

    def forward(self, x):
        return 0.5 * (self.a * x ** 2).flatten(1).sum(1)


class RecordingCritic(LinearCritic):
    def forward(self, x):
        self.seen = x.detach().clone()
        return super().forward(x)


def images(n, seed, shape=(3, 4, 4)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g, dtype=torch.float64) * 2 - 1


def quadratic_gp_by_hand(a, real, fake, eps):
    a, real, fake, eps = (t.detach().numpy() for t in (a, real, fake, eps))
    total = 0.0
    for i in range(len(real)):
        x_hat = eps[i] * real[i] + (1 - eps[i]) * fake[i]
        total += (np.sqrt(np.sum((a * x_hat) ** 2)) - 1) ** 2
    return total / len(real)


# --- the gradient penalty ------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [0.05, 1.0])
def test_gp_of_linear_critic_is_closed_form(scale):
    critic = LinearCritic((3, 4, 4))
    with torch.no_grad():
        critic.w.mul_(scale / 0.05)
    gp = gradient_penalty(critic, images(5, 1), images(5, 2))
    expected = (torch.sqrt(torch.sum(critic.w.detach() ** 2)) - 1) ** 2
    torch.testing.assert_close(gp, expected)


def test_gp_of_quadratic_critic_per_sample():
    critic, real, fake = QuadraticCritic((3, 4, 4)), images(6, 1), images(6, 2)
    eps = torch.tensor([0.0, 1.0, 0.25, 0.5, 0.9, 0.1], dtype=torch.float64)
    gp = gradient_penalty(critic, real, fake, eps=eps)
    assert gp.item() == pytest.approx(quadratic_gp_by_hand(critic.a, real, fake, eps), rel=1e-12)


def test_gp_uses_one_eps_per_sample():
    critic, real, fake = RecordingCritic((3, 4, 4)), images(4, 1), images(4, 2)
    eps = torch.tensor([0.1, 0.4, 0.7, 1.0], dtype=torch.float64)
    gradient_penalty(critic, real, fake, eps=eps)
    for i in range(4):
        torch.testing.assert_close(critic.seen[i], eps[i] * real[i] + (1 - eps[i]) * fake[i])


def test_gp_random_eps_is_one_per_sample_from_the_generator():
    critic, real, fake = RecordingCritic((3, 4, 4)), images(8, 1), images(8, 2)
    gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(7))
    expected_eps = torch.rand(8, generator=torch.Generator().manual_seed(7)).double()
    ratio = (critic.seen - fake) / (real - fake)          # eps_i in every pixel of sample i
    for i in range(8):
        torch.testing.assert_close(ratio[i], torch.full_like(ratio[i], expected_eps[i].item()))
    assert len(set(expected_eps.tolist())) == 8


def test_gp_gradient_reaches_linear_critic_and_matches_finite_differences():
    critic, real, fake = LinearCritic((3, 4, 4)), images(5, 1), images(5, 2)
    gradient_penalty(critic, real, fake).backward()
    w = critic.w.detach()
    norm = w.norm()
    torch.testing.assert_close(critic.w.grad, 2 * (norm - 1) * w / norm)   # d/dw (||w|| - 1)^2
    h = 1e-6
    for k in [(0, 0, 0), (1, 2, 3), (2, 3, 1)]:
        values = []
        for step in (h, -2 * h, h):
            with torch.no_grad():
                critic.w[k] += step
            values.append(gradient_penalty(critic, real, fake).item())
        up, down = values[:2]
        assert critic.w.grad[k].item() == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-9)
    assert critic.b.grad is None or critic.b.grad.item() == 0   # the bias does not move the gradient


def test_gp_gradient_reaches_the_residual_critic():
    torch.manual_seed(0)
    critic = Critic(32, dim=2)
    real, fake = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    gradient_penalty(critic, real, fake).backward()
    for name, p in critic.named_parameters():
        if name.endswith("weight") and p.dim() > 1:      # every conv and linear weight
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gp_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(LinearCritic((3, 4, 4)), images(4, 1), images(3, 2))
    with pytest.raises(ValueError, match=r"one coefficient per sample \(4\)"):
        gradient_penalty(LinearCritic((3, 4, 4)), images(4, 1), images(4, 2), eps=torch.rand(3))


# --- the losses of eq. 3 ------------------------------------------------------------------------------

def test_critic_loss_is_eq3_plus_lambda_gp():
    critic, real, fake = QuadraticCritic((3, 4, 4)), images(6, 1), images(6, 2)
    loss, stats = critic_loss(critic, real, fake, gp_weight=10.0, generator=torch.Generator().manual_seed(3))
    eps = torch.rand(6, generator=torch.Generator().manual_seed(3)).double()
    a = critic.a.detach().numpy()
    d = lambda x: [0.5 * np.sum(a * xi ** 2) for xi in x.numpy()]  # noqa: E731
    w_hat = np.mean(d(real)) - np.mean(d(fake))
    gp = quadratic_gp_by_hand(critic.a, real, fake, eps)
    assert loss.item() == pytest.approx(-w_hat + 10 * gp, rel=1e-12)
    assert stats["wasserstein"] == pytest.approx(w_hat, rel=1e-12)
    assert stats["gp"] == pytest.approx(gp, rel=1e-12)
    assert stats["critic_loss"] == pytest.approx(loss.item())


def test_critic_loss_does_not_train_the_generator():
    critic, real = LinearCritic((3, 4, 4)), images(4, 1)
    source = nn.Parameter(images(4, 2))
    loss, _ = critic_loss(critic, real, source * 1.0)
    loss.backward()
    assert source.grad is None
    assert critic.w.grad.abs().sum() > 0


def test_generator_loss_is_minus_mean_score():
    critic = LinearCritic((3, 4, 4))
    fake = images(5, 2).requires_grad_(True)
    loss = generator_loss(critic, fake)
    w, b = critic.w.detach().numpy(), critic.b.item()
    expected = -np.mean([np.sum(w * f) + b for f in fake.detach().numpy()])
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    torch.testing.assert_close(fake.grad, -critic.w.detach().expand(5, -1, -1, -1) / 5)


# --- training -----------------------------------------------------------------------------------------

def _setup(seed=0, n_critic=2, iters=4):
    torch.manual_seed(seed)
    data = torch.rand(16, 3, 32, 32, generator=torch.Generator().manual_seed(99)) * 2 - 1
    return Trainer(Generator(32, 4), Critic(32, 4), data,
                   TrainConfig(iters=iters, batch_size=4, n_critic=n_critic, seed=5), meta={"dataset": "test"})


def test_a_few_steps_change_the_networks_and_stay_finite():
    trainer = _setup(n_critic=2)
    before = copy.deepcopy({**trainer.generator.state_dict(), **{"c." + k: v for k, v in trainer.critic.state_dict().items()}})
    trainer.train(until=3, progress=False)
    assert trainer.iteration == 3
    hist = trainer.history
    assert all(len(v) == 3 for v in hist.values())
    assert all(np.isfinite(v).all() for v in hist.values())
    assert len(set(hist["critic_loss"])) == 3               # the critic loss moves
    for p in [*trainer.generator.parameters(), *trainer.critic.parameters()]:
        assert torch.isfinite(p).all()
    after = {**trainer.generator.state_dict(), **{"c." + k: v for k, v in trainer.critic.state_dict().items()}}
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert "linear.weight" in changed and "c.linear.weight" in changed and "c.inp.weight" in changed
    assert all(p.requires_grad for p in trainer.critic.parameters())   # unfrozen after the G step


@pytest.mark.parametrize("config", [TrainConfig(n_critic=0), TrainConfig(batch_size=0)])
def test_trainer_rejects_empty_steps(config):
    with pytest.raises(ValueError, match="n_critic and batch_size"):
        Trainer(Generator(32, 4), Critic(32, 4), torch.zeros(4, 3, 32, 32), config)


def test_resume_is_exact(tmp_path):
    straight = _setup()
    straight.train(until=4, progress=False)

    first = _setup()
    first.train(until=2, checkpoint=tmp_path / "run.pt", every=100, progress=False)
    second = _setup(seed=123)                                # other initial weights: they must be replaced
    second.resume(tmp_path / "run.pt")
    assert second.iteration == 2
    second.train(until=4, progress=False)

    for a, b in [(straight.generator, second.generator), (straight.critic, second.critic)]:
        sa, sb = a.state_dict(), b.state_dict()                # parameters and batch-norm buffers
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    assert straight.history == second.history
    assert second.iteration == 4


def test_resume_needs_training_state(tmp_path):
    from lesson_lib.checkpoints import export_checkpoint

    trainer = _setup()
    trainer.train(until=1, checkpoint=tmp_path / "run.pt", progress=False)
    export_checkpoint(tmp_path / "run.pt", tmp_path / "export.pt")
    with pytest.raises(ValueError, match="no training state"):
        _setup().resume(tmp_path / "export.pt")


def test_trainer_rejects_images_of_the_wrong_size():
    with pytest.raises(ValueError, match="training images"):
        Trainer(Generator(32, 4), Critic(32, 4), torch.zeros(4, 3, 64, 64))


@pytest.mark.parametrize("images, problem", [(torch.rand(4, 3, 32, 32) * 255, "must lie in"),
                                             (torch.full((4, 3, 32, 32), float("nan")), "must lie in")])
def test_trainer_rejects_images_outside_minus_one_one(images, problem):
    with pytest.raises(ValueError, match=problem):
        Trainer(Generator(32, 4), Critic(32, 4), images)


@pytest.mark.parametrize("config", [TrainConfig(lr=0.0), TrainConfig(gp_weight=-1.0)])
def test_trainer_rejects_bad_rates(config):
    with pytest.raises(ValueError, match="lr must be > 0 and gp_weight >= 0"):
        Trainer(Generator(32, 4), Critic(32, 4), torch.zeros(4, 3, 32, 32), config)


def test_resume_refuses_changed_settings(tmp_path):
    images = torch.rand(16, 3, 32, 32) * 2 - 1
    t = Trainer(Generator(32, 4), Critic(32, 4), images, TrainConfig(iters=1, batch_size=4, n_critic=1),
                meta={"dataset": "toy_faces"})
    t.train(progress=False)
    t.save(tmp_path / "a.pt")
    other = Trainer(Generator(32, 4), Critic(32, 4), images, TrainConfig(iters=2, batch_size=8, n_critic=1))
    with pytest.raises(ValueError, match="batch_size"):
        other.resume(tmp_path / "a.pt")
    same = Trainer(Generator(32, 4), Critic(32, 4), images, TrainConfig(iters=2, batch_size=4, n_critic=1))
    same.resume(tmp_path / "a.pt")
    assert same.iteration == 1
