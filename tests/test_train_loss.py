"""Losses against hand-computed values on tiny stand-ins; R1/PL/GP gradients finite on tiny real networks;
lazy-regularisation corrections; EMA schedule."""

import math

import pytest
import torch
from torch import nn

from baggan.stylegan2.config import build_discriminator, build_generator
from baggan.stylegan2.loss import (LogisticLoss, PathLength, StyleGAN2Loss, WassersteinLoss, generate,
                                   gradient_penalty, r1_penalty)
from baggan.stylegan2.training_loop import ema_beta, make_optimizer
from train_fixtures import one_thread, tiny_config  # noqa: F401 (autouse fixture)


def test_logistic_values():
    real, fake = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [-3.0]])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert torch.allclose(LogisticLoss().generator(fake), torch.tensor([sp(-1.0), sp(3.0)]))
    assert torch.allclose(LogisticLoss().discriminator(real, fake), torch.tensor([sp(1.0) + sp(0.0), sp(-3.0) + sp(-2.0)]))


def test_wasserstein_values():
    loss = WassersteinLoss(weight=0.5, drift=0.001)
    real, fake = torch.tensor([[1.0], [-2.0]]), torch.tensor([[0.5], [3.0]])
    assert torch.allclose(loss.generator(fake), torch.tensor([-0.25, -1.5]))
    # 0.5 (fake - real) + 0.001 real²
    assert torch.allclose(loss.discriminator(real, fake), torch.tensor([-0.25 + 0.001, 2.5 + 0.004]))


def test_gradient_penalty_linear_critic():
    a = torch.zeros(1, 1, 2, 2)
    a[0, 0, 0, 0], a[0, 0, 1, 1] = 2.0, math.sqrt(5.0)  # ||a|| = 3 → (3 - 1)² = 4 wherever x̂ is
    critic = lambda x: (x * a).sum(dim=(1, 2, 3))  # noqa: E731
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    gp = gradient_penalty(critic, real, fake, torch.rand(3))
    assert torch.allclose(gp, torch.full([3], 4.0))


def test_r1_penalty_quadratic_critic():
    x = torch.tensor([[[[1.0, 2.0]]], [[[0.0, -1.0]]]], requires_grad=True)  # [2, 1, 1, 2]
    logits = (3 * x.square()).sum(dim=(1, 2, 3))  # ∇ = 6x
    assert torch.allclose(r1_penalty(x, logits), torch.tensor([36 * (1 + 4), 36 * 1.0]))


def test_path_length_linear_generator():
    m = torch.tensor([[1.0, 2.0], [2.0, 0.0], [0.0, 0.0]])  # [num_ws=3, w_dim=2]
    ws = torch.randn(4, 3, 2, requires_grad=True)
    images = (ws * m).sum(dim=(1, 2)).reshape(4, 1, 1, 1)  # H = W = 1, so y = noise
    lengths = PathLength.lengths(images, ws, torch.ones_like(images))
    assert torch.allclose(lengths, torch.full([4], math.sqrt((5 + 4 + 0) / 3)))
    pl = PathLength(decay=0.01)
    assert torch.allclose(pl.penalty(lengths), lengths.square())  # mean starts at 0
    pl.update(2.0)
    assert float(pl.mean) == pytest.approx(0.02)


class StandInG(nn.Module):
    """mapping: z → ws = z repeated over 4 layers; synthesis: mean of ws as a 1x1 image."""

    num_ws, z_dim, c_dim = 4, 2, 0

    def mapping(self, z, c, update_emas=False):
        return z.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesis(self, ws):
        return ws.mean(dim=(1, 2)).reshape(-1, 1, 1, 1)


def test_style_mixing_switches_latents_at_one_cutoff():
    z = torch.randn(5, 2)
    _, ws = generate(StandInG(), z, None, mixing_prob=0.0)
    assert torch.equal(ws, z.unsqueeze(1).repeat(1, 4, 1))
    torch.manual_seed(3)
    _, ws = generate(StandInG(), z, None, mixing_prob=1.0)
    same = (ws == z.unsqueeze(1)).all(dim=2)[0]  # per layer: from the first latent?
    cutoff = int(same.float().argmin())
    assert 1 <= cutoff < 4 and same[:cutoff].all() and not same[cutoff:].any()


