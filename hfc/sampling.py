"""Which pixels enter the HFC loss (Eq. 9): square patches P_ij, or sets of random pixels.

Coordinates are int64 (row, col) in image pixels, shape [N, G * P, 2]: G patches (or pixel sets) of
P pixels per image, patch after patch. Both views of an iteration use the same coordinates.
"""

from __future__ import annotations

import torch

from hfc.config import SamplingConfig


def patch_coords(size: int, patch: int, n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random square patch x patch crops per image (clipped to the image): [n, count * p^2, 2]."""
    p = min(patch, size)
    corners = torch.randint(0, size - p + 1, (n, count, 1, 2), generator=generator)
    offsets = torch.stack(torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij"), dim=-1).reshape(1, 1, -1, 2)
    return (corners + offsets).reshape(n, count * p * p, 2)


def random_pixel_coords(size: int, pixels: int, n: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` sets of `pixels` distinct random pixels per image (at most size^2): [n, count * m, 2]."""
    m = min(pixels, size * size)
    flat = torch.stack([torch.randperm(size * size, generator=generator)[:m] for _ in range(n * count)])
    return torch.stack([flat // size, flat % size], dim=-1).reshape(n, count * m, 2)


def sample_coords(size: int, cfg: SamplingConfig, n: int, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Coordinates for one iteration and the number of patches per image: ([n, G * P, 2], G)."""
    if cfg.mode == "patches":
        return patch_coords(size, cfg.patch_size, n, cfg.num_patches, generator), cfg.num_patches
    return random_pixel_coords(size, cfg.num_pixels, n, cfg.num_patches, generator), cfg.num_patches
