"""ADA (Karras et al. 2020, "Training GANs with limited data"): the differentiable 'bgc' augmentation
pipeline that every image D sees, and the heuristic that tunes its probability p.

Each op is applied per sample with probability (multiplier * p) and the paper's standard strength.
Geometric ops are folded into one inverse 3x3 matrix per sample (output pixel -> input pixel, in
pixel units centred on the image) and executed once: reflect-pad, 2x upsample with the orthogonal
sym6 wavelet low-pass, bilinear resampling, 2x downsample with the same filter. Because sym6 is
orthogonal and the downsampler is the adjoint of the upsampler, the identity transform (and any
whole-pixel translation) reproduces the image exactly. Colour ops are folded into one 4x4 matrix
acting on RGB in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from baggan.config import check

# Low-pass decomposition filter of the Symlet-6 wavelet (orthonormal: sum h^2 = 1, sum h = sqrt 2).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)

# Probability multipliers of the official 'bgc' set (blit + geometric + colour); all 1.
BGC = {name: 1.0 for name in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
                              "brightness", "contrast", "lumaflip", "hue", "saturation")}

# Named op sets for `augment.pipe` (official names: b = blit, g = geometric, c = colour). "bgc-x" is bgc
# without the colour ops that change what an X-ray pseudo-colour means: lumaflip (it inverts attenuation:
# a short run on simulator scans collapsed into luma-inverted scans, docs/training.md) and hue (the hue
# encodes the material class).
PIPES = {"bgc": BGC,
         "bg": {k: 1.0 for k in ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")},
         "bgc-x": {k: v for k, v in BGC.items() if k not in ("lumaflip", "hue")}}

# Standard strengths (ADA paper, appendix B): translations relative to image size, stds of log2 scales.
XINT_MAX = 0.125
SCALE_STD = 0.2
ROTATE_MAX = 1.0  # fraction of a full turn either way
ANISO_STD = 0.2
XFRAC_STD = 0.125
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5
HUE_MAX = 1.0
SATURATION_STD = 1.0



@dataclass(frozen=True)
class AugmentConfig:
    """Augment block of the training config: the pipe and ADA's p heuristic."""

    pipe: Literal["bgc", "bg", "bgc-x", "none"] = "bgc"  # op sets in PIPES; none = no augmentation
    p: float = 0.0  # initial p; stays fixed when target is null
    target: float | None = 0.6  # r_t target (paper C.1: t_ada = 0.6); null = fixed p
    interval: int = 4  # adjust p every N minibatches (the official value; paper C.1 lists iter_ada = 8)
    kimg: float = 500.0  # p can go from 0 to 1 in this many thousand images (paper C.1: l_ada = 5e5)

    def __post_init__(self) -> None:
        check(0 <= self.p <= 1, "p", f"must be in [0, 1], got {self.p}")
        check(self.target is None or 0 < self.target < 1, "target", f"must be in (0, 1) or null, got {self.target}")
        check(self.interval >= 1, "interval", f"must be >= 1, got {self.interval}")
        check(self.kimg > 0, "kimg", f"must be > 0, got {self.kimg}")


# ---------------------------------------------------------------------------------------------
# Homogeneous matrices, batched: every argument is a [N] tensor (or a float).


def _stack_matrix(rows: list[list], like: torch.Tensor) -> torch.Tensor:
    """[[a, b, ...], ...] of tensors/floats -> [N, R, C] tensor shaped after `like` ([N])."""
    elems = [e if isinstance(e, torch.Tensor) else torch.full_like(like, float(e)) for row in rows for e in row]
    return torch.stack(elems, dim=-1).reshape(like.shape[0], len(rows), len(rows[0]))


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] translations."""
    return _stack_matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] axis-aligned scalings."""
    return _stack_matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    """[N, 3, 3] rotations by theta (radians, counter-clockwise in x-right/y-down pixel coordinates)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return _stack_matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


def translate3d(t: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4] translation by t along every colour axis."""
    return _stack_matrix([[1, 0, 0, t], [0, 1, 0, t], [0, 0, 1, t], [0, 0, 0, 1]], t)


