"""Every one-shot method by name (hfc.names) → its PixelClassifier: ours (a segmenter on the codes of an HFC encoder)
or a baseline on the raw hidden features; and ours fitted end to end."""

from __future__ import annotations

from typing import Sequence

from hfc.baselines import BASELINES, DatasetGAN
from hfc.config import OneShotConfig
from hfc.errors import HFCError
from hfc.features import PixelEncoder
from hfc.generator import FeatureGenerator
from hfc.oneshot import Annotation, HFCSegmenter, PixelClassifier, fit, num_classes_of
from hfc.rng import seeded
from hfc.segmenters import make_segmenter


def make_classifier(raw: str | None, layer_channels: Sequence[int], encoder: PixelEncoder | None, num_classes: int,
                    cfg: OneShotConfig, members: int | None = None, image_channels: int = 0) -> PixelClassifier:
    """The PixelClassifier initialised from cfg.seed: baseline `raw` (a RAW_METHODS name; DatasetGAN with `members`
    when given) on hidden layers of `layer_channels`, or, with raw None, cfg.segmenter on the encoder's codes; with
    cfg.image either also reads the generated image's `image_channels` channels (as the last feature layer)."""
    if cfg.image and not image_channels:
        raise HFCError("image: true needs the generator's image channels (make_classifier image_channels)")
    extra = image_channels if cfg.image else 0
    with seeded(cfg.seed):
        if raw is not None:
            cls = BASELINES[raw]
            kwargs = {"members": members} if members and cls is DatasetGAN else {}
            image = {"image_channels": extra} if extra else {}
            return cls(tuple(layer_channels) + ((extra,) if extra else ()), num_classes, **kwargs, **image)
        return HFCSegmenter(encoder, make_segmenter(cfg.segmenter, encoder.out_dim + extra, num_classes, cfg.hidden,
                                                    standardize=cfg.standardize), extra)


def fit_segmenter(
    gen: FeatureGenerator,
    encoder: PixelEncoder,
    samples: Sequence[Annotation],
    cfg: OneShotConfig = OneShotConfig(),
    num_classes: int | None = None,
    progress: bool = False,
) -> HFCSegmenter:
    """Ours, end to end: build cfg.segmenter on the encoder's codes and fit it on the samples."""
    k = num_classes if num_classes is not None else num_classes_of(samples, cfg.ignore_index)
    model = make_classifier(None, encoder.layer_channels, encoder, k, cfg, image_channels=gen.img_channels).to(
        next(encoder.parameters()).device)
    fit(model, gen, samples, cfg, progress=progress)
    return model
