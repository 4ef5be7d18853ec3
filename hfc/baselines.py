"""Semi-supervised baselines on the raw hidden features, as PixelClassifiers (same fit / Annotator).

* DatasetGAN (Zhang et al. 2021): an ensemble of 10 pixel MLPs C_hidden → 128 → 32 → K (ReLU, then
  BatchNorm), majority vote of the members' labels, Jensen-Shannon divergence as uncertainty.
* RepurposeGAN (Tritrong et al. 2021): a pixel MLP, and a dilated FCN.
* A control, not a paper baseline: the linear head of Ours / MLP (standardised input) on the generated image alone,
  no hidden feature at all. What every feature-reading method must beat to show its features add anything.

All take Eq. 8's features, and all start with a per-pixel Linear on them, computed in the exact fused
form (hfc.features.FusedLinear): the C_hidden x H x W tensor is never built. The ten DatasetGAN
members share one FusedLinear of width 10 x 128 and run side by side as grouped 1x1 convolutions
(independent weights and BatchNorm statistics per member, as ten separate MLPs would have).
RepurposeGAN's FCN starts with a pointwise (1x1) layer for the same reason (a 3x3 first layer would
need the materialised features); its dilated 3x3 layers follow.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hfc.checkpoint import register
from hfc.errors import HFCError
from hfc.features import FusedLinear
from hfc.names import RAW_METHODS
from hfc.oneshot import PixelClassifier, image_input
from hfc.segmenters import conv_stack, make_segmenter


class RawFeatureClassifier(PixelClassifier):
    """A fused first Linear on the raw hidden features, an activation, then a conv stack."""

    kind = ""

    def __init__(self, layer_channels: Sequence[int], num_classes: int, first: int, negative_slope: float | None,
                 image_channels: int = 0) -> None:
        """`layer_channels` ends with the image's channels when it reads the image (`image_channels` > 0: the
        generator's features then end with the image, hfc.generator.ImageLayer)."""
        super().__init__()
        assert not image_channels or layer_channels[-1] == image_channels, (
            f"the last layer read ({list(layer_channels)}) is not the image's {image_channels} channels")
        self.layer_channels, self.num_classes = tuple(layer_channels), num_classes
        self.image_channels = image_channels
        self.first = FusedLinear(layer_channels, first)
        self.negative_slope = negative_slope

    def base_spec(self) -> dict[str, Any]:
        """The constructor kwargs every raw-feature baseline shares."""
        image = {"image_channels": self.image_channels} if self.image_channels else {}
        return {"layer_channels": list(self.layer_channels), "num_classes": self.num_classes, **image}

    def prepare(self, features: Sequence[torch.Tensor], size: int) -> tuple[list[torch.Tensor], int]:
        """The raw features themselves (the whole network trains)."""
        return [h.detach() for h in features], size

    def first_layer(self, x: tuple[list[torch.Tensor], int]) -> torch.Tensor:
        """Activation of the fused first Linear, [N, first, size, size]."""
        y = self.first(*x)
        return F.relu(y) if self.negative_slope is None else F.leaky_relu(y, self.negative_slope)