@pytest.mark.parametrize("kind", ["logistic", "wgan-gp"])
def test_phases_on_tiny_networks_give_finite_gradients(kind):
    cfg = tiny_config(loss={"kind": kind}, network={"num_fp16_res": 2})  # fp16 blocks run in fp32 on the CPU
    G, D = build_generator(cfg.network), build_discriminator(cfg.network)
    loss = StyleGAN2Loss(cfg.loss, G, D, augment=None)
    reals = torch.rand(4, 3, 16, 16) * 2 - 1
    z = torch.randn(4, cfg.network.z_dim)
    phases = {"G_main": (G, lambda: loss.g_main(z, None)), "G_reg": (G, lambda: loss.g_reg(z, None)),
              "D_main": (D, lambda: loss.d_main(reals, None, z, None)), "D_reg": (D, lambda: loss.d_reg(reals, None))}
    for name, (module, run) in phases.items():
        module.zero_grad(set_to_none=True)
        objective, stats = run()
        objective.sum().backward()
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads), name
        assert sum(float(g.abs().sum()) for g in grads) > 0, name
    _, stats = loss.d_main(reals, None, z, None)
    assert ("D/gp" in stats) == (kind == "wgan-gp")
    assert generate(G, z, None, 0.9)[0].dtype == torch.float32