def scale3d(s: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4] uniform colour scaling."""
    return _stack_matrix([[s, 0, 0, 0], [0, s, 0, 0], [0, 0, s, 0], [0, 0, 0, 1]], s)


def rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """[N, 4, 4] rotations by theta about the unit colour axis `axis` ([3]) (Rodrigues)."""
    x, y, z = (float(v) for v in axis)
    c, s = torch.cos(theta), torch.sin(theta)
    k = 1 - c
    return _stack_matrix([[x * x * k + c, x * y * k - z * s, x * z * k + y * s, 0],
                          [y * x * k + z * s, y * y * k + c, y * z * k - x * s, 0],
                          [z * x * k - y * s, z * y * k + x * s, z * z * k + c, 0],
                          [0, 0, 0, 1]], theta)


# ---------------------------------------------------------------------------------------------
# Random parameters: with probability `prob` a sample draws `value`, otherwise it keeps `identity`.


def _gate(value: torch.Tensor, prob: float, identity: float) -> torch.Tensor:
    """Keep each sample's `value` with probability `prob`, else replace it by `identity`."""
    keep = torch.rand(value.shape[0], device=value.device) < prob
    return torch.where(keep.reshape([-1] + [1] * (value.ndim - 1)), value, torch.full_like(value, identity))


def _uniform(n: int, lo: float, hi: float, device: torch.device) -> torch.Tensor:
    """n draws from U(lo, hi)."""
    return torch.rand(n, device=device) * (hi - lo) + lo


def _lognormal2(n: int, std: float, device: torch.device) -> torch.Tensor:
    """n draws of 2^N(0, std^2)."""
    return torch.exp2(torch.randn(n, device=device) * std)


# ---------------------------------------------------------------------------------------------
# Executing the geometric transform.


def _separable(x: torch.Tensor, taps: torch.Tensor, transpose: bool) -> torch.Tensor:
    """Stride-2 depthwise filtering along W then H: conv_transpose2d (upsample) or conv2d (downsample)."""
    c = x.shape[1]
    op = F.conv_transpose2d if transpose else F.conv2d
    kw = taps.to(x.dtype).reshape(1, 1, 1, -1).repeat(c, 1, 1, 1)
    x = op(x, kw, stride=(1, 2), groups=c)
    return op(x, kw.transpose(2, 3), stride=(2, 1), groups=c)


