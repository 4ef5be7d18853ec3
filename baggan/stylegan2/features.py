"""Our generator behind hfc's FeatureGenerator protocol: hidden features H_l are the outputs of every
synthesis convolution (b4.conv1, then conv0 and conv1 of each later block; never ToRGB), returned by the
synthesis pass itself (no hooks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from baggan.errors import UserError
from baggan.stylegan2.latents import map_z
from baggan.stylegan2.networks import Generator, NoiseMode
from hfc.generator import FeatureLayer


class StyleGANFeatureGenerator:
    """hfc.generator.FeatureGenerator for a StyleGAN2 `Generator` (conditional ones render `class_idx`,
    or a class drawn from the seed if None: one of `classes`, default all c_dim)."""

    def __init__(self, G: Generator, noise_mode: NoiseMode = "const", class_idx: int | None = None,
                 classes: Sequence[int] | None = None):
        assert noise_mode in ("random", "const", "none"), f"noise_mode {noise_mode!r}"
        self.G = G
        self._check_classes([class_idx] if class_idx is not None else [])
        self.noise_mode = noise_mode
        self.class_idx = class_idx
        self.classes = list(range(G.c_dim))
        if classes is not None:
            self.draw_among(classes)
        self.w_dim, self.num_ws = G.w_dim, G.num_ws
        self.img_resolution, self.img_channels = G.img_resolution, G.img_channels
        self._layers = tuple(FeatureLayer(name, layer.out_channels, layer.resolution, w_index)
                             for name, layer, w_index in G.synthesis.conv_layers())

    @property
    def feature_layers(self) -> tuple[FeatureLayer, ...]:
        """H_1..H_L in synthesis order."""
        return self._layers

    @property
    def device(self) -> torch.device:
        """Where the generator's weights live."""
        return self.G.synthesis.b4.const.device

    def _check_classes(self, classes: Sequence[int]) -> None:
        """UserError naming the first class index outside the generator's c_dim."""
        for c in classes:
            if not 0 <= c < max(self.G.c_dim, 1):
                raise UserError(f"class index {c} is out of range for a generator with {self.G.c_dim} classes")

    def draw_among(self, classes: Sequence[int]) -> None:
        """From now on, a conditional generator's sampled latents take their class among `classes` (indices)."""
        classes = list(classes)
        if not classes:
            raise UserError("classes: a conditional generator needs at least one class to draw from")
        self._check_classes(classes)
        self.classes = classes

    def sample_ws(self, n: int, psi: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """n latents z ~ N(0, I) → W+ with truncation psi; z = RandomState(seed).randn(n, z_dim), so
        `sample_ws(1, psi, s)` is the scan `baggan generate --seeds s` renders (the official convention)."""
        z, idx = self.draw(n, seed)
        c = None if idx is None else torch.nn.functional.one_hot(torch.from_numpy(idx).long(), self.G.c_dim)
        return map_z(self.G, z, psi, c)

    def draw(self, n: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """(z [n, z_dim], class index [n] or None if unconditional) that `sample_ws(n, psi, seed)` renders."""
        rng = np.random.RandomState(seed) if seed is not None else np.random.RandomState()
        z = rng.randn(n, self.G.z_dim)
        if self.G.c_dim == 0:
            return z, None
        if self.class_idx is not None:
            return z, np.full(n, self.class_idx)
        return z, np.asarray(self.classes)[rng.randint(len(self.classes), size=n)]

    def synthesize(
        self, ws: torch.Tensor, noise_mode: NoiseMode | None = None, return_features: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """ws [N, num_ws, w_dim] → (images [N, C, R, R] in ~[-1, 1], [H_1..H_L] or []); no graph unless ws needs grad."""
        ws = ws.to(self.device)
        mode = self.noise_mode if noise_mode is None else noise_mode
        with torch.set_grad_enabled(torch.is_grad_enabled() and ws.requires_grad):
            if return_features:
                return self.G.synthesis(ws, noise_mode=mode, return_features=True)
            return self.G.synthesis(ws, noise_mode=mode), []


def load_feature_generator(path: str | Path, device: str | torch.device = "cpu", key: str = "G_ema",
                           noise_mode: NoiseMode = "const") -> StyleGANFeatureGenerator:
    """StyleGANFeatureGenerator for network `key` of any supported network file."""
    from baggan.stylegan2.checkpoint import load_network

    nets = load_network(path, device)
    if key not in nets:
        raise UserError(f"{path}: no {key!r} network in the file (it holds: {', '.join(sorted(nets)) or 'none'})")
    return StyleGANFeatureGenerator(nets[key], noise_mode=noise_mode)


__all__ = ["StyleGANFeatureGenerator", "load_feature_generator"]
