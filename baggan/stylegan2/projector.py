"""GAN inversion: optimise W+ latents (and the per-layer noise maps) until the generator reproduces a scan.

The scheme follows the idea of the official StyleGAN2 projector (start from w_avg, Adam with a cosine
learning-rate ramp, decaying noise added to w early on, noise maps kept white by a regulariser and
renormalised after every step), with losses that need no downloaded network:

  * `PixelLoss`              L1 and L2 between the images (in [-1, 1]);
  * `LaplacianPyramidLoss`   L1 on every band of a Laplacian pyramid (coarse structure counts as much as
                             fine detail, which a plain pixel loss under-weights);
  * `MultiScaleSSIMLoss`     1 - SSIM averaged over the Gaussian-pyramid levels (a differentiable SSIM,
                             Gaussian window; scikit-image's is not differentiable);
  * `DiscriminatorFeatureLoss`  optional: distance between unit-normalised activations of the trained
                             discriminator's blocks, a perceptual-like loss from the GAN's own critic;
  * `noise_regularization`   keeps the optimised noise maps free of spatial structure at every scale.

Optimisation may start in W (one w shared by all num_ws style inputs, `w_steps`) and continue in W+.
The result reports PSNR and SSIM (scikit-image) of the reconstruction. On CPU a run is deterministic
for a given seed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from baggan.config import check
from baggan.errors import TrainingDiverged, UserError
from baggan.io import quantize
from baggan.stylegan2.networks import Discriminator, Generator


@dataclass(frozen=True)
class ProjectorConfig:
    """Knobs of one projection (the defaults are the ones docs/oneshot.md measured)."""

    steps: int = 500  # optimiser steps in all (W steps included)
    w_plus: bool = True  # False: stay in W (one w for every style input) for all steps
    w_steps: int = 0  # the first w_steps optimise in W, the rest in W+ (with w_plus)
    noise: bool = True  # also optimise the per-layer noise maps
    lr: float = 0.1  # peak Adam learning rate
    lr_rampup: float = 0.05  # fraction of the steps spent ramping the learning rate up (linear)
    lr_rampdown: float = 0.25  # fraction of the steps spent ramping it down (cosine)
    w_noise: float = 0.05  # std of the noise added to w at step 0, in units of w's spread; decays to 0
    w_noise_ramp: float = 0.75  # fraction of the steps over which that noise decays (quadratically)
    w_avg_samples: int = 10000  # latents whose mean (w_avg) and spread start the optimisation
    l1: float = 1.0  # weight of the L1 pixel loss
    l2: float = 1.0  # weight of the L2 pixel loss
    pyramid: float = 1.0  # weight of the Laplacian-pyramid L1 loss
    ssim: float = 0.5  # weight of the multi-scale (1 - SSIM) loss
    levels: int = 4  # pyramid levels (fewer if the image gets smaller than 4 px)
    d_features: float = 0.1  # weight of the discriminator-feature loss (used only when D is given)
    noise_reg: float = 1e5  # weight of the noise regulariser
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        check(0 <= self.w_steps <= self.steps, "w_steps", f"must be in 0..steps ({self.steps}), got {self.w_steps}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(0 <= self.lr_rampup <= 1 and 0 < self.lr_rampdown <= 1, "lr_rampup", "ramps must be fractions in [0, 1]")
        check(self.w_noise >= 0 and 0 < self.w_noise_ramp <= 1, "w_noise", "w_noise >= 0 and w_noise_ramp in (0, 1]")
        check(self.w_avg_samples >= 2, "w_avg_samples", f"must be >= 2, got {self.w_avg_samples}")
        for name in ("l1", "l2", "pyramid", "ssim", "d_features", "noise_reg"):
            check(getattr(self, name) >= 0, name, f"must be >= 0, got {getattr(self, name)}")
        check(self.l1 + self.l2 + self.pyramid + self.ssim + self.d_features > 0, "l1", "every loss weight is 0")
        check(self.levels >= 1, "levels", f"must be >= 1, got {self.levels}")


@dataclass
class ProjectionResult:
    """A projected scan: its latents, noise maps, reconstruction and how close it is to the target."""

    ws: torch.Tensor  # [1, num_ws, w_dim], CPU
    noise: dict[str, torch.Tensor]  # synthesis layer name (e.g. "b16.conv0") → noise map [R, R], CPU; {} if not optimised
    image: np.ndarray  # reconstruction, HxWxC uint8
    target: np.ndarray  # target, HxWxC uint8
    psnr: float  # dB, against the uint8 target
    ssim: float  # scikit-image structural_similarity
    history: list[dict[str, float]] = field(default_factory=list)  # one record per step: step, lr, loss, parts

    def generator(self, G: Generator) -> Generator:
        """A copy of G that renders `ws` with this projection's noise maps (noise_mode 'const')."""
        return with_noise(G, self.noise)


