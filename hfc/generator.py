"""The one protocol through which hfc meets a generator (ours, official StyleGAN2-ADA, rosinality)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, Sequence, runtime_checkable

import torch

NoiseMode = Literal["random", "const", "none"]


@dataclass(frozen=True)
class FeatureLayer:
    """One hidden feature layer H_l: a synthesis convolution's output (never ToRGB)."""

    name: str  # e.g. "b4.conv1", "b8.conv0"
    channels: int  # C_l
    resolution: int  # H_l is [N, C_l, resolution, resolution]
    w_index: int  # index into ws[:, i] of the w that modulates this layer


@runtime_checkable
class FeatureGenerator(Protocol):
    """A generator that exposes its hidden features.

    Images are NCHW float32 in [-1, 1]; ws are [N, num_ws, w_dim] (W+).
    `feature_layers` lists H_1..H_L in synthesis order; `synthesize` returns them in that order,
    each [N, C_l, R_l, R_l]. Concatenated widths sum to `sum(l.channels for l in feature_layers)`.
    """

    w_dim: int
    num_ws: int
    img_resolution: int
    img_channels: int

    @property
    def feature_layers(self) -> Sequence[FeatureLayer]:
        """H_1..H_L in synthesis order."""
        ...

    def sample_ws(self, n: int, psi: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """Draw n latents z (from `seed`), map them to W+ with truncation psi: [n, num_ws, w_dim]."""
        ...

    def synthesize(
        self, ws: torch.Tensor, noise_mode: NoiseMode = "const", return_features: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Render ws → (images [N, C, H, W] in [-1, 1], [H_1..H_L]); features empty if not asked for."""
        ...


def hidden_width(gen: FeatureGenerator) -> int:
    """C_hidden: the summed channel count of all feature layers (5376 for FF-HQ-256 config-f)."""
    return sum(layer.channels for layer in gen.feature_layers)


def check_features(gen: FeatureGenerator, features: Sequence[torch.Tensor]) -> None:
    """Assert that `features` match `gen.feature_layers` in count, channels and resolution."""
    layers = gen.feature_layers
    assert len(features) == len(layers), f"expected {len(layers)} feature maps, got {len(features)}"
    for layer, h in zip(layers, features):
        assert h.ndim == 4 and h.shape[1] == layer.channels and h.shape[2] == h.shape[3] == layer.resolution, (
            f"feature {layer.name}: expected [N, {layer.channels}, {layer.resolution}, {layer.resolution}], "
            f"got {list(h.shape)}"
        )


def layer_channels(gen: FeatureGenerator) -> tuple[int, ...]:
    """C_l of every feature layer, in synthesis order (what FusedLinear / encoders are built for)."""
    return tuple(layer.channels for layer in gen.feature_layers)


IMAGE_LAYER = "image"  # name of the generated image when it is offered as the last feature layer


class ImageLayer:
    """A FeatureGenerator whose features are the wrapped generator's [H_1..H_L] followed by the generated image
    itself ([N, C, R, R] in [-1, 1], layer `IMAGE_LAYER`): for a segmenter that reads the image's colours beside
    the HFC codes (`hfc.oneshot.HFCSegmenter` with image_channels). Every other attribute is the wrapped one's."""

    def __init__(self, gen: FeatureGenerator) -> None:
        assert not isinstance(gen, ImageLayer), "the generator already offers its image as a feature layer"
        self.inner = gen
        self.w_dim, self.num_ws = gen.w_dim, gen.num_ws
        self.img_resolution, self.img_channels = gen.img_resolution, gen.img_channels
        self._layers = (*gen.feature_layers,
                        FeatureLayer(IMAGE_LAYER, gen.img_channels, gen.img_resolution, gen.num_ws - 1))

    @property
    def feature_layers(self) -> tuple[FeatureLayer, ...]:
        """H_1..H_L of the wrapped generator, then the image."""
        return self._layers

    def __getattr__(self, name: str):
        return getattr(self.inner, name)  # sample_ws, device, G, draw, ... of the wrapped generator

    def synthesize(
        self, ws: torch.Tensor, noise_mode: NoiseMode | None = None, return_features: bool = True
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """As the wrapped generator's (its own default noise mode when None), with the image appended to the
        features."""
        mode = {} if noise_mode is None else {"noise_mode": noise_mode}
        images, feats = self.inner.synthesize(ws, return_features=return_features, **mode)
        return images, ([*feats, images] if return_features else feats)


def offering_image(gen: FeatureGenerator, image_channels: int) -> FeatureGenerator:
    """`gen` as a model reading `image_channels` image channels after the hidden features needs it: wrapped in
    ImageLayer when it reads the image and gen does not offer it yet, else gen itself."""
    if image_channels and not isinstance(gen, ImageLayer):
        return ImageLayer(gen)
    return gen
