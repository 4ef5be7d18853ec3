"""PASCAL-Part (Chen et al., 2014) car / cat / horse objects -> the toolkit's format with the paper's part sets.

Layout: one .mat per VOC image, `scipy.io.loadmat(f)['anno'][0][0]` with fields `imname` and `objects`;
each object has `class`, `class_ind`, `mask` (image-sized) and `parts` (each `part_name`, `mask`). Images
are VOC2010 JPEGImages/{imname}.jpg. One record is written per object of the chosen category that has part
annotations, cropped to the object's box plus a margin (optionally made square, padded and resized).

Part -> label (labelsets.CAR / CAT / HORSE, the paper's Table A1 sets):

    car:   frontside, leftside, rightside, backside, roofside, leftmirror, rightmirror -> body;
           door_* -> door; wheel_* -> wheel; headlight_* -> lights; fliplate, bliplate -> plate;
           window_* -> windshield when it borders the front/back faces more than the left/right faces
           (its mask dilated by 3% of the car's size), else window. Object pixels no part covers -> body.
    cat:   head -> head; leye, reye -> eye; nose -> nose; lear, rear -> ear; neck -> neck; torso -> torso;
           tail -> tail; lfleg, lfpa, rfleg, rfpa -> f_leg; lbleg, lbpa, rbleg, rbpa -> b_leg.
    horse: head, leye, reye, lear, rear, muzzle -> head; neck, torso -> torso; tail -> tail;
           hooves (lfho ...) and upper/lower legs (lfuleg, lflleg ...) -> leg;
           rider: PASCAL-Part has no rider part; a `person` object of the same image whose mask touches the
           horse (its mask dilated by 5 px) is painted as rider over the horse.
           saddle: PASCAL-Part has no saddle part and no saddle object, so the label stays empty.

Labels are painted coarse to fine (the order of each label set above), so small parts win over large ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import scipy.io
from tqdm import tqdm

from baggan.data.coco import CocoWriter
from baggan.data.datasets import crop_resize, instances_from_label, staged_output
from baggan.data.labelsets import CAR, CAT, HORSE, LabelSet
from baggan.errors import DataError
from baggan.io import read_image_rgb

LABEL_SETS: dict[str, LabelSet] = {"car": CAR, "cat": CAT, "horse": HORSE}
_CAR_BODY = {"frontside", "leftside", "rightside", "backside", "roofside", "leftmirror", "rightmirror"}
_RULES: dict[str, list[tuple[str, str]]] = {  # (regex on part name, label)
    "car": [("|".join(sorted(_CAR_BODY)), "body"), (r"door_\d+", "door"), (r"wheel_\d+", "wheel"),
            (r"headlight_\d+", "lights"), (r"window_\d+", "window"), (r"[fb]liplate", "plate")],
    "cat": [("head", "head"), ("[lr]eye", "eye"), ("nose", "nose"), ("[lr]ear", "ear"), ("neck", "neck"),
            ("torso", "torso"), ("tail", "tail"), ("[lr]f(leg|pa)", "f_leg"), ("[lr]b(leg|pa)", "b_leg")],
    "horse": [("head|[lr]eye|[lr]ear|muzzle", "head"), ("neck|torso", "torso"), ("tail", "tail"),
              ("[lr][fb](ho|uleg|lleg)", "leg")],
}
_ORDER = {"car": ("body", "door", "window", "windshield", "wheel", "lights", "plate"),
          "cat": ("torso", "neck", "head", "ear", "eye", "nose", "tail", "f_leg", "b_leg"),
          "horse": ("torso", "head", "tail", "leg", "saddle", "rider")}


def part_label(category: str, name: str) -> str | None:
    """Label of a PASCAL-Part part name for `category` (None when the name is unknown)."""
    for pattern, label in _RULES[category]:
        if re.fullmatch(pattern, name):
            return label
    return None


def _items(value) -> list:
    """Elements of a MATLAB struct array as loaded by scipy (empty list for an empty array)."""
    arr = np.asarray(value)
    return [] if arr.size == 0 else list(arr.ravel())


def _text(value) -> str:
    """A MATLAB string as loaded by scipy."""
    arr = np.asarray(value).ravel()
    return str(arr[0]) if arr.size else ""


def read_annotation(path: Path) -> tuple[str, list[dict]]:
    """(imname, objects) of one .mat file; objects as dicts with class, mask, parts [(name, mask)]."""
    try:
        mat = scipy.io.loadmat(str(path))
    except (scipy.io.matlab.MatReadError, OSError, ValueError, TypeError, EOFError) as e:
        raise DataError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from None
    try:
        anno = mat["anno"][0][0]
        imname = _text(anno["imname"])
        objects = []
        for obj in _items(anno["objects"]):
            parts = [(_text(p["part_name"]), np.asarray(p["mask"]).astype(bool)) for p in _items(obj["parts"])]
            objects.append({"class": _text(obj["class"]), "mask": np.asarray(obj["mask"]).astype(bool),
                            "parts": parts})
    except (KeyError, ValueError, IndexError, TypeError) as e:
        raise DataError(f"{path}: not a PASCAL-Part annotation (expected anno.imname/objects/parts: {e})") from None
    return imname, objects


def part_label_map(category: str, obj: dict, others: list[dict], where: str) -> np.ndarray:
    """Label map (image-sized, ids of the category's label set) of one object; see the module docstring."""
    ls = LABEL_SETS[category]
    shape = obj["mask"].shape
    masks: dict[str, np.ndarray] = {}
    faces = {"front": np.zeros(shape, bool), "side": np.zeros(shape, bool)}
    windows = []
    for name, mask in obj["parts"]:
        if mask.shape != shape:
            raise DataError(f"{where}: part {name!r} mask size {mask.shape[1]}x{mask.shape[0]} does not match its "
                            f"image ({shape[1]}x{shape[0]})")
        label = part_label(category, name)
        if label is None:
            raise DataError(f"{where}: unknown {category} part {name!r}")
        if name in ("frontside", "backside"):
            faces["front"] |= mask
        elif name in ("leftside", "rightside"):
            faces["side"] |= mask
        if label == "window":
            windows.append(mask)
        else:
            masks[label] = masks.get(label, np.zeros(shape, bool)) | mask
    if windows:
        ys, xs = np.nonzero(obj["mask"])
        r = max(3, int(0.03 * max(np.ptp(xs) + 1, np.ptp(ys) + 1))) if len(xs) else 3
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        for w in windows:
            ring = cv2.dilate(w.astype(np.uint8), kernel).astype(bool)
            kind = "windshield" if (ring & faces["front"]).sum() > (ring & faces["side"]).sum() else "window"
            masks[kind] = masks.get(kind, np.zeros(shape, bool)) | w
    if category == "horse":
        near = cv2.dilate(obj["mask"].astype(np.uint8), np.ones((11, 11), np.uint8)).astype(bool)
        for other in others:
            if other["class"] == "person" and other["mask"].shape == shape and (other["mask"] & near).any():
                masks["rider"] = masks.get("rider", np.zeros(shape, bool)) | other["mask"]
    label = np.zeros(shape, np.uint8)
    if category == "car":
        label[obj["mask"]] = ls.id_of("body")
    for name in _ORDER[category]:
        if name in masks:
            label[masks[name]] = ls.id_of(name)
    return label


def object_box(mask: np.ndarray, margin: float, square: bool) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a mask's bounding box grown by `margin` of its size (square: centred square)."""
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    w, h = x1 - x0, y1 - y0
    if square:
        side = int(round(max(w, h) * (1 + 2 * margin)))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        bx0, by0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        return bx0, by0, bx0 + side, by0 + side
    H, W = mask.shape
    return (max(int(x0 - margin * w), 0), max(int(y0 - margin * h), 0), min(int(np.ceil(x1 + margin * w)), W),
            min(int(np.ceil(y1 + margin * h)), H))


def prepare_pascal_part(annotations: str | Path, images: str | Path, category: str, outdir: str | Path,
                        size: int | None = None, margin: float = 0.1, limit: int | None = None,
                        overwrite: bool = False, progress: bool = True) -> int:
    """Convert one PASCAL-Part category; returns the number of object records written."""
    if category not in LABEL_SETS:
        raise DataError(f"unknown PASCAL-Part category {category!r} (known: {', '.join(LABEL_SETS)})")
    annotations, images = Path(annotations), Path(images)
    for d in (annotations, images):
        if not d.is_dir():
            raise DataError(f"{d}: folder not found")
    files = sorted(annotations.glob("*.mat"))
    ls = LABEL_SETS[category]
    info = {"description": f"PASCAL-Part {category} objects prepared by baggan", "label_set": ls.name,
            "margin": margin, "size": size}
    written = skipped = 0
    with staged_output(outdir, overwrite) as tmp:
        writer = CocoWriter(tmp, ls.coco_categories(), info)
        for path in tqdm(files, desc=f"pascal-part {category}", unit="file", disable=None if progress else True):
            imname, objects = read_annotation(path)
            wanted = [(i, o) for i, o in enumerate(objects) if o["class"] == category]
            if not wanted:
                continue
            try:
                image = read_image_rgb(images / f"{imname}.jpg")
            except DataError as e:
                raise DataError(f"{e} (image of {path})") from None
            for i, obj in wanted:
                where = f"{path}: object {i} ({category})"
                if obj["mask"].shape != image.shape[:2]:
                    raise DataError(f"{where}: mask size {obj['mask'].shape[1]}x{obj['mask'].shape[0]} does not "
                                    f"match its image {images / f'{imname}.jpg'} ({image.shape[1]}x{image.shape[0]})")
                if not obj["parts"] or not obj["mask"].any():
                    skipped += 1
                    continue
                label = part_label_map(category, obj, objects, where)
                box = object_box(obj["mask"], margin, square=size is not None)
                out_size = (size, size) if size else None
                crop = crop_resize(image, box, out_size)
                lab = crop_resize(label, box, out_size, nearest=True)
                writer.add(crop, lab, instances_from_label(lab), {"source_file": f"{imname}.jpg", "object": i,
                                                                    "crop_box": list(map(int, box))},
                           f"{imname}_{i}")
                written += 1
                if limit and written >= limit:
                    break
            if limit and written >= limit:
                break
        if written == 0:
            raise DataError(f"{annotations}: no {category} objects with part annotations: the split is empty")
        writer.info["skipped_without_parts"] = skipped
        writer.close()
    return written


__all__ = ["LABEL_SETS", "part_label", "read_annotation", "part_label_map", "object_box", "prepare_pascal_part"]
