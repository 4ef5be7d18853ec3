"""The names of the one-shot methods and of the segmenters on HFC codes, in one place: every CLI choice, config check
and report reads them from here (hfc.methods builds the PixelClassifier of a name)."""

from __future__ import annotations

from typing import Literal, get_args

HFCMethod = Literal["swav", "simclr", "kmeans"]  # how an HFC encoder is trained (a segmenter then reads its codes)
# the baselines on the raw hidden features, and the control that reads only the generated image (hfc.baselines)
RawMethod = Literal["datasetgan", "repurpose-mlp", "repurpose-fcn", "image-mlp"]
Segmenter = Literal["mlp1", "mlp3", "fcn3", "fcn5", "fcn7", "fcn9"]  # MLP-1/3, FCN-3/5/7/9 on the codes (Table 9)

HFC_METHODS: tuple[str, ...] = get_args(HFCMethod)
RAW_METHODS: tuple[str, ...] = get_args(RawMethod)
METHODS: tuple[str, ...] = HFC_METHODS + RAW_METHODS
SEGMENTERS: tuple[str, ...] = get_args(Segmenter)
IMAGE_CONTROL = "image-mlp"  # the RawMethod that reads only the generated image: it needs the image, nothing else
