"""Realism protocol: how alike are sets of scans (BagGAN samples, real PIDRay, simulator, DEBISim exports)?

For two or more sets (folders of PNG/JPG or data sets in our COCO format; the first is the reference):
- FID and KID with the standard Inception features (baggan.metrics.fid), between every pair or each vs the first;
- per-channel intensity histograms (256 bins over all pixels) and two distances to the reference per channel:
  Wasserstein-1 W1 = Σ_v |CDF_a(v) − CDF_b(v)| in grey levels (0 = same, 255 = all mass moved end to end), and
  histogram intersection HI = Σ_v min(p_a(v), p_b(v)) (1 = identical, 0 = disjoint);
- the distribution of pseudo-colour material classes (`classify_materials`);
- a collage of samples, one labelled row per set (like the paper's Fig. C4), and material maps.

Every scan is centre-cropped to a square and resized (area interpolation) to `resolution`² first, so all sets
go through the same preprocessing.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import cv2
import numpy as np
import torch

from baggan.errors import UserError
from baggan.evaluate import report as rp
from baggan.io import read_image_rgb

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MATERIALS = ("background", "organic", "inorganic", "metal")


@dataclass(frozen=True)
class RealismOptions:
    """Settings of `baggan evaluate realism`."""

    max_images: int = 1000  # per set; larger sets are subsampled (seeded)
    resolution: int = 256
    pairs: Literal["all", "reference"] = "all"
    seed: int = 0
    collage: int = 6  # samples per set in the collage
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # capped at half the smaller set
    batch_size: int = 16


@dataclass(frozen=True)
class MaterialThresholds:
    """Pixel rules of the dual-energy pseudo-colour convention (HSV, S and V in [0, 1], hue in degrees).

    Applied in order: (1) V ≥ bg_value and S ≤ bg_saturation → background (near-white, nothing in the beam);
    (2) V < dark_value → metal (too dense to colour: dark blue to black); (3) S < grey_saturation → background
    if V ≥ grey_value (faint haze such as thin bag shells), else metal (dark grey); (4) by hue: orange–yellow
    (hue < inorganic_hue or ≥ metal_hue_end) → organic, green (inorganic_hue ≤ hue < metal_hue) → inorganic,
    blue–violet (metal_hue ≤ hue < metal_hue_end) → metal.
    """

    bg_value: float = 0.85
    bg_saturation: float = 0.15
    dark_value: float = 0.25
    grey_saturation: float = 0.15
    grey_value: float = 0.6
    inorganic_hue: float = 75.0
    metal_hue: float = 175.0
    metal_hue_end: float = 330.0


def classify_materials(image: np.ndarray, th: MaterialThresholds = MaterialThresholds()) -> np.ndarray:
    """HxWx3 uint8 RGB → HxW uint8 material class (index into MATERIALS) by the rules of `th`."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV_FULL).astype(np.float32)
    hue, sat, val = hsv[..., 0] * (360.0 / 256.0), hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
    by_hue = np.where((hue >= th.metal_hue) & (hue < th.metal_hue_end), 3,
                      np.where((hue >= th.inorganic_hue) & (hue < th.metal_hue), 2, 1))
    grey = np.where(val >= th.grey_value, 0, 3)
    out = np.where(sat < th.grey_saturation, grey, by_hue)
    out = np.where(val < th.dark_value, 3, out)
    out = np.where((val >= th.bg_value) & (sat <= th.bg_saturation), 0, out)
    return out.astype(np.uint8)


def material_fractions(images: np.ndarray, th: MaterialThresholds = MaterialThresholds()) -> dict[str, float]:
    """Share of each material: 'background' over all pixels, the others over the non-background pixels."""
    counts = np.zeros(len(MATERIALS), np.int64)
    for img in images:
        counts += np.bincount(classify_materials(img, th).ravel(), minlength=len(MATERIALS))
    total, objects = counts.sum(), counts[1:].sum()
    out = {"background": float(counts[0] / max(total, 1))}
    out.update({m: float(c / objects) if objects else float("nan") for m, c in zip(MATERIALS[1:], counts[1:])})
    return out


def channel_histograms(images: np.ndarray) -> np.ndarray:
    """[3, 256] per-channel intensity distributions (each row sums to 1) of uint8 NHWC images."""
    flat = images.reshape(-1, 3)
    hist = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(3)]).astype(np.float64)
    return hist / hist.sum(1, keepdims=True)


def histogram_distances(p: np.ndarray, q: np.ndarray) -> dict[str, list[float]]:
    """Per-channel Wasserstein-1 (grey levels) and histogram intersection between [3, 256] distributions."""
    w1 = np.abs(np.cumsum(p, axis=1) - np.cumsum(q, axis=1)).sum(1)
    return {"wasserstein1": w1.tolist(), "intersection": np.minimum(p, q).sum(1).tolist()}


