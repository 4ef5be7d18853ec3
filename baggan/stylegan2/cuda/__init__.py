"""Optional compiled CUDA kernels (built once with ninja via torch.utils.cpp_extension) for inference.

Used by baggan.stylegan2.ops only for CUDA tensors when no gradient is being recorded; training (which
needs first and second derivatives, e.g. for R1) always runs the PyTorch reference. If the build fails,
one warning line is printed and the reference is used from then on.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

ACT_CODES = {"linear": 0, "relu": 1, "lrelu": 2, "tanh": 3, "sigmoid": 4}
_plugin = None
_tried = False


def available() -> bool:
    """True if CUDA exists and the kernels are built (builds them on first call)."""
    global _plugin, _tried
    if not _tried:
        _tried = True
        if torch.cuda.is_available():
            try:
                from torch.utils.cpp_extension import load

                src = Path(__file__).with_name("kernels.cu")
                _plugin = load(name="baggan_stylegan2_kernels", sources=[str(src)],
                               extra_cuda_cflags=["--use_fast_math"], verbose=False)
            except Exception as e:  # noqa: BLE001 - any build failure means: use the reference
                first = (str(e).strip().splitlines() or [type(e).__name__])[0]
                warnings.warn(f"baggan: CUDA kernels could not be built ({first}); using the PyTorch reference ops",
                              stacklevel=2)
    return _plugin is not None


def _usable(*tensors: torch.Tensor | None) -> bool:
    """Kernels have no backward: only when nothing needs a gradient."""
    return not (torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors))


def bias_act(x: torch.Tensor, b: torch.Tensor | None, dim: int, act: str, alpha: float, gain: float,
             clamp: float) -> torch.Tensor:
    """Kernel bias_act (clamp < 0 = off); falls back to the reference if gradients are needed."""
    if not _usable(x, b) or act not in ACT_CODES:
        from baggan.stylegan2.ops import bias_act_ref

        return bias_act_ref(x, b, dim, act, alpha, gain, None if clamp < 0 else clamp)
    empty = torch.empty(0, device=x.device, dtype=x.dtype)
    return _plugin.bias_act(x, empty if b is None else b, dim % x.ndim, ACT_CODES[act], alpha, gain, clamp)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int, down: int, padding: tuple[int, int, int, int],
              flip_filter: bool, gain: float) -> torch.Tensor:
    """Kernel upfirdn2d (separable filters are expanded to 2-D); reference if gradients are needed."""
    if not _usable(x):
        from baggan.stylegan2.ops import upfirdn2d_ref

        return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    f2 = torch.outer(f, f) if f.ndim == 1 else f
    px0, px1, py0, py1 = padding
    return _plugin.upfirdn2d(x, f2.float(), up, down, px0, px1, py0, py1, flip_filter, gain)


__all__ = ["available", "bias_act", "upfirdn2d"]
