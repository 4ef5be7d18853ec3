"""Masks from annotation tools (baggan.data.mask_formats): LabelMe JSON, COCO JSON as CVAT exports it (polygons,
compressed and uncompressed RLE) and palette PNGs, written in those tools' documented schemas, each give the same id
mask as the id PNG of the same shapes; unknown names, wrong sizes and other images' files are one-line errors, also
through `baggan oneshot fit --mask` (exit 2)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils

from baggan.cli import cli
from baggan.data.labelsets import PIDRAY
from baggan.data.mask_formats import SampleRef, palette_colours, read_mask_file
from baggan.errors import DataError
from baggan.io import write_image_atomic

R = 16
HAMMER, WRENCH, HANDCUFFS, KNIFE, IGNORE = 3, 6, 10, 11, 255


def expected_ids() -> np.ndarray:
    """The id PNG of the shapes below, painted in the same order (the Wrench overlaps the Hammer)."""
    m = np.zeros((R, R), np.uint8)
    m[3:9, 2:7] = HAMMER
    m[7:10, 5:8] = WRENCH
    m[2:5, 9:14] = HANDCUFFS
    m[5:10, 9:11] = HANDCUFFS
    m[11:14, 3:9] = KNIFE
    m[12:15, 12:15] = IGNORE
    return m


def labelme_doc(image_path: str = "seed0003.png", width: int = R, **first_shape) -> dict:
    """LabelMe 5 file: rectangles by two corner pixels, polygons by vertex pixels (both edges inclusive)."""
    def shape(label, points, kind):
        return {"label": label, "points": points, "group_id": None, "description": "", "shape_type": kind,
                "flags": {}, "mask": None}

    shapes = [shape("Hammer", [[2, 3], [6, 8]], "rectangle"),
              shape("wrench", [[5, 7], [7, 7], [7, 9], [5, 9]], "polygon"),
              shape("hand cuffs", [[9, 2], [13, 2], [13, 4], [10, 4], [10, 9], [9, 9]], "polygon"),
              shape("KNIFE", [[3, 11], [8, 13]], "rectangle"),
              shape("__ignore__", [[12, 12], [14, 14]], "rectangle")]
    shapes[0].update(first_shape)
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": None,
            "imageHeight": R, "imageWidth": width}


def box_polygon(x0, y0, x1, y1):
    """COCO polygon of pixels x0..x1, y0..y1 (COCO coordinates are pixel edges)."""
    return [x0, y0, x1 + 1, y0, x1 + 1, y1 + 1, x0, y1 + 1]


def coco_doc(file_name: str = "seed0003.png", extra_images: tuple = ()) -> dict:
    """CVAT 'COCO 1.0' export: polygons (iscrowd 0), masks as uncompressed RLE (iscrowd 1), plus a compressed RLE."""
    knife = np.zeros((R, R), np.uint8, order="F")
    knife[11:14, 3:9] = 1
    compressed = mask_utils.encode(knife)
    compressed["counts"] = compressed["counts"].decode("ascii")
    ignore = np.zeros((R, R), np.uint8)
    ignore[12:15, 12:15] = 1
    counts, value, run = [], 0, 0  # uncompressed RLE: column-major run lengths, starting with a run of zeros
    for v in ignore.flatten(order="F"):
        if v != value:
            counts.append(run)
            value, run = v, 0
        run += 1
    counts.append(run)
    assert sum(counts) == R * R
    cats = ["hammer", "Wrench", "HANDCUFFS", "Knife", "Not Annotated"]
    ann = [(1, [box_polygon(2, 3, 6, 8)], 0), (2, [box_polygon(5, 7, 7, 9)], 0),
           (3, [[9, 2, 14, 2, 14, 5, 11, 5, 11, 10, 9, 10]], 0), (4, compressed, 0),
           (5, {"counts": counts, "size": [R, R]}, 1)]
    images = [{"id": i + 1, "width": R, "height": R, "file_name": f, "license": 0, "flickr_url": "", "coco_url": "",
               "date_captured": 0} for i, f in enumerate((file_name,) + extra_images)]
    return {"licenses": [{"name": "", "id": 0, "url": ""}],
            "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
            "categories": [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(cats)],
            "images": images,
            "annotations": [{"id": k + 1, "image_id": 1, "category_id": c, "segmentation": seg, "area": 0.0,
                             "bbox": [0, 0, 0, 0], "iscrowd": crowd, "attributes": {"occluded": False}}
                            for k, (c, seg, crowd) in enumerate(ann)]}


def palette_png(ids: np.ndarray) -> np.ndarray:
    rgb = np.zeros(ids.shape + (3,), np.uint8)
    for colour, cid in palette_colours(PIDRAY).items():
        rgb[ids == cid] = colour
    return rgb


@pytest.fixture
def files(tmp_path):
    write_image_atomic(tmp_path / "ids.png", expected_ids())
    write_image_atomic(tmp_path / "palette.png", palette_png(expected_ids()))
    (tmp_path / "labelme.json").write_text(json.dumps(labelme_doc()))
    (tmp_path / "coco.json").write_text(json.dumps(coco_doc()))
    return tmp_path


@pytest.mark.parametrize("name", ["palette.png", "labelme.json", "coco.json"])
def test_every_format_gives_the_id_png_of_the_same_shapes(files, name):
    reference = read_mask_file(files / "ids.png", R, PIDRAY)
    assert set(np.unique(reference).tolist()) == {0, HAMMER, WRENCH, HANDCUFFS, KNIFE, IGNORE}
    got = read_mask_file(files / name, R, PIDRAY, SampleRef(seed=3))
    np.testing.assert_array_equal(got, reference)


def test_coco_picks_the_samples_image_among_several(tmp_path):
    doc = coco_doc("frames/seed0003.png", extra_images=("seed0004.png",))
    (tmp_path / "c.json").write_text(json.dumps(doc))
    np.testing.assert_array_equal(read_mask_file(tmp_path / "c.json", R, PIDRAY, SampleRef(seed=3)), expected_ids())
    assert not read_mask_file(tmp_path / "c.json", R, PIDRAY, SampleRef(seed=4)).any()  # no annotation of image 2


@pytest.mark.parametrize("doc, sample, message", [
    (labelme_doc(label="Banana"), SampleRef(seed=3), "l.json: shape 0: unknown category 'Banana' (label set pidray"),
    (labelme_doc(width=20), SampleRef(seed=3), "l.json: mask is 20x16, the generator makes 16x16 scans"),
    (labelme_doc("seed0007.png"), SampleRef(seed=3), "l.json: annotates image 'seed0007.png', not the sample seed0003.png"),
    (labelme_doc("bag.png"), SampleRef(name="scan.png"), "l.json: annotates image 'bag.png', not the sample scan.png"),
    (labelme_doc(shape_type="line"), None, "l.json: shape 0: shape type 'line' with 2 points has no area"),
    (coco_doc("seed0009.png"), SampleRef(seed=3), "l.json: none of its images (seed0009.png) is the sample seed0003.png"),
    (coco_doc("a.png", ("b.png",)), None, "l.json: holds 2 images that could be the sample (a.png, b.png)"),
    ({"images": []}, None, "l.json: neither a PNG mask nor a LabelMe or COCO JSON file"),
])  # fmt: skip
def test_bad_files_are_one_line_errors(tmp_path, doc, sample, message):
    (tmp_path / "l.json").write_text(json.dumps(doc))
    with pytest.raises(DataError) as e:
        read_mask_file(tmp_path / "l.json", R, PIDRAY, sample)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_colour_outside_the_palette_is_named(tmp_path):
    rgb = palette_png(expected_ids())
    rgb[5, 4] = (10, 200, 10)
    write_image_atomic(tmp_path / "p.png", rgb)
    with pytest.raises(DataError, match=r"p.png: colour RGB\(10, 200, 10\) at pixel \(4, 5\) is no category"):
        read_mask_file(tmp_path / "p.png", R, PIDRAY)


def test_malformed_json_is_named(tmp_path):
    (tmp_path / "m.json").write_text('{"shapes": [')
    with pytest.raises(DataError, match=r"m.json: malformed JSON"):
        read_mask_file(tmp_path / "m.json", R, PIDRAY)


@pytest.fixture(scope="module")
def pieces(tmp_path_factory):
    """A tiny random 16² generator and HFC encoder on disk."""
    from train_fixtures import tiny_config

    from baggan.synth.build import write_random_pieces

    d = tmp_path_factory.mktemp("pieces")
    network, hfc, _ = write_random_pieces(d, tiny_config().network, dim=8)
    return network, hfc


def test_oneshot_fit_reads_tool_files_and_refuses_bad_ones(pieces, files):
    network, hfc = pieces
    base = ["oneshot", "fit", "--network", network, "--hfc", hfc, "--device", "cpu", "--epochs", 2, "--seed", 3]
    r = CliRunner().invoke(cli, [str(a) for a in base + ["--mask", files / "coco.json", "--out", files / "s.pt"]])
    assert r.exit_code == 0, r.output
    assert "classes: background, Hammer, Wrench, HandCuffs, Knife" in r.output
    (files / "other.json").write_text(json.dumps(labelme_doc("seed0008.png")))
    r = CliRunner().invoke(cli, [str(a) for a in base + ["--mask", files / "other.json", "--out", files / "n.pt"]])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1, r.output
    assert "other.json: annotates image 'seed0008.png', not the sample seed0003.png" in r.stderr
    assert not (files / "n.pt").exists()
