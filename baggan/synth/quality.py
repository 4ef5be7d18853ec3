"""Per-scan quality: the segmenter's confidence, threat presence, and dropping the least certain scans."""

from __future__ import annotations

import cv2
import numpy as np
import torch


def confidence(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-image confidence [N]: mean max class probability over the pixels predicted foreground.

    probs [N, K, H, W] (softmax over K classes, index 0 = background), labels [N, H, W] class indices.
    Images with no foreground pixel fall back to the mean over all pixels.
    """
    assert probs.ndim == 4 and labels.shape == (probs.shape[0], *probs.shape[2:]), (
        f"probs {list(probs.shape)} and labels {list(labels.shape)} disagree")
    top = probs.max(dim=1).values.float()
    fg = (labels != 0).float()
    n_fg = fg.sum(dim=(1, 2))
    fg_mean = (top * fg).sum(dim=(1, 2)) / n_fg.clamp(min=1)
    return torch.where(n_fg > 0, fg_mean, top.mean(dim=(1, 2)))


def has_category(label: np.ndarray, category_id: int, min_area: int) -> bool:
    """True when `label` (HxW category ids) holds a connected region of `category_id` of >= min_area pixels."""
    mask = (label == category_id).astype(np.uint8)
    if min_area <= 1:
        return bool(mask.any())
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    return count > 1 and int(stats[1:, cv2.CC_STAT_AREA].max()) >= min_area


def most_confident(conf: np.ndarray, keep: int) -> np.ndarray:
    """Indices (ascending) of the `keep` most confident scans; ties keep the earlier scan."""
    order = np.argsort(-np.asarray(conf, np.float64), kind="stable")
    return np.sort(order[:keep])
