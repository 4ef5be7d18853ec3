"""Shared test set-up: deterministic, small, CPU-only."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same RNG state."""
    torch.manual_seed(0)
    np.random.seed(0)
    yield
