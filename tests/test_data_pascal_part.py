"""`baggan prepare pascal-part` on .mat files written here with scipy.io.savemat in PASCAL-Part's struct layout."""

import cv2
import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.coco import CocoDataset
from baggan.data.labelsets import CAR, CAT, HORSE
from baggan.data.pascal_part import part_label
from data_helpers import check_bad_input


def _m(shape, y0, y1, x0, x1):
    m = np.zeros(shape, np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _obj(cls, mask, parts):
    arr = np.empty((1, len(parts)), dtype=[("part_name", "O"), ("mask", "O")]) if parts else np.zeros((0, 0))
    for j, p in enumerate(parts):
        arr[0, j] = p
    return cls, np.array([[1]]), mask, arr


def _write(ann_dir, img_dir, imname, shape, objects):
    """One annotation file anno.{imname, objects[class, class_ind, mask, parts[part_name, mask]]} and its jpg."""
    objs = np.empty((1, len(objects)), dtype=[("class", "O"), ("class_ind", "O"), ("mask", "O"), ("parts", "O")])
    for i, o in enumerate(objects):
        objs[0, i] = o
    anno = np.empty((1, 1), dtype=[("imname", "O"), ("objects", "O")])
    anno[0, 0] = (imname, objs)
    scipy.io.savemat(str(ann_dir / f"{imname}.mat"), {"anno": anno})
    img = np.full(shape + (3,), 90, np.uint8)
    cv2.imwrite(str(img_dir / f"{imname}.jpg"), img)


def make_pascal_part(root):
    ann, img = root / "Annotations_Part", root / "JPEGImages"
    ann.mkdir(parents=True)
    img.mkdir()
    s = (60, 100)
    car = [("frontside", _m(s, 20, 50, 10, 30)), ("leftside", _m(s, 20, 50, 30, 90)),
           ("roofside", _m(s, 10, 20, 30, 80)), ("window_1", _m(s, 14, 20, 12, 28)),
           ("window_2", _m(s, 22, 30, 50, 70)), ("wheel_1", _m(s, 42, 50, 35, 45)),
           ("headlight_1", _m(s, 30, 34, 12, 16)), ("fliplate", _m(s, 40, 44, 15, 25)),
           ("door_1", _m(s, 22, 42, 72, 88))]
    _write(ann, img, "2008_000001", s, [_obj("car", _m(s, 10, 50, 10, 90), car),
                                        _obj("car", _m(s, 52, 58, 0, 20), []),  # no parts: skipped
                                        _obj("person", _m(s, 0, 5, 0, 5), [])])
    s = (60, 80)
    horse = [("head", _m(s, 20, 30, 55, 70)), ("neck", _m(s, 25, 32, 48, 56)), ("torso", _m(s, 30, 45, 20, 55)),
             ("lfuleg", _m(s, 45, 53, 22, 26)), ("lfho", _m(s, 53, 55, 22, 26)), ("tail", _m(s, 30, 40, 10, 20))]
    _write(ann, img, "2008_000002", s, [_obj("horse", _m(s, 20, 55, 10, 70), horse),
                                        _obj("person", _m(s, 5, 32, 30, 45), []),  # the rider
                                        _obj("person", _m(s, 0, 8, 74, 80), [])])  # a bystander
    s = (50, 50)
    cat = [("head", _m(s, 5, 20, 5, 20)), ("leye", _m(s, 10, 12, 8, 10)), ("nose", _m(s, 14, 16, 12, 14)),
           ("lear", _m(s, 5, 7, 5, 8)), ("neck", _m(s, 20, 24, 10, 20)), ("torso", _m(s, 24, 36, 10, 40)),
           ("tail", _m(s, 24, 30, 40, 45)), ("lfleg", _m(s, 36, 45, 10, 14)), ("lfpa", _m(s, 43, 45, 10, 14)),
           ("lbleg", _m(s, 36, 45, 35, 39))]
    _write(ann, img, "2008_000003", s, [_obj("cat", _m(s, 5, 45, 5, 45), cat), _obj("dog", _m(s, 0, 4, 0, 4), [])])
    return ann, img


def _prepare(root, category, out, *extra):
    return CliRunner().invoke(cli, ["prepare", "pascal-part", "--annotations", str(root / "Annotations_Part"),
                                    "--images", str(root / "JPEGImages"), "--category", category,
                                    "--outdir", str(out), *extra])


def test_car_parts_windshield_and_crop(tmp_path):
    make_pascal_part(tmp_path / "pp")
    result = _prepare(tmp_path / "pp", "car", tmp_path / "car")
    assert result.exit_code == 0, result.output
    ds = CocoDataset(tmp_path / "car")
    assert len(ds) == 1 and ds.doc["info"]["skipped_without_parts"] == 1
    s = ds[0]
    assert s.meta["crop_box"] == [2, 6, 98, 54] and s.image.shape == (48, 96, 3)  # box + 10% margin
    at = lambda y, x: s.label[y - 6, x - 2]  # noqa: E731 - image coordinates -> crop
    assert at(35, 60) == CAR.id_of("body") and at(11, 11) == CAR.id_of("body")
    assert at(16, 20) == CAR.id_of("windshield") and at(26, 60) == CAR.id_of("window")
    assert at(46, 40) == CAR.id_of("wheel") and at(32, 14) == CAR.id_of("lights")
    assert at(42, 20) == CAR.id_of("plate") and at(30, 80) == CAR.id_of("door")
    assert at(8, 5) == 0


def test_horse_rider_and_cat_parts(tmp_path):
    make_pascal_part(tmp_path / "pp")
    assert _prepare(tmp_path / "pp", "horse", tmp_path / "h").exit_code == 0
    s = CocoDataset(tmp_path / "h")[0]
    x0, y0 = s.meta["crop_box"][:2]
    at = lambda y, x: s.label[y - y0, x - x0]  # noqa: E731
    assert at(25, 38) == at(31, 38) == HORSE.id_of("rider")
    assert at(40, 30) == HORSE.id_of("torso") and at(28, 50) == HORSE.id_of("torso")  # neck -> torso
    assert at(25, 62) == HORSE.id_of("head") and at(50, 24) == at(54, 24) == HORSE.id_of("leg")
    assert at(35, 15) == HORSE.id_of("tail")
    assert (s.label == HORSE.id_of("saddle")).sum() == 0
    assert _prepare(tmp_path / "pp", "cat", tmp_path / "c", "--size", "40").exit_code == 0
    c = CocoDataset(tmp_path / "c")[0]
    assert c.image.shape == (40, 40, 3)
    names = {CAT.names[i - 1] for i in np.unique(c.label) if i}
    assert names == {"head", "eye", "nose", "ear", "neck", "torso", "tail", "f_leg", "b_leg"}


def test_part_names_of_the_real_index():
    assert part_label("car", "door_10") == "door" and part_label("car", "window_20") == "window"
    assert part_label("car", "bliplate") == "plate" and part_label("car", "rightmirror") == "body"
    assert part_label("cat", "rbpa") == "b_leg" and part_label("cat", "rfpa") == "f_leg"
    assert part_label("horse", "rblleg") == "leg" and part_label("horse", "muzzle") == "head"
    assert part_label("horse", "saddle") is None


def _break(root, how):
    ann, img = root / "Annotations_Part", root / "JPEGImages"
    s = (60, 100)
    if how == "unknown part":
        _write(ann, img, "2008_000001", s, [_obj("car", _m(s, 10, 50, 10, 90), [("spoiler", _m(s, 10, 12, 10, 90))])])
        return "unknown car part 'spoiler'"
    if how == "object mask size":
        small = (30, 50)
        _write(ann, img, "2008_000001", s, [_obj("car", _m(small, 1, 9, 1, 9), [("wheel_1", _m(small, 2, 4, 2, 4))])])
        (img / "2008_000001.jpg").write_bytes(cv2.imencode(".jpg", np.zeros(s + (3,), np.uint8))[1].tobytes())
        return "object 0 (car): mask size 50x30 does not match"
    if how == "part mask size":
        odd = [("wheel_1", _m((30, 50), 2, 4, 2, 4))]
        _write(ann, img, "2008_000001", s, [_obj("car", _m(s, 10, 50, 10, 90), odd)])
        return "part 'wheel_1' mask size 50x30"
    if how == "missing image":
        (img / "2008_000001.jpg").unlink()
        return "2008_000001.jpg: image file not found"
    if how == "not a mat":
        (ann / "2008_000000.mat").write_bytes(b"this is not MATLAB")
        return "2008_000000.mat: not a readable .mat file"
    if how == "no anno":
        scipy.io.savemat(str(ann / "2008_000000.mat"), {"other": np.zeros(3)})
        return "2008_000000.mat: not a PASCAL-Part annotation"
    if how == "empty":
        (ann / "2008_000001.mat").unlink()
        return "no car objects with part annotations"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["unknown part", "object mask size", "part mask size", "missing image", "not a mat",
                                 "no anno", "empty"])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, how):
    root = tmp_path / "pp"
    check_bad_input(lambda: make_pascal_part(root), lambda: _break(root, how),
                    lambda out: _prepare(root, "car", out), tmp_path / "out")
