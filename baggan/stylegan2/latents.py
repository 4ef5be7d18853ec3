"""Seeds → z → ws, the one way every command draws latents: z from numpy RandomState, as the official generate.py
(so a seed gives the official picture of an official pickle), mapped with truncation psi without gradient.

Truncation of a conditional G pulls each w toward the mean w of *its label* (`label_centres`), not toward the
global w_avg as the official code does: the global mean mixes the classes, so there a truncated sample drifts
toward no class (measured on the threat-window generator: docs/benchmarks.md, "Session 15"). Unconditional
generators, and ψ = 1, are exactly the official mapping."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from baggan.errors import UserError
from baggan.stylegan2.networks import Generator


CENTRE_LATENTS = 1024  # latents per label whose mean w is the label's truncation centre


def label_centres(G: Generator, c: torch.Tensor, n: int = CENTRE_LATENTS) -> torch.Tensor:
    """[N, w_dim]: for each row of labels c [N, c_dim], the mean w of that label over n fixed latents (seed 0)."""
    device = G.mapping.fc0.weight.device
    z = torch.from_numpy(np.random.RandomState(0).randn(n, G.z_dim)).float().to(device)
    labels, row = torch.unique(c.float().to(device), dim=0, return_inverse=True)
    with torch.no_grad():
        centres = torch.stack([G.mapping(z, label.expand(n, -1))[:, 0].mean(0) for label in labels])
    return centres[row]


def map_z(G: Generator, z: np.ndarray, psi: float, c: torch.Tensor | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] on G's device of z [N, z_dim] (float64, used as float32) and labels c [N, c_dim]; a
    conditional G truncates toward each label's centre."""
    device = G.mapping.fc0.weight.device
    zt, ct = torch.from_numpy(z).float().to(device), None if c is None else c.float().to(device)
    with torch.no_grad():
        if ct is None or G.c_dim == 0 or psi == 1:
            return G.mapping(zt, ct, truncation_psi=psi)
        return label_centres(G, ct)[:, None].lerp(G.mapping(zt, ct), psi)


def ws_from_seed(G: Generator, seeds: Sequence[int], psi: float, class_idx: int | None = None,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of seeds, z = RandomState(seed).randn(z_dim) each (`baggan generate`); a conditional G gets
    one class for all (`class_idx`) or a label vector per seed (`labels` [N, c_dim])."""
    z = np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])
    c = None
    if G.c_dim > 0 and labels is not None:
        c = labels
    elif G.c_dim > 0:
        if class_idx is None or not 0 <= class_idx < G.c_dim:
            raise UserError(f"--class-idx: the generator is conditional; give a class in 0..{G.c_dim - 1}")
        c = torch.nn.functional.one_hot(torch.full([len(seeds)], class_idx), G.c_dim)
    return map_z(G, z, psi, c)
