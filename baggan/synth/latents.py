"""Latents for synthesis: one seed per candidate scan, and a sampler that can steer W toward a threat category.

Candidate j of shard k draws z from seed `candidate_seed(seed, k, j)`, so a scan's latent depends only on
(run seed, shard, candidate) — never on the batch size, on resuming or on how many ranks share the work.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

CALIBRATION_SHARD = 2**31  # the candidate stream of the steering calibration pass (no real shard gets this index)


def candidate_seed(seed: int, shard: int, candidate: int) -> int:
    """The z seed of candidate `candidate` of shard `shard` in a run with seed `seed` (a uint32 hash)."""
    return int(np.random.SeedSequence([seed, shard, candidate]).generate_state(1)[0])


class LatentSampler:
    """z seeds → W+ latents [N, num_ws, w_dim]: `sample_ws(1, psi, seed)` per seed, then w' = w + alpha * d.

    `direction` d is a vector in W (see `fit_direction`); with alpha = 0 or no direction this is plain
    truncated sampling.
    """

    def __init__(self, sample_ws: Callable[..., torch.Tensor], psi: float, direction: torch.Tensor | None = None,
                 alpha: float = 0.0):
        self.sample_ws = sample_ws
        self.psi = psi
        self.direction = direction
        self.alpha = alpha if direction is not None else 0.0

    def __call__(self, z_seeds: Sequence[int]) -> torch.Tensor:
        """Latents for `z_seeds`, one row each; every row is drawn on its own (batch-independent)."""
        ws = torch.cat([self.sample_ws(1, psi=self.psi, seed=s) for s in z_seeds])
        assert ws.ndim == 3, f"sample_ws must return [N, num_ws, w_dim], got {list(ws.shape)}"
        if self.alpha:
            ws = ws + self.alpha * self.direction.to(ws)  # steering: w' = w + alpha * d on every layer
        return ws


def fit_direction(ws_accepted: torch.Tensor, ws_rejected: torch.Tensor) -> torch.Tensor:
    """The W direction from rejected to accepted scans: the difference of their mean w (layer 0) [w_dim].

    With alpha = 1 the sampler moves each latent by the gap between the two class means.
    """
    assert ws_accepted.ndim == ws_rejected.ndim == 3, "expected ws [N, num_ws, w_dim]"
    return ws_accepted[:, 0].double().mean(0).float() - ws_rejected[:, 0].double().mean(0).float()
