"""Annotated scan synthesis at scale: sharded, resumable, deterministic, threat-conditioned (see docs/synthesis.md)."""

from baggan.synth.engine import (Annotate, HostBatch, Summary, SynthSettings, annotate_batch, load_latent, rank_world,
                                 synthesize)
from baggan.synth.latents import LatentSampler, candidate_seed, fit_direction
from baggan.synth.quality import confidence, has_category, most_confident

__all__ = ["Annotate", "HostBatch", "Summary", "SynthSettings", "annotate_batch", "load_latent", "rank_world",
           "synthesize", "LatentSampler", "candidate_seed", "fit_direction", "confidence", "has_category",
           "most_confident"]
