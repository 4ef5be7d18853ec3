"""Hidden-feature clustering (HFC): self-supervised one-shot segmentation of StyleGAN images.

Generator-agnostic: everything here talks to a generator through `hfc.generator.FeatureGenerator`.
This package never imports `baggan`.
"""

from hfc.generator import FeatureGenerator, FeatureLayer

__all__ = ["FeatureGenerator", "FeatureLayer"]
