"""`baggan simulate` through click's CliRunner: the COCO data set it writes, workers, bad input."""

import json

import numpy as np
from click.testing import CliRunner

from baggan.cli import cli
from baggan.data.coco import CocoDataset
from baggan.data.xraysim import SimConfig, XRaySimulator, scan_seed
from baggan.io import read_label_png


def _run(*args):
    return CliRunner().invoke(cli, ["simulate", *map(str, args)])


def test_simulate_writes_a_coco_data_set_the_reader_consumes(tmp_path):
    out = tmp_path / "sim"
    result = _run("--n", 5, "--size", 64, "--outdir", out, "--threat-rate", 1.0, "--seed", 3)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    ds = CocoDataset(out)
    assert len(ds) == 5
    doc = json.loads((out / "annotations.json").read_text())
    assert [c["name"] for c in doc["categories"]][:3] == ["Baton", "Pliers", "Hammer"]
    assert doc["info"]["simulator"]["threat_rate"] == 1.0
    for i, sample in enumerate(ds):
        assert sample.image.shape == (64, 64, 3)
        assert sample.meta["seed"] == scan_seed(3, i)
        assert sample.instances, "threat rate 1: every bag carries a threat"
        for inst in sample.instances:
            assert 0 < inst.extra["visibility"] <= 1
            assert (sample.label[inst.mask] > 0).all()
        scan = XRaySimulator(SimConfig(threat_rate=1.0)).render(sample.meta["seed"], 64)
        assert np.array_equal(scan.image, sample.image)  # a record's seed reproduces its scan exactly
        assert np.array_equal(scan.label, sample.label)
        material = read_label_png(out / "materials" / sample.meta["material_file"])
        assert material.shape == (64, 64) and material.max() > 0


def test_workers_give_identical_output(tmp_path):
    args = ("--n", 6, "--size", 64, "--threat-rate", 0.5, "--seed", 9)
    assert _run(*args, "--outdir", tmp_path / "one").exit_code == 0
    result = _run(*args, "--outdir", tmp_path / "two", "--workers", 2)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "one" / "annotations.json").read_bytes() == (tmp_path / "two" / "annotations.json").read_bytes()
    for sub in ("images", "labels", "materials"):
        for f in sorted((tmp_path / "one" / sub).iterdir()):
            assert f.read_bytes() == (tmp_path / "two" / sub / f.name).read_bytes()


def test_threat_rate_zero_gives_no_annotations(tmp_path):
    assert _run("--n", 3, "--size", 64, "--outdir", tmp_path / "s", "--threat-rate", 0).exit_code == 0
    doc = json.loads((tmp_path / "s" / "annotations.json").read_text())
    assert doc["annotations"] == [] and len(doc["images"]) == 3
    assert all(np.asarray(read_label_png(tmp_path / "s" / "labels" / im["label_file"])).max() == 0
               for im in doc["images"])


def test_config_file_and_bad_input(tmp_path):
    cfg = tmp_path / "sim.yaml"
    cfg.write_text("threat_classes: [Wrench]\nthreat_rate: 1.0\n")
    assert _run("--n", 2, "--size", 64, "--outdir", tmp_path / "w", "--config", cfg).exit_code == 0
    doc = json.loads((tmp_path / "w" / "annotations.json").read_text())
    assert {a["category_id"] for a in doc["annotations"]} == {6}
    cfg.write_text("threat_rate: 2.0\n")
    result = _run("--n", 2, "--size", 64, "--outdir", tmp_path / "x", "--config", cfg)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "threat_rate" in result.output
    assert not (tmp_path / "x").exists()
    result = _run("--n", 1, "--size", 64, "--outdir", tmp_path / "w")  # not empty: refuse, keep it
    assert result.exit_code == 2 and "not empty" in result.output
    assert len(CocoDataset(tmp_path / "w")) == 2
    assert _run("--n", 1, "--size", 64, "--outdir", tmp_path / "w", "--overwrite").exit_code == 0
    assert len(CocoDataset(tmp_path / "w")) == 1
    assert _run("--n", 1, "--size", 8, "--outdir", tmp_path / "y").exit_code == 2  # size out of range
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folders left behind
