"""SDANet's selective dense attention (Wang et al. 2021, PIDray) on a semantic FPN, for segmentation.

The PIDray baseline is a detector; here its attention sits in a semantic-segmentation network, the role it
plays in the paper's section 8.2 experiment:

    ResNet C2..C5 → FPN P2..P5 → for each level i:
        G_i  = all levels resized to level i's size                                  [B, L, C, H_i, W_i]
        A_i  = spatial-wise dense attention(channel-wise dense attention(G_i))       softmax over the L levels
        P_i' = P_i + DependencyRefinement(A_i)                                       global context block
    → semantic FPN head (each level upsampled to stride 4 and summed) → 1x1 classifier → logits at input size.

This is our reading of the paper's description (its code was not consulted): the channel attention weighs each
level's channels from the pooled sum of the levels, the spatial attention weighs each level at each pixel
from per-level mean/max descriptors, and the dependency refinement is a global context block (Cao et al. 2019).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baggan.evaluate.deeplab import conv_bn_relu
from baggan.evaluate.resnet import ResNet


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bring a feature map to `size`: bilinear up-sampling, adaptive max pooling down."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    if x.shape[2] < size[0]:
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return F.adaptive_max_pool2d(x, size)


class ChannelDenseAttention(nn.Module):
    """Per level and channel weights, softmax over levels, from the pooled sum of all levels: [B,L,C,H,W] → same."""

    def __init__(self, channels: int, levels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.levels = levels
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, levels * channels))

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        b, n, c = g.shape[:3]
        assert n == self.levels, f"expected {self.levels} levels, got {n}"
        w = self.fc(g.sum(1).mean((2, 3))).view(b, n, c).softmax(dim=1)
        return g * w[..., None, None]


class SpatialDenseAttention(nn.Module):
    """Per level and pixel weights, softmax over levels, from each level's channel mean and max: [B,L,C,H,W] → [B,C,H,W]."""

    def __init__(self, levels: int, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2 * levels, levels, kernel, padding=kernel // 2)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        desc = torch.cat([g.mean(2), g.amax(2)], dim=1)  # [B, 2L, H, W]
        w = self.conv(desc).softmax(dim=1)  # [B, L, H, W]
        return (g * w[:, :, None]).sum(1)


class DependencyRefinement(nn.Module):
    """Global context block: attention-pooled context → bottleneck (LayerNorm, ReLU) → added to every pixel."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.key = nn.Conv2d(channels, 1, 1)
        self.transform = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.LayerNorm([hidden, 1, 1]),
                                       nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        nn.init.zeros_(self.transform[-1].weight)  # starts as the identity
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attn = self.key(x).view(b, 1, h * w).softmax(dim=-1)  # [B, 1, HW]
        context = torch.bmm(x.view(b, c, h * w), attn.transpose(1, 2)).view(b, c, 1, 1)
        return x + self.transform(context)


class SelectiveDenseAttention(nn.Module):
    """One FPN level's block: gather all levels at its size → channel then spatial dense attention → refinement."""

    def __init__(self, channels: int, levels: int, reduction: int = 4):
        super().__init__()
        self.channel = ChannelDenseAttention(channels, levels, reduction)
        self.spatial = SpatialDenseAttention(levels)
        self.refine = DependencyRefinement(channels, reduction)

    def forward(self, feats: list[torch.Tensor], level: int) -> torch.Tensor:
        size = tuple(feats[level].shape[2:])
        g = torch.stack([resize_to(f, size) for f in feats], dim=1)
        return feats[level] + self.refine(self.spatial(self.channel(g)))


class FPN(nn.Module):
    """Feature pyramid (Lin et al. 2017): 1x1 laterals, top-down nearest up-sampling and sum, 3x3 smoothing."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in in_channels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [conv(f) for conv, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 2, -1, -1):
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[2:], mode="nearest")
        return [conv(p) for conv, p in zip(self.smooth, lat)]


class SemanticHead(nn.Module):
    """Semantic FPN head (Kirillov et al. 2019): level i gets max(1, i) conv(+2x up) stages to stride 4; summed."""

    def __init__(self, channels: int, head_channels: int, levels: int):
        super().__init__()
        self.paths = nn.ModuleList()
        for i in range(levels):
            stages: list[nn.Module] = []
            for k in range(max(1, i)):
                stages.append(conv_bn_relu(channels if k == 0 else head_channels, head_channels, 3))
                if i > 0:
                    stages.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.paths.append(nn.Sequential(*stages))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out = self.paths[0](feats[0])
        for path, f in zip(self.paths[1:], feats[1:]):
            out = out + resize_to(path(f), tuple(out.shape[2:]))
        return out


class SDANet(nn.Module):
    """ResNet → FPN → selective dense attention per level → semantic FPN head: [B,3,H,W] → [B,K,H,W] logits."""

    def __init__(self, num_classes: int, depth: int = 50, width: int = 64, fpn_channels: int = 256,
                 head_channels: int = 128, reduction: int = 4):
        super().__init__()
        self.num_classes = num_classes
        self.backbone = ResNet(depth, width, output_stride=32)
        levels = len(self.backbone.channels)
        self.fpn = FPN(self.backbone.channels, fpn_channels)
        self.attention = nn.ModuleList(SelectiveDenseAttention(fpn_channels, levels, reduction)
                                       for _ in range(levels))
        self.head = SemanticHead(fpn_channels, head_channels, levels)
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == 3, f"expected [B, 3, H, W], got {tuple(x.shape)}"
        p = self.fpn(self.backbone(x))
        p = [block(p, i) for i, block in enumerate(self.attention)]
        y = self.classifier(self.head(p))
        return F.interpolate(y, size=x.shape[2:], mode="bilinear", align_corners=False)


__all__ = ["SDANet", "FPN", "SemanticHead", "SelectiveDenseAttention", "ChannelDenseAttention",
           "SpatialDenseAttention", "DependencyRefinement"]
