"""Hidden-feature clustering (HFC): self-supervised one-shot segmentation of StyleGAN images.

Generator-agnostic: everything here talks to a generator through `hfc.generator.FeatureGenerator`.
This package never imports `baggan`. Importing the package itself loads nothing (no torch), so that the
baggan CLI reads `hfc.names` and `hfc.errors` at start-up without it.
"""
