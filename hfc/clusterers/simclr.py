"""HFC+SimCLR: pixel-level NT-Xent (Chen et al. 2020) between the two W+ views.

The positive of a pixel is the same pixel position in the other view; every other pixel of the same
patch (in both views) is a negative. Trained through the same f_theta (`hfc.swav.ProjectionHead`)
and the same global/local wrapper (`hfc.swav.HFCLoss`) as SwAV, only the pair loss differs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NTXentLoss(nn.Module):
    """Pair loss for unit-norm codes z_s, z_t [G, P, D]; uses `pixels` positions spread over each patch."""

    def __init__(self, temperature: float = 0.1, pixels: int = 1024) -> None:
        super().__init__()
        self.temperature, self.pixels = temperature, pixels

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        """Mean NT-Xent over the 2m anchors of every patch."""
        g, p, _ = z_s.shape
        m = min(self.pixels, p)
        keep = torch.linspace(0, p - 1, m, device=z_s.device).round().long()  # (2m)^2 similarities per patch
        z = torch.cat([z_s[:, keep], z_t[:, keep]], dim=1)  # [G, 2m, D]
        sim = (z @ z.transpose(1, 2)) / self.temperature
        self_pairs = torch.eye(2 * m, dtype=torch.bool, device=z.device)
        sim = sim.masked_fill(self_pairs, float("-inf"))
        target = torch.cat([torch.arange(m, 2 * m), torch.arange(m)]).to(z.device).repeat(g)
        return F.cross_entropy(sim.flatten(0, 1), target)
