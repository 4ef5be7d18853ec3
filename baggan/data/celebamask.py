"""CelebAMask-HQ -> the toolkit's format with the paper's Face label set.

Layout: ROOT/CelebA-HQ-img/{k}.jpg (1024^2) and ROOT/CelebAMask-HQ-mask-anno/{k // 2000}/{k:05d}_{part}.png
(512^2, one binary 0/255 mask per part, often stored with 3 channels; a missing file means the part is
absent). Parts are painted in the release's order, a later part winning where masks overlap:

    skin nose eye_g l_eye r_eye l_brow r_brow l_ear r_ear mouth u_lip l_lip [teeth] hair hat ear_r neck_l neck cloth

so eyes show through glasses and hair covers what it hides. Merge into labels (label set `face`, ids as
labelsets.FACE; `face8` keeps the paper's training labels only):

    skin -> skin; hair -> hair; l_brow, r_brow -> eyebrow; nose -> nose; l_eye, r_eye -> eye;
    mouth, u_lip, l_lip -> mouth; l_ear, r_ear -> ear; eye_g -> eye_g; cloth -> cloth; teeth -> teeth
    hat, ear_r (earring), neck, neck_l (necklace) -> background (they hide what is under them)
    face8: eye_g is not painted (the face stays visible through it), cloth -> background, teeth -> mouth

Teeth: the standard release has no teeth part (teeth lie inside `mouth`), so the `teeth` label stays empty
unless a {k:05d}_teeth.png file is supplied (e.g. a user's own annotation), which is then read like any part.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from baggan.data.coco import CocoWriter
from baggan.data.datasets import instances_from_label, staged_output
from baggan.data.labelsets import FACE, FACE8
from baggan.errors import DataError
from baggan.io import read_image_rgb

PAINT_ORDER = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
               "l_lip", "teeth", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
_COMMON = {"skin": "skin", "hair": "hair", "l_brow": "eyebrow", "r_brow": "eyebrow", "nose": "nose",
           "l_eye": "eye", "r_eye": "eye", "mouth": "mouth", "u_lip": "mouth", "l_lip": "mouth", "l_ear": "ear",
           "r_ear": "ear", "hat": None, "ear_r": None, "neck": None, "neck_l": None}
# part -> label name, None = painted as background, missing = not painted.
PART_TO_LABEL = {
    "face": {**_COMMON, "eye_g": "eye_g", "cloth": "cloth", "teeth": "teeth"},
    "face8": {**_COMMON, "cloth": None, "teeth": "mouth"},
}
_PART_FILE = re.compile(r"^(\d{5})_([a-z_]+)\.png$")


def _part_files(anno: Path) -> dict[int, dict[str, Path]]:
    """Part masks per image index, from every subfolder of the annotation folder."""
    out: dict[int, dict[str, Path]] = {}
    for sub in sorted(p for p in anno.iterdir() if p.is_dir()):
        for f in sub.iterdir():
            m = _PART_FILE.match(f.name)
            if m is None:
                continue
            if m.group(2) not in PAINT_ORDER:
                raise DataError(f"{f}: unknown CelebAMask-HQ part {m.group(2)!r} (known: {', '.join(PAINT_ORDER)})")
            out.setdefault(int(m.group(1)), {})[m.group(2)] = f
    return out


def _read_mask(path: Path, k: int) -> np.ndarray:
    """A part mask (1- or 3-channel PNG, 0/255) as bool; DataError naming the file and the record."""
    arr = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if arr is None:
        raise DataError(f"{path}: not a readable mask PNG (image {k})")
    return arr > 127


def merge_parts(parts: dict[str, np.ndarray], label_set: str = "face") -> np.ndarray:
    """Label map (uint8, ids of the label set) from part masks, painted in PAINT_ORDER."""
    ls = FACE if label_set == "face" else FACE8
    mapping = PART_TO_LABEL[label_set]
    shape = next(iter(parts.values())).shape
    label = np.zeros(shape, np.uint8)
    for part in PAINT_ORDER:
        if part in parts and part in mapping:
            name = mapping[part]
            label[parts[part]] = 0 if name is None else ls.id_of(name)
    return label


def prepare_celebamask(root: str | Path, outdir: str | Path, size: int = 512, label_set: str = "face",
                       limit: int | None = None, overwrite: bool = False, progress: bool = True) -> int:
    """Convert CelebAMask-HQ; returns the number of images written (see the module docstring)."""
    root = Path(root)
    if label_set not in PART_TO_LABEL:
        raise DataError(f"unknown face label set {label_set!r} (known: face, face8)")
    img_dir, anno = root / "CelebA-HQ-img", root / "CelebAMask-HQ-mask-anno"
    for d in (img_dir, anno):
        if not d.is_dir():
            raise DataError(f"{d}: folder not found (expected the CelebAMask-HQ layout under {root})")
    ids = sorted(int(p.stem) for p in img_dir.glob("*.jpg") if p.stem.isdigit())[:limit]
    if not ids:
        raise DataError(f"{img_dir}: no images ({{k}}.jpg) found: the split is empty")
    files = _part_files(anno)
    ls = FACE if label_set == "face" else FACE8
    info = {"description": f"CelebAMask-HQ prepared by baggan (label set {label_set})", "label_set": ls.name,
            "size": size}
    with staged_output(outdir, overwrite) as tmp:
        writer = CocoWriter(tmp, ls.coco_categories(), info)
        for k in tqdm(ids, desc="celebamask", unit="img", disable=None if progress else True):
            if k not in files:
                raise DataError(f"{anno / str(k // 2000)}: no part masks for image {k} ({img_dir / f'{k}.jpg'})")
            parts = {name: _read_mask(path, k) for name, path in files[k].items()}
            ref = next(n for n in PAINT_ORDER if n in parts)
            mh, mw = parts[ref].shape
            for name, m in parts.items():
                if m.shape != (mh, mw):
                    raise DataError(f"{files[k][name]}: mask size {m.shape[1]}x{m.shape[0]} differs from {ref}'s "
                                    f"{mw}x{mh} (image {k})")
            image = read_image_rgb(img_dir / f"{k}.jpg")
            if image.shape[0] * mw != image.shape[1] * mh:
                raise DataError(f"{img_dir / f'{k}.jpg'}: image {image.shape[1]}x{image.shape[0]} does not match "
                                f"its masks ({mw}x{mh}) of record {k}")
            label = cv2.resize(merge_parts(parts, label_set), (size, size), interpolation=cv2.INTER_NEAREST)
            interp = cv2.INTER_AREA if size < image.shape[1] else cv2.INTER_LINEAR
            image = cv2.resize(image, (size, size), interpolation=interp)
            writer.add(image, label, instances_from_label(label), {"source_id": k, "parts": sorted(parts)}, f"{k:05d}")
        writer.close()
    return len(ids)


__all__ = ["PAINT_ORDER", "PART_TO_LABEL", "merge_parts", "prepare_celebamask"]