# ----------------------------------------------------------------------------------------------------
# Pure functions.


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[x, x/2, x/4, ...]: at most `levels` images, 2x2 average pooling, stopping above 4 px."""
    out = [x]
    while len(out) < levels and min(out[-1].shape[-2:]) >= 8:
        out.append(F.avg_pool2d(out[-1], 2))
    return out


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass images g_j - up(g_{j+1}) of the Gaussian pyramid, plus its coarsest level."""
    g = gaussian_pyramid(x, levels)
    bands = [fine - F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
             for fine, coarse in zip(g[:-1], g[1:])]  # fmt: skip
    return bands + [g[-1]]


def _gaussian_window(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    """Depthwise 2-D Gaussian kernel [C, 1, size, size] summing to 1."""
    t = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).expand(channels, 1, size, size).contiguous()


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0, size: int = 7, sigma: float = 1.5) -> torch.Tensor:
    """Differentiable SSIM per pixel and channel (Wang et al. 2004; Gaussian window, reflect padding)."""
    assert x.shape == y.shape and x.ndim == 4, f"ssim_map: {list(x.shape)} vs {list(y.shape)}"
    size = min(size, 2 * (min(x.shape[-2:]) // 2) - 1)  # reflect padding needs pad < image size
    window = _gaussian_window(size, sigma, x.shape[1], x.device)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(t, [size // 2] * 4, mode="reflect"), window, groups=x.shape[1])

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def noise_regularization(noise: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and scales of the squared lag-1 autocorrelations (x and y): 0 for white noise."""
    total = noise[0].new_zeros(())
    for n in noise:
        n = n[None, None]
        while True:
            total = total + (n * n.roll(1, dims=3)).mean() ** 2 + (n * n.roll(1, dims=2)).mean() ** 2
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


def lr_schedule(t: float, cfg: ProjectorConfig) -> float:
    """Learning rate at progress t in [0, 1): linear ramp up, flat, cosine ramp down."""
    down = 0.5 - 0.5 * math.cos(math.pi * min(1.0, (1.0 - t) / cfg.lr_rampdown))
    up = min(1.0, t / cfg.lr_rampup) if cfg.lr_rampup > 0 else 1.0
    return cfg.lr * down * up


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[N, C, H, W] in [-1, 1] → [N, H, W, C] uint8 (the rounding of baggan generate)."""
    return quantize(images).permute(0, 2, 3, 1).cpu().numpy()


def image_quality(target: np.ndarray, image: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of uint8 HxWxC `image` against `target` (scikit-image, data range 255)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    assert target.shape == image.shape and target.dtype == image.dtype == np.uint8, (target.shape, image.shape)
    psnr = float(peak_signal_noise_ratio(target, image, data_range=255))
    win = min(7, 2 * ((min(target.shape[:2]) - 1) // 2) + 1)
    ssim = float(structural_similarity(target, image, data_range=255, win_size=win, channel_axis=-1))
    return psnr, ssim


# ----------------------------------------------------------------------------------------------------
# Losses.


class PixelLoss(nn.Module):
    """l1 * mean|x - y| + l2 * mean (x - y)^2."""

    def __init__(self, l1: float, l2: float) -> None:
        super().__init__()
        self.l1, self.l2 = l1, l2

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = x - y
        return self.l1 * d.abs().mean() + self.l2 * d.square().mean()


class _MultiScaleLoss(nn.Module):
    """A loss computed on `levels` pyramid levels of the images."""

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels


class LaplacianPyramidLoss(_MultiScaleLoss):
    """Mean over pyramid bands of the L1 distance of the bands (each band weighs the same)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        bands = list(zip(laplacian_pyramid(x, self.levels), laplacian_pyramid(y, self.levels)))
        return sum((a - b).abs().mean() for a, b in bands) / len(bands)


class MultiScaleSSIMLoss(_MultiScaleLoss):
    """1 - mean over Gaussian-pyramid levels of the mean SSIM."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pairs = list(zip(gaussian_pyramid(x, self.levels), gaussian_pyramid(y, self.levels)))
        return 1 - sum(ssim_map(a, b).mean() for a, b in pairs) / len(pairs)


def discriminator_features(D: Discriminator, images: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of D's blocks b{R}..b8 for images in [-1, 1] (the epilogue and its minibatch-stddev are skipped)."""
    x, img = None, images
    feats = []
    for res in D.block_resolutions:
        x, img = getattr(D, f"b{res}")(x, img, force_fp32=True)
        feats.append(x.float())
    return feats


class DiscriminatorFeatureLoss(nn.Module):
    """Mean over D's blocks of the squared distance of unit-normalised per-pixel activations (LPIPS-like,
    without learned layer weights); the target's activations are computed once."""

    def __init__(self, D: Discriminator, target: torch.Tensor) -> None:
        super().__init__()
        self.D = D
        with torch.no_grad():
            self.target = [F.normalize(h, dim=1) for h in discriminator_features(D, target)]

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        feats = [F.normalize(h, dim=1) for h in discriminator_features(self.D, x)]
        return sum((a - b).square().sum(1).mean() for a, b in zip(feats, self.target)) / len(feats)


class ReconstructionLoss(nn.Module):
    """The weighted sum of the image losses; returns (total, {name: value})."""

    def __init__(self, cfg: ProjectorConfig, D: Discriminator | None = None, target: torch.Tensor | None = None) -> None:
        super().__init__()
        terms: dict[str, tuple[float, nn.Module]] = {
            "pixel": (1.0, PixelLoss(cfg.l1, cfg.l2)),
            "pyramid": (cfg.pyramid, LaplacianPyramidLoss(cfg.levels)),
            "ssim": (cfg.ssim, MultiScaleSSIMLoss(cfg.levels)),
        }
        if D is not None and cfg.d_features > 0:
            assert target is not None, "the discriminator-feature loss needs the target"
            terms["d_features"] = (cfg.d_features, DiscriminatorFeatureLoss(D, target))
        self.weights = {k: w for k, (w, _) in terms.items() if w > 0}
        self.terms = nn.ModuleDict({k: m for k, (_, m) in terms.items() if k in self.weights})

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        parts = {k: term(x, y) for k, term in self.terms.items()}
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, {k: float(v.detach()) for k, v in parts.items()}


# ----------------------------------------------------------------------------------------------------
# Generator plumbing.


def noise_layers(G: Generator) -> list[tuple[str, nn.Module]]:
    """(name, layer) of every synthesis conv that adds per-pixel noise, in synthesis order."""
    return [(name, layer) for name, layer, _ in G.synthesis.conv_layers() if layer.use_noise]


def with_noise(G: Generator, noise: dict[str, torch.Tensor]) -> Generator:
    """A frozen copy of G whose constant noise maps (noise_mode 'const') are `noise` (others unchanged)."""
    G = copy.deepcopy(G).requires_grad_(False)
    layers = dict(noise_layers(G))
    unknown = sorted(set(noise) - set(layers))
    assert not unknown, f"noise maps for unknown layers {unknown}"
    for name, n in noise.items():
        assert n.shape == layers[name].noise_const.shape, f"noise {name}: {list(n.shape)}"
        layers[name].noise_const = n.to(layers[name].noise_const.device)
    return G


@torch.no_grad()
def w_stats(G: Generator, samples: int, seed: int, c: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    """(w_avg [w_dim], spread sqrt(E|w - w_avg|^2)) over `samples` latents z ~ N(0, I) from `seed`; a conditional
    G maps them with label `c` [c_dim] (the target's), or without one with random one-hot classes."""
    gen = torch.Generator().manual_seed(seed)
    device = G.mapping.fc0.weight.device
    z = torch.randn([samples, G.z_dim], generator=gen).to(device)
    if G.c_dim > 0 and c is not None:
        if c.shape != (G.c_dim,):
            raise UserError(f"projection label: the generator is conditional on {G.c_dim} labels, got {list(c.shape)}")
        c = c.float().to(device).expand(samples, -1)
    elif G.c_dim > 0:  # a conditional generator without the target's label: average over its classes
        c = F.one_hot(torch.randint(G.c_dim, [samples], generator=gen), G.c_dim).float().to(device)
    w = G.mapping(z, c)[:, 0]
    w_avg = w.mean(0)
    return w_avg, float((w - w_avg).square().sum(1).mean().sqrt())


def target_tensor(target: np.ndarray | torch.Tensor, G: Generator) -> torch.Tensor:
    """A uint8 HxW(xC) array or a float [C, H, W] / [1, C, H, W] tensor in [-1, 1] → [1, C_G, R, R] in [-1, 1]."""
    if isinstance(target, np.ndarray):
        arr = target[..., None] if target.ndim == 2 else target
        if arr.dtype != np.uint8 or arr.ndim != 3:
            raise UserError(f"projection target: expected an HxW or HxWxC uint8 image, got {arr.dtype} {arr.shape}")
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float() / 127.5 - 1
    else:
        x = target.detach().float()
    x = x[None] if x.ndim == 3 else x
    if x.ndim != 4 or x.shape[0] != 1:
        raise UserError(f"projection target: expected one image, got shape {list(x.shape)}")
    if x.shape[1] != G.img_channels:  # grey ↔ RGB
        if G.img_channels == 1:
            x = x.mean(1, keepdim=True)
        elif x.shape[1] == 1:
            x = x.repeat(1, G.img_channels, 1, 1)
        else:
            raise UserError(f"projection target has {x.shape[1]} channels, the generator makes {G.img_channels}")
    r = G.img_resolution
    if tuple(x.shape[-2:]) != (r, r):
        raise UserError(f"projection target is {x.shape[-1]}x{x.shape[-2]}, the generator makes {r}x{r} images")
    return x


def load_scan(path: str | Path, resolution: int, resize: bool = False) -> tuple[np.ndarray, str | None]:
    """(HxWx3 uint8 scan, note): a scan of another size is refused, or resized (area) with a note if `resize`."""
    import cv2

    from baggan.io import read_image_rgb

    image = read_image_rgb(path)
    h, w = image.shape[:2]
    if (h, w) == (resolution, resolution):
        return image, None
    if not resize:
        raise UserError(f"{path}: scan is {w}x{h}, the generator makes {resolution}x{resolution} scans; refused "
                        f"(crop it, or pass --resize to resize it and its mask to {resolution}x{resolution})")
    note = f"{path}: resized {w}x{h} → {resolution}x{resolution}" + (" (aspect ratio changed)" if h != w else "")
    return cv2.resize(image, (resolution, resolution), interpolation=cv2.INTER_AREA), note


# ----------------------------------------------------------------------------------------------------
# The projection.


def project(
    G: Generator,
    target: np.ndarray | torch.Tensor,
    cfg: ProjectorConfig | None = None,
    D: Discriminator | None = None,
    progress: bool = True,
    on_step: Callable[[int], None] | None = None,
    c: torch.Tensor | None = None,
    **overrides: Any,
) -> ProjectionResult:
    """Find ws (and noise maps) so that G renders `target`; keyword overrides replace cfg fields (e.g. steps=200).
    `on_step(step)` is called after each step (1-based), e.g. for a progress display. `c` [c_dim]: the target's
    label, for a conditional G (the start w_avg is its mean w under that label; ignored when G is unconditional)."""
    cfg = dataclasses.replace(cfg or ProjectorConfig(), **overrides)
    device = G.mapping.fc0.weight.device
    x_target = target_tensor(target, G).to(device)
    if D is not None and (D.img_resolution, D.img_channels) != (G.img_resolution, G.img_channels):
        raise UserError(f"discriminator takes {D.img_resolution}px x {D.img_channels} images, the generator makes "
                        f"{G.img_resolution}px x {G.img_channels}")
    G = copy.deepcopy(G).eval().requires_grad_(False)  # a private copy: its noise buffers get replaced
    D = copy.deepcopy(D).eval().requires_grad_(False) if D is not None else None
    objective = ReconstructionLoss(cfg, D, x_target)
    rng = torch.Generator().manual_seed(cfg.seed)

    w_avg, w_spread = w_stats(G, cfg.w_avg_samples, cfg.seed, c)
    w_opt = w_avg.reshape(1, 1, -1).clone().requires_grad_(True)  # W: one w for every style input
    noise = {}
    if cfg.noise:
        for name, layer in noise_layers(G):  # start from G's own constant noise: exact for a generated scan
            noise[name] = layer.noise_const.detach().clone().requires_grad_(True)
            layer.noise_const = noise[name]
    w_phase = cfg.w_steps if cfg.w_plus else cfg.steps

    def make_optimizer(w: torch.Tensor) -> torch.optim.Adam:
        return torch.optim.Adam([w, *noise.values()], lr=cfg.lr, betas=(0.9, 0.999))

    opt = make_optimizer(w_opt)
    history = []
    for step in tqdm(range(cfg.steps), desc="project", disable=not progress):
        if step == w_phase and w_opt.shape[1] == 1:  # W → W+: every style input gets its own copy
            w_opt = w_opt.detach().repeat(1, G.num_ws, 1).requires_grad_(True)
            opt = make_optimizer(w_opt)
        t = step / cfg.steps
        lr = lr_schedule(t, cfg)
        for group in opt.param_groups:
            group["lr"] = lr
        w_noise_std = w_spread * cfg.w_noise * max(0.0, 1.0 - t / cfg.w_noise_ramp) ** 2
        ws = w_opt + torch.randn(w_opt.shape, generator=rng).to(device) * w_noise_std
        image = G.synthesis(ws.expand(1, G.num_ws, -1), noise_mode="const")
        loss, parts = objective(image, x_target)
        reg = noise_regularization(list(noise.values())) if noise else loss.new_zeros(())
        total = loss + cfg.noise_reg * reg
        value = float(total.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(f"projection loss became {value} at step {step + 1}; lower --lr")
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        with torch.no_grad():  # keep each noise map zero-mean, unit-variance
            for n in noise.values():
                n.sub_(n.mean()).div_(n.square().mean().sqrt())
        history.append({"step": step + 1, "lr": lr, "loss": value, **parts, "noise_reg": float(reg.detach())})
        if on_step is not None:
            on_step(step + 1)

    ws = w_opt.detach().expand(1, G.num_ws, -1).clone()
    with torch.no_grad():
        image = to_uint8(G.synthesis(ws, noise_mode="const"))[0]
    target_u8 = to_uint8(x_target)[0]
    psnr, ssim = image_quality(target_u8, image)
    return ProjectionResult(ws.cpu(), {k: v.detach().cpu() for k, v in noise.items()}, image, target_u8, psnr, ssim,
                            history)


__all__ = [
    "ProjectorConfig",
    "ProjectionResult",
    "project",
    "load_scan",
    "target_tensor",
    "with_noise",
    "w_stats",
    "to_uint8",
    "image_quality",
    "ssim_map",
    "laplacian_pyramid",
    "noise_regularization",
]
