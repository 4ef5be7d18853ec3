"""DeepLabV3 (Chen et al. 2017, "Rethinking Atrous Convolution"): an atrous ResNet and ASPP with image pooling.

The paper's downstream segmenter (Table 3). Atrous rates are (6, 12, 18) at output stride 16 and doubled at
output stride 8; the last stage uses multi-grid (1, 2, 4). Logits are upsampled bilinearly to the input size.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baggan.evaluate.resnet import ResNet


def conv_bn_relu(cin: int, cout: int, kernel: int = 1, dilation: int = 1) -> nn.Sequential:
    """Convolution (same-size padding) → BatchNorm → ReLU."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average pool → 1x1 conv → BN → ReLU → broadcast back to the map size."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.proj = conv_bn_relu(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(F.adaptive_avg_pool2d(x, 1))
        return y.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, one 3x3 branch per rate, image pooling; concat → 1x1."""

    def __init__(self, cin: int, cout: int = 256, rates: Sequence[int] = (6, 12, 18), dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList([conv_bn_relu(cin, cout)]
                                      + [conv_bn_relu(cin, cout, 3, r) for r in rates]
                                      + [ImagePooling(cin, cout)])
        self.project = nn.Sequential(conv_bn_relu(cout * len(self.branches), cout), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([b(x) for b in self.branches], dim=1))


class DeepLabV3(nn.Module):
    """Atrous ResNet → ASPP → 3x3 conv → 1x1 classifier → bilinear upsampling: [B,3,H,W] → [B,K,H,W] logits."""

    def __init__(self, num_classes: int, depth: int = 50, width: int = 64, output_stride: int = 16,
                 aspp_channels: int = 256, multi_grid: Sequence[int] = (1, 2, 4)):
        super().__init__()
        if output_stride not in (8, 16):
            raise ValueError(f"DeepLabV3 output_stride must be 8 or 16, got {output_stride}")
        self.num_classes = num_classes
        self.backbone = ResNet(depth, width, output_stride, multi_grid)
        rates = tuple(r * 16 // output_stride for r in (6, 12, 18))
        self.aspp = ASPP(self.backbone.channels[-1], aspp_channels, rates)
        self.head = nn.Sequential(conv_bn_relu(aspp_channels, aspp_channels, 3),
                                  nn.Conv2d(aspp_channels, num_classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, f"expected [B, 3, H, W], got {tuple(x.shape)}"
        y = self.head(self.aspp(self.backbone(x)[-1]))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


__all__ = ["DeepLabV3", "ASPP", "ImagePooling", "conv_bn_relu"]