def test_lazy_regularisation_corrects_lr_and_betas():
    opt = make_optimizer(nn.Linear(2, 2), lr=0.002, betas=(0.0, 0.99), eps=1e-8, reg_interval=16)
    group = opt.param_groups[0]
    assert group["lr"] == pytest.approx(0.002 * 16 / 17)
    assert group["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    plain = make_optimizer(nn.Linear(2, 2), lr=0.002, betas=(0.0, 0.99), eps=1e-8, reg_interval=None)
    assert plain.param_groups[0]["lr"] == 0.002


def test_ema_half_life_and_rampup():
    assert ema_beta(0, 32, 10.0, 0.05) == 0.0  # first step: G_ema = G
    assert ema_beta(10**9, 32, 10.0, 0.05) == pytest.approx(0.5 ** (32 / 10_000))
    assert ema_beta(100_000, 32, 10.0, 0.05) == pytest.approx(0.5 ** (32 / 5_000))  # ramp-up: 0.05 × 100k


def test_sample_diversity_is_zero_for_a_collapsed_generator():
    from baggan.stylegan2.training_report import sample_diversity

    same = torch.rand(1, 3, 8, 8).repeat(5, 1, 1, 1)
    assert sample_diversity(same) == 0.0
    two = torch.stack([torch.full([3, 8, 8], -1.0), torch.full([3, 8, 8], 1.0)])
    assert sample_diversity(two) == pytest.approx(math.sqrt(2))  # unbiased std of {-1, 1}
    with pytest.raises(AssertionError):
        sample_diversity(same[:1])


def test_gaussian_blur_and_its_fade():
    """The D-input blur: σ 0 is the identity; it keeps a constant image and the mass of an impulse, matches the
    1-D Gaussian taps, and fades linearly to 0 over blur_fade_kimg."""
    from baggan.stylegan2.loss import LossConfig, gaussian_blur

    x = torch.randn(2, 3, 16, 16)
    assert gaussian_blur(x, 0.0) is x
    assert torch.allclose(gaussian_blur(torch.full((1, 3, 16, 16), 0.7), 1.5), torch.full((1, 3, 16, 16), 0.7))
    imp = torch.zeros(1, 1, 21, 21)
    imp[0, 0, 10, 10] = 1.0
    out = gaussian_blur(imp, 1.0)
    taps = torch.exp(-0.5 * torch.arange(-3.0, 4.0) ** 2)
    taps = taps / taps.sum()
    assert torch.allclose(out[0, 0, 10, 7:14], taps * taps[3], atol=1e-6)
    assert math.isclose(float(out.sum()), 1.0, rel_tol=1e-5)
    assert gaussian_blur(torch.randn(1, 1, 4, 4), 5.0).shape == (1, 1, 4, 4)  # kernel cut to the image
    cfg = LossConfig(blur_sigma=2.0, blur_fade_kimg=10)
    assert [cfg.blur_at(n) for n in (0, 5000, 10000, 20000)] == [2.0, 1.0, 0.0, 0.0]
    assert LossConfig().blur_at(0) == 0.0
    with pytest.raises(Exception, match="blur_fade_kimg"):
        LossConfig(blur_sigma=1.0, blur_fade_kimg=0)


def test_d_sees_blurred_images_while_the_blur_lasts():
    """With blur_sigma set, D main and R1 see blurred reals and fakes; at σ 0 exactly the old images."""
    from baggan.stylegan2.loss import LossConfig, gaussian_blur

    seen = []
    D = lambda img, c: (seen.append(img.detach().clone()), img.mean(dim=(1, 2, 3))[:, None])[1]  # noqa: E731
    loss = StyleGAN2Loss(LossConfig(blur_sigma=2.0), None, D, None)
    real = torch.randn(2, 3, 8, 8)
    loss.d_reg(real, None)
    assert torch.allclose(seen[-1], gaussian_blur(real, 2.0))
    loss.blur_sigma = 0.0
    loss.d_reg(real, None)
    assert torch.equal(seen[-1], real)


def test_mode_seeking_pairs_share_labels_and_rewards_diversity_up_to_the_cap():
    """The DSGAN term: pairs (i, i + N//2) share a label; a collapsed pair has ratio 0, a known pair its exact
    ratio; the term lowers L_G by λ·min(ratio, τ) and gives G a gradient only below the cap."""
    from baggan.stylegan2.loss import LossConfig, pair_diversity, paired_labels

    c = torch.eye(5)
    assert torch.equal(paired_labels(c), torch.stack([c[0], c[1], c[0], c[1], c[4]]))
    assert paired_labels(None) is None
    z = torch.zeros(5, 4)
    z[2:4] = 2.0  # |Δz| = 2 in every pair
    images = torch.zeros(5, 3, 2, 2)
    images[2] = 1.0  # pair (0, 2) differs by 1 per pixel, pair (1, 3) not at all
    assert pair_diversity(images, z).tolist() == [0.5, 0.0, 0.5, 0.0, 0.0]

    class Constant(nn.Module):  # a collapsed G: the same image for every z
        def __init__(self):
            super().__init__()
            self.image = nn.Parameter(torch.zeros(1, 3, 4, 4))
            self.shift = nn.Parameter(torch.zeros(()))

        def mapping(self, z, c):
            return (z[:, None, :] * self.shift).repeat(1, 2, 1)

        def synthesis(self, ws):
            return self.image + ws[:, :1, :1, None].expand(-1, 3, 4, 4)

    D = lambda img, c: img.mean(dim=(1, 2, 3))[:, None]  # noqa: E731
    G, zs = Constant(), torch.randn(4, 4)
    plain = StyleGAN2Loss(LossConfig(style_mixing=0.0), G, D, None)
    seeking = StyleGAN2Loss(LossConfig(style_mixing=0.0, diversity_weight=2.0, diversity_cap=0.1), G, D, None)

    def shift_grad(loss):
        G.zero_grad()
        objective, stats = loss.g_main(zs, None)
        objective.sum().backward()
        return float(G.shift.grad), objective.detach(), stats

    g_plain, l_plain, _ = shift_grad(plain)
    g_seek, l_seek, stats = shift_grad(seeking)
    assert torch.equal(l_seek, l_plain) and stats["G/pair_diversity"].abs().sum() == 0  # collapsed: no reward
    G.shift.data.fill_(0.01)  # nearly collapsed: the term pushes G to let z matter more
    g_plain, l_plain, _ = shift_grad(plain)
    g_seek, l_seek, stats = shift_grad(seeking)
    assert 0 < float(stats["G/pair_diversity"][0]) < 0.1 and g_seek < g_plain - 1e-3
    G.shift.data.fill_(10.0)  # far above the cap: the term is the constant -λτ and adds no gradient
    g_plain, l_plain, _ = shift_grad(plain)
    g_seek, l_seek, stats = shift_grad(seeking)
    assert torch.allclose(l_seek, l_plain - 2.0 * 0.1) and g_seek == pytest.approx(g_plain)
    with pytest.raises(Exception, match="diversity_cap"):
        LossConfig(diversity_cap=0.0)
