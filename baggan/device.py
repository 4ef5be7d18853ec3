"""The one device rule: what `--device` means in every command (and `distributed.setup` for training)."""

from __future__ import annotations

import os

import torch

from baggan.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → CUDA when available, else the CPU; 'cuda' → cuda:LOCAL_RANK (cuda:0 outside torchrun); 'cpu' and
    'cuda:N' as given; UserError naming --device for any other name, or for CUDA on a machine without it."""
    given = name
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, got {given!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {given}: CUDA is not available on this machine")
    return device
