"""Explicit randomness: every draw in hfc comes from a seed or a torch.Generator passed in."""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block (e.g. module construction) under torch.manual_seed(seed), restoring the global RNG after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def draw_seed(generator: torch.Generator) -> int:
    """A fresh 31-bit seed from `generator` (for FeatureGenerator.sample_ws, which takes a seed)."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
