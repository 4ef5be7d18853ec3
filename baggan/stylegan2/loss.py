"""StyleGAN2-ADA losses as small composable pieces, and the four training phases that combine them.

Every function returns PER-SAMPLE values ([N]); the training loop sums them over the global batch and
divides by its size, so a gradient never depends on how the batch is split across processes.

Adversarial losses (D(x) = logits):
  logistic (non-saturating, the official default)
      L_G = softplus(-D(G(z)))                  L_D = softplus(D(G(z))) + softplus(-D(x))
  wgan-gp (the paper's BagGAN loss, appendix C.1, λ_wgan = λ_gp = 0.5)
      L_G = -λ_wgan D(G(z))                     L_D = λ_wgan (D(G(z)) - D(x)) + λ_gp (||∇D(x̂)||₂ - 1)² + ε D(x)²
      x̂ = u x + (1 - u) G(z), u ~ U(0, 1) per sample (Gulrajani et al. 2017); ε is ProGAN's drift term.
Regularisers: R1 (Eq. C9, γ/2 ||∇_x D(x)||² on reals) and path length (λ_pl (|J_w^T y| - a)²).
D-input blur (opt-in, as StyleGAN3's `blur_init_sigma`): every image D sees — reals, fakes, R1's reals — is
blurred by a Gaussian whose σ fades linearly from `blur_sigma` to 0 over the first `blur_fade_kimg`, so that D
judges outlines before texture early in training.
Mode seeking (opt-in, DSGAN: Yang et al. 2019, Eq. 3): the G batch is split into pairs that share one label, and
      L_div = -λ_div min(mean|G(z₁, c) - G(z₂, c)| / mean|z₁ - z₂|, τ)
is added to L_G, so that a conditional G cannot answer every z of a class with one picture; τ stops the push once
pairs differ as much as training images of one class do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import nn

from baggan.config import check

Tensor = torch.Tensor


@dataclass(frozen=True)
class LossConfig:
    """Loss block of the training config."""

    kind: Literal["logistic", "wgan-gp"] = "logistic"
    wgan_weight: float = 0.5  # λ_wgan: multiplies both the D and the G Wasserstein terms
    gp_weight: float = 0.5  # λ_gp: gradient penalty on real/fake interpolates
    wgan_drift: float = 0.001  # ε: keeps D(x) near 0 (ProGAN), so ADA's sign(D(real)) stays meaningful
    r1_gamma: float = 10.0  # γ of R1 (Eq. C9); 0 = off
    r1_interval: int = 16  # lazy R1: every N minibatches
    pl_weight: float = 2.0  # λ_pl; 0 = off
    pl_interval: int = 4  # lazy path-length regularisation: every N minibatches
    pl_decay: float = 0.01  # running mean a of path lengths: a ← a + decay (mean − a)
    pl_batch_shrink: int = 2  # the PL pass uses batch / shrink samples
    style_mixing: float = 0.9  # probability of mixing two latents at a random layer
    blur_sigma: float = 0.0  # σ (pixels) of the D-input blur at the start; 0 = off
    blur_fade_kimg: float = 100.0  # σ falls linearly to 0 over this many kimg
    diversity_weight: float = 0.0  # λ_div of the mode-seeking term; 0 = off
    diversity_cap: float = 0.35  # τ: pairs that differ more than this (per unit of z distance) are left alone

    def __post_init__(self) -> None:
        for name in ("wgan_weight", "gp_weight", "wgan_drift", "r1_gamma", "pl_weight", "pl_decay", "blur_sigma"):
            check(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        check(self.r1_interval >= 1, "r1_interval", f"must be >= 1, got {self.r1_interval}")
        check(self.pl_interval >= 1, "pl_interval", f"must be >= 1, got {self.pl_interval}")
        check(self.pl_batch_shrink >= 1, "pl_batch_shrink", f"must be >= 1, got {self.pl_batch_shrink}")
        check(0 <= self.style_mixing <= 1, "style_mixing", f"must be in [0, 1], got {self.style_mixing}")
        check(self.blur_fade_kimg > 0, "blur_fade_kimg", f"must be > 0, got {self.blur_fade_kimg}")
        check(self.diversity_weight >= 0, "diversity_weight", f"must be >= 0, got {self.diversity_weight}")
        check(self.diversity_cap > 0, "diversity_cap", f"must be > 0, got {self.diversity_cap}")

    def blur_at(self, nimg: int) -> float:
        """σ of the D-input blur after `nimg` training images."""
        return max(1.0 - nimg / (self.blur_fade_kimg * 1000), 0.0) * self.blur_sigma


# ---------------------------------------------------------------------------------------------
# Adversarial losses.


class LogisticLoss:
    """Non-saturating logistic GAN loss (Goodfellow et al. 2014; the StyleGAN2 default)."""

    def generator(self, fake_logits: Tensor) -> Tensor:
        """-log sigmoid(D(G(z))), per sample."""
        return F.softplus(-fake_logits).flatten()

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """-log(1 - sigmoid(D(G(z)))) - log sigmoid(D(x)), per sample."""
        return (F.softplus(fake_logits) + F.softplus(-real_logits)).flatten()


class WassersteinLoss:
    """WGAN critic loss weighted by λ_wgan, with ProGAN's drift ε D(x)² (the gradient penalty is separate)."""

    def __init__(self, weight: float, drift: float):
        self.weight, self.drift = weight, drift

    def generator(self, fake_logits: Tensor) -> Tensor:
        """-λ_wgan D(G(z)), per sample."""
        return (-self.weight * fake_logits).flatten()

    def discriminator(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """λ_wgan (D(G(z)) - D(x)) + ε D(x)², per sample."""
        return (self.weight * (fake_logits - real_logits) + self.drift * real_logits.square()).flatten()


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of [N, C, H, W] images (reflect padding, radius 3σ up to the image size − 1);
    σ <= 0: unchanged."""
    if sigma <= 0:
        return images
    radius = max(min(int(math.ceil(3 * sigma)), images.shape[2] - 1, images.shape[3] - 1), 1)
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    c = images.shape[1]
    k = (k / k.sum()).repeat(c, 1)
    out = F.pad(images, (radius,) * 4, mode="reflect")
    out = F.conv2d(out, k[:, None, None, :], groups=c)
    return F.conv2d(out, k[:, None, :, None], groups=c)


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, u: Tensor) -> Tensor:
    """WGAN-GP: (||∇ critic(x̂)||₂ - 1)² at x̂ = u real + (1 - u) fake, per sample; u is [N]."""
    x_hat = torch.lerp(fake.detach(), real.detach(), u.reshape(-1, 1, 1, 1)).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square()


def r1_penalty(real: Tensor, real_logits: Tensor) -> Tensor:
    """R1 (Eq. C9 without γ/2): ||∇_x D(x)||², per sample; `real` must require grad."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(dim=1)


class PathLength(nn.Module):
    """Path-length regulariser (StyleGAN2 §3.2): lengths |J_w^T y| and their running mean a (a buffer)."""

    def __init__(self, decay: float):
        super().__init__()
        self.decay = decay
        self.register_buffer("mean", torch.zeros([]))

    @staticmethod
    def lengths(images: Tensor, ws: Tensor, noise: Tensor) -> Tensor:
        """|J_w^T y| per sample, y = noise / sqrt(H W); averaged over the num_ws copies of w like the official."""
        y = noise / math.sqrt(images.shape[2] * images.shape[3])
        (grad,) = torch.autograd.grad((images * y).sum(), ws, create_graph=True)
        return grad.square().sum(dim=2).mean(dim=1).sqrt()

    def penalty(self, lengths: Tensor) -> Tensor:
        """(|J_w^T y| - a)², per sample, against the running mean from before this step."""
        return (lengths - self.mean).square()

    @torch.no_grad()
    def update(self, batch_mean: float) -> None:
        """a ← a + decay (batch mean − a), once per regularisation step with the global batch mean."""
        self.mean.copy_(self.mean.lerp(torch.as_tensor(batch_mean, dtype=self.mean.dtype), self.decay))


def paired_labels(c: Tensor | None) -> Tensor | None:
    """Labels whose second half repeats the first, so that sample i and i + N//2 share a label."""
    if c is None:
        return None
    n = c.shape[0] // 2
    return torch.cat([c[:n], c[:n], c[2 * n:]])


def pair_diversity(images: Tensor, z: Tensor) -> Tensor:
    """DSGAN's ratio mean|G(z₁) - G(z₂)| / mean|z₁ - z₂| for the pairs (i, i + N//2), per sample [N]
    (both members of a pair carry its ratio; the odd one out carries 0)."""
    assert images.shape[0] == z.shape[0], (images.shape, z.shape)
    n = z.shape[0] // 2
    ratio = (images[:n] - images[n:2 * n]).abs().mean(dim=(1, 2, 3)) / (z[:n] - z[n:2 * n]).abs().mean(dim=1)
    return torch.cat([ratio, ratio, ratio.new_zeros(z.shape[0] - 2 * n)])


# ---------------------------------------------------------------------------------------------
# Generator pass with style mixing.


def generate(G: nn.Module, z: Tensor, c: Tensor | None, mixing_prob: float) -> tuple[Tensor, Tensor]:
    """G(z) with style mixing like the official loss: with probability `mixing_prob` the ws from a random
    layer cutoff onwards come from the mapping of a second latent. Returns (images, ws)."""
    ws = G.mapping(z, c)
    if mixing_prob > 0:
        num_ws = ws.shape[1]
        cutoff = torch.randint(1, num_ws, (), device=ws.device) if num_ws > 1 else torch.tensor(1, device=ws.device)
        cutoff = torch.where(torch.rand((), device=ws.device) < mixing_prob, cutoff, torch.full_like(cutoff, num_ws))
        ws2 = G.mapping(torch.randn_like(z), c)
        layer = torch.arange(num_ws, device=ws.device).reshape(1, -1, 1)
        ws = torch.where(layer < cutoff, ws, ws2)
    return G.synthesis(ws), ws


# ---------------------------------------------------------------------------------------------
# The four phases.

Stats = dict[str, Tensor]  # name -> per-sample values [N] (or [N, D] for vectors such as 'w')


class StyleGAN2Loss:
    """Combines the pieces into the phases G main, G reg (path length), D main, D reg (R1).

    Each phase returns (objective [n], stats): the loop back-propagates objective.sum() * weight.
    The augmentation pipe is applied to every image D sees: reals, fakes, GP interpolates' endpoints, R1.
    """

    def __init__(self, cfg: LossConfig, G: nn.Module, D: nn.Module, augment: nn.Module | None):
        self.cfg, self.G, self.D = cfg, G, D
        self.augment = augment if augment is not None else nn.Identity()
        self.adversarial = (LogisticLoss() if cfg.kind == "logistic"
                            else WassersteinLoss(cfg.wgan_weight, cfg.wgan_drift))
        self.path_length = PathLength(cfg.pl_decay)
        self.blur_sigma = cfg.blur_sigma  # the loop sets it from the image count (LossConfig.blur_at)

    def see(self, images: Tensor) -> Tensor:
        """What D is shown of images: blurred (while the D-input blur lasts), then augmented."""
        return self.augment(gaussian_blur(images, self.blur_sigma))

    def run_D(self, images: Tensor, c: Tensor | None) -> Tensor:
        """D(see(images)), logits [N, 1]."""
        return self.D(self.see(images), c)

    def g_main(self, z: Tensor, c: Tensor | None) -> tuple[Tensor, Stats]:
        """Generator adversarial loss (+ the mode-seeking term when diversity_weight > 0)."""
        if self.cfg.diversity_weight > 0:
            c = paired_labels(c)
        images, _ = generate(self.G, z, c, self.cfg.style_mixing)
        loss = self.adversarial.generator(self.run_D(images, c))
        stats = {"G/loss": loss.detach()}
        if self.cfg.diversity_weight > 0:
            ratio = pair_diversity(images, z)
            loss = loss - self.cfg.diversity_weight * ratio.clamp(max=self.cfg.diversity_cap)
            stats["G/pair_diversity"] = ratio.detach()
        return loss, stats

    def g_reg(self, z: Tensor, c: Tensor | None) -> tuple[Tensor, Stats]:
        """Path-length penalty on the first len(z) / pl_batch_shrink latents."""
        n = max(z.shape[0] // self.cfg.pl_batch_shrink, 1)
        images, ws = generate(self.G, z[:n], None if c is None else c[:n], self.cfg.style_mixing)
        lengths = self.path_length.lengths(images, ws, torch.randn_like(images))
        penalty = self.path_length.penalty(lengths)
        return penalty * self.cfg.pl_weight, {"G/pl_penalty": penalty.detach(), "G/pl_length": lengths.detach()}

    def d_main(self, real: Tensor, real_c: Tensor | None, z: Tensor, c: Tensor | None) -> tuple[Tensor, Stats]:
        """Discriminator adversarial loss (+ gradient penalty for wgan-gp); stats carry sign(D(real)) for ADA
        and the unmixed w for the mapping's w_avg."""
        with torch.no_grad():
            fake, ws = generate(self.G, z, c, self.cfg.style_mixing)
        real_aug, fake_aug = self.see(real), self.see(fake)
        real_logits, fake_logits = self.D(real_aug, real_c), self.D(fake_aug, c)
        loss = self.adversarial.discriminator(real_logits, fake_logits)
        stats = {"D/loss": loss.detach(), "D/score_real": real_logits.detach().flatten(),
                 "D/score_fake": fake_logits.detach().flatten(), "D/sign_real": real_logits.detach().sign().flatten(),
                 "w": ws[:, 0]}  # ws[:, 0] always comes from z (mixing cutoff >= 1)
        if self.cfg.kind == "wgan-gp":
            u = torch.rand(real.shape[0], device=real.device)
            gp = gradient_penalty(lambda x: self.D(x, real_c), real_aug, fake_aug, u)
            loss = loss + self.cfg.gp_weight * gp
            stats["D/gp"] = gp.detach()
        return loss, stats

    def d_reg(self, real: Tensor, real_c: Tensor | None) -> tuple[Tensor, Stats]:
        """R1 on (augmented) reals: γ/2 ||∇_x D(x)||² (Eq. C9)."""
        real = real.detach().requires_grad_(True)
        penalty = r1_penalty(real, self.run_D(real, real_c))
        return penalty * (self.cfg.r1_gamma / 2), {"D/r1_penalty": penalty.detach()}


__all__ = ["LossConfig", "LogisticLoss", "WassersteinLoss", "gaussian_blur", "gradient_penalty", "r1_penalty",
           "PathLength", "paired_labels", "pair_diversity", "generate", "StyleGAN2Loss"]
