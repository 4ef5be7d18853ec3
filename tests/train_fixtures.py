"""Shared set-up for the training tests: a tiny data set and the tiny-16 config with overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from baggan.config import load_config
from baggan.data.coco import CocoWriter, Instance
from baggan.stylegan2.training_config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny-16.yaml"


def write_tiny_data(outdir: Path, n: int = 12, size: int = 16) -> Path:
    """n light-grey size² scans, each with one dark square 'item' (category 1 or 2) at a random place."""
    rng = np.random.default_rng(0)
    writer = CocoWriter(outdir, [{"id": 1, "name": "gun"}, {"id": 2, "name": "knife"}])
    for i in range(n):
        img = np.full((size, size, 3), 220, np.uint8)
        label = np.zeros((size, size), np.int64)
        x, y = rng.integers(1, size - 6, 2)
        cat = 1 + i % 2
        img[y:y + 5, x:x + 5] = rng.integers(0, 120, 3)
        label[y:y + 5, x:x + 5] = cat
        writer.add(img, label, [Instance(cat, label == cat)])
    writer.close()
    return outdir


def load_script(name: str):
    """scripts/NAME.py imported as a module (the benchmark scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_config(**sections) -> TrainConfig:
    """configs/tiny-16.yaml with `section={key: value}` overrides (e.g. schedule={'batch': 8})."""
    cfg = load_config(TINY, TrainConfig)
    changes = {name: dataclasses.replace(getattr(cfg, name), **kv) if isinstance(kv, dict) else kv
               for name, kv in sections.items()}
    return dataclasses.replace(cfg, **changes)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and far faster than two when the CPU is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
