"""PIDRay (Wang et al., ICCV 2021) -> the toolkit's format, prepared as in the paper (appendix C).

Layout: ROOT/annotations/xray_train.json, xray_test_{easy,hard,hidden}.json (COCO, instance polygons or RLE,
categories 1-12 as labelsets.PIDRAY) and images under ROOT/train, easy, hard, hidden.

Preparation: "crop 448 x 448 and resize to 512 x 512". The scans differ in size, so each image is scaled
so that its short side is 448 pixels and a 448 x 448 square is cut along the long side, placed to centre
the union of the image's annotated instances (clamped to the image; centred when it has none), then
resized to `size` (512). In source pixels that is the square of side min(width, height) that holds the
threats best, resized once to `size` (the intermediate 448 cancels out). Masks go through the same crop
and resize (area-weighted, thresholded at 1/2); an instance left empty by the crop is dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from baggan.data.coco import CocoWriter, Instance, load_coco_json
from baggan.data.datasets import crop_resize, crop_resize_mask, label_from_instances, staged_output
from baggan.data.labelsets import PIDRAY
from baggan.errors import DataError
from baggan.io import read_image_rgb

SPLITS = {"train": "xray_train.json", "easy": "xray_test_easy.json", "hard": "xray_test_hard.json",
          "hidden": "xray_test_hidden.json"}


def decode_segmentation(seg, height: int, width: int, where: str) -> np.ndarray:
    """Binary HxW mask of a COCO segmentation (polygons, compressed or uncompressed RLE); DataError if its
    size does not match the image."""
    if isinstance(seg, list):
        if not seg:
            raise DataError(f"{where}: empty polygon list")
        rles = mask_utils.frPyObjects(seg, height, width)
        return mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    if not isinstance(seg, dict) or "counts" not in seg or "size" not in seg:
        raise DataError(f"{where}: segmentation is neither polygons nor RLE")
    if list(seg["size"]) != [height, width]:
        raise DataError(f"{where}: mask size {seg['size'][1]}x{seg['size'][0]} does not match its image "
                        f"({width}x{height})")
    if isinstance(seg["counts"], list):
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        counts = seg["counts"].encode("ascii") if isinstance(seg["counts"], str) else seg["counts"]
        rle = {"size": seg["size"], "counts": counts}
    return mask_utils.decode(rle).astype(bool)


def square_crop_box(width: int, height: int, boxes: list[list[float]]) -> tuple[int, int, int, int]:
    """The square (x0, y0, x1, y1) of side min(width, height) centred on the union of `boxes` (x, y, w, h),
    clamped to the image; centred in the image when there are no boxes."""
    side = min(width, height)
    if boxes:
        b = np.array(boxes, float)
        cx = (b[:, 0].min() + (b[:, 0] + b[:, 2]).max()) / 2
        cy = (b[:, 1].min() + (b[:, 1] + b[:, 3]).max()) / 2
    else:
        cx, cy = width / 2, height / 2
    x0 = int(round(min(max(cx - side / 2, 0), width - side)))
    y0 = int(round(min(max(cy - side / 2, 0), height - side)))
    return x0, y0, x0 + side, y0 + side


def _check_categories(doc: dict, path: Path) -> None:
    """DataError unless every category of the document is a PIDRay category with its PIDRay id."""
    for cat in doc["categories"]:
        cid = cat.get("id")
        if not isinstance(cid, int) or not 1 <= cid <= len(PIDRAY.names):
            raise DataError(f"{path}: category record {cat!r} has unknown category id {cid} (PIDRay has 1-12)")


def prepare_pidray(root: str | Path, split: str, outdir: str | Path, size: int = 512, limit: int | None = None,
                   overwrite: bool = False, progress: bool = True) -> int:
    """Convert one PIDRay split; returns the number of images written (see the module docstring)."""
    root = Path(root)
    if split not in SPLITS:
        raise DataError(f"unknown PIDRay split {split!r} (known: {', '.join(SPLITS)})")
    path = root / "annotations" / SPLITS[split]
    doc = load_coco_json(path)
    _check_categories(doc, path)
    images = sorted(doc["images"], key=lambda im: im["id"])[:limit]
    if not images:
        raise DataError(f"{path}: the split {split!r} is empty (no images)")
    anns: dict = {}
    for ann in doc["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    info = {"description": f"PIDRay {split} prepared by baggan", "label_set": "pidray", "source": str(path),
            "size": size}
    with staged_output(outdir, overwrite) as tmp:
        writer = CocoWriter(tmp, PIDRAY.coco_categories(), info)
        for rec in tqdm(images, desc=f"pidray {split}", unit="img", disable=None if progress else True):
            image, instances, meta = _prepare_record(root / split, rec, anns.get(rec["id"], []), path, size)
            writer.add(image, label_from_instances(instances, image.shape[:2]), instances, meta,
                       Path(rec["file_name"]).stem)
        writer.close()
    return len(images)


def _prepare_record(image_dir: Path, rec: dict, anns: list[dict], ann_path: Path, size: int):
    """Read, crop and resize one image record with its instances."""
    where = f"{ann_path}: image record {rec.get('id')} ({rec.get('file_name')})"
    try:
        image = read_image_rgb(image_dir / rec["file_name"])
    except DataError as e:
        raise DataError(f"{e} (record {rec.get('id')} of {ann_path})") from None
    h, w = image.shape[:2]
    if (rec.get("height"), rec.get("width")) != (h, w):
        raise DataError(f"{where}: image file is {w}x{h}, record says {rec.get('width')}x{rec.get('height')}")
    masks = [decode_segmentation(a["segmentation"], h, w, f"{where}, annotation {a.get('id')}") for a in anns]
    boxes = [list(mask_utils.toBbox(mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))) for m in masks
             if m.any()]
    box = square_crop_box(w, h, boxes)
    out = crop_resize(image, box, (size, size))
    instances = []
    for a, m in zip(anns, masks):
        mm = crop_resize_mask(m, box, (size, size))
        if mm.any():
            instances.append(Instance(int(a["category_id"]), mm, {"source_annotation": a.get("id")}))
    meta = {"source_file": rec["file_name"], "source_id": rec.get("id"), "source_size": [w, h],
            "crop_box": list(box), "dropped_instances": len(anns) - len(instances)}
    return out, instances, meta


__all__ = ["SPLITS", "prepare_pidray", "decode_segmentation", "square_crop_box"]
