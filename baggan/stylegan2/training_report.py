"""What a training run shows: the per-tick JSONL log, image grids and the training-curve plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from baggan.io import atomic_path, quantize, write_image_atomic, write_text_atomic


def image_grid(images: torch.Tensor, columns: int) -> np.ndarray:
    """Images [N, C, H, W] (float in [-1, 1] or uint8) tiled row-major → uint8 [rows*H, columns*W, 3]."""
    if images.is_floating_point():
        images = quantize(images)
    n, c, h, w = images.shape
    rows = math.ceil(n / columns)
    pad = torch.zeros([rows * columns - n, c, h, w], dtype=torch.uint8)
    x = torch.cat([images.cpu(), pad]).reshape(rows, columns, c, h, w).permute(0, 3, 1, 4, 2)
    x = x.reshape(rows * h, columns * w, c).numpy()
    return np.repeat(x, 3, axis=2) if c == 1 else x


def save_grid(path: str | Path, images: torch.Tensor, columns: int) -> None:
    """Write an image grid PNG atomically."""
    write_image_atomic(path, image_grid(images, columns))


def _record(line: str) -> dict | None:
    """One tick's record, or None for a blank line or the last one cut off by a kill."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("tick"), int) else None


class StatsLog:
    """The run's `stats.jsonl`: one JSON object per tick; on resume, lines after the snapshot are dropped."""

    def __init__(self, path: str | Path, keep_before_tick: int | None = None):
        self.path = Path(path)
        self.records: list[dict] = []
        if keep_before_tick is not None and self.path.is_file():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            self.records = [r for r in map(_record, lines) if r is not None and r["tick"] < keep_before_tick]
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def append(self, record: dict) -> None:
        """Add one tick's record (flushed at once)."""
        self.records.append(record)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def sample_diversity(images: torch.Tensor) -> float:
    """Mean over pixels and channels of the standard deviation across samples: 0 when every sample is the same
    (a collapsed generator), about 0.37 for the xraysim training scans in [-1, 1]."""
    assert images.ndim == 4 and images.shape[0] >= 2, f"need [N >= 2, C, H, W] images, got {list(images.shape)}"
    return float(images.float().std(dim=0).mean())


# Panels of the curve plot: title → keys drawn in it.
PANELS = {
    "adversarial losses": ["G/loss", "D/loss"],
    "D scores": ["D/score_real", "D/score_fake"],
    "regularisers": ["D/r1_penalty", "G/pl_penalty", "D/gp"],
    "ADA": ["augment_p", "ada_rt"],
    "realism (lower is better)": ["fid", "kid"],
    "precision / recall (higher is better)": ["precision", "recall"],
    "sample diversity (std across samples)": ["diversity", "diversity_real"],
    "speed (s/kimg)": ["sec_per_kimg", "cpu_sec_per_kimg"],
}


def plot_curves(path: str | Path, records: list[dict], ada_target: float | None = None) -> None:
    """Draw the training curves (each panel vs kimg) into a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = (len(PANELS) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(5 * cols, 8))
    for ax, (title, keys) in zip(axes.flat, PANELS.items()):
        for key in keys:
            pts = [(r["kimg"], r[key]) for r in records if r.get(key) is not None]
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, marker="." if len(pts) < 50 else None, label=key)
        if title == "ADA" and ada_target is not None:
            ax.axhline(ada_target, color="gray", linestyle="--", linewidth=1, label="target r_t")
        ax.set_title(title)
        ax.set_xlabel("kimg")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(PANELS):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


__all__ = ["image_grid", "save_grid", "StatsLog", "plot_curves", "PANELS", "sample_diversity"]
