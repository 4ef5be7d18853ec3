"""Training snapshots: everything a run needs to continue bit-for-bit, written atomically.

A snapshot is a network file (checkpoint.save_network: G, D, G_ema + their config, so `load_network`
reads it like any other) whose `extra['training']` holds both Adam states, the augment p and ADA accumulators, the path-length
mean, the counters (step, images, tick), the data order's state, and the RNG states of python, numpy,
torch (CPU and CUDA). Every random draw of the loop is re-seeded from (seed, step, phase, chunk), so
restoring the counters already replays the same numbers; the RNG states are kept as well so that
anything outside the loop that draws from the global generators continues unchanged too.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baggan.errors import DataError
from baggan.stylegan2.checkpoint import FORMAT
from hfc.safe_load import load_weights_only

SNAPSHOT_GLOB = "snapshot-*.pt"


def snapshot_name(nimg: int) -> str:
    """File name of the snapshot taken after `nimg` training images."""
    return f"snapshot-{nimg:010d}.pt"


def latest_snapshot(outdir: str | Path) -> Path | None:
    """The snapshot with the most images in `outdir`, or None."""
    found = [(int(m.group(1)), p) for p in Path(outdir).glob(SNAPSHOT_GLOB)
             if (m := re.fullmatch(r"snapshot-(\d+)\.pt", p.name))]
    return max(found)[1] if found else None


def rng_state() -> dict[str, Any]:
    """RNG states of python, numpy, torch CPU and every CUDA device (tensors/ints only, weights_only-safe)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() captured (CUDA states only where the devices exist)."""
    py_version, py_state, py_gauss = state["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"][: torch.cuda.device_count()])


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read a training snapshot → {'config', 'nets': {G, D, G_ema state dicts}, 'extra': {'training': ...}};
    DataError naming the file if it is missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: snapshot not found")
    try:
        state = load_weights_only(path)
    except ValueError as e:
        raise DataError(f"{path}: not a training snapshot: {e}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "training" not in state.get("extra", {}):
        raise DataError(f"{path}: not a training snapshot (a network file without training state)")
    return state


__all__ = ["snapshot_name", "latest_snapshot", "rng_state", "set_rng_state", "load_snapshot"]
