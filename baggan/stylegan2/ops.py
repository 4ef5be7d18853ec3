"""StyleGAN2 low-level ops in plain PyTorch (run anywhere): FIR resampling, fused bias + activation,
convolution with resampling, and the modulated convolution with weight demodulation.

The maths follows Karras et al. 2020 (StyleGAN2, sec. 2.2 and appendix B; StyleGAN2-ADA). Where CUDA is
present, `upfirdn2d` and `bias_act` dispatch to optional compiled kernels (baggan.stylegan2.cuda); the
functions here are the reference they must match.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

Padding = int | Sequence[int]


# ----------------------------------------------------------------------------------------------------
# Activations with their default gains (He-style: sqrt(2) keeps the variance of (leaky) ReLU outputs).


class Activation(NamedTuple):
    """An activation function, its default negative slope and its default output gain."""

    func: callable
    def_alpha: float
    def_gain: float


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, alpha: x, 0.0, 1.0),
    "relu": Activation(lambda x, alpha: F.relu(x), 0.0, math.sqrt(2)),
    "lrelu": Activation(lambda x, alpha: F.leaky_relu(x, alpha), 0.2, math.sqrt(2)),
    "tanh": Activation(lambda x, alpha: torch.tanh(x), 0.0, 1.0),
    "sigmoid": Activation(lambda x, alpha: torch.sigmoid(x), 0.0, 1.0),
}


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add bias `b` along `dim`, apply `act`, multiply by `gain`, clamp to ±`clamp` (each step optional)."""
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    assert clamp is None or clamp >= 0
    if x.is_cuda:
        from baggan.stylegan2 import cuda as _cuda

        if _cuda.available():
            return _cuda.bias_act(x, b, dim, act, alpha, gain, -1.0 if clamp is None else float(clamp))
    return bias_act_ref(x, b, dim, act, alpha, gain, clamp)


def bias_act_ref(
    x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float, clamp: float | None
) -> torch.Tensor:
    """Reference `bias_act` with explicit parameters (what the CUDA kernel is tested against)."""
    if b is not None:
        assert b.ndim == 1 and b.shape[0] == x.shape[dim], f"bias {list(b.shape)} vs x {list(x.shape)} at dim {dim}"
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = ACTIVATIONS[act].func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


# ----------------------------------------------------------------------------------------------------
# FIR filtering with up/down-sampling.


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> torch.Tensor:
    """Prepare a FIR filter: taps → 2-D (outer product) unless separable; normalised to unit DC gain."""
    f = torch.as_tensor(1.0 if f is None else f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    assert f.ndim in (1, 2) and f.numel() > 0
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = f[:, None] * f[None, :]
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    return f * (gain ** (f.ndim / 2))


def _pad4(padding: Padding) -> tuple[int, int, int, int]:
    """Padding as (x0, x1, y0, y1) from an int, [x, y] or [x0, x1, y0, y1]."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[0], padding[1], padding[1]
    assert len(padding) == 4, f"padding must have 1, 2 or 4 entries, got {padding}"
    return padding[0], padding[1], padding[2], padding[3]


def _filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(width, height) of a 1-D (separable) or 2-D filter; (1, 1) for None."""
    if f is None:
        return 1, 1
    return int(f.shape[-1]), int(f.shape[0])


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
) -> torch.Tensor:
    """Per channel: insert up-1 zeros between pixels, pad (negative = crop), convolve with FIR `f`, keep every down-th pixel."""
    if x.is_cuda and f is not None:
        from baggan.stylegan2 import cuda as _cuda

        if _cuda.available():
            return _cuda.upfirdn2d(x, f, up, down, _pad4(padding), flip_filter, gain)
    return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)


def upfirdn2d_ref(x: torch.Tensor, f: torch.Tensor | None, up: int, down: int, padding: Padding, flip_filter: bool,
                  gain: float) -> torch.Tensor:
    """Reference `upfirdn2d` built from reshape/pad/grouped conv2d (differentiable to any order)."""
    assert x.ndim == 4
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    assert f.ndim in (1, 2) and f.dtype == torch.float32 and not f.requires_grad
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _pad4(padding)

    if up > 1:  # zero insertion: each pixel followed by up-1 zeros along both axes
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]

    f = (f * (gain ** (f.ndim / 2))).to(x.dtype)
    if not flip_filter:  # conv2d correlates; flipping makes it a true convolution
        f = f.flip(list(range(f.ndim)))
    if f.ndim == 2:
        x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c, stride=down)
    else:
        x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c, stride=(1, down))
        x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c, stride=(down, 1))
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: Padding = 0, gain: float = 1.0) -> torch.Tensor:
    """Up-sample by `up` with FIR `f`; output is `up` times the input size (plus extra `padding`)."""
    px0, px1, py0, py1 = _pad4(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2, py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, gain=gain * up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: Padding = 0, gain: float = 1.0) -> torch.Tensor:
    """Down-sample by `down` with FIR `f`; output is 1/`down` of the input size (plus extra `padding`)."""
    px0, px1, py0, py1 = _pad4(padding)
    fw, fh = _filter_size(f)
    pad = [px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2, py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, gain=gain)


