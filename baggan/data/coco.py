"""The toolkit's one on-disk data format: COCO instances JSON + images/ + labels/ (label-map PNGs).

    DIR/annotations.json     COCO: info, categories (the label set, ids 1..K-1), images, annotations
    DIR/images/<stem>.png    RGB uint8 scans
    DIR/labels/<stem>.png    label maps, uint8 (uint16 if > 255 ids), category id per pixel, 0 = background

Each image record holds `file_name` (relative to DIR/images) and `label_file` (relative to DIR/labels),
plus any per-image metadata (seed, latent file, visibility…). Each annotation is one instance with an
RLE `segmentation` (pycocotools), `bbox` [x, y, w, h], `area`, `iscrowd` 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

from baggan.errors import DataError
from baggan.io import encode_image, read_image_rgb, read_json, read_label_png, write_json_atomic, write_plain


@dataclass
class Instance:
    """One object instance: its category id and binary mask (HxW bool), plus optional extra fields."""

    category_id: int
    mask: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Sample:
    """One record of any data set: image (HxWx3 uint8), label map (HxW int64), instances, metadata."""

    image: np.ndarray
    label: np.ndarray
    instances: list[Instance]
    meta: dict[str, Any]


def encode_rle(mask: np.ndarray) -> dict:
    """Binary HxW mask → COCO compressed RLE with a str `counts` (JSON-serialisable)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def decode_rle(rle: dict) -> np.ndarray:
    """COCO RLE (compressed or uncompressed) → HxW bool mask."""
    if isinstance(rle.get("counts"), list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(rle.get("counts"), str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray | None:
    """A COCO segmentation (polygons or RLE) as an HxW bool mask; None if it is malformed or of another size."""
    try:
        if isinstance(seg, list):  # polygons
            mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, height, width))).astype(bool)
        else:
            mask = decode_rle(seg)
    except Exception:  # noqa: BLE001 - pycocotools raises anything from TypeError to its own errors
        return None
    return mask if mask.shape == (height, width) else None


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """Binary HxW mask → COCO polygons [[x0, y0, x1, y1, ...], ...] along the pixel edges (OpenCV contours).

    One polygon per outer contour, vertices on pixel corners, so pycocotools rasterises it back to exactly
    the mask with its holes filled (COCO polygons cannot hold holes; RLE can).
    """
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return []
    # Only the mask's box (and a zero border) is traced: its cost no longer grows with the image.
    y0, x0 = int(ys.min()), int(xs.min())
    box = np.pad(mask[y0:ys.max() + 1, x0:xs.max() + 1].astype(np.uint8), 1)
    # Tracing a 2x nearest-upscaled mask puts every boundary pixel on one side of its 2x2 block;
    # (p + 1) // 2 then maps it to the pixel corner that side touches.
    up = box.repeat(2, axis=0).repeat(2, axis=1)
    contours, _ = cv2.findContours(up, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE,
                                   offset=(2 * (x0 - 1), 2 * (y0 - 1)))
    return [((c.reshape(-1, 2) + 1) // 2).astype(float).ravel().tolist() for c in contours]


def annotation_record(inst: Instance, ann_id: int, image_id: int, polygons: bool = False) -> dict:
    """A COCO annotation dict for one instance (RLE or polygon segmentation; bbox, area from the mask's RLE)."""
    rle = encode_rle(inst.mask)
    raw = dict(rle, counts=rle["counts"].encode("ascii"))
    bbox = [float(v) for v in mask_utils.toBbox(raw)]
    area = float(mask_utils.area(raw))
    segmentation = mask_to_polygons(inst.mask) if polygons else rle
    return {"id": ann_id, "image_id": image_id, "category_id": int(inst.category_id), "segmentation": segmentation,
            "area": area, "bbox": bbox, "iscrowd": 0, **inst.extra}


def instances_from_label_map(label: np.ndarray, min_area: int = 0, fill_holes: bool = False,
                             connectivity: int = 8) -> list[Instance]:
    """Label map (HxW category ids, 0 = background) → one Instance per connected component of each category.

    Components smaller than `min_area` pixels are dropped. With `fill_holes`, the background pixels a
    component encloses join it (innermost component first, so nested instances never overlap); pixels of
    other categories inside a hole stay theirs. Instances never overlap, so `label_map_from_instances`
    rebuilds the (cleaned) label map exactly.
    """
    if label.ndim != 2:
        raise DataError(f"label map must be HxW, got shape {label.shape}")
    found = []  # (bbox area, category id, x, y, component crop)
    for cid in np.unique(label):
        if cid == 0:
            continue
        count, comp, stats, _ = cv2.connectedComponentsWithStats((label == cid).astype(np.uint8),
                                                                 connectivity=connectivity)
        for k in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area >= min_area:
                found.append((w * h, int(cid), x, y, comp[y:y + h, x:x + w] == k))
    crops = [f[4] for f in found]
    if fill_holes:
        free = label == 0  # background pixels not yet claimed by a filled hole
        for i in sorted(range(len(found)), key=lambda i: found[i][0]):  # innermost (smallest box) first
            _, _, x, y, crop = found[i]
            h, w = crop.shape
            crops[i] = crop | (ndimage.binary_fill_holes(crop) & free[y:y + h, x:x + w])
            free[y:y + h, x:x + w] &= ~crops[i]
    out = []
    for (_, cid, x, y, _), crop in zip(found, crops):
        mask = np.zeros(label.shape, bool)
        mask[y:y + crop.shape[0], x:x + crop.shape[1]] = crop
        out.append(Instance(cid, mask))
    return out


def label_map_from_instances(instances: Sequence[Instance], shape: tuple[int, int]) -> np.ndarray:
    """Rasterise instances into an HxW int64 label map (category id per pixel, 0 = background)."""
    label = np.zeros(shape, np.int64)
    for inst in instances:
        label[inst.mask] = inst.category_id
    return label


class CocoWriter:
    """Writes a data set in the toolkit's format into a folder that its owner renames into place when complete
    (baggan.io.atomic_dir); annotations.json is written atomically by `close()`."""

    def __init__(self, outdir: str | Path, categories: Sequence[dict], info: dict | None = None,
                 polygons: bool = False):
        self.outdir = Path(outdir)
        self.polygons = polygons  # segmentation as OpenCV polygons instead of RLE
        self.categories = [dict(c) for c in categories]
        self._cat_ids = {c["id"] for c in self.categories}
        self.info = dict(info or {})
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        (self.outdir / "images").mkdir(parents=True, exist_ok=True)
        (self.outdir / "labels").mkdir(parents=True, exist_ok=True)

    def add(self, image: np.ndarray, label: np.ndarray, instances: Sequence[Instance] = (),
            meta: dict | None = None, stem: str | None = None) -> int:
        """Write one image, its label map and its instances; returns the new image id."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise DataError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        if label.shape != (h, w):
            raise DataError(f"label map {label.shape} does not match image {(h, w)}")
        image_id = len(self.images) + 1
        stem = stem or f"{image_id:06d}"
        # Plain writes (no per-file rename + fsync, five times cheaper): the folder is a temporary one that
        # its owner renames into place when complete (baggan.io.atomic_dir), so a kill never leaves a half file.
        write_plain(self.outdir / "images" / f"{stem}.png", encode_image(f"{stem}.png", image))
        dtype = np.uint8 if label.max(initial=0) < 256 else np.uint16
        write_plain(self.outdir / "labels" / f"{stem}.png", encode_image(f"{stem}.png", label.astype(dtype)))
        self.images.append({"id": image_id, "file_name": f"{stem}.png", "label_file": f"{stem}.png",
                            "width": w, "height": h, **(meta or {})})
        for inst in instances:
            if inst.category_id not in self._cat_ids:
                raise DataError(f"image {stem}: unknown category id {inst.category_id}")
            if inst.mask.shape != (h, w):
                raise DataError(f"image {stem}: instance mask {inst.mask.shape} does not match image {(h, w)}")
            self.annotations.append(annotation_record(inst, len(self.annotations) + 1, image_id, self.polygons))
        return image_id

    def to_dict(self) -> dict:
        """The COCO document as it will be written."""
        return {"info": self.info, "categories": self.categories, "images": self.images,
                "annotations": self.annotations}

    def close(self) -> Path:
        """Write annotations.json atomically and return its path."""
        path = self.outdir / "annotations.json"
        write_json_atomic(path, self.to_dict())
        return path


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_size(v: Any) -> bool:
    return _is_int(v) and v > 0


def _is_name(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _is_segmentation(v: Any) -> bool:
    return isinstance(v, list) or (isinstance(v, dict) and isinstance(v.get("size"), list)
                                   and isinstance(v.get("counts"), (str, list)))


def _record_problems(records: list, kind: str, fields: dict[str, Callable[[Any], bool]], path: Path,
                     optional: tuple[str, ...] = ()) -> Iterator[str]:
    """One line per record of `kind` that is not an object, lacks a field (but the `optional` ones) or holds a bad
    value, or repeats an id."""
    seen: set[int] = set()
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            yield f"{path}: {kind} record #{i} is not an object ({rec!r:.40})"
            continue
        where = f"{kind} {rec['id']}" if _is_int(rec.get("id")) else f"{kind} record #{i}"
        bad = [k for k, ok in fields.items() if not ok(rec.get(k)) and not (k in optional and k not in rec)]
        if bad:
            yield f"{path}: {where}: missing or invalid {', '.join(repr(k) for k in bad)}"
        elif rec["id"] in seen:
            yield f"{path}: {where}: duplicate id {rec['id']}"
        else:
            seen.add(rec["id"])


def document_problems(doc: Any, path: Path) -> Iterator[str]:
    """One line per problem that stops `doc` from being read as a COCO instances document: not an object,
    records that are not objects or lack their fields, repeated ids, annotations of unknown images or categories."""
    if not isinstance(doc, dict):
        yield f"{path}: not a COCO document (top level is not an object)"
        return
    missing = [key for key in ("images", "annotations", "categories") if not isinstance(doc.get(key), list)]
    if missing:
        yield f"{path}: not a COCO document (missing list '{missing[0]}')"
        return
    problems = [*_record_problems(doc["categories"], "category", {"id": _is_int, "name": _is_name}, path),
                *_record_problems(doc["images"], "image", {"id": _is_int, "file_name": _is_name, "width": _is_size,
                                                          "height": _is_size, "label_file": _is_name}, path,
                                  optional=("label_file",)),
                *_record_problems(doc["annotations"], "annotation",
                                  {"id": _is_int, "image_id": _is_int, "category_id": _is_int,
                                   "segmentation": _is_segmentation}, path)]
    yield from problems
    if problems:
        return
    cat_ids = {c["id"] for c in doc["categories"]}
    image_ids = {im["id"] for im in doc["images"]}
    for ann in doc["annotations"]:
        if ann["category_id"] not in cat_ids:
            yield f"{path}: annotation {ann['id']} has unknown category id {ann['category_id']}"
        if ann["image_id"] not in image_ids:
            yield f"{path}: annotation {ann['id']} refers to unknown image id {ann['image_id']}"


def _check_coco(doc: Any, path: Path) -> None:
    """Raise DataError naming the file and record unless `doc` is a COCO instances document."""
    for problem in document_problems(doc, path):
        raise DataError(problem)


class CocoDataset:
    """Reads a data set in the toolkit's format: `ds[i]` → Sample (image, label map, instances, meta)."""

    def __init__(self, root: str | Path, annotations: str = "annotations.json"):
        self.root = Path(root)
        self.path = self.root / annotations
        self.doc = read_json(self.path)
        _check_coco(self.doc, self.path)
        if not self.doc["images"]:
            raise DataError(f"{self.path}: the split is empty (no images)")
        self.categories = self.doc["categories"]
        self.images = sorted(self.doc["images"], key=lambda im: im["id"])
        self._anns: dict[int, list[dict]] = {}
        for ann in self.doc["annotations"]:
            self._anns.setdefault(ann["image_id"], []).append(ann)

    def __len__(self) -> int:
        return len(self.images)

    def image_path(self, i: int) -> Path:
        """Path of image i."""
        return self.root / "images" / self.images[i]["file_name"]

    def read_image(self, i: int) -> np.ndarray:
        """Image i as HxWx3 uint8, checked against its record's size."""
        rec = self.images[i]
        img = read_image_rgb(self.image_path(i))
        if img.shape[:2] != (rec["height"], rec["width"]):
            raise DataError(f"{self.image_path(i)}: size {img.shape[1]}x{img.shape[0]} does not match record "
                            f"{rec['id']} ({rec['width']}x{rec['height']})")
        return img

    def read_label(self, i: int) -> np.ndarray:
        """Label map i as HxW int64 (from labels/, or rasterised from the instances if absent)."""
        rec = self.images[i]
        if "label_file" in rec:
            label = read_label_png(self.root / "labels" / rec["label_file"])
            if label.shape != (rec["height"], rec["width"]):
                raise DataError(f"{self.root / 'labels' / rec['label_file']}: mask size {label.shape[::-1]} does "
                                f"not match image record {rec['id']} ({rec['width']}x{rec['height']})")
            return label
        return label_map_from_instances(self.instances(i), (rec["height"], rec["width"]))

    def instances(self, i: int) -> list[Instance]:
        """Instances of image i with decoded masks."""
        rec = self.images[i]
        out = []
        for ann in self._anns.get(rec["id"], []):
            mask = decode_segmentation(ann["segmentation"], rec["height"], rec["width"])
            if mask is None:
                raise DataError(f"{self.path}: annotation {ann['id']}: segmentation is not a mask of image "
                                f"{rec['id']} ({rec['width']}x{rec['height']})")
            extra = {k: v for k, v in ann.items() if k not in ("segmentation", "category_id")}
            out.append(Instance(ann["category_id"], mask, extra))
        return out

    def __getitem__(self, i: int) -> Sample:
        rec = self.images[i]
        meta = {k: v for k, v in rec.items()}
        return Sample(self.read_image(i), self.read_label(i), self.instances(i), meta)

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]


INDEX_FILE = "index.json"  # a sharded data set: DIR/index.json lists its finished shard folders


def dataset_dirs(path: str | Path) -> list[Path]:
    """The data set folders at `path`: itself (annotations.json) or the shards its index.json lists, in order."""
    path = Path(path)
    if (path / INDEX_FILE).is_file():
        index = read_json(path / INDEX_FILE)
        shards = index.get("shards") if isinstance(index, dict) else None
        if not isinstance(shards, list) or not all(isinstance(s, dict) and "name" in s for s in shards):
            raise DataError(f"{path / INDEX_FILE}: not a shard index (missing list 'shards' of {{'name': ...}})")
        return [path / s["name"] for s in shards]
    if (path / "annotations.json").is_file():
        return [path]
    raise DataError(f"{path}: not a data set (no annotations.json) nor a sharded one (no {INDEX_FILE})")


def load_coco_json(path: str | Path) -> dict:
    """Read and validate a COCO instances JSON file."""
    path = Path(path)
    doc = read_json(path)
    _check_coco(doc, path)
    return doc


__all__ = ["Instance", "Sample", "CocoWriter", "CocoDataset", "encode_rle", "decode_rle", "annotation_record",
           "load_coco_json", "document_problems", "decode_segmentation", "mask_to_polygons", "dataset_dirs", "INDEX_FILE", "instances_from_label_map", "label_map_from_instances"]
