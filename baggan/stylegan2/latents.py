"""Seeds → z → ws, the one way every command draws latents: z from numpy RandomState, as the official generate.py
(so a seed gives the official picture of an official pickle), mapped with truncation psi without gradient."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from baggan.errors import UserError
from baggan.stylegan2.networks import Generator


def map_z(G: Generator, z: np.ndarray, psi: float, c: torch.Tensor | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] on G's device of z [N, z_dim] (float64, used as float32) and labels c [N, c_dim]."""
    device = G.mapping.fc0.weight.device
    with torch.no_grad():
        return G.mapping(torch.from_numpy(z).float().to(device), None if c is None else c.float().to(device),
                         truncation_psi=psi)


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
