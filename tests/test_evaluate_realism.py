"""Realism protocol: material classes and histogram distances by hand, a tiny end-to-end CLI run, bad inputs."""

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from evaluate_shapes import make_shapes_set, one_thread  # noqa: F401 (autouse fixture)

from baggan.cli import cli
from baggan.errors import UserError
from baggan.evaluate import realism as rl


def test_classify_materials_by_hand():
    pixels = {  # RGB → expected material
        (255, 255, 255): "background", (240, 235, 220): "background",  # white, faint beige bag shell
        (230, 140, 50): "organic", (200, 120, 90): "organic",  # orange, brown
        (60, 160, 70): "inorganic", (150, 200, 80): "inorganic",  # green, yellow-green
        (40, 60, 150): "metal", (20, 20, 30): "metal", (100, 100, 100): "metal",  # blue, black, dark grey
        (200, 200, 200): "background",  # light unsaturated haze
    }
    image = np.array([list(pixels)], np.uint8)
    got = [rl.MATERIALS[m] for m in rl.classify_materials(image)[0]]
    assert got == list(pixels.values())


def test_material_fractions():
    image = np.zeros((1, 2, 4, 3), np.uint8)
    image[0, 0] = (255, 255, 255)  # 4 background pixels
    image[0, 1, :3] = (230, 140, 50)  # 3 organic
    image[0, 1, 3] = (40, 60, 150)  # 1 metal
    f = rl.material_fractions(image)
    assert f == pytest.approx({"background": 0.5, "organic": 0.75, "inorganic": 0.0, "metal": 0.25})


def test_histograms_and_distances_by_hand():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[..., 0] = 10  # red shifted by 10 grey levels everywhere
    b[1, :2, :, 1] = 255  # half of one image's green moved to 255: a quarter of all green mass
    pa, pb = rl.channel_histograms(a), rl.channel_histograms(b)
    assert pa.shape == (3, 256) and np.allclose(pa.sum(1), 1)
    d = rl.histogram_distances(pa, pb)
    assert d["wasserstein1"] == pytest.approx([10.0, 0.25 * 255, 0.0])
    assert d["intersection"] == pytest.approx([0.0, 0.75, 1.0])


def test_square_resize_centre_crops():
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, 10:30] = 255  # the centre square is white, the sides black
    assert (rl.square_resize(image, 10) == 255).all()


def test_list_scans_errors(tmp_path):
    with pytest.raises(UserError, match="directory not found"):
        rl.list_scans(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="no PNG/JPG images and no annotations.json"):
        rl.list_scans(tmp_path)


def _png_folder(path, n, colour, seed):
    """A folder of n 40x48 noisy PNG scans around `colour`."""
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.clip(np.array(colour) + rng.normal(0, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(path / f"{i:03d}.png"), img[..., ::-1])
    return path


def test_realism_end_to_end(tmp_path):
    folder = _png_folder(tmp_path / "gan", 4, (120, 170, 90), 0)
    coco = make_shapes_set(tmp_path / "sim", 4, 32, seed=5)
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", "realism", "--sets", str(coco), str(folder), "--names", "sim", "gan",
                                      "--outdir", str(out), "--max-images", "4", "--resolution", "32",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'realism.md'}" in result.output
    data = json.loads((out / "realism.json").read_text())
    assert [(s["name"], s["kind"], s["used"]) for s in data["sets"]] == [("sim", "coco", 4), ("gan", "folder", 4)]
    (comp,) = data["comparisons"]
    assert (comp["a"], comp["b"]) == ("sim", "gan") and comp["fid"] > 0 and len(comp["wasserstein1"]) == 3
    sim = data["sets"][0]["materials"]
    assert sim["background"] > 0.5 and sum(sim[m] for m in ("organic", "inorganic", "metal")) == pytest.approx(1)
    md = (out / "realism.md").read_text()
    assert "| A | B | FID | KID × 10³ |" in md
    for png in ("collage.png", "histograms.png", "materials.png", "material_maps.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,message", [
    (["--sets", "{a}", "{a}", "{a}", "--names", "x", "y"], "--names gives 2 names for 3 sets"),
    (["--sets", "{a}"], "--sets needs at least two sets"),
    (["--sets", "{a}", "{missing}"], "directory not found"),
    (["--sets", "{a}", "{one}"], "1 scan; FID and KID need at least 2 per set"),
])
def test_realism_bad_inputs_are_one_line_errors(tmp_path, args, message):
    a = _png_folder(tmp_path / "a", 2, (200, 200, 200), 0)
    one = _png_folder(tmp_path / "one", 1, (200, 200, 200), 0)
    args = [x.format(a=a, missing=tmp_path / "missing", one=one) for x in args]
    result = CliRunner().invoke(cli, ["evaluate", "realism", *args, "--outdir", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