@register
class DatasetGAN(RawFeatureClassifier):
    """Ensemble of pixel MLPs C → 128 → 32 → K with BatchNorm; majority vote; JS uncertainty."""

    kind = "datasetgan"

    def __init__(
        self, layer_channels: Sequence[int], num_classes: int, members: int = 10, hidden: Sequence[int] = (128, 32),
        image_channels: int = 0,
    ) -> None:
        h1, h2 = hidden
        super().__init__(layer_channels, num_classes, members * h1, negative_slope=None, image_channels=image_channels)
        self.members, self.hidden = members, (h1, h2)
        self.bn = nn.BatchNorm2d(members * h1)
        self.rest = conv_stack([members * h1, members * h2, members * num_classes], 1, negative_slope=None,
                               batchnorm=True, groups=members)  # fmt: skip

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {**self.base_spec(), "members": self.members, "hidden": list(self.hidden)}

    def member_logits(self, x: tuple[list[torch.Tensor], int]) -> torch.Tensor:
        """Each member's logits, [N, members, K, size, size]."""
        y = self.rest(self.bn(self.first_layer(x)))
        return y.unflatten(1, (self.members, self.num_classes))

    def classify(self, x: tuple[list[torch.Tensor], int]) -> torch.Tensor:
        """log of the members' mean probability, [N, K, size, size] (softmax of it is the mean)."""
        return torch.logsumexp(self.member_logits(x).log_softmax(2), dim=1) - math.log(self.members)

    def loss(self, x: tuple[list[torch.Tensor], int], labels: torch.Tensor, ignore_index: int,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        """Sum of the members' cross-entropies (each member trains as if alone; class weights `weight` [K])."""
        logits = self.member_logits(x)
        target = labels.unsqueeze(1).expand(-1, self.members, -1, -1).flatten(0, 1)
        return self.members * F.cross_entropy(logits.flatten(0, 1), target, weight=weight, ignore_index=ignore_index)

    @torch.no_grad()
    def predict(self, features: Sequence[torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(majority vote of the members' labels, mean member probabilities)."""
        probs = self.member_logits(self.prepare(features, size)).softmax(2)  # [N, M, K, H, W]
        votes = torch.zeros_like(probs[:, 0]).scatter_add_(1, probs.argmax(2), torch.ones_like(probs[:, :, 0]))
        return votes.argmax(1), probs.mean(1)

    @torch.no_grad()
    def uncertainty(self, features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        """Jensen-Shannon divergence of the members per pixel, H(mean p) - mean H(p): [N, size, size]."""
        probs = self.member_logits(self.prepare(features, size)).softmax(2)

        def entropy(p: torch.Tensor) -> torch.Tensor:
            return -(p * p.clamp_min(1e-12).log()).sum(-3)

        return entropy(probs.mean(1)) - entropy(probs).mean(1)


@register
class RepurposeMLP(RawFeatureClassifier):
    """RepurposeGAN's pixel MLP: C → 128 → 64 → K, LeakyReLU."""

    kind = "repurpose_mlp"

    def __init__(self, layer_channels: Sequence[int], num_classes: int, hidden: Sequence[int] = (128, 64),
                 image_channels: int = 0) -> None:
        super().__init__(layer_channels, num_classes, hidden[0], negative_slope=0.2, image_channels=image_channels)
        self.hidden = tuple(hidden)
        self.rest = conv_stack(list(hidden) + [num_classes], 1)

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {**self.base_spec(), "hidden": list(self.hidden)}

    def classify(self, x: tuple[list[torch.Tensor], int]) -> torch.Tensor:
        """Logits [N, K, size, size]."""
        return self.rest(self.first_layer(x))


@register
class RepurposeFCN(RawFeatureClassifier):
    """RepurposeGAN's dilated FCN: pointwise C → 128, then 3x3 convs 64, 64, 32, K with dilations 2, 4, 2, 1."""

    kind = "repurpose_fcn"

    def __init__(
        self,
        layer_channels: Sequence[int],
        num_classes: int,
        widths: Sequence[int] = (128, 64, 64, 32),
        dilations: Sequence[int] = (2, 4, 2, 1),
        image_channels: int = 0,
    ) -> None:
        super().__init__(layer_channels, num_classes, widths[0], negative_slope=0.2, image_channels=image_channels)
        self.widths, self.dilations = tuple(widths), tuple(dilations)
        self.rest = conv_stack(list(widths) + [num_classes], 3, dilations=dilations)

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {**self.base_spec(), "widths": list(self.widths), "dilations": list(self.dilations)}

    def classify(self, x: tuple[list[torch.Tensor], int]) -> torch.Tensor:
        """Logits [N, K, size, size]."""
        return self.rest(self.first_layer(x))


@register
class ImageOnly(PixelClassifier):
    """The control: MLP-1 with standardised input (Ours / MLP's head) on the generated image alone."""

    kind = "image_mlp"

    def __init__(self, layer_channels: Sequence[int], num_classes: int, image_channels: int = 0) -> None:
        """`layer_channels` ends with the image's `image_channels` channels, the only ones it reads."""
        super().__init__()
        if not image_channels:
            raise HFCError("image-mlp reads the generated image alone: fit it with the image (image: true)")
        assert layer_channels[-1] == image_channels, (
            f"the last layer read ({list(layer_channels)}) is not the image's {image_channels} channels")
        self.layer_channels, self.num_classes = tuple(layer_channels), num_classes
        self.image_channels = image_channels
        self.head = make_segmenter("mlp1", image_channels, num_classes, standardize=True)

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {"layer_channels": list(self.layer_channels), "num_classes": self.num_classes,
                "image_channels": self.image_channels}

    def prepare(self, features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        """The image [N, C_img, size, size]; every hidden layer is ignored."""
        return image_input(features, self.image_channels, size)

    def calibrate(self, inputs: Sequence[torch.Tensor]) -> None:
        """The head's input standardisation from the samples' images."""
        self.head.calibrate(inputs)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, K, size, size]."""
        return self.head(x)


# method name (hfc.names) → class; a class's `kind` is the tag its saved files carry (hfc.checkpoint)
BASELINES = dict(zip(RAW_METHODS, (DatasetGAN, RepurposeMLP, RepurposeFCN, ImageOnly)))
