"""Views of a generated image by sampling in W+ (section 4.1): Eq. 7 interpolation, Eq. 6 noise.

The perturbation unit is a *style block*: the synthesis block of one resolution (4x4, 8x8, ...), as in
Table 7's "Layer 0..6" of a 7-block 256x256 generator. Block s owns the ws entries from the w_index of
its first feature layer up to (not including) the next block's first w_index; block 0 starts at ws[0]
and the last block also owns the trailing ToRGB entries. In NVlabs' 256x256 generator (num_ws = 14)
that is block 0 → ws[0], block 1 (8x8) → ws[1:3], ..., block 6 (256x256) → ws[11:14].

Perturbing block s changes the features of its first layer and of everything after it (the synthesis
is sequential), never those before: `StyleBlock.first_layer` is the index l_s of that first feature
layer, and the local loss (Eq. 11) masks layers 0..l_s-1. Both views of an iteration perturb the same
block (drawn at random per iteration, or fixed for the Table 7 ablation) with independent partners /
noise, and use constant noise inputs, so they stay pixel-aligned: no flips or rotations, ever.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hfc.config import AugmentConfig
from hfc.errors import HFCError
from hfc.generator import FeatureGenerator
from hfc.rng import draw_seed


@dataclass(frozen=True)
class StyleBlock:
    """One synthesis block: its resolution, its feature layers and the ws entries it owns."""

    index: int
    resolution: int
    layers: tuple[int, ...]  # indices into gen.feature_layers
    ws: tuple[int, ...]  # ws[:, i] entries perturbed when this block is chosen

    @property
    def first_layer(self) -> int:
        """l_s: the first feature layer the perturbation reaches (Eq. 11 masks layers before it)."""
        return self.layers[0]


def style_blocks(gen: FeatureGenerator) -> list[StyleBlock]:
    """The generator's style blocks in synthesis order (feature layers grouped by resolution)."""
    layers = list(gen.feature_layers)
    groups: list[list[int]] = []
    for i, layer in enumerate(layers):
        if groups and layers[groups[-1][0]].resolution == layer.resolution:
            groups[-1].append(i)
        else:
            assert not groups or layer.resolution > layers[groups[-1][0]].resolution, "resolutions must grow"
            groups.append([i])
    starts = [0] + [min(layers[i].w_index for i in g) for g in groups[1:]] + [gen.num_ws]
    assert starts == sorted(starts), f"w indices of the blocks must grow: {starts}"
    return [
        StyleBlock(k, layers[g[0]].resolution, tuple(g), tuple(range(starts[k], starts[k + 1])))
        for k, g in enumerate(groups)
    ]


def interpolate_ws(ws: torch.Tensor, partner: torch.Tensor, entries: tuple[int, ...], tau_p: float) -> torch.Tensor:
    """Eq. 7: w'_i = tau_p * w_i + (1 - tau_p) * w_i^(p) for the ws entries i of one block."""
    out = ws.clone()
    out[:, list(entries)] = torch.lerp(partner[:, list(entries)], ws[:, list(entries)], tau_p)
    return out


def add_noise_ws(ws: torch.Tensor, entries: tuple[int, ...], sigma_d: float, generator: torch.Generator) -> torch.Tensor:
    """Eq. 6: w'_i = w_i + n_d, n_d ~ N(0, sigma_d^2 I); one n_d per sample, shared by the block's entries."""
    noise = torch.randn(ws.shape[0], 1, ws.shape[2], generator=generator).to(ws.device) * sigma_d
    out = ws.clone()
    out[:, list(entries)] += noise
    return out


@dataclass(frozen=True)
class Views:
    """Two pixel-aligned views of the same latents, both perturbed at `block`."""

    ws_s: torch.Tensor
    ws_t: torch.Tensor
    block: StyleBlock


class ViewSampler:
    """Draws the two W+ views of each iteration (section 4.1, 6.2.2)."""

    def __init__(self, gen: FeatureGenerator, cfg: AugmentConfig) -> None:
        self.gen, self.cfg = gen, cfg
        self.blocks = style_blocks(gen)
        if cfg.block is not None and cfg.block >= len(self.blocks):
            raise HFCError(
                f"augment.block: {cfg.block} is out of range; this generator has {len(self.blocks)} style "
                f"blocks (0..{len(self.blocks) - 1}, resolutions {[b.resolution for b in self.blocks]})"
            )

    def pick_block(self, generator: torch.Generator) -> StyleBlock:
        """The fixed block, or one drawn uniformly."""
        if self.cfg.block is not None:
            return self.blocks[self.cfg.block]
        return self.blocks[int(torch.randint(len(self.blocks), (1,), generator=generator))]

    def __call__(self, ws: torch.Tensor, generator: torch.Generator) -> Views:
        """Two views of ws [N, num_ws, w_dim], perturbed at one block (random or fixed)."""
        block = self.pick_block(generator)
        if self.cfg.method == "interpolate":
            partners = self.gen.sample_ws(2 * ws.shape[0], psi=self.cfg.psi, seed=draw_seed(generator)).to(ws.device)
            a, b = partners.chunk(2)
            return Views(interpolate_ws(ws, a, block.ws, self.cfg.tau_p), interpolate_ws(ws, b, block.ws, self.cfg.tau_p), block)
        return Views(
            add_noise_ws(ws, block.ws, self.cfg.sigma_d, generator),
            add_noise_ws(ws, block.ws, self.cfg.sigma_d, generator),
            block,
        )


def fit_view_seed(seed: int, sample: int) -> int:
    """The seed of annotated sample `sample`'s views (fit_views) in a one-shot fit initialised from `seed`."""
    return seed * 7919 + sample


def fit_views(gen: FeatureGenerator, ws: torch.Tensor, n: int, tau_p: float, min_resolution: int,
              seed: int) -> torch.Tensor:
    """n views [n, num_ws, w_dim] of one annotated sample's ws [1, num_ws, w_dim] for the one-shot fit: Eq. 7 at one
    style block of resolution >= min_resolution per view (drawn from `seed`), towards a partner of gen.sample_ws."""
    assert ws.shape == (1, gen.num_ws, gen.w_dim), f"ws {list(ws.shape)} must be [1, {gen.num_ws}, {gen.w_dim}]"
    if n == 0:
        return ws.new_zeros((0, *ws.shape[1:]))
    blocks = [b for b in style_blocks(gen) if b.resolution >= min_resolution]
    if not blocks:
        raise HFCError(f"views_min_resolution: {min_resolution} leaves no style block to perturb (the generator's "
                       f"blocks are {[b.resolution for b in style_blocks(gen)]} px)")
    rng = torch.Generator().manual_seed(seed)
    views = []
    for _ in range(n):
        block = blocks[int(torch.randint(len(blocks), (1,), generator=rng))]
        partner = gen.sample_ws(1, seed=draw_seed(rng)).to(ws.device)
        views.append(interpolate_ws(ws, partner, block.ws, tau_p))
    return torch.cat(views)
