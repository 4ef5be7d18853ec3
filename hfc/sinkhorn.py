"""Sinkhorn-Knopp for SwAV's online cluster assignment (Eq. 4-5, appendix A, Eq. A7-A8).

Q* = Diag(u) exp(C^T Z / eps) Diag(v) is found by alternately rescaling the prototype marginal and
the pixel marginal. Done in the log domain (u, v as log-potentials, logsumexp), so float32 never
overflows or underflows to an all-zero row, even at eps = 0.003 with K = 4000 (scores/eps ~ 333).

Orientation: `scores` is [..., B, K] (B pixels, K prototypes; C^T Z transposed). Marginals:
  * prototype marginal r ∈ Δ_K (the equipartition constraint of Eq. A2 is r = 1/K), or the "image pixel
    distribution" of Fig. 14c (`assignment_histogram`: how the pixels currently fall on prototypes);
  * pixel marginal c ∈ Δ_B (uniform 1/B unless per-pixel weights are given).
The result is returned per pixel: row b of the output is q*_b / c_b, a distribution over prototypes.
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def sinkhorn(
    scores: torch.Tensor,
    eps: float,
    n_iters: int = 3,
    prototype_marginal: torch.Tensor | None = None,
    pixel_marginal: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 5: codes Q* for scores [..., B, K] (rows: pixels, each row of the result sums to 1)."""
    assert scores.ndim >= 2, f"scores must be [..., B, K], got {list(scores.shape)}"
    b, k = scores.shape[-2:]
    log_k = scores.float() / eps  # the Gibbs kernel exp(C^T Z / eps), in logs
    batch = scores.shape[:-2]
    log_r = _log_marginal(prototype_marginal, batch + (k,), log_k)
    log_c = _log_marginal(pixel_marginal, batch + (b,), log_k)
    log_v = torch.zeros_like(log_c)  # pixel potentials
    for _ in range(n_iters):
        log_u = log_r - _logsumexp(log_k + log_v.unsqueeze(-1), dim=-2)  # prototype sums → r
        log_v = log_c - _logsumexp(log_k + log_u.unsqueeze(-2), dim=-1)  # pixel sums → c
    return torch.exp(log_k + log_u.unsqueeze(-2) + (log_v - log_c).unsqueeze(-1))


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log sum exp along `dim`, max-subtracted (torch.logsumexp is much slower on CPU for short rows)."""
    m = x.amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return (x - m).exp_().sum(dim=dim).log_() + m.squeeze(dim)


def _log_marginal(marginal: torch.Tensor | None, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """log of a given marginal (broadcast to `shape`), or of the uniform one."""
    if marginal is None:
        return like.new_full(shape, -math.log(shape[-1]))
    assert marginal.shape[-1] == shape[-1], f"marginal has {marginal.shape[-1]} entries, expected {shape[-1]}"
    return torch.log(marginal.float().to(like.device)).expand(shape)


@torch.no_grad()
def assignment_histogram(scores: torch.Tensor, smoothing: float = 1.0) -> torch.Tensor:
    """Fig. 14c's pixel-distribution marginal: r_k = (n_k + smoothing) / (B + K * smoothing).

    n_k counts the pixels whose best-scoring prototype is k; `smoothing` (add-one by default) keeps
    every prototype reachable. scores [..., B, K] → r [..., K].
    """
    b, k = scores.shape[-2:]
    counts = torch.zeros(scores.shape[:-2] + (k,), device=scores.device)
    counts.scatter_add_(-1, scores.argmax(-1), torch.ones(scores.shape[:-1], device=scores.device))
    return (counts + smoothing) / (b + k * smoothing)
