"""Pictures of scans: label overlays and contact sheets (scan | scan with its mask)."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

# One colour per category id 1..20 (RGB), distinct on the scans' white/orange/green/blue palette.
PALETTE = np.array([
    [230, 25, 75], [255, 0, 255], [145, 30, 180], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [220, 20, 60], [0, 0, 255], [70, 240, 240], [128, 0, 0], [210, 245, 60], [60, 180, 75],
    [170, 110, 40], [0, 128, 128], [250, 190, 212], [128, 128, 0], [255, 215, 180], [0, 0, 128],
    [170, 255, 195], [128, 128, 128]], np.uint8)


def overlay(image: np.ndarray, label: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with each labelled region tinted in its category colour and outlined."""
    out = image.copy()
    for cat in np.unique(label):
        if cat == 0:
            continue
        mask = label == cat
        colour = PALETTE[(int(cat) - 1) % len(PALETTE)]
        out[mask] = (out[mask] * (1 - alpha) + colour * alpha).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colour), 1)
    return out


def outline(image: np.ndarray, label: np.ndarray, colour: tuple[int, int, int], scale: int = 1) -> np.ndarray:
    """The image enlarged `scale` times (nearest) with the outline of every labelled region in one colour."""
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    lab = cv2.resize(label.astype(np.uint8), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    for cat in np.unique(lab):
        if cat:
            contours, _ = cv2.findContours((lab == cat).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(big, contours, -1, colour, max(1, scale // 2))
    return big


def contact_sheet(images: Sequence[np.ndarray], labels: Sequence[np.ndarray], captions: Sequence[str] = (),
                  cols: int = 4, gap: int = 6) -> np.ndarray:
    """Tiles of (image | image with mask overlay), `cols` tiles per row, with optional captions."""
    h, w = images[0].shape[:2]
    tiles = []
    for k, (img, lab) in enumerate(zip(images, labels)):
        tile = np.full((h + 16, 2 * w + gap, 3), 255, np.uint8)
        tile[16:, :w] = img
        tile[16:, w + gap:] = overlay(img, lab)
        if k < len(captions):
            cv2.putText(tile, captions[k], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    sep = np.full((tiles[0].shape[0], 2 * gap, 3), 255, np.uint8)
    rows = [np.hstack([t for pair in zip(tiles[i:i + cols], [sep] * cols) for t in pair][:-1])
            for i in range(0, len(tiles), cols)]
    hsep = np.full((2 * gap, rows[0].shape[1], 3), 255, np.uint8)
    return np.vstack([r for pair in zip(rows, [hsep] * len(rows)) for r in pair][:-1])


__all__ = ["PALETTE", "overlay", "outline", "contact_sheet"]