# ----------------------------------------------------------------------------------------------------
# Convolution with resampling.


def conv2d_resample(x: torch.Tensor, w: torch.Tensor, f: torch.Tensor | None = None, up: int = 1, down: int = 1,
                    padding: Padding = 0, groups: int = 1, flip_weight: bool = True,
                    flip_filter: bool = False) -> torch.Tensor:
    """2-D convolution of `x` by `w` with FIR-filtered up/down-sampling; `padding` is w.r.t. the up-sampled image.

    flip_weight=True is correlation (torch conv2d); False is true convolution.
    """
    assert x.ndim == 4 and w.ndim == 4 and w.dtype == x.dtype
    assert up >= 1 and down >= 1 and groups >= 1
    out_ch, in_ch_per_group, kh, kw = (int(s) for s in w.shape)
    fw, fh = _filter_size(f)
    px0, px1, py0, py1 = _pad4(padding)
    if up > 1:
        px0, px1 = px0 + (fw + up - 1) // 2, px1 + (fw - up) // 2
        py0, py1 = py0 + (fh + up - 1) // 2, py1 + (fh - up) // 2
    if down > 1:
        px0, px1 = px0 + (fw - down + 1) // 2, px1 + (fw - down) // 2
        py0, py1 = py0 + (fh - down + 1) // 2, py1 + (fh - down) // 2

    def conv(x: torch.Tensor, w: torch.Tensor, stride: int = 1, pad: Sequence[int] = (0, 0), transpose: bool = False, flip: bool = flip_weight) -> torch.Tensor:
        if not flip and (kw > 1 or kh > 1):
            w = w.flip([2, 3])
        op = F.conv_transpose2d if transpose else F.conv2d
        return op(x, w, stride=stride, padding=list(pad), groups=groups)

    if kw == 1 and kh == 1 and down > 1 and up == 1:  # 1x1 and down only: filter+decimate, then convolve
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return conv(x, w)
    if kw == 1 and kh == 1 and up > 1 and down == 1:  # 1x1 and up only: convolve, then up-sample
        x = conv(x, w)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:  # down only: filter, then strided convolution
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return conv(x, w, stride=down)
    if up > 1:  # up (and maybe down): strided transposed convolution, then filter
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_ch // groups, in_ch_per_group, kh, kw).transpose(1, 2)
            w = w.reshape(groups * in_ch_per_group, out_ch // groups, kh, kw)
        px0, px1, py0, py1 = px0 - (kw - 1), px1 - (kw - up), py0 - (kh - 1), py1 - (kh - up)
        pxt, pyt = max(min(-px0, -px1), 0), max(min(-py0, -py1), 0)
        x = conv(x, w, stride=up, pad=(pyt, pxt), transpose=True, flip=not flip_weight)
        x = upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, flip_filter=flip_filter)
        return upfirdn2d(x, f, down=down, flip_filter=flip_filter) if down > 1 else x
    if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:  # plain convolution
        return conv(x, w, pad=(py0, px0))
    x = upfirdn2d(x, None, padding=[px0, px1, py0, py1])  # asymmetric padding: pad/crop, then convolve
    return conv(x, w)


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Pixel norm: scale `x` to unit mean square along `dim`."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True, fused_modconv: bool = True) -> torch.Tensor:
    """StyleGAN2 modulated convolution: w'_ijk = s_i w_ijk (Eq. 1), w''_ijk = w'_ijk / sqrt(sum_ik w'^2 + eps) (Eq. 3).

    x [N, I, H, W], weight [O, I, k, k], styles [N, I]; `noise` (broadcastable to the output) is added after
    demodulation. fused=True runs one grouped convolution with per-sample weights; False scales activations
    before and after a shared convolution (same result, often faster for training batches).
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    assert x.ndim == 4 and x.shape[1] == in_ch, f"x {list(x.shape)} vs weight {list(weight.shape)}"
    assert styles.shape == (n, in_ch), f"styles {list(styles.shape)}, expected [{n}, {in_ch}]"

    if x.dtype == torch.float16 and demodulate:  # pre-normalise to keep fp16 in range (cancels in Eq. 3)
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)  # Eq. 1, [N, O, I, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # Eq. 3 denominators, [N, O]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding, flip_weight=flip_weight)
        if demodulate and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(n, -1, 1, 1))
        if demodulate:
            x = x * dcoefs.to(x.dtype).reshape(n, -1, 1, 1)
        return x if noise is None else x + noise.to(x.dtype)

    if demodulate:
        w = w * dcoefs.reshape(n, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), resample_filter, up=up, down=down, padding=padding, groups=n, flip_weight=flip_weight)
    x = x.reshape(n, -1, *x.shape[2:])
    return x if noise is None else x + noise.to(x.dtype)


__all__ = [
    "ACTIVATIONS",
    "bias_act",
    "bias_act_ref",
    "setup_filter",
    "upfirdn2d",
    "upfirdn2d_ref",
    "upsample2d",
    "downsample2d",
    "conv2d_resample",
    "normalize_2nd_moment",
    "modulated_conv2d",
]
