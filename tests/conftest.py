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
    torch.set_flush_denormal(False)  # a CLI test (baggan/denormals.py) turns it on for the whole process
    yield
    # A test that leaves autograd off breaks every later training test in the same process.
    leaked = not torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    assert not leaked, "this test left torch autograd disabled"