def list_scans(path: Path) -> tuple[list[Path], str]:
    """Image files of a set and its kind ('coco' or 'folder'); UserError if there are none."""
    if not path.is_dir():
        raise UserError(f"--sets {path}: directory not found")
    if (path / "annotations.json").is_file():
        from baggan.data.coco import CocoDataset

        ds = CocoDataset(path)
        return [ds.image_path(i) for i in range(len(ds))], "coco"
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"--sets {path}: no PNG/JPG images and no annotations.json (not a set of scans)")
    return files, "folder"


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to size² (area interpolation when shrinking)."""
    h, w = image.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    crop = image[y0:y0 + s, x0:x0 + s]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)


def load_scans(files: Sequence[Path], opts: RealismOptions, desc: str) -> np.ndarray:
    """Up to opts.max_images scans (seeded subset, kept in file order) as [N, S, S, 3] uint8."""
    from tqdm import tqdm

    pick = sorted(np.random.default_rng(opts.seed).permutation(len(files))[:opts.max_images])
    return np.stack([square_resize(read_image_rgb(files[i]), opts.resolution)
                     for i in tqdm(pick, desc=desc, unit="scan", leave=False)])


def _pairs(n: int, mode: str) -> list[tuple[int, int]]:
    """Index pairs of the sets to compare."""
    return list(itertools.combinations(range(n), 2)) if mode == "all" else [(0, j) for j in range(1, n)]


def run_realism(sets: Sequence[str | Path], names: Sequence[str] | None, outdir: str | Path,
                opts: RealismOptions, device: torch.device) -> Path:
    """Compare the sets and write the report folder; returns the Markdown path."""
    from baggan.metrics.fid import InceptionFeatures, fid_from_features, kid_from_features

    sets = [Path(s) for s in sets]
    if len(sets) < 2:
        raise UserError(f"--sets needs at least two sets to compare, got {len(sets)}")
    names = list(names) if names else [s.name or str(s) for s in sets]
    if len(names) != len(sets):
        raise UserError(f"--names gives {len(names)} names for {len(sets)} sets")
    if len(set(names)) < len(names):  # e.g. two folders both called images/
        names = [f"{n} ({i + 1})" for i, n in enumerate(names)]
    listed = [list_scans(s) for s in sets]  # all paths checked before any slow work
    for s, (files, _) in zip(sets, listed):
        if len(files) < 2:
            raise UserError(f"--sets {s}: {len(files)} scan; FID and KID need at least 2 per set")
    t0 = time.time()
    images = [load_scans(files, opts, f"reading {name}") for (files, _), name in zip(listed, names)]
    net = InceptionFeatures(device, opts.batch_size)
    feats = [net(imgs, progress=f"Inception {name}") for imgs, name in zip(images, names)]
    hists = [channel_histograms(imgs) for imgs in images]
    comparisons = []
    for i, j in _pairs(len(sets), opts.pairs):
        # subsets of at most half the smaller set, so that they differ and the std means something
        size = min(opts.kid_subset_size, max(2, min(len(feats[i]), len(feats[j])) // 2))
        kid = kid_from_features(feats[i], feats[j], opts.kid_subsets, size, opts.seed)
        comparisons.append({"a": names[i], "b": names[j], "fid": fid_from_features(feats[i], feats[j]),
                            "kid": kid[0], "kid_std": kid[1], **_precision_recall(feats[i], feats[j]),
                            **histogram_distances(hists[i], hists[j])})
    set_info = [{"name": n, "path": str(s), "kind": kind, "scans": len(files), "used": len(imgs),
                 "materials": material_fractions(imgs)}
                for n, s, (files, kind), imgs in zip(names, sets, listed, images)]
    figures = {"collage.png": _collage(images, names, opts.collage),
               "histograms.png": _histogram_figure(hists, names),
               "materials.png": _materials_figure(set_info),
               "material_maps.png": _material_maps(images, names)}
    data = {"protocol": "realism", "options": rp.to_jsonable(opts), "thresholds": rp.to_jsonable(MaterialThresholds()),
            "environment": rp.environment(str(device)), "seconds": time.time() - t0, "sets": set_info,
            "comparisons": comparisons}
    return rp.write_report(outdir, "realism", data, _markdown(data, list(figures)), figures)


def _precision_recall(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Improved precision and recall of set b against set a (k = 3); NaN when a set has fewer than 4 scans."""
    from baggan.metrics.manifold import K_DEFAULT, precision_recall

    if min(len(a), len(b)) <= K_DEFAULT:
        return {"precision": float("nan"), "recall": float("nan")}
    return precision_recall(a, b, K_DEFAULT)


def _collage(images: Sequence[np.ndarray], names: Sequence[str], per_set: int):
    """One labelled row of samples per set."""
    return rp.image_grid([list(imgs[:per_set]) for imgs in images], names, title="Samples per set")


