"""Helpers shared by the data-set writers: staged output folders and aligned crop/resize of images and masks."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from baggan.data.coco import Instance
from baggan.errors import UserError
from baggan.io import name_user_path, remove_stale


def check_outdir(outdir: str | os.PathLike, overwrite: bool = False) -> None:
    """UserError unless `outdir` can take a staged output: absent, an empty folder, or replaced (`overwrite`).

    Commands call it before their slow work, so that a refusal comes first."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise UserError(f"{outdir}: exists and is not a folder")
    if outdir.is_dir() and any(outdir.iterdir()) and not overwrite:
        raise UserError(f"{outdir}: folder is not empty (pass --overwrite to replace it)")


@contextlib.contextmanager
def staged_output(outdir: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `outdir`; on success it becomes `outdir`, on any error it is deleted.

    So a data set is either written completely or not at all. An existing non-empty `outdir` is an error
    unless `overwrite`, in which case it is replaced only once the new one is complete.
    """
    outdir = Path(outdir)
    check_outdir(outdir, overwrite)
    outdir.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("tmp", "old"):  # what a killed run left
        remove_stale(outdir.parent, f".{outdir.name}.*.{suffix}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".tmp", dir=outdir.parent))
    try:
        yield tmp
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            name_user_path(e, tmp, outdir)
        raise
    if outdir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", suffix=".old", dir=outdir.parent))
        os.replace(outdir, old / "data")
        os.replace(tmp, outdir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, outdir)


def crop_resize(array: np.ndarray, box: Sequence[int], size: tuple[int, int] | None,
                nearest: bool = False) -> np.ndarray:
    """Crop `box` = (x0, y0, x1, y1) (may extend past the image: padded with zeros), then resize to
    `size` = (width, height) (area averaging when shrinking, bilinear when enlarging, nearest for labels)."""
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = array.shape[:2]
    out = np.zeros((y1 - y0, x1 - x0) + array.shape[2:], array.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = array[sy0:sy1, sx0:sx1]
    if size is None or (out.shape[1], out.shape[0]) == tuple(size):
        return out
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if size[0] < out.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(out, tuple(size), interpolation=interp)


def crop_resize_mask(mask: np.ndarray, box: Sequence[int], size: tuple[int, int] | None) -> np.ndarray:
    """A binary mask through the same crop/resize as its image (area-weighted, thresholded at one half)."""
    m = crop_resize(mask.astype(np.uint8) * 255, box, size)
    return m >= 128


def label_from_instances(instances: Sequence[Instance], shape: tuple[int, int]) -> np.ndarray:
    """Semantic label map painted from instances in order (a later instance wins where they overlap)."""
    label = np.zeros(shape, np.uint8)
    for inst in instances:
        label[inst.mask] = inst.category_id
    return label


def instances_from_label(label: np.ndarray, extra: dict | None = None) -> list[Instance]:
    """One instance per label present in a part-label map (its whole region), in id order."""
    return [Instance(int(c), label == c, dict(extra or {})) for c in np.unique(label) if c != 0]


__all__ = ["staged_output", "check_outdir", "crop_resize", "crop_resize_mask", "label_from_instances", "instances_from_label"]
