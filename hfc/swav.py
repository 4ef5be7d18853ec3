"""SwAV on hidden features (section 4.2): f_theta, prototypes, swapped prediction, global + local terms.

Small composable pieces:
  * `ProjectionHead`   f_theta = Linear(C_hidden → D) + LeakyReLU, then L2 normalisation (a PixelEncoder,
                       so its Linear is computed in the fused form of hfc.features).
  * `Prototypes`       K unit-norm prototype vectors c_k (renormalised after every optimiser step).
  * `swapped_prediction`  Eq. 2-3 for given scores and codes.
  * `SwAVLoss`         a pair loss: scores → Sinkhorn codes (Eq. 5) → Eq. 2.
  * `HFCLoss`          Eq. 10: global term + local term (Eq. 11) around any pair loss (SwAV or NT-Xent).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hfc.checkpoint import register
from hfc.features import PixelEncoder
from hfc.sinkhorn import assignment_histogram, sinkhorn


@register
class ProjectionHead(PixelEncoder):
    """f_theta: Linear(C_hidden → D) + LeakyReLU, L2-normalised (section 6.2.3)."""

    kind = "projection_head"

    def __init__(self, layer_channels: Sequence[int], dim: int = 512, negative_slope: float = 0.2) -> None:
        super().__init__(layer_channels, dim)
        self.negative_slope = negative_slope

    def activate(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        """LeakyReLU, then unit length along `dim` (in place when no gradient is needed: no new D x H x W map)."""
        if torch.is_grad_enabled():
            return F.normalize(F.leaky_relu(y, self.negative_slope), dim=dim)
        y = F.leaky_relu_(y, self.negative_slope)
        return y.div_(torch.linalg.vector_norm(y, dim=dim, keepdim=True).clamp_min_(1e-12))  # as F.normalize

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {"layer_channels": list(self.layer_channels), "dim": self.out_dim, "negative_slope": self.negative_slope}


class Prototypes(nn.Module):
    """C = {c_1..c_K}, unit-norm vectors in the code space; scores are C^T z."""

    def __init__(self, dim: int, k: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(k, dim))
        self.normalize_()

    @torch.no_grad()
    def normalize_(self) -> None:
        """Project every c_k back onto the unit sphere."""
        self.weight.copy_(F.normalize(self.weight, dim=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [..., D] → scores C^T z [..., K]."""
        return z @ self.weight.t()


def swapped_prediction(
    scores_s: torch.Tensor, scores_t: torch.Tensor, q_s: torch.Tensor, q_t: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Eq. 2-3: l(z_s, q_t) + l(z_t, q_s), each -sum_k q log softmax(C^T z / tau), mean over pixels."""
    def ell(scores: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return -(q * F.log_softmax(scores / temperature, dim=-1)).sum(-1).mean()

    return ell(scores_s, q_t) + ell(scores_t, q_s)


class SwAVLoss(nn.Module):
    """Pair loss for codes z_s, z_t [G, P, D] (G patches of P pixels, one Sinkhorn problem each)."""

    def __init__(
        self,
        dim: int,
        prototypes: int,
        temperature: float = 0.01,
        epsilon: float | None = None,
        sinkhorn_iters: int = 10,
        constraint: str = "equipartition",
    ) -> None:
        super().__init__()
        assert constraint in ("equipartition", "pixel_distribution"), constraint
        self.prototypes = Prototypes(dim, prototypes)
        self.temperature = temperature
        self.epsilon = epsilon if epsilon is not None else 20.0 / prototypes
        self.sinkhorn_iters = sinkhorn_iters
        self.constraint = constraint

    def codes(self, scores: torch.Tensor) -> torch.Tensor:
        """Sinkhorn codes Q* (no gradient), with the equipartition or pixel-distribution marginal."""
        marginal = assignment_histogram(scores) if self.constraint == "pixel_distribution" else None
        return sinkhorn(scores.detach(), self.epsilon, self.sinkhorn_iters, prototype_marginal=marginal)

    def forward(self, z_s: torch.Tensor, z_t: torch.Tensor) -> torch.Tensor:
        """Eq. 2 for one pair of views."""
        scores_s, scores_t = self.prototypes(z_s), self.prototypes(z_t)
        return swapped_prediction(scores_s, scores_t, self.codes(scores_s), self.codes(scores_t), self.temperature)

    def after_step(self) -> None:
        """Keep the prototypes unit-norm."""
        self.prototypes.normalize_()


def encode_pair_at(
    encoder: PixelEncoder,
    features: Sequence[torch.Tensor],
    coords: torch.Tensor,
    size: int,
    first_layer: int,
    want_global: bool,
    want_local: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Codes at coords with all layers (global) and with layers < first_layer masked (local, Eq. 11).

    Masking layers = dropping their terms from the fused sum, so local + (layers < first_layer) = global.
    """
    n_layers = len(features)
    lin_local = encoder.proj.at(features, coords, size, layers=range(first_layer, n_layers))
    if first_layer == 0:  # nothing is masked: the local code is the global code
        z = encoder.activate(lin_local, dim=-1)
        return (z if want_global else None), (z if want_local else None)
    lin_global = None
    if want_global:  # before lin_local is activated (in place when no gradient is recorded)
        lin_global = lin_local + encoder.proj.at(features, coords, size, layers=range(first_layer), bias=False)
    z_global = encoder.activate(lin_global, dim=-1) if want_global else None
    z_local = encoder.activate(lin_local, dim=-1) if want_local else None
    return z_global, z_local


class HFCLoss(nn.Module):
    """Eq. 10: L_HFC = L_global(Z_s, Z_t) + L_local(Z_s, Z_t), around any pair loss."""

    def __init__(self, pair_loss: nn.Module, use_global: bool = True, use_local: bool = True) -> None:
        super().__init__()
        assert use_global or use_local, "at least one of the global and local terms must be on"
        self.pair_loss, self.use_global, self.use_local = pair_loss, use_global, use_local

    def forward(
        self,
        encoder: PixelEncoder,
        features_s: Sequence[torch.Tensor],
        features_t: Sequence[torch.Tensor],
        coords: torch.Tensor,
        size: int,
        first_layer: int,
        patches: int,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """coords [N, patches * P, 2] (same positions in both views) → (loss, {"global", "local"})."""
        zs = encode_pair_at(encoder, features_s, coords, size, first_layer, self.use_global, self.use_local)
        zt = encode_pair_at(encoder, features_t, coords, size, first_layer, self.use_global, self.use_local)
        total, parts = 0.0, {}
        for name, z_s, z_t in (("global", zs[0], zt[0]), ("local", zs[1], zt[1])):
            if z_s is None:
                continue
            n, p_all, d = z_s.shape
            term = self.pair_loss(z_s.reshape(n * patches, p_all // patches, d), z_t.reshape(n * patches, p_all // patches, d))
            parts[name] = float(term.detach())
            total = total + term
        return total, parts

    def after_step(self) -> None:
        """Post-step hook of the pair loss (prototype renormalisation), if any."""
        hook = getattr(self.pair_loss, "after_step", None)
        if hook is not None:
            hook()
