"""`baggan coco` tools: pycocotools validity, COCOeval self-check, merge, split, stats, view, and their CLI."""

import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools.coco import COCO

from baggan.cli import cli
from baggan.data.coco import CocoDataset, CocoWriter, instances_from_label_map
from baggan.data.coco_tools import check, contact_sheet, merge, self_check, split, stats
from baggan.data.labelsets import FACE, PIDRAY
from baggan.errors import DataError, UserError
from baggan.io import read_image_rgb

sys.path.insert(0, str(Path(__file__).parent))
from _synth_toy import run_toy  # noqa: E402


def _write_dataset(root, n=6, seed=0, polygons=False, labelset=PIDRAY):
    """A small data set of random blocky label maps and noise images."""
    rng = np.random.default_rng(seed)
    w = CocoWriter(root, labelset.coco_categories(), {"description": "test"}, polygons=polygons)
    for _ in range(n):
        coarse = rng.integers(1, len(labelset.names) + 1, (6, 8)) * (rng.random((6, 8)) < 0.4)
        label = np.kron(coarse, np.ones((6, 6), np.int64))
        image = rng.integers(0, 256, (*label.shape, 3), dtype=np.uint8)
        w.add(image, label, instances_from_label_map(label), {"seed": seed})
    w.close()
    return Path(root)


@pytest.mark.parametrize("polygons", [False, True])
def test_export_loads_in_pycocotools_and_self_check_is_perfect(tmp_path, polygons):
    root = _write_dataset(tmp_path / "ds", polygons=polygons)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(root / "annotations.json"))
    assert len(coco.getImgIds()) == 6 and len(coco.getAnnIds()) > 10
    assert sorted(coco.getCatIds()) == list(range(1, 13))
    for ann in coco.dataset["annotations"]:
        assert coco.annToMask(ann).sum() == ann["area"]
    assert self_check(root / "annotations.json") == {"bbox": 1.0, "segm": 1.0}


def test_self_check_detects_a_broken_export(tmp_path):
    root = _write_dataset(tmp_path / "ds")
    doc = json.loads((root / "annotations.json").read_text())
    for ann in doc["annotations"][::2]:
        ann["bbox"] = [ann["bbox"][0] + ann["bbox"][2] / 2, ann["bbox"][1], ann["bbox"][2], ann["bbox"][3]]
    (root / "annotations.json").write_text(json.dumps(doc))
    assert self_check(root / "annotations.json")["bbox"] < 0.9


def test_merge_reids_and_keeps_every_file_and_latent(tmp_path):
    a, b = _write_dataset(tmp_path / "a", n=3, seed=1), _write_dataset(tmp_path / "b", n=4, seed=2)
    run_toy(tmp_path / "synth", n=5, shard_size=2, batch=2)
    out = merge([a, b, tmp_path / "synth"], tmp_path / "m")
    ds = CocoDataset(out)
    doc = ds.doc
    assert [im["id"] for im in doc["images"]] == list(range(1, 13))
    assert [an["id"] for an in doc["annotations"]] == list(range(1, len(doc["annotations"]) + 1))
    srcs = [CocoDataset(a), CocoDataset(b)] + [CocoDataset(tmp_path / "synth" / f"shard-0000{k}") for k in range(3)]
    flat = [(s, i) for s in srcs for i in range(len(s))]
    for j, (s, i) in enumerate(flat):
        assert np.array_equal(ds.read_image(j), s.read_image(i))
        assert np.array_equal(ds.read_label(j), s.read_label(i))
        assert [(x.category_id, x.mask.sum()) for x in ds.instances(j)] == \
            [(x.category_id, x.mask.sum()) for x in s.instances(i)]
    lat = np.load(out / "latents.npy")
    assert lat.shape[0] == 5 and doc["images"][-1]["latent_row"] == 4 and "latent_file" not in doc["images"][0]
    assert self_check(out / "annotations.json") == {"bbox": 1.0, "segm": 1.0}


