"""Helpers of the evaluation tests: tiny X-ray-looking data sets in our COCO format (not a simulator), and
(re-exported) the fixture running each test on one intra-op thread.

White background, a beige bag outline, green and blue clutter lines, and 1-2 threat items drawn as flat
shapes whose colour and form tell the class: Hammer (id 3) dark-blue T, Powerbank (id 4) orange block,
Wrench (id 6) green bar with a ring. `shift` moves every colour a little (a synthetic-vs-real domain gap).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from train_fixtures import one_thread  # noqa: F401 - re-exported: the shared one-thread autouse fixture

from baggan.data.coco import CocoWriter, instances_from_label_map
from baggan.data.labelsets import PIDRAY

CATEGORIES = [c for c in PIDRAY.coco_categories() if c["name"] in ("Hammer", "Powerbank", "Wrench")]
COLOURS = {3: (40, 60, 150), 4: (230, 140, 50), 6: (60, 160, 70)}


def _draw_item(img: np.ndarray, lab: np.ndarray, cid: int, rng: np.random.Generator, shift: int) -> None:
    """Draw one threat item of category `cid` at a random place, writing its pixels into `lab`."""
    s = img.shape[0]
    mask = np.zeros(lab.shape, np.uint8)
    cx, cy = (int(v) for v in rng.integers(s // 4, 3 * s // 4, 2))
    r = max(3, s // 8)
    if cid == 3:  # T
        cv2.rectangle(mask, (cx - r, cy - r // 3), (cx + r, cy), 1, -1)
        cv2.rectangle(mask, (cx - r // 4, cy), (cx + r // 4, cy + r), 1, -1)
    elif cid == 4:  # block
        cv2.rectangle(mask, (cx - r, cy - r // 2), (cx + r, cy + r // 2), 1, -1)
    else:  # bar with a ring
        cv2.line(mask, (cx - r, cy + r // 2), (cx + r, cy - r // 2), 1, max(2, s // 24))
        cv2.circle(mask, (cx + r, cy - r // 2), max(2, r // 3), 1, -1)
    colour = np.clip(np.array(COLOURS[cid]) + shift, 0, 255)
    img[mask > 0] = (0.25 * img[mask > 0] + 0.75 * colour).astype(np.uint8)
    lab[mask > 0] = cid


def make_shapes_set(outdir: Path, n: int, size: int = 48, seed: int = 0, shift: int = 0,
                    with_items: float = 0.8) -> Path:
    """Write `n` scans of `size`² in our COCO format under `outdir`; a fraction `with_items` holds threats."""
    rng = np.random.default_rng(seed)
    writer = CocoWriter(outdir, CATEGORIES, info={"description": "evaluation test shapes"})
    for _ in range(n):
        img = np.full((size, size, 3), 250, np.uint8)
        lab = np.zeros((size, size), np.uint8)
        m = size // 10
        cv2.rectangle(img, (m, m), (size - m, size - m), (235, 220, 190), max(1, size // 32))
        for _ in range(3):
            p, q = rng.integers(m, size - m, (2, 2))
            colour = (90, 170, 90) if rng.random() < 0.5 else (70, 90, 170)
            cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), colour, 1)
        if rng.random() < with_items:
            for cid in rng.choice([3, 4, 6], size=int(rng.integers(1, 3)), replace=False):
                _draw_item(img, lab, int(cid), rng, shift)
        noise = rng.normal(0, 4, img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
        writer.add(img, lab, instances_from_label_map(lab))
    writer.close()
    return Path(outdir)
