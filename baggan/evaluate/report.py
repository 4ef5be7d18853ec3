"""Report folders shared by every evaluation protocol: JSON + Markdown + PNG, each file written atomically.

A protocol builds a plain dict of results, a Markdown text (tables from `markdown_table`, numbers from
`fmt`/`fmt_mean_std`) and matplotlib Figures (`grouped_bars`, `image_grid`, `hfc.metrics.plot_pd_curves`),
then calls `write_report(outdir, stem, data, markdown, figures)`: the PNGs go first, then `<stem>.json`,
then `<stem>.md`, so a Markdown file never links a missing picture and a half-written report never exists.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from baggan.io import atomic_path, write_json_atomic, write_text_atomic


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, dataclasses, tuples and paths; NaN and ±inf become null."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [to_jsonable(v) for v in (obj.tolist() if isinstance(obj, np.ndarray) else obj)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def fmt(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
    """`value * scale` with `digits` decimals; '–' for None or NaN."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value) * scale:.{digits}f}"


def fmt_mean_std(mean: float | None, std: float | None, digits: int = 2, scale: float = 100.0) -> str:
    """'mean ± std' (scaled, by default fractions → %); '–' when the mean is missing."""
    if mean is None or not math.isfinite(float(mean)):
        return "–"
    return f"{fmt(mean, digits, scale)} ± {fmt(std if std is not None else 0.0, digits, scale)}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table; cells are str()-ed and '|' escaped."""
    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"row {i} has {len(row)} cells, header has {len(header)}")
    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)]) + "\n"


def environment(device: str | None = None) -> dict:
    """Where a report was made: command line, time, versions, CPU count and load (a shared CPU skews timings)."""
    import torch

    return {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z"), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "load_average_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "torch_threads": torch.get_num_threads(), "device": device}


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Save a matplotlib Figure as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def grouped_bars(panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]],
                 groups: Sequence[str], ylabel: str = "", xlabel: str = "", scale: float = 100.0):
    """A Figure of bar charts with error bars: one panel per key, bars = series over `groups`.

    panels = {panel title: {series name: (means, stds)}}, each list aligned with `groups`; NaN bars are
    left empty. Values are multiplied by `scale` (fractions → %).
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.0, 1.2 + 0.9 * len(groups)) * len(panels), 3.6), dpi=120)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    x = np.arange(len(groups))
    for ax, (title, series) in zip(axes, panels.items()):
        width = 0.8 / max(len(series), 1)
        for k, (name, (means, stds)) in enumerate(series.items()):
            means, stds = scale * np.asarray(means, float), scale * np.asarray(stds, float)
            ax.bar(x + (k - (len(series) - 1) / 2) * width, np.nan_to_num(means), width, yerr=np.nan_to_num(stds),
                   capsize=3, label=name)
        ax.set_xticks(x, list(groups))
        ax.set(title=title, ylabel=ylabel, xlabel=xlabel)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if len(names) > 1:  # one legend for all panels, under them
        fig.legend(handles, names, loc="lower center", ncol=min(len(names), 3), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1 if len(names) > 1 else 0, 1, 1))
    return fig


def image_grid(rows: Sequence[Sequence[np.ndarray]], row_labels: Sequence[str],
               col_labels: Sequence[str] | None = None, title: str = "", cell: float = 1.6,
               legend: Mapping[str, Sequence[int]] | None = None):
    """A Figure showing rows of HxWx3 uint8 images, each row labelled on its left (a collage like Fig. C4).

    `legend` ({name: RGB uint8 colour}) adds colour patches under the grid, e.g. for label overlays.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    ncols = max((len(r) for r in rows), default=1)
    fig = Figure(figsize=(cell * ncols + 1.2, cell * len(rows) + (0.4 if title else 0.1)), dpi=120)
    axes = fig.subplots(len(rows), ncols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(ncols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(row[j], interpolation="lanczos")
            if j == 0:
                ax.set_ylabel(row_labels[i], fontsize=9)
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    if legend:
        fig.legend(handles=[Patch(color=np.asarray(c) / 255, label=n) for n, c in legend.items()],
                   loc="lower center", ncol=min(len(legend), 6), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if legend else 0, 1, 1))
    return fig


# tab10 reordered so that the first classes avoid X-ray pseudo-colours (orange, green, blue)
_TAB10_ORDER = (3, 4, 6, 9, 8, 5, 0, 1, 2, 7)


def label_colours(num_classes: int) -> np.ndarray:
    """[K, 3] uint8 RGB colours for label maps: class 0 white, then red, purple, pink, cyan, olive, … (tab10)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    out = np.full((num_classes, 3), 255, np.uint8)
    for c in range(1, num_classes):
        out[c] = np.round(np.array(cmap(_TAB10_ORDER[(c - 1) % 10])[:3]) * 255)
    return out


def overlay_labels(image: np.ndarray, label: np.ndarray, num_classes: int, alpha: float = 0.6) -> np.ndarray:
    """The image with each foreground class painted in its `label_colours` colour (background untouched)."""
    colours = label_colours(num_classes)[np.clip(label, 0, num_classes - 1)]
    fg = (label > 0)[..., None]
    mixed = (1 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    return np.where(fg, mixed, image).astype(np.uint8)


def write_report(outdir: str | os.PathLike, stem: str, data: Mapping[str, Any], markdown: str,
                 figures: Mapping[str, Any] | None = None) -> Path:
    """Write `figures` ({file name: Figure}) as PNGs, then `<stem>.json`, then `<stem>.md`; return the .md path."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, fig in (figures or {}).items():
        save_figure(fig, outdir / name)
    write_json_atomic(outdir / f"{stem}.json", to_jsonable(data), indent=2)
    md = outdir / f"{stem}.md"
    write_text_atomic(md, markdown if markdown.endswith("\n") else markdown + "\n")
    return md


__all__ = ["to_jsonable", "fmt", "fmt_mean_std", "markdown_table", "environment", "save_figure", "grouped_bars",
           "image_grid", "label_colours", "overlay_labels", "write_report"]
