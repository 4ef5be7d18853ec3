"""ResNet backbones (He et al. 2016) for the downstream segmenters, with atrous stages (Chen et al. 2017).

Depth 18/34 use basic blocks, 50/101 bottlenecks; `width` is the stem width (64 in the original), stage widths
are width·(1, 2, 4, 8). `output_stride` 32 is the plain network; 16 and 8 replace the strides of the last one
or two stages by dilation, and `multi_grid` multiplies the dilation of the last stage's blocks (DeepLabV3).
Module names follow the common layout (conv1, bn1, layer1..4, downsample) so an ImageNet state dict of the
same depth and width loads with `load_backbone_weights`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from baggan.errors import UserError
from hfc.safe_load import load_weights_only


def conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    """3x3 convolution whose padding keeps the size (up to the stride) at any dilation."""
    return nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = conv3x3(cin, width, stride, dilation), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, cout, 1, dilation), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 → 3x3 (strided, dilated) → 1x1 with 4x expansion and a residual connection (ResNet-50/101)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = conv3x3(width, width, stride, dilation), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)
        nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Sequential | None:
    """Projection shortcut (1x1 conv + BN) when shape changes, else None (identity)."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


LAYOUTS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)), 101: (Bottleneck, (3, 4, 23, 3)),
}


class ResNet(nn.Module):
    """ResNet trunk returning the four stage outputs C2..C5 (strides 4, 8, 16, 32 at output stride 32)."""

    def __init__(self, depth: int = 50, width: int = 64, output_stride: int = 32,
                 multi_grid: Sequence[int] = (1, 1, 1), in_channels: int = 3):
        super().__init__()
        if depth not in LAYOUTS:
            raise ValueError(f"ResNet depth must be one of {sorted(LAYOUTS)}, got {depth}")
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        block, counts = LAYOUTS[depth]
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin, stride_so_far, dilation = width, 4, 1
        self.channels, self.strides = [], []
        for i, n in enumerate(counts):
            stride = 1 if i == 0 else 2
            if stride_so_far * stride > output_stride:  # atrous: keep the resolution, widen the receptive field
                dilation, stride = dilation * stride, 1
            stride_so_far *= stride
            grid = multi_grid if i == 3 else (1,)
            blocks = []
            for j in range(n):
                blocks.append(block(cin, width * 2 ** i, stride if j == 0 else 1, dilation * grid[j % len(grid)]))
                cin = width * 2 ** i * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            self.channels.append(cin)
            self.strides.append(stride_so_far)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        assert x.ndim == 4, f"expected NCHW, got {tuple(x.shape)}"
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            feats.append(x)
        return feats


def load_backbone_weights(backbone: ResNet, path: str | Path) -> None:
    """Load a ResNet state dict (e.g. ImageNet weights saved with torch.save) into `backbone`; UserError on mismatch."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: backbone weights not found")
    try:
        state = load_weights_only(path)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in own}
    bad = [k for k, v in usable.items() if v.shape != own[k].shape]
    if not usable or bad:
        raise UserError(f"{path}: does not fit the configured ResNet depth/width "
                        f"({'no matching keys' if not usable else 'shape mismatch at ' + bad[0]})")
    missing = sorted(set(own) - set(usable))
    if missing:
        raise UserError(f"{path}: weights missing for {len(missing)} backbone tensors, e.g. {missing[0]}")
    backbone.load_state_dict(usable)


__all__ = ["ResNet", "BasicBlock", "Bottleneck", "LAYOUTS", "load_backbone_weights"]