def test_merge_refuses_other_categories_and_existing_output(tmp_path):
    a, f = _write_dataset(tmp_path / "a", n=2), _write_dataset(tmp_path / "f", n=2, labelset=FACE)
    with pytest.raises(DataError, match="categories"):
        merge([a, f], tmp_path / "m")
    assert not (tmp_path / "m").exists()
    with pytest.raises(UserError, match="already exists"):
        merge([a], a)


def test_split_is_a_seeded_partition(tmp_path):
    src = _write_dataset(tmp_path / "ds", n=10)
    train, val = split(src, 0.8, 3, tmp_path / "s")
    t, v = CocoDataset(train), CocoDataset(val)
    assert (len(t), len(v)) == (8, 2)
    names = sorted(im["source"] for im in t.images + v.images)
    assert names == sorted(f"ds/{im['file_name']}" for im in CocoDataset(src).images)
    again = split(src, 0.8, 3, tmp_path / "s2")
    assert json.loads((again[1] / "annotations.json").read_text()) == v.doc
    other = split(src, 0.8, 4, tmp_path / "s3")
    assert [im["source"] for im in CocoDataset(other[1]).images] != [im["source"] for im in v.images]
    with pytest.raises(UserError):
        split(src, 1.0, 0, tmp_path / "s4")


def test_stats_counts_instances_and_draws_histograms(tmp_path):
    src = _write_dataset(tmp_path / "ds", n=5)
    result = stats(src, tmp_path / "st")
    doc = json.loads((src / "annotations.json").read_text())
    assert result["instances"] == len(doc["annotations"])
    for c in PIDRAY.coco_categories():
        assert result["categories"][c["name"]]["instances"] == sum(a["category_id"] == c["id"]
                                                                   for a in doc["annotations"])
    assert json.loads((tmp_path / "st" / "stats.json").read_text()) == result
    assert read_image_rgb(tmp_path / "st" / "area_hist.png").shape[0] > 100


def test_contact_sheet_and_check_work_on_sharded_output(tmp_path):
    run_toy(tmp_path / "synth", n=7, shard_size=3, batch=4, min_area=3)
    sheet = read_image_rgb(contact_sheet(tmp_path / "synth", 4, tmp_path / "sheet.png", tile=64))
    assert sheet.shape == (2 * 66, 2 * 66, 3) and sheet.std() > 10
    assert stats(tmp_path / "synth", tmp_path / "st")["synthesis"]["acceptance_rate"] == 1.0
    report = check(tmp_path / "synth")
    assert len(report) == 3
    assert all(r["ap"] == {"bbox": 1.0, "segm": 1.0} and r["label_maps_matching_instances"] == r["images"]
               for r in report.values())


def test_cli_coco_commands(tmp_path):
    a, b = _write_dataset(tmp_path / "a", n=4, seed=1), _write_dataset(tmp_path / "b", n=4, seed=2)
    runner = CliRunner()
    r = runner.invoke(cli, ["coco", "merge", str(a), str(b), "--out", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    assert "8 images" in r.output and str(tmp_path / "m") in r.output
    r = runner.invoke(cli, ["coco", "split", str(tmp_path / "m"), "--ratio", "0.75", "--seed", "1",
                            "--out", str(tmp_path / "s")])
    assert r.exit_code == 0 and "train: 6 images" in r.output and "val: 2 images" in r.output, r.output
    r = runner.invoke(cli, ["coco", "stats", str(tmp_path / "s" / "train")])
    assert r.exit_code == 0 and (tmp_path / "s" / "train" / "stats" / "area_hist.png").is_file(), r.output
    r = runner.invoke(cli, ["coco", "view", str(tmp_path / "m"), "--n", "3", "--out", str(tmp_path / "v.png")])
    assert r.exit_code == 0 and (tmp_path / "v.png").is_file(), r.output
    r = runner.invoke(cli, ["coco", "check", str(tmp_path / "m")])
    assert r.exit_code == 0 and "AP bbox 1.000, AP segm 1.000" in r.output, r.output
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "annotations.json").write_text("{not json")
    r = runner.invoke(cli, ["coco", "stats", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "malformed JSON" in r.output
