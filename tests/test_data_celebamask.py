"""`baggan prepare celebamask` on a tiny CelebAMask-HQ tree written here in the real layout."""

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.coco import CocoDataset
from baggan.data.labelsets import FACE, FACE8
from data_helpers import check_bad_input


def _box(y0, y1, x0, x1, size=32):
    m = np.zeros((size, size), np.uint8)
    m[y0:y1, x0:x1] = 255
    return m


def make_celebamask(root, with_teeth=False):
    """Images 0 and 2001 (64^2 jpg) with 32^2 part masks in folders 0/ and 1/, some of them 3-channel."""
    (root / "CelebA-HQ-img").mkdir(parents=True)
    parts = {
        "skin": _box(4, 28, 4, 28), "hair": _box(0, 8, 0, 32), "l_eye": _box(12, 14, 8, 12),
        "r_eye": _box(12, 14, 20, 24), "eye_g": _box(11, 15, 6, 26), "l_brow": _box(10, 11, 8, 12),
        "nose": _box(15, 19, 14, 18), "u_lip": _box(21, 22, 12, 20), "l_lip": _box(23, 24, 12, 20),
        "mouth": _box(22, 23, 12, 20), "l_ear": _box(12, 18, 2, 4), "hat": _box(0, 4, 0, 32),
        "neck": _box(28, 32, 10, 22), "cloth": _box(30, 32, 0, 32),
    }
    if with_teeth:
        parts["teeth"] = _box(22, 23, 14, 18)
    for k in (0, 2001):
        img = np.zeros((64, 64, 3), np.uint8)
        img[..., 0] = 40 + k % 7
        cv2.imwrite(str(root / "CelebA-HQ-img" / f"{k}.jpg"), img)
        folder = root / "CelebAMask-HQ-mask-anno" / str(k // 2000)
        folder.mkdir(parents=True, exist_ok=True)
        for i, (name, m) in enumerate(parts.items()):
            arr = np.stack([m] * 3, -1) if i % 2 else m  # the release stores many masks with 3 channels
            cv2.imwrite(str(folder / f"{k:05d}_{name}.png"), arr)
    return parts


def _prepare(root, out, *extra):
    return CliRunner().invoke(cli, ["prepare", "celebamask", "--root", str(root), "--outdir", str(out),
                                    "--size", "32", *extra])


def test_parts_merge_into_the_face_set(tmp_path):
    make_celebamask(tmp_path / "c")
    result = _prepare(tmp_path / "c", tmp_path / "out")
    assert result.exit_code == 0, result.output
    ds = CocoDataset(tmp_path / "out")
    assert [c["name"] for c in ds.categories] == list(FACE.names)
    assert len(ds) == 2
    s = ds[0]
    assert s.image.shape == (32, 32, 3)
    lab = s.label
    assert lab[20, 6] == FACE.id_of("skin")
    assert lab[6, 16] == FACE.id_of("hair")
    assert lab[2, 16] == 0  # under the hat: hidden, background
    assert lab[13, 10] == FACE.id_of("eye")  # eyes show through the glasses
    assert lab[13, 16] == FACE.id_of("eye_g")
    assert lab[10, 10] == FACE.id_of("eyebrow")
    assert lab[17, 16] == FACE.id_of("nose")
    assert lab[21, 16] == lab[22, 16] == lab[23, 16] == FACE.id_of("mouth")
    assert lab[15, 3] == FACE.id_of("ear")
    assert lab[29, 16] == 0  # neck: not a face label
    assert lab[31, 16] == FACE.id_of("cloth")
    assert (lab == FACE.id_of("teeth")).sum() == 0  # no teeth part in the standard release
    assert {i.category_id for i in s.instances} == set(np.unique(lab)) - {0}


def test_face8_and_a_supplied_teeth_part(tmp_path):
    make_celebamask(tmp_path / "c", with_teeth=True)
    assert _prepare(tmp_path / "c", tmp_path / "f", "--label-set", "face").exit_code == 0
    assert CocoDataset(tmp_path / "f")[0].label[22, 15] == FACE.id_of("teeth")
    assert _prepare(tmp_path / "c", tmp_path / "e", "--label-set", "face8").exit_code == 0
    ds = CocoDataset(tmp_path / "e")
    lab = ds[0].label
    assert [c["name"] for c in ds.categories] == list(FACE8.names)
    assert lab[13, 16] == FACE8.id_of("skin")  # glasses not painted: the skin under them stays
    assert lab[22, 15] == FACE8.id_of("mouth") and lab[31, 16] == 0
    assert lab.max() <= len(FACE8.names)


def _write_png(path, shape=(32, 32)):
    cv2.imwrite(str(path), np.zeros(shape, np.uint8))


def _break(root, how):
    """Damage the tree in one way; returns the text the error line must contain."""
    folder, images = root / "CelebAMask-HQ-mask-anno" / "1", root / "CelebA-HQ-img"
    cases = {
        "mask size": (lambda: _write_png(folder / "02001_nose.png", (16, 16)), "02001_nose.png: mask size 16x16"),
        "corrupt mask": (lambda: (folder / "02001_hair.png").write_bytes(b"garbage"),
                         "02001_hair.png: not a readable mask"),
        "corrupt image": (lambda: (images / "2001.jpg").write_bytes(b"garbage"), "2001.jpg: not a readable image"),
        "image size": (lambda: _write_png(images / "2001.jpg", (64, 48)), "does not match its masks"),
        "missing masks": (lambda: [f.unlink() for f in folder.iterdir()], "no part masks for image 2001"),
        "unknown part": (lambda: _write_png(folder / "02001_tail.png"), "unknown CelebAMask-HQ part 'tail'"),
        "empty": (lambda: [f.unlink() for f in images.iterdir()], "the split is empty"),
    }
    damage, expected = cases[how]
    damage()
    return expected


@pytest.mark.parametrize("how", ["mask size", "corrupt mask", "corrupt image", "image size", "missing masks",
                                 "unknown part", "empty"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, how):
    root = tmp_path / "c"
    check_bad_input(lambda: make_celebamask(root), lambda: _break(root, how), lambda out: _prepare(root, out),
                    tmp_path / "out")
