"""`baggan prepare pidray` on a tiny PIDRay tree written here in the real layout (COCO polygons and RLE)."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils

from baggan.cli import cli
from baggan.data.coco import CocoDataset
from baggan.data.pidray import square_crop_box
from data_helpers import check_bad_input


def _rle(mask: np.ndarray, compressed: bool = True) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    if compressed:
        return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
    flat = mask.astype(np.uint8).flatten(order="F")  # uncompressed RLE: run lengths starting with zeros
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [2]])) != 0)
    counts = np.diff(np.concatenate([[0], change])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def make_pidray(root, split="train"):
    """Two scans: 120x80 (red polygon object, blue RLE object) and 60x100 (green uncompressed-RLE object)."""
    (root / "annotations").mkdir(parents=True)
    (root / split).mkdir()
    a = np.full((80, 120, 3), 255, np.uint8)
    a[20:50, 90:110] = (255, 0, 0)
    a[10:30, 10:30] = (0, 0, 255)
    b = np.full((100, 60, 3), 255, np.uint8)
    b[60:90, 20:50] = (0, 255, 0)
    cv2.imwrite(str(root / split / "a.png"), cv2.cvtColor(a, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(root / split / "b.png"), cv2.cvtColor(b, cv2.COLOR_RGB2BGR))
    blue = np.zeros((80, 120), bool)
    blue[10:30, 10:30] = True
    green = np.zeros((100, 60), bool)
    green[60:90, 20:50] = True
    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 120, "height": 80},
                   {"id": 2, "file_name": "b.png", "width": 60, "height": 100}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 3, "segmentation": [[90, 20, 110, 20, 110, 50, 90, 50]],
             "bbox": [90, 20, 20, 30], "area": 600, "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 6, "segmentation": _rle(blue), "bbox": [10, 10, 20, 20],
             "area": 400, "iscrowd": 0},
            {"id": 12, "image_id": 2, "category_id": 2, "segmentation": _rle(green, compressed=False),
             "bbox": [20, 60, 30, 30], "area": 900, "iscrowd": 1}],
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(
            ["Baton", "Pliers", "Hammer", "Powerbank", "Scissors", "Wrench", "Gun", "Bullet", "Sprayer",
             "HandCuffs", "Knife", "Lighter"])],
    }
    name = "xray_train.json" if split == "train" else f"xray_test_{split}.json"
    path = root / "annotations" / name
    path.write_text(json.dumps(doc))
    return path, doc


def _prepare(root, out, split="train", size=64):
    return CliRunner().invoke(cli, ["prepare", "pidray", "--root", str(root), "--split", split, "--size", str(size),
                                    "--outdir", str(out)])


def test_prepare_crops_resizes_and_keeps_masks_aligned(tmp_path):
    make_pidray(tmp_path / "pidray")
    result = _prepare(tmp_path / "pidray", tmp_path / "out")
    assert result.exit_code == 0, result.output
    ds = CocoDataset(tmp_path / "out")
    assert len(ds) == 2
    a, b = ds[0], ds[1]
    assert a.image.shape == b.image.shape == (64, 64, 3)
    assert a.meta["crop_box"] == [20, 0, 100, 80]  # 80x80 square centred on both objects (x 10..110)
    assert b.meta["crop_box"] == [0, 40, 60, 100]  # portrait: square moved down to the object
    red = (a.image[..., 0] > 180) & (a.image[..., 1] < 90) & (a.image[..., 2] < 90)
    hammer = next(i.mask for i in a.instances if i.category_id == 3)
    assert (hammer & red).sum() / (hammer | red).sum() > 0.85  # mask stays on its object
    wrench = next(i.mask for i in a.instances if i.category_id == 6)
    assert 0 < wrench.sum() < hammer.sum()  # cut by the crop, still there
    assert (a.label == 3).sum() == hammer.sum()
    green = (b.image[..., 1] > 180) & (b.image[..., 0] < 90)
    pliers = b.instances[0].mask
    assert b.instances[0].category_id == 2 and (pliers & green).sum() / (pliers | green).sum() > 0.85


def test_other_splits_and_crop_box():
    assert square_crop_box(200, 100, []) == (50, 0, 150, 100)
    assert square_crop_box(200, 100, [[180, 10, 15, 20]]) == (100, 0, 200, 100)


def test_test_split_layout(tmp_path):
    make_pidray(tmp_path / "pidray", split="hard")
    assert _prepare(tmp_path / "pidray", tmp_path / "out", split="hard").exit_code == 0
    assert len(CocoDataset(tmp_path / "out")) == 2


def _break(root, how):
    """Damage the tree in one way; returns the substring the error line must contain."""
    path = root / "annotations" / "xray_train.json"
    doc = json.loads(path.read_text())
    if how == "missing image":
        (root / "train" / "b.png").unlink()
        return "b.png: image file not found (record 2"
    if how == "corrupt image":
        (root / "train" / "a.png").write_bytes(b"not a png at all")
        return "a.png: not a readable image"
    if how == "not coco":
        path.write_text(json.dumps([1, 2, 3]))
        return "not a COCO document"
    if how == "malformed json":
        path.write_text("{\"images\": [")
        return "malformed JSON"
    if how == "unknown category":
        doc["categories"].append({"id": 13, "name": "Banana"})
        doc["annotations"][0]["category_id"] = 13
    elif how == "undeclared category":
        doc["annotations"][0]["category_id"] = 99
    elif how == "mask size":
        doc["annotations"][1]["segmentation"]["size"] = [10, 10]
    elif how == "image size":
        doc["images"][0]["width"] = 121
    elif how == "empty":
        doc["images"], doc["annotations"] = [], []
    path.write_text(json.dumps(doc))
    return {"unknown category": "unknown category id 13", "undeclared category": "unknown category id 99",
            "mask size": "does not match its image", "image size": "record says 121x80",
            "empty": "is empty"}[how]


@pytest.mark.parametrize("how", ["missing image", "corrupt image", "not coco", "malformed json", "unknown category",
                                 "undeclared category", "mask size", "image size", "empty"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, how):
    root = tmp_path / "pidray"
    check_bad_input(lambda: make_pidray(root), lambda: _break(root, how), lambda out: _prepare(root, out),
                    tmp_path / "out")