def _geometric(images: torch.Tensor, g_inv: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Resample each image through its inverse matrix g_inv [N, 3, 3] (centred pixel units)."""
    n, c, h, w = images.shape
    L = taps.numel()
    up_gain = taps * math.sqrt(2)  # upsample: sqrt2 * h per axis; downsample: h / sqrt2 (its adjoint)
    delta = float((torch.arange(L, dtype=torch.float64) * taps.double()).sum() / taps.double().sum()) - (L - 1) / 2

    # Reflect-pad so that every input position the output reaches (plus the filter support) is real data.
    support = (L // 2) / 2  # half the filter length, in input pixels
    cx, cy = (w - 1) / 2 + support, (h - 1) / 2 + support
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=images.device)
    reach = (g_inv @ corners.t().to(g_inv.dtype))[:, :2, :]  # [N, xy, corner]
    lo = (-reach).amax(dim=(0, 2)) + support - torch.tensor([(w - 1) / 2, (h - 1) / 2], device=images.device)
    hi = reach.amax(dim=(0, 2)) + support - torch.tensor([(w - 1) / 2, (h - 1) / 2], device=images.device)
    limit = torch.tensor([w - 1, h - 1], device=images.device)
    (px0, py0), (px1, py1) = (lo.ceil().clamp(min=0).minimum(limit).int().tolist(),
                              hi.ceil().clamp(min=0).minimum(limit).int().tolist())
    images = F.pad(images, [px0, px1, py0, py1], mode="reflect")
    ones = torch.ones(n, device=images.device)
    g_pad = translate2d(ones * (px0 - px1) / 2, ones * (py0 - py1) / 2) @ g_inv  # re-centre on the padded image

    # Upsample 2x; output grid = the 2x-upsampled geometry of the unpadded image (size 2*dim + L - 2).
    up = _separable(images, up_gain.to(images.device), transpose=True)
    out_h, out_w = 2 * h + L - 2, 2 * w + L - 2
    # normalised output -> centred output pixels (up-space) -> input pixels -> up-space -> normalised input
    to_out = translate2d(ones * (-delta / 2), ones * (-delta / 2)) @ scale2d(ones * out_w / 4, ones * out_h / 4)
    to_in = scale2d(ones * 2 / up.shape[3], ones * 2 / up.shape[2]) @ translate2d(ones * delta, ones * delta) \
        @ scale2d(ones * 2, ones * 2)
    theta = (to_in @ g_pad @ to_out)[:, :2, :].to(images.dtype)
    grid = F.affine_grid(theta, [n, c, out_h, out_w], align_corners=False)
    warped = F.grid_sample(up, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = _separable(warped, (taps / math.sqrt(2)).to(images.device), transpose=False)
    assert out.shape == (n, c, h, w), out.shape
    return out


class AugmentPipe(torch.nn.Module):
    """ADA pipeline: ops applied per sample with probability (multiplier * p); `p` is a buffer."""

    def __init__(self, ops: dict[str, float] | None = None, p: float = 0.0):
        super().__init__()
        ops = dict(BGC if ops is None else ops)
        unknown = sorted(set(ops) - set(BGC))
        if unknown:
            raise ValueError(f"unknown augmentation ops {unknown} (known: {sorted(BGC)})")
        self.ops = {name: float(ops.get(name, 0.0)) for name in BGC}
        self.register_buffer("p", torch.tensor(float(p)))
        self.register_buffer("taps", torch.tensor(SYM6, dtype=torch.float32))

    def _prob(self, name: str) -> float:
        """Probability of op `name` this call: its multiplier times p."""
        return self.ops[name] * float(self.p)

    def geometric_matrix(self, n: int, h: int, w: int, device: torch.device) -> torch.Tensor:
        """Draw the blit + geometric ops for n samples as inverse matrices [N, 3, 3]."""
        g = torch.eye(3, device=device).repeat(n, 1, 1)
        zero = torch.zeros(n, device=device)
        if self.ops["xflip"]:
            i = _gate(torch.randint(0, 2, (n,), device=device).float(), self._prob("xflip"), 0)
            g = g @ scale2d(1 - 2 * i, zero + 1)
        if self.ops["rotate90"]:
            i = _gate(torch.randint(0, 4, (n,), device=device).float(), self._prob("rotate90"), 0)
            g = g @ rotate2d(-math.pi / 2 * i)
        if self.ops["xint"]:
            t = _gate(_uniform(2 * n, -XINT_MAX, XINT_MAX, device).reshape(n, 2), self._prob("xint"), 0)
            g = g @ translate2d(-torch.round(t[:, 0] * w), -torch.round(t[:, 1] * h))
        if self.ops["scale"]:
            s = _gate(_lognormal2(n, SCALE_STD, device), self._prob("scale"), 1)
            g = g @ scale2d(1 / s, 1 / s)
        # Arbitrary rotation happens before and after anisotropic scaling, so P(pre or post) = rotate * p.
        p_rot = 1 - math.sqrt(min(max(1 - self._prob("rotate"), 0.0), 1.0))
        if self.ops["rotate"]:
            theta = _gate(_uniform(n, -math.pi * ROTATE_MAX, math.pi * ROTATE_MAX, device), p_rot, 0)
            g = g @ rotate2d(theta)
        if self.ops["aniso"]:
            s = _gate(_lognormal2(n, ANISO_STD, device), self._prob("aniso"), 1)
            g = g @ scale2d(1 / s, s)
        if self.ops["rotate"]:
            theta = _gate(_uniform(n, -math.pi * ROTATE_MAX, math.pi * ROTATE_MAX, device), p_rot, 0)
            g = g @ rotate2d(theta)
        if self.ops["xfrac"]:
            t = _gate(torch.randn(n, 2, device=device) * XFRAC_STD, self._prob("xfrac"), 0)
            g = g @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
        return g

    def color_matrix(self, n: int, channels: int, device: torch.device) -> torch.Tensor:
        """Draw the colour ops for n samples as matrices [N, 4, 4] acting on (r, g, b, 1)."""
        c = torch.eye(4, device=device).repeat(n, 1, 1)
        luma = torch.tensor([1.0, 1.0, 1.0, 0.0], device=device) / math.sqrt(3)
        vv = torch.outer(luma, luma)
        if self.ops["brightness"]:
            c = translate3d(_gate(torch.randn(n, device=device) * BRIGHTNESS_STD, self._prob("brightness"), 0)) @ c
        if self.ops["contrast"]:
            c = scale3d(_gate(_lognormal2(n, CONTRAST_STD, device), self._prob("contrast"), 1)) @ c
        if self.ops["lumaflip"]:
            i = _gate(torch.randint(0, 2, (n,), device=device).float(), self._prob("lumaflip"), 0)
            c = (torch.eye(4, device=device) - 2 * vv * i.reshape(n, 1, 1)) @ c  # Householder reflection
        if self.ops["hue"] and channels > 1:
            theta = _gate(_uniform(n, -math.pi * HUE_MAX, math.pi * HUE_MAX, device), self._prob("hue"), 0)
            c = rotate3d(luma[:3], theta) @ c
        if self.ops["saturation"] and channels > 1:
            s = _gate(_lognormal2(n, SATURATION_STD, device), self._prob("saturation"), 1).reshape(n, 1, 1)
            c = (vv + (torch.eye(4, device=device) - vv) * s) @ c
        return c

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Augment a batch [N, C, H, W] (C = 1 or 3, values around [-1, 1]); differentiable in images."""
        assert images.ndim == 4 and images.shape[1] in (1, 3), f"expected [N, 1|3, H, W], got {list(images.shape)}"
        n, ch, h, w = images.shape
        if float(self.p) <= 0:
            return images
        g_inv = self.geometric_matrix(n, h, w, images.device)
        if not torch.equal(g_inv, torch.eye(3, device=images.device).expand_as(g_inv)):
            images = _geometric(images, g_inv, self.taps)
        cm = self.color_matrix(n, ch, images.device)
        if not torch.equal(cm, torch.eye(4, device=images.device).expand_as(cm)):
            cm = cm.to(images.dtype)
            flat = images.reshape(n, ch, h * w)
            if ch == 3:
                flat = cm[:, :3, :3] @ flat + cm[:, :3, 3:]
            else:  # greyscale: the mean colour row, applied to the replicated channel
                row = cm[:, :3, :].mean(dim=1, keepdim=True)
                flat = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
            images = flat.reshape(n, ch, h, w)
        return images


def ada_adjust(p: float, sign_real: float, target: float, nimg: int, ada_kimg: float) -> float:
    """ADA heuristic: move p by sign(r_t - target) * nimg / (ada_kimg * 1000), clamped to [0, 1].

    r_t = E[sign(D(augmented real))]; `nimg` images were shown since the last adjustment, so p can go
    from 0 to 1 in `ada_kimg` thousand images.
    """
    step = float(np.sign(sign_real - target)) * nimg / (ada_kimg * 1000)
    return min(max(p + step, 0.0), 1.0)


__all__ = ["AugmentConfig", "AugmentPipe", "BGC", "SYM6", "ada_adjust", "translate2d", "scale2d", "rotate2d"]
