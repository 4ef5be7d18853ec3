"""A tiny deterministic FeatureGenerator in plain torch, for hfc tests (no baggan needed).

Style-based like StyleGAN2: a constant 4x4 input, modulated/demodulated 3x3 convolutions driven by
per-layer ws (W+), bilinear x2 upsampling at the first conv of each block, ToRGB at 32x32.
Layers: b4.conv1 (w0), b8.conv0/1 (w1, w2), b16.conv0/1 (w3, w4), b32.conv0/1 (w5, w6); ToRGB w7.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hfc.generator import FeatureLayer


def _param(g: torch.Generator, *shape: int, scale: float = 1.0) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape, generator=g) * scale)


class _ModConv(nn.Module):
    """Modulated conv: weight scaled per input channel by an affine map of w, optionally demodulated."""

    def __init__(self, g: torch.Generator, w_dim: int, c_in: int, c_out: int, k: int, demodulate: bool = True):
        super().__init__()
        self.weight = _param(g, c_out, c_in, k, k, scale=1.0 / (c_in * k * k) ** 0.5)
        self.affine_w = _param(g, c_in, w_dim, scale=1.0 / w_dim**0.5)
        self.affine_b = nn.Parameter(torch.ones(c_in))
        self.bias = _param(g, c_out, scale=0.1)
        self.demodulate = demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c_in, h, wd = x.shape
        style = w @ self.affine_w.t() + self.affine_b  # [N, C_in]
        weight = self.weight.unsqueeze(0) * style[:, None, :, None, None]  # [N, C_out, C_in, k, k]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        c_out, k = weight.shape[1], weight.shape[-1]
        y = F.conv2d(x.reshape(1, n * c_in, h, wd), weight.reshape(n * c_out, c_in, k, k), padding=k // 2, groups=n)
        return y.reshape(n, c_out, h, wd) + self.bias.view(1, -1, 1, 1)


class ToyGenerator(nn.Module):
    """FeatureGenerator with 7 feature layers at 4..32 px (C_hidden = 144), cheap on CPU."""

    def __init__(self, seed: int = 0, z_dim: int = 32, w_dim: int = 32) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.z_dim, self.w_dim, self.img_resolution, self.img_channels = z_dim, w_dim, 32, 3
        self.mapping = nn.ModuleList([nn.Linear(z_dim, w_dim), nn.Linear(w_dim, w_dim)])
        for lin in self.mapping:
            lin.weight.data = torch.randn(lin.weight.shape, generator=g) / lin.in_features**0.5
            lin.bias.data.zero_()
        self.const = _param(g, 32, 4, 4)
        spec = [("b4.conv1", 32, 32, 4), ("b8.conv0", 32, 32, 8), ("b8.conv1", 32, 32, 8), ("b16.conv0", 32, 16, 16),
                ("b16.conv1", 16, 16, 16), ("b32.conv0", 16, 8, 32), ("b32.conv1", 8, 8, 32)]  # fmt: skip
        self.convs = nn.ModuleList([_ModConv(g, w_dim, c_in, c_out, 3) for _, c_in, c_out, _ in spec])
        self._layers = tuple(FeatureLayer(name, c_out, res, i) for i, (name, _, c_out, res) in enumerate(spec))
        self.torgb = _ModConv(g, w_dim, 8, 3, 1, demodulate=False)
        self.num_ws = len(spec) + 1
        self.register_buffer("noise_const", torch.stack([torch.randn(32, 32, generator=g) for _ in spec]))
        with torch.no_grad():
            self.register_buffer("w_avg", self._map(torch.randn(512, z_dim, generator=g)).mean(0))

    @property
    def feature_layers(self) -> tuple[FeatureLayer, ...]:
        """H_1..H_L in synthesis order."""
        return self._layers

    def _map(self, z: torch.Tensor) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)
        for lin in self.mapping:
            x = F.leaky_relu(lin(x), 0.2)
        return x

    def sample_ws(self, n: int, psi: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """n latents from `seed`, mapped and truncated towards w_avg: [n, num_ws, w_dim]."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.z_dim, generator=g).to(self.const.device)
        with torch.no_grad():
            w = self.w_avg.lerp(self._map(z), psi)
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def synthesize(
        self, ws: torch.Tensor, noise_mode: str = "const", return_features: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """ws [N, num_ws, w_dim] → (images [N, 3, 32, 32] in [-1, 1], [H_1..H_7])."""
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), f"bad ws shape {list(ws.shape)}"
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        feats = []
        for i, (layer, conv) in enumerate(zip(self._layers, self.convs)):
            if x.shape[-1] != layer.resolution:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = conv(x, ws[:, layer.w_index])
            r = layer.resolution
            if noise_mode == "const":
                x = x + 0.1 * self.noise_const[i, :r, :r]
            elif noise_mode == "random":
                x = x + 0.1 * torch.randn(x.shape[0], 1, r, r, device=x.device)
            x = F.leaky_relu(x, 0.2)
            feats.append(x)
        img = torch.tanh(self.torgb(x, ws[:, self.num_ws - 1]))
        return img, (feats if return_features else [])


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """hfc tests run torch single-threaded: their tensors are tiny, and on a busy 2-core machine two
    OpenMP threads made a 10-iteration HFC run take 30 s instead of 0.6 s. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def toy_label(image: torch.Tensor) -> torch.Tensor:
    """A 2-class label map of a generated image [3, H, W]: pixels brighter than the median are class 1."""
    gray = image.mean(0)
    return (gray > gray.median()).long()


def iou(pred: torch.Tensor, target: torch.Tensor, cls: int = 1) -> float:
    """IoU of class `cls` between two label maps (computed inline: hfc.metrics belongs to the evaluation)."""
    inter = ((pred == cls) & (target == cls)).sum()
    union = ((pred == cls) | (target == cls)).sum()
    return float(inter) / max(float(union), 1.0)
