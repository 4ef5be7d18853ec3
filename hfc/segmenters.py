"""One-shot segmenters on the per-pixel codes z (section 6.2.4, Table 9).

MLP with 1 or 3 layers (a per-pixel network = 1x1 convolutions) and FCN with 3, 5, 7 or 9 layers
(3x3, stride 1, "same" padding); LeakyReLU between layers, softmax output (`predict_proba`; training
uses cross-entropy on the logits). Input [N, D, H, W], output logits [N, K, H, W].

Input standardisation (`standardize=True`; `OneShotConfig.standardize`, off by default): the codes are first mapped to
(z - mean) / std per channel, with mean and std measured on the annotated samples' codes by `calibrate`
(hfc.oneshot.fit calls it) and stored as buffers, so the saved segmenter applies the same map. The HFC
codes are unit vectors (f_theta ends in an L2 normalisation): on the 64² X-ray generator each of their
64 channels varies by ~0.09 around a shared mean direction, and a linear head (MLP-1) trained for the
paper's few hundred Adam steps at lr 0.01 cannot grow its logits past the background prior: it fitted
2 % of its own annotated scan (docs/oneshot.md, "Why the codes lost the threats").
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from hfc.checkpoint import register
from hfc.names import SEGMENTERS

SHAPES = dict(zip(SEGMENTERS, [(1, 1), (3, 1), (3, 3), (5, 3), (7, 3), (9, 3)]))  # name → (layers, kernel)
STD_FLOOR = 1e-2  # ConvSegmenter.calibrate: variance floor, relative to the mean channel variance


def conv_stack(
    widths: Sequence[int],
    kernel: int = 1,
    dilations: Sequence[int] | None = None,
    negative_slope: float | None = 0.2,
    batchnorm: bool = False,
    groups: int = 1,
) -> nn.Sequential:
    """Convs widths[0] → widths[1] → ... (stride 1, same padding); activation (+ BN) between, none after the last.

    negative_slope None means ReLU. `groups` > 1 runs that many independent stacks side by side.
    """
    dilations = list(dilations) if dilations is not None else [1] * (len(widths) - 1)
    assert len(dilations) == len(widths) - 1, "one dilation per conv"
    mods: list[nn.Module] = []
    for i, (c_in, c_out, d) in enumerate(zip(widths[:-1], widths[1:], dilations)):
        mods.append(nn.Conv2d(c_in, c_out, kernel, padding=d * (kernel // 2), dilation=d, groups=groups))
        if i < len(widths) - 2:
            mods.append(nn.ReLU() if negative_slope is None else nn.LeakyReLU(negative_slope))
            if batchnorm:
                mods.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*mods)


@register
class ConvSegmenter(nn.Module):
    """MLP-n (kernel 1) or FCN-n (kernel 3): n layers, LeakyReLU between, logits out; optionally standardised input."""

    kind = "segmenter"

    def __init__(
        self, in_dim: int, num_classes: int, layers: int = 3, kernel: int = 3, hidden: int = 128, standardize: bool = False
    ) -> None:
        super().__init__()
        assert layers >= 1 and kernel in (1, 3), (layers, kernel)
        self.in_dim, self.num_classes, self.layers, self.kernel, self.hidden = in_dim, num_classes, layers, kernel, hidden
        self.standardize = standardize
        if standardize:  # identity until `calibrate`
            self.register_buffer("input_mean", torch.zeros(in_dim))
            self.register_buffer("input_scale", torch.ones(in_dim))
        self.net = conv_stack([in_dim] + [hidden] * (layers - 1) + [num_classes], kernel)

    @property
    def name(self) -> str:
        """mlp1 / mlp3 / fcn3 / ... ."""
        return f"{'mlp' if self.kernel == 1 else 'fcn'}{self.layers}"

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {"in_dim": self.in_dim, "num_classes": self.num_classes, "layers": self.layers,
                "kernel": self.kernel, "hidden": self.hidden, "standardize": self.standardize}  # fmt: skip

    @torch.no_grad()
    def calibrate(self, codes: Sequence[torch.Tensor]) -> None:
        """Set the input standardisation from code maps [N, D, H, W] (every pixel of every map counts).

        std is sqrt(var + STD_FLOOR * mean channel var): a channel that hardly varies on the samples is
        amplified at most ~1/sqrt(STD_FLOOR) times more than a typical one (scale-free, unlike an absolute eps).
        """
        assert self.standardize, "calibrate: this segmenter was built without standardize"
        total, sq, n = 0.0, 0.0, 0
        for z in codes:
            assert z.ndim == 4 and z.shape[1] == self.in_dim, f"expected [N, {self.in_dim}, H, W], got {list(z.shape)}"
            x = z.transpose(0, 1).flatten(1).double()
            total, sq, n = total + x.sum(1), sq + x.square().sum(1), n + x.shape[1]
        mean = total / n
        var = (sq / n - mean.square()).clamp_min(0)
        self.input_mean.copy_(mean)
        self.input_scale.copy_((var + STD_FLOOR * var.mean()).rsqrt())

    def standardized(self, z: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """(z - mean) * scale along channel axis `dim` (z itself without standardisation)."""
        if not self.standardize:
            return z
        shape = [1] * z.ndim
        shape[dim] = -1
        return (z - self.input_mean.view(shape)) * self.input_scale.view(shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, D, H, W] → logits [N, K, H, W]."""
        assert z.ndim == 4 and z.shape[1] == self.in_dim, f"expected [N, {self.in_dim}, H, W], got {list(z.shape)}"
        return self.net(self.standardized(z))

    @property
    def per_pixel(self) -> bool:
        """True for MLP-n: each pixel's logits depend on its own code only (`pixelwise` applies)."""
        return self.kernel == 1

    def pixelwise(self, z: torch.Tensor) -> torch.Tensor:
        """MLP-n on codes as rows: z [P, D] → logits [K, P] (forward's values; channels first, like forward's)."""
        assert self.per_pixel, f"{self.name} is not per pixel"
        assert z.ndim == 2 and z.shape[1] == self.in_dim, f"expected codes [P, {self.in_dim}], got {list(z.shape)}"
        x = self.standardized(z, dim=1).t()
        for m in self.net:
            x = torch.addmm(m.bias[:, None], m.weight.flatten(1), x) if isinstance(m, nn.Conv2d) else m(x)
        return x

    def predict_proba(self, z: torch.Tensor) -> torch.Tensor:
        """Softmax output [N, K, H, W]."""
        return self.forward(z).softmax(dim=1)


def make_segmenter(name: str, in_dim: int, num_classes: int, hidden: int = 128, standardize: bool = False) -> ConvSegmenter:
    """Build one of mlp1, mlp3, fcn3, fcn5, fcn7, fcn9 (with input standardisation when `standardize`)."""
    if name not in SEGMENTERS:
        raise ValueError(f"unknown segmenter {name!r} (choose from {', '.join(SEGMENTERS)})")
    layers, kernel = SHAPES[name]
    return ConvSegmenter(in_dim, num_classes, layers=layers, kernel=kernel, hidden=hidden, standardize=standardize)
