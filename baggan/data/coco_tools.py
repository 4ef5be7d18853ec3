"""Tools over data sets in the toolkit's format (single or sharded): merge, split, stats, contact sheet, self-check.

Every tool takes a data set folder (DIR/annotations.json) or a sharded synthesis output (DIR/index.json);
`dataset_dirs` expands the latter into its shards. Outputs are written into a temporary folder renamed
into place at the end, so a killed command never leaves a half-written data set.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from baggan.data.coco import (INDEX_FILE, CocoDataset, Instance, dataset_dirs, label_map_from_instances,
                               load_coco_json)
from baggan.errors import DataError, UserError
from baggan.io import (atomic_dir, read_json, read_label_png, write_bytes_atomic, write_image_atomic,
                       write_json_atomic)

LATENT_FILE = "latents.npy"  # image records may point into it with "latent_file" / "latent_row"


@dataclass
class Entry:
    """One image of some source data set: its folder, its record and its annotations."""

    root: Path
    image: dict
    annotations: list[dict]


def load_entries(paths: Iterable[str | Path]) -> tuple[list[dict], list[Entry]]:
    """All images of the data sets at `paths` (single or sharded) → (shared categories, entries in order).

    Raises DataError when two data sets disagree on their categories (ids and names).
    """
    categories, entries, first = None, [], None
    for root in (d for p in paths for d in dataset_dirs(p)):
        doc = load_coco_json(root / "annotations.json")
        cats = sorted((c["id"], c["name"]) for c in doc["categories"])
        if categories is None:
            categories, first = doc["categories"], (root, cats)
        elif cats != first[1]:
            raise DataError(f"{root}: categories {cats} differ from those of {first[0]} {first[1]}; "
                            "only data sets with the same label set can be combined")
        anns: dict[int, list[dict]] = {}
        for ann in doc["annotations"]:
            anns.setdefault(ann["image_id"], []).append(ann)
        entries += [Entry(root, im, anns.get(im["id"], [])) for im in sorted(doc["images"], key=lambda im: im["id"])]
    if categories is None:
        raise UserError("no data set given")
    return categories, entries


def _place(src: Path, dst: Path, link: bool) -> None:
    """Copy `src` to `dst`, or hard-link it when `link` (copying where the file system cannot link);
    DataError if the data set lacks `src`."""
    if not src.is_file():
        raise DataError(f"{src}: file not found (named by {src.parent.parent / 'annotations.json'})")
    if link:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copyfile(src, dst)


def write_subset(entries: Sequence[Entry], categories: list[dict], out: str | Path, info: dict,
                 link: bool = False) -> Path:
    """Write `entries` as one new data set at `out` (staged, renamed into place when complete; `out` must not
    exist yet): see `fill_subset`."""
    out = Path(out)
    if out.exists():
        raise UserError(f"{out}: already exists; choose a new output folder")
    with atomic_dir(out) as tmp:
        fill_subset(tmp, entries, categories, info, link)
    return out


def fill_subset(tmp: Path, entries: Sequence[Entry], categories: list[dict], info: dict, link: bool = False) -> None:
    """Write `entries` as one data set into the empty folder `tmp`: images and annotations re-numbered from 1,
    files copied/linked. Image records keep their metadata; `source` names the file it came from. Latent
    rows referenced by the records are gathered into tmp/latents.npy."""
    images, annotations, latents = [], [], []
    (tmp / "images").mkdir()
    (tmp / "labels").mkdir()
    cache: dict[Path, np.ndarray] = {}
    for image_id, e in enumerate(entries, 1):
        rec = dict(e.image, id=image_id, source=f"{e.root.name}/{e.image['file_name']}")
        stem = f"{image_id:08d}"
        rec["file_name"] = stem + Path(e.image["file_name"]).suffix
        _place(e.root / "images" / e.image["file_name"], tmp / "images" / rec["file_name"], link)
        if "label_file" in e.image:
            rec["label_file"] = stem + Path(e.image["label_file"]).suffix
            _place(e.root / "labels" / e.image["label_file"], tmp / "labels" / rec["label_file"], link)
        if "latent_file" in e.image:  # gathered into one latents.npy (images without latents get none)
            path = e.root / e.image["latent_file"]
            if path not in cache:
                if not path.is_file():
                    raise DataError(f"{path}: latent file named by image {e.image['id']} not found")
                try:
                    cache[path] = np.load(path, mmap_mode="r", allow_pickle=False)
                except ValueError as err:
                    raise DataError(f"{path}: not a readable .npy latent file ({err})") from None
            row = e.image.get("latent_row")
            if not (isinstance(row, int) and 0 <= row < len(cache[path])):
                raise DataError(f"{path}: image {e.image['id']}: latent_row {row!r} is not a row of it "
                                f"({len(cache[path])} rows)")
            latents.append(np.asarray(cache[path][row]))
            rec.update(latent_file=LATENT_FILE, latent_row=len(latents) - 1)
        images.append(rec)
        for ann in e.annotations:
            annotations.append(dict(ann, id=len(annotations) + 1, image_id=image_id))
    if latents:
        if len({lat.shape for lat in latents}) != 1:
            raise DataError(f"cannot merge latents of different shapes {sorted({lat.shape for lat in latents})}")
        np.save(tmp / LATENT_FILE, np.stack(latents))
    write_json_atomic(tmp / "annotations.json",
                      {"info": info, "categories": categories, "images": images, "annotations": annotations})


def merge(inputs: Sequence[str | Path], out: str | Path, link: bool = False) -> Path:
    """Merge data sets (single or sharded, same categories) into one at `out`; returns `out`."""
    categories, entries = load_entries(inputs)
    return write_subset(entries, categories, out, {"description": "merged by baggan coco merge",
                                                  "sources": [str(p) for p in inputs]}, link)


def split(src: str | Path, ratio: float, seed: int, out: str | Path, link: bool = False) -> tuple[Path, Path]:
    """Split a data set at random (by `seed`) into out/train (a `ratio` of the images) and out/val."""
    if not 0.0 < ratio < 1.0:
        raise UserError(f"--ratio must lie strictly between 0 and 1, got {ratio}")
    categories, entries = load_entries([src])
    order = np.random.default_rng(seed).permutation(len(entries))
    n_train = int(round(ratio * len(entries)))
    if n_train in (0, len(entries)):
        raise UserError(f"{src}: {len(entries)} images cannot be split {ratio:g}/{1 - ratio:g} with both parts non-empty")
    out = Path(out)
    parts = {"train": sorted(order[:n_train]), "val": sorted(order[n_train:])}
    for name in parts:
        if (out / name).exists():
            raise UserError(f"{out / name}: already exists; choose a new output folder")
    created = not out.exists()
    try:
        with contextlib.ExitStack() as stack:  # both parts staged; renamed into place together at the end
            for name, idx in parts.items():
                info = {"description": f"{name} split of {src} (ratio {ratio}, seed {seed})"}
                fill_subset(stack.enter_context(atomic_dir(out / name)), [entries[i] for i in idx], categories,
                            info, link)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # the folder this call made for the two parts, if it is still empty
        raise
    return out / "train", out / "val"


def stats(src: str | Path, out: str | Path) -> dict:
    """Instances per category, area summaries and histograms: writes out/stats.json and out/area_hist.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    categories, entries = load_entries([src])
    areas: dict[int, list[float]] = {c["id"]: [] for c in categories}
    images_with: dict[int, set[int]] = {c["id"]: set() for c in categories}
    for k, e in enumerate(entries):
        for ann in e.annotations:
            areas[ann["category_id"]].append(float(ann["area"]))
            images_with[ann["category_id"]].add(k)
    per_cat = {}
    for c in categories:
        a = np.array(areas[c["id"]])
        per_cat[c["name"]] = {"id": c["id"], "instances": int(a.size), "images": len(images_with[c["id"]]),
                              "area_mean": float(a.mean()) if a.size else None,
                              "area_median": float(np.median(a)) if a.size else None}
    n_inst = sum(len(e.annotations) for e in entries)
    result = {"source": str(src), "images": len(entries), "instances": n_inst,
              "instances_per_image": n_inst / len(entries) if entries else 0.0, "categories": per_cat}
    if (Path(src) / INDEX_FILE).is_file():  # a synthesis output: acceptance and drops
        totals = read_json(Path(src) / INDEX_FILE).get("totals", {})
        result["synthesis"] = {k: totals.get(k) for k in ("candidates", "accepted", "acceptance_rate", "dropped")}
    conf = [e.image["confidence"] for e in entries if "confidence" in e.image]
    if conf:
        result["confidence"] = {"mean": float(np.mean(conf)), "min": float(np.min(conf)), "max": float(np.max(conf))}
    out = Path(out)
    present = [c for c in categories if areas[c["id"]]]
    cols = min(4, max(1, len(present)))
    rows = max(1, -(-len(present) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(present):]:
        ax.axis("off")
    for ax, c in zip(axes.ravel(), present):
        a = np.array(areas[c["id"]])
        bins = np.logspace(np.log10(max(a.min(), 1.0)), np.log10(a.max() + 1.0), 20)
        ax.hist(a, bins=bins, color="tab:blue")
        ax.set_xscale("log")
        ax.set_title(f"{c['name']} (n={a.size})", fontsize=9)
        ax.set_xlabel("area (pixels)", fontsize=8)
    if not present:
        axes[0, 0].text(0.5, 0.5, "no instances", ha="center", va="center")
    fig.suptitle(f"Instance areas: {src}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "area_hist.png", buf.getvalue())
    write_json_atomic(out / "stats.json", result, indent=2)
    return result


def category_colors(category_ids: Iterable[int]) -> dict[int, tuple[int, int, int]]:
    """A fixed RGB colour per category id (matplotlib's tab20 cycle)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {cid: tuple(int(255 * v) for v in cmap((cid - 1) % 20)[:3]) for cid in category_ids}


def overlay(image: np.ndarray, instances: Sequence, names: dict[int, str], colors: dict[int, tuple],
            scale: int = 1, alpha: float = 0.45) -> np.ndarray:
    """Image with each instance's mask tinted, outlined and labelled by category name (upscaled by `scale`)."""
    import cv2

    img = np.repeat(np.repeat(image, scale, 0), scale, 1).astype(np.float32)
    for inst in instances:
        mask = np.repeat(np.repeat(inst.mask, scale, 0), scale, 1)
        color = np.array(colors[inst.category_id], np.float32)
        img[mask] = (1 - alpha) * img[mask] + alpha * color
    img = img.astype(np.uint8)
    for inst in instances:
        mask = np.repeat(np.repeat(inst.mask, scale, 0), scale, 1).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(img, contours, -1, colors[inst.category_id], 1)
        ys, xs = np.nonzero(mask)
        org = (int(xs.min()), max(int(ys.min()) - 2, 9))
        cv2.putText(img, names[inst.category_id], org, cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(img, names[inst.category_id], org, cv2.FONT_HERSHEY_SIMPLEX, 0.35, colors[inst.category_id], 1,
                    cv2.LINE_AA)
    return img


def contact_sheet(src: str | Path, n: int, out: str | Path, seed: int | None = None, tile: int = 256) -> Path:
    """Write a PNG grid of `n` images (first n, or a random n by `seed`) with mask overlays and category names."""
    import cv2

    datasets = [CocoDataset(d) for d in dataset_dirs(src) if load_coco_json(d / "annotations.json")["images"]]
    if not datasets:
        raise DataError(f"{src}: no images to show")
    where = [(ds, i) for ds in datasets for i in range(len(ds))]
    pick = range(min(n, len(where))) if seed is None else sorted(
        np.random.default_rng(seed).choice(len(where), min(n, len(where)), replace=False))
    names = {c["id"]: c["name"] for c in datasets[0].categories}
    colors = category_colors(names)
    tiles = []
    for k in pick:
        ds, i = where[k]
        sample = ds[i]
        scale = max(1, tile // max(sample.image.shape[:2]))
        t = overlay(sample.image, sample.instances, names, colors, scale)
        t = cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) if t.shape[:2] != (tile, tile) else t
        caption = f"{ds.root.name}/{ds.images[i]['file_name']}"
        if "confidence" in sample.meta:
            caption += f" c={sample.meta['confidence']:.2f}"
        cv2.putText(t, caption, (3, tile - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(t)
    cols = int(np.ceil(np.sqrt(len(tiles))))
    rows = -(-len(tiles) // cols)
    sheet = np.full((rows * (tile + 2), cols * (tile + 2), 3), 32, np.uint8)
    for k, t in enumerate(tiles):
        r, c = divmod(k, cols)
        sheet[r * (tile + 2):r * (tile + 2) + tile, c * (tile + 2):c * (tile + 2) + tile] = t
    out = Path(out)
    write_image_atomic(out, sheet)
    return out


def self_check(annotations: str | Path) -> dict[str, float]:
    """Load a COCO file in pycocotools and score its own masks as detections (score 1): AP per iou type.

    Detections are the annotations' masks with boxes recomputed from them, so a valid export (boxes that
    match masks, ids that resolve) gives AP = 1.0 for "bbox" and "segm" (COCOeval's AP@[.5:.95], all areas).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(annotations))
    if not gt.dataset["annotations"]:
        raise DataError(f"{annotations}: no annotations to check")
    rles = [gt.annToRLE(a) for a in gt.dataset["annotations"]]  # detections: the masks; their boxes from the masks
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": mask_utils.toBbox(r).tolist(),
             "score": 1.0, "segmentation": r} for a, r in zip(gt.dataset["annotations"], rles)]
    result = {}
    for iou_type in ("bbox", "segm"):
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(gt, gt.loadRes(dets), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        result[iou_type] = round(float(ev.stats[0]), 6)  # COCOeval averages leave ~1e-16 noise
    return result


def _non_finite(value: Any, where: str = "") -> str | None:
    """The JSON path of the first NaN or infinite number in `value`, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return where or "the document"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        found = _non_finite(v, f"{where}[{k!r}]" if isinstance(k, str) else f"{where}[{k}]")
        if found:
            return found
    return None


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _box_problems(ann: dict, path: Path) -> list[str]:
    """Problems of the fields a detector reads beside the mask: bbox [x, y, w, h], area, iscrowd."""
    bbox, out = ann.get("bbox"), []
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(_number, bbox)) and min(bbox[2:]) >= 0):
        out.append(f"{path}: annotation {ann['id']}: bbox {bbox!r:.40} is not [x, y, width, height]")
    if not (_number(ann.get("area")) and ann["area"] >= 0):
        out.append(f"{path}: annotation {ann['id']}: area {ann.get('area')!r:.20} is not a number >= 0")
    if ann.get("iscrowd", 0) not in (0, 1):
        out.append(f"{path}: annotation {ann['id']}: iscrowd {ann.get('iscrowd')!r:.20} is not 0 or 1")
    return out


def _read_problems(path: Path, kind: str, record: dict, categories: set[int] | None) -> list[str]:
    """Problems of one image file (`categories` None) or label map (`categories`: the ids it may hold)."""
    import cv2

    if not path.is_file():
        return [f"{path}: {kind} of image {record['id']} not found"]
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        return [f"{path}: {kind} of image {record['id']} does not decode (truncated or not an image)"]
    out = []
    if arr.shape[:2] != (record["height"], record["width"]):
        out.append(f"{path}: {kind} is {arr.shape[1]}x{arr.shape[0]}, its record {record['id']} says "
                   f"{record['width']}x{record['height']}")
    if categories is not None:
        if arr.ndim != 2:
            out.append(f"{path}: label map has {arr.shape[2]} channels; it must be single-channel (category ids)")
        else:
            unknown = sorted(set(np.unique(arr).tolist()) - categories - {0})
            if unknown:
                out.append(f"{path}: label map holds unknown category ids {unknown[:5]}")
    return out


def _latent_problems(root: Path, images: list[dict]) -> list[str]:
    """Problems of the latent files the image records point into (missing, rows out of range, NaN/inf)."""
    out, files = [], {}
    for im in images:
        if "latent_file" not in im:
            continue
        path = root / str(im["latent_file"])
        if path not in files:
            try:
                files[path] = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as e:
                files[path] = None
                out.append(f"{path}: latent file named by image {im['id']} is unreadable ({type(e).__name__})")
                continue
            if files[path].dtype.kind == "f" and not np.isfinite(files[path]).all():
                out.append(f"{path}: latents hold NaN or infinite values")
        lat, row = files[path], im.get("latent_row")
        if lat is not None and not (isinstance(row, int) and 0 <= row < len(lat)):
            out.append(f"{path}: image {im['id']}: latent_row {row!r} is not a row of it ({len(lat)} rows)")
    return out


def check_folder(root: Path) -> dict:
    """Check one data set folder as a detector will read it → {'images', 'annotations', 'ap',
    'label_maps_matching_instances', 'problems'} (one line per problem; AP only when there is none)."""
    from baggan.data.coco import decode_segmentation, document_problems

    path = root / "annotations.json"
    report = {"images": 0, "annotations": 0, "ap": None, "label_maps_matching_instances": 0, "problems": []}
    try:
        doc = read_json(path)
    except DataError as e:
        report["problems"].append(str(e))
        return report
    problems = report["problems"]
    problems += list(document_problems(doc, path))
    if problems:
        return report
    report.update(images=len(doc["images"]), annotations=len(doc["annotations"]))
    bad = _non_finite(doc)
    if bad:
        problems.append(f"{path}: {bad} is NaN or infinite (not valid JSON; strict readers refuse the file)")
    cat_ids = {c["id"] for c in doc["categories"]}
    anns: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    same = 0
    for im in doc["images"]:
        problems += _read_problems(root / "images" / im["file_name"], "image", im, None)
        masks = []
        for ann in anns.get(im["id"], []):
            problems += _box_problems(ann, path)
            mask = decode_segmentation(ann["segmentation"], im["height"], im["width"])
            if mask is None:
                problems.append(f"{path}: annotation {ann['id']}: segmentation is not a mask of image {im['id']} "
                                f"({im['width']}x{im['height']})")
            masks.append((ann["category_id"], mask))
        if "label_file" not in im:
            continue
        label_path = root / "labels" / str(im["label_file"])
        label_problems = _read_problems(label_path, "label map", im, cat_ids)
        problems += label_problems
        if not label_problems and all(m is not None for _, m in masks):
            label = read_label_png(label_path)
            painted = label_map_from_instances([Instance(c, m) for c, m in masks], label.shape)
            same += int(np.array_equal(label, painted))
    problems += _latent_problems(root, doc["images"])
    report["label_maps_matching_instances"] = same
    if not problems and doc["annotations"]:
        report["ap"] = self_check(path)
        if min(report["ap"].values()) < 1.0:
            problems.append(f"{path}: self-check AP below 1.0 ({report['ap']}): boxes or masks do not match")
    return report


def check(src: str | Path) -> dict[str, dict]:
    """Per data set folder (each shard of a sharded one): `check_folder`'s report; problems one line each."""
    src = Path(src)
    report = {}
    try:
        dirs = dataset_dirs(src)
    except DataError as e:
        return {str(src): {"images": 0, "annotations": 0, "ap": None, "label_maps_matching_instances": 0,
                           "problems": [str(e)]}}
    for d in dirs:
        report[str(d)] = check_folder(d)
    return report
