"""BagGAN: annotated X-ray baggage scans in bulk from a StyleGAN2-ADA generator and a one-shot segmenter."""

__version__ = "0.1.0"