def _material_maps(images: Sequence[np.ndarray], names: Sequence[str], per_set: int = 3):
    """Scans next to their material maps (white background, orange organic, green inorganic, blue metal)."""
    palette = np.array([[255, 255, 255], [235, 140, 40], [60, 170, 60], [40, 70, 200]], np.uint8)
    rows = [[x for img in imgs[:per_set] for x in (img, palette[classify_materials(img)])] for imgs in images]
    cols = [c for k in range(per_set) for c in (f"scan {k}", "materials")]
    return rp.image_grid(rows, names, cols, title="Material classes: organic / inorganic / metal")


def _histogram_figure(hists: Sequence[np.ndarray], names: Sequence[str]):
    """Per-channel intensity distributions, one line per set (log scale)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4), dpi=110)
    axes = fig.subplots(1, 3)
    for c, (ax, channel) in enumerate(zip(axes, ("red", "green", "blue"))):
        for h, name in zip(hists, names):
            ax.plot(np.arange(256), np.maximum(h[c], 1e-6), label=name, linewidth=1)
        ax.set(yscale="log", title=f"{channel} channel", xlabel="intensity", xlim=(0, 255), ylim=(1e-6, 1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of pixels")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def _materials_figure(set_info: Sequence[dict]):
    """Stacked bars of the organic / inorganic / metal shares of non-background pixels, one bar per set."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.8 + 1.2 * len(set_info), 3.6), dpi=110)
    ax = fig.add_subplot()
    bottom = np.zeros(len(set_info))
    for material, colour in zip(MATERIALS[1:], ("#eb8c28", "#3caa3c", "#2846c8")):
        share = np.array([100 * np.nan_to_num(s["materials"][material]) for s in set_info])
        ax.bar([s["name"] for s in set_info], share, bottom=bottom, color=colour, label=material)
        bottom += share
    ax.set(ylabel="% of non-background pixels", ylim=(0, 100), title="Pseudo-colour material classes")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _markdown(data: dict, figures: Sequence[str]) -> str:
    """The report's Markdown text."""
    sets, comps = data["sets"], data["comparisons"]
    md = ["# Realism: FID, KID, intensity histograms, material classes\n",
          f"{len(sets)} sets, {data['options']['resolution']}² (centre crop + resize), device "
          f"{data['environment']['device']}, {data['seconds']:.0f} s. Reference: **{sets[0]['name']}**.\n",
          rp.markdown_table(["set", "path", "kind", "scans", "used"],
                            [[s["name"], f"`{s['path']}`", s["kind"], s["scans"], s["used"]] for s in sets]),
          "\n## FID, KID, precision and recall (standard Inception-v3 pool3 features)\n",
          rp.markdown_table(["A", "B", "FID", "KID × 10³", "precision of B", "recall of B"],
                            [[c["a"], c["b"], rp.fmt(c["fid"]), rp.fmt_mean_std(c["kid"], c["kid_std"], 2, 1e3),
                              rp.fmt(c["precision"], 3), rp.fmt(c["recall"], 3)] for c in comps]),
          "\nFID and KID are biased upward for small sets (FID strongly below ~2,000 scans); compare values only "
          "at equal set sizes. Precision / recall: improved precision and recall (Kynkäänniemi et al. 2019, k = 3): "
          "the share of B inside A's k-NN manifold, and of A inside B's.\n",
          "## Intensity histograms\n",
          "W1: Wasserstein-1 distance between the channel's intensity distributions, in grey levels; "
          "HI: histogram intersection (1 = identical).\n",
          rp.markdown_table(["A", "B", "W1 R", "W1 G", "W1 B", "HI R", "HI G", "HI B"],
                            [[c["a"], c["b"], *(rp.fmt(v) for v in c["wasserstein1"]),
                              *(rp.fmt(v, 3) for v in c["intersection"])] for c in comps]),
          "\n## Material classes (dual-energy pseudo-colour)\n",
          "Background: % of all pixels; the others: % of the non-background pixels.\n",
          rp.markdown_table(["set", *MATERIALS],
                            [[s["name"], *(rp.fmt(s["materials"][m], 1, 100) for m in MATERIALS)] for s in sets]),
          "\nPixel rules (thresholds in the JSON, `MaterialThresholds` in baggan/evaluate/realism.py): near-white → "
          "background; very dark or unsaturated dark grey → metal; otherwise by hue: orange–yellow → organic, "
          "green → inorganic, blue–violet → metal.\n"]
    md += [f"![{name}]({name})\n" for name in figures]
    return "\n".join(md)


__all__ = ["RealismOptions", "MaterialThresholds", "MATERIALS", "classify_materials", "material_fractions",
           "channel_histograms", "histogram_distances", "list_scans", "square_resize", "load_scans", "run_realism"]
