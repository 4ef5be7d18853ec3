"""DEBISim run folders: label projection against closed forms, calibrated pseudo-colour, safe loading, every
bad input, and the prepared COCO set through pycocotools, `coco check` and the evaluation commands."""

import gzip
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from data_helpers import assert_failed_cleanly
from debisim_fixture import (FIXTURE_CONE, FIXTURE_PARALLEL, SHAPE, box_footprint, cylinder_footprint, label_volume,
                             layout, metadata, write_fits, write_run)
from scipy import ndimage

from baggan.cli import cli
from baggan.data.coco import CocoDataset
from baggan.data.debisim import colour as col
from baggan.data.debisim.files import load_pickle, parse_metadata, read_fits
from baggan.data.debisim.geometry import CONE, PARALLEL, footprints
from baggan.errors import DataError
from baggan.evaluate.realism import MATERIALS, classify_materials


def assert_within_a_pixel(got: np.ndarray, expected: np.ndarray) -> None:
    """got equals expected except on expected's border: eroded(expected) <= got <= dilated(expected)."""
    ring = np.ones((3, 3), bool)
    assert expected.sum() > 20  # a footprint of some size, not an empty comparison
    assert not (ndimage.binary_erosion(expected, ring) & ~got).any(), "pixels inside the footprint missing"
    assert not (got & ~ndimage.binary_dilation(expected, ring)).any(), "pixels beyond the footprint's border"


@pytest.mark.parametrize("geom", [FIXTURE_CONE, FIXTURE_PARALLEL], ids=["cone", "parallel"])
@pytest.mark.parametrize("seed", [1, 2])
def test_projected_box_and_cylinder_match_closed_form(geom, seed):
    vol = label_volume(seed)
    shapes = layout(seed)
    for view in ("top", "side"):
        got = footprints(vol, [4, 5, 8], geom, view)
        for label in (4, 8):  # boxes in both views
            assert_within_a_pixel(got[label], box_footprint(geom, view, shapes[label][2]))
    assert_within_a_pixel(footprints(vol, [5], geom, "top")[5], cylinder_footprint(geom, shapes[5][2]))


def test_cone_beam_magnifies_by_depth():
    """The same box nearer the source casts a larger shadow (magnification (SO + OD) / (SO + depth))."""
    vol = np.zeros(SHAPE, np.int16)
    vol[10:14, 28:36, 20:28] = 4  # near the source (top view: source above)
    vol[50:54, 28:36, 20:28] = 5  # near the detector
    fp = footprints(vol, [4, 5], FIXTURE_CONE, "top")
    width = {k: int(m.any(axis=1).sum()) for k, m in fp.items()}
    depth = {4: 10 + 0.5 - 32, 5: 53 + 0.5 - 32}  # nearest slice centre to the source, mm from the centre
    for k in (4, 5):
        expected = 8 * 200 / (100 + depth[k]) / FIXTURE_CONE.pitch_u
        assert abs(width[k] - expected) <= 1
    assert width[4] > width[5] + 3
    par = footprints(vol, [4, 5], FIXTURE_PARALLEL, "top")
    assert par[4].sum() == par[5].sum() == 8 * 8  # no magnification at pitch 1


def test_presets_are_debisims_scanners():
    assert (CONE.det_u, CONE.det_v, CONE.pitch_u, CONE.pitch_v, CONE.magnification) == (1024, 1024, 1.44, 1.02, 2.0)
    assert (PARALLEL.det_u, PARALLEL.pitch_u, PARALLEL.magnification, PARALLEL.file_view("top")) == (512, 0.75, 1.0,
                                                                                                     "side")


# ------------------------------------------------------------------------------------------------ colour

def _slab_colour(cal, spectra, material, mm):
    mu = col.reference_mu(material)
    a = [col.line_integral(s, mu, np.full((4, 4), mm)).astype(np.float32) for s in spectra]
    return cal.colour(*a) if len(a) == 2 else cal.grey(a[0])


@pytest.mark.parametrize("use_files", [False, True], ids=["built-in", "spectrum-files"])
def test_pure_materials_are_orange_green_blue(tmp_path, use_files):
    spectra = col.default_spectra(2)
    if use_files:  # DEBISim's spectrum file format: rows 'keV weight' (here a harder pair of 160 kV spectra)
        spectra = (col.kramers_spectrum(57.0), col.kramers_spectrum(61.0))
        paths = []
        for i, s in enumerate(spectra):
            paths.append(tmp_path / f"spec{i}.txt")
            np.savetxt(paths[-1], np.stack([col.KEV, s], 1))
        spectra = tuple(col.read_spectrum(p) for p in paths)
    cal = col.calibrate(spectra)
    cases = {"plastic": (20, 80, 200), "water": (50, 150), "aluminium": (10, 40), "steel": (2, 6, 15)}
    expected = {"plastic": "organic", "water": "organic", "aluminium": "inorganic", "steel": "metal"}
    for material, thicknesses in cases.items():
        for mm in thicknesses:
            rgb = _slab_colour(cal, spectra, material, mm)
            got = MATERIALS[int(classify_materials(rgb)[0, 0])]
            assert got == expected[material], (material, mm, rgb[0, 0])
    # the calibration is for the run's spectra: the same ratio reads differently under other spectra
    other = col.calibrate((col.kramers_spectrum(50.0), col.kramers_spectrum(62.0)))
    a1, a2 = np.full((1, 1), 1.02, np.float32), np.full((1, 1), 1.0, np.float32)
    assert cal.hue_ratio(a1, a2)[0, 0] != pytest.approx(other.hue_ratio(a1, a2)[0, 0], rel=0.05)


def test_one_spectrum_is_grey_and_darkens():
    spectra = col.default_spectra(1)
    cal = col.calibrate(spectra)
    grey = [_slab_colour(cal, spectra, "water", mm)[0, 0] for mm in (0, 20, 100)]
    assert all(len(set(px.tolist())) == 1 for px in grey)  # R = G = B
    assert grey[0][0] == 255 and grey[0][0] > grey[1][0] > grey[2][0]


def test_spectrum_file_errors(tmp_path):
    bad = tmp_path / "s.txt"
    bad.write_text("10 0.5 1\n11 0.5 1\n")
    with pytest.raises(DataError, match=f"{bad}: not a spectrum file"):
        col.read_spectrum(bad)
    bad.write_text("5 1\n")
    with pytest.raises(DataError, match=r"whole keV in \[10, 160\]"):
        col.read_spectrum(bad)


# ------------------------------------------------------------------------------------------------ safe loading

class _Hostile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _HostileEval:
    def __reduce__(self):
        return eval, ("__import__('os').system('touch /tmp/baggan-debisim-eval-marker')",)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_metadata_with_numpy_loads_at_every_protocol(tmp_path, protocol):
    path = tmp_path / "sl_metadata.pyc"
    path.write_bytes(metadata(1, protocol))
    objects = parse_metadata(load_pickle(path), path)
    assert {k: (o.material, o.kind, o.threat) for k, o in objects.items()} == {
        4: ("Al", "object", False), 5: ("Fe", "object", False), 6: ("polyethylene", "object", False),
        7: ("H2O2", "liquid", True), 8: ("ethanol", "object", True)}
    assert objects[7].mu_curve.shape == (151,)


@pytest.mark.parametrize("payload", ["system", "eval"])
def test_hostile_metadata_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "ran"
    evil = _Hostile(marker) if payload == "system" else _HostileEval()
    path = tmp_path / "sl_metadata.pyc"
    path.write_bytes(pickle.dumps({"4": {"label": 4, "material": evil}}))
    with pytest.raises(DataError, match=f"{path}: refused to load: the pickle names '(posix|builtins)"):
        load_pickle(path)
    assert not marker.exists() and not Path("/tmp/baggan-debisim-eval-marker").exists()


@pytest.mark.parametrize("doc,message", [
    ([1, 2], "metadata is not a dict of objects (got list)"),
    ({"4": {"label": 4}}, "object '4': not an object dict with 'label' and 'material'"),
    ({"4": {"label": "four", "material": "Al"}}, "object '4': label 'four' is not an integer"),
    ({"6": {"label": 6, "material": "pvc", "lqd_flag": True, "lqd_param": {"lqd_material": "H2O2"}}},
     "object '6': liquid container without lqd_param"),
    ({"6": {"label": 6, "material": "pvc", "lqd_flag": True, "lqd_param": {"lqd_material": "x", "lqd_label": None}}},
     "object '6': liquid label None is not an integer"),
])
def test_malformed_metadata_is_one_error_naming_the_record(doc, message):
    with pytest.raises(DataError, match=f"^m.pyc: {message}".replace("(", r"\(").replace(")", r"\)")):
        parse_metadata(doc, Path("m.pyc"))


def test_fits_variants_read_natively(tmp_path):
    data = np.arange(24, dtype=">f4").reshape(2, 3, 4)
    for name, compress in (("plain.fits.gz", False), ("tiles.fits.gz", True), ("plain.fits", False)):
        write_fits(tmp_path / name, data, compress)
        got = read_fits(tmp_path / name)
        assert got.dtype == np.float32 and got.dtype.byteorder in "=<" and np.array_equal(got, data)
    assert (tmp_path / "plain.fits.gz").read_bytes()[:2] == b"\x1f\x8b"  # gzip, as DEBISim's .gz files
    truncated = tmp_path / "cut.fits.gz"
    truncated.write_bytes((tmp_path / "plain.fits.gz").read_bytes()[:40])
    with pytest.raises(DataError, match=f"{truncated}: unreadable FITS file"):
        read_fits(truncated)
    cut = tmp_path / "cut.fits"  # the header whole, the data cut short
    cut.write_bytes((tmp_path / "plain.fits").read_bytes()[:2880 + 40])
    with pytest.raises(DataError, match=f"{cut}: truncated FITS file"):
        read_fits(cut)
    scaled = tmp_path / "scaled.fits"  # BZERO-scaled unsigned data: astropy decodes it
    write_fits(scaled, np.arange(6, dtype=np.uint16).reshape(2, 3) + 60000)
    assert read_fits(scaled).tolist() == [[60000, 60001, 60002], [60003, 60004, 60005]]


# ------------------------------------------------------------------------------------------------ the command

def _prepare(root: Path, out: Path, *extra: str):
    args = ["prepare", "debisim", "--root", str(root), "--outdir", str(out), "--geometry", str(root / "scanner.yaml")]
    return CliRunner().invoke(cli, args + list(extra))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("debisim") / "run"
    write_run(root, n_bags=2)
    return root


def test_prepare_writes_coco_that_pycocotools_and_coco_check_accept(run, tmp_path):
    out = tmp_path / "out"
    result = _prepare(run, out, "--view", "both")
    assert result.exit_code == 0, result.output
    assert "wrote 4 scans from 2 DEBISim bags" in result.output
    ds = CocoDataset(out)
    assert [im["file_name"] for im in ds.images] == ["simulation_001_top.png", "simulation_001_side.png",
                                                    "simulation_002_top.png", "simulation_002_side.png"]
    names = {c["id"]: c["name"] for c in ds.categories}
    for i, rec in enumerate(ds.images):
        sample = ds[i]
        assert sample.image.shape == (96, 72, 3) and rec["agreement"] >= 0.9
        assert sorted(names[inst.category_id] for inst in sample.instances) == ["H2O2", "ethanol"]
        # the instances are the projected footprints of the threat labels
        vol = label_volume(int(rec["bag"][-3:]))
        fp = footprints(vol, [7, 8], FIXTURE_CONE, rec["view"])
        for inst in sample.instances:
            assert np.array_equal(inst.mask, fp[inst.extra["debisim_label"]])
        # a threat wins where it overlaps another: the label map holds the ethanol box over the aluminium one
        assert (sample.label[fp[8]] == [k for k, n in names.items() if n == "ethanol"][0]).all()
    from pycocotools.coco import COCO

    coco = COCO(str(out / "annotations.json"))
    assert len(coco.getAnnIds()) == 8
    check = CliRunner().invoke(cli, ["coco", "check", str(out)])
    assert check.exit_code == 0, check.output


def test_prepare_materials_size_and_colour(run, tmp_path):
    out = tmp_path / "out"
    result = _prepare(run, out, "--view", "top", "--categories", "materials", "--size", "48", "--polygons")
    assert result.exit_code == 0, result.output
    ds = CocoDataset(out)
    assert all(isinstance(a["segmentation"], list) for a in ds.doc["annotations"])  # polygons, not RLE
    names = {c["id"]: c["name"] for c in ds.categories}
    assert [names[i] for i in range(1, 3)] == ["H2O2", "ethanol"] and {"Al", "Fe", "polyethylene"} <= set(
        names.values())
    sample = ds[0]
    assert sample.image.shape == (48, 48, 3)
    cls = classify_materials(sample.image)
    by_name = {names[inst.category_id]: inst.mask for inst in sample.instances}
    # the steel cylinder reads as metal, the aluminium box (outside the ethanol's shadow) as inorganic
    assert np.mean(cls[by_name["Fe"]] == 3) > 0.8
    assert np.mean(cls[by_name["Al"] & ~by_name["ethanol"]] == 2) > 0.7


def test_parallel_run_reads_its_swapped_view_names(tmp_path):
    root = tmp_path / "par"
    write_run(root, n_bags=1, geom=FIXTURE_PARALLEL, n_spectra=1)
    out = tmp_path / "out"
    result = _prepare(root, out, "--view", "top")
    assert result.exit_code == 0, result.output
    rec = CocoDataset(out).images[0]
    assert rec["source_files"] == ["images/bag_side_view.fits.gz"] and rec["spectra"] == 1
    image = CocoDataset(out).read_image(0)
    assert (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()  # grey
    # read with the names taken literally, the views do not match the label volume: refused
    geom = yaml.safe_load((root / "scanner.yaml").read_text())
    (root / "scanner.yaml").write_text(yaml.safe_dump({**geom, "swap_views": False}))
    assert_failed_cleanly(_prepare(root, tmp_path / "out2", "--view", "top"), "does not match the label volume",
                          tmp_path / "out2")


def test_ct_slices(tmp_path):
    root = tmp_path / "ct"
    write_run(root, n_bags=1)
    vol = label_volume(1)
    hu = np.where(vol > 0, 1000 * vol, -1000).astype(np.int16)
    write_fits(root / "simulation_001" / "images" / "recon_image_1.fits.gz", hu)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["prepare", "debisim", "--root", str(root), "--outdir", str(out), "--ct",
                                      "--ct-step", "4"])
    assert result.exit_code == 0, result.output
    ds = CocoDataset(out)
    slices = [im["slice"] for im in ds.images]
    z_threat = {k for k in range(0, SHAPE[2], 4) if np.isin(vol[:, :, k], [7, 8]).any()}
    assert set(slices) == z_threat
    k = ds.images[0]["slice"]
    label = ds.read_label(0)
    assert np.array_equal(label > 0, np.isin(vol[:, :, k], [7, 8]))


def _damage_missing(root):
    path = root / "simulation_002" / "images" / "bag_top_view_spec2.fits.gz"
    path.unlink()
    return str(path)


def _damage_rotated(root):
    write_run(root, n_bags=2, rotate={2: 20})
    return f"{root / 'simulation_002' / 'images'}"


def _damage_shape(root):
    path = root / "simulation_002" / "ground_truth" / "gt_label_image.fits.gz"
    write_fits(path, np.zeros((40, 64, 48), np.int16))
    return f"{path}: label volume is 40x64x48"


def _damage_truncated(root):
    path = root / "simulation_002" / "images" / "bag_top_view_spec1.fits.gz"
    path.write_bytes(path.read_bytes()[:300])
    return f"{path}: unreadable FITS file"


def _damage_hostile(root):
    path = root / "simulation_002" / "sl_metadata.pyc"
    path.write_bytes(pickle.dumps({"4": _Hostile(root / "ran")}))
    return f"{path}: refused to load"


def _damage_not_gzip_metadata(root):
    path = root / "simulation_002" / "sl_metadata.pyc"
    path.write_bytes(gzip.compress(b"not a pickle"))
    return f"{path}: unreadable metadata pickle"


@pytest.mark.parametrize("damage", [_damage_missing, _damage_rotated, _damage_shape, _damage_truncated,
                                    _damage_hostile, _damage_not_gzip_metadata],
                         ids=["missing", "rotated", "shape", "truncated", "hostile", "not-a-pickle"])
def test_bad_bag_refuses_the_run_or_is_skipped(tmp_path, damage):
    root = tmp_path / "run"
    write_run(root, n_bags=2)
    expected = damage(root)
    out = tmp_path / "out"
    assert_failed_cleanly(_prepare(root, out, "--view", "top"), expected, out)
    result = _prepare(root, out, "--view", "top", "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "wrote 1 scans from 1 DEBISim bags" in result.output
    assert "skipped 1 of 2 bags (--skip-bad): simulation_002" in result.output
    assert f"skipped simulation_002: {expected}" in result.output or expected in result.output
    assert [im["bag"] for im in CocoDataset(out).images] == ["simulation_001"]
    assert json.loads((out / "annotations.json").read_text())["info"]["skipped_bags"] == ["simulation_002"]
    assert not (root / "ran").exists()


@pytest.mark.parametrize("case,message", [
    ("no-bags", "no DEBISim bag folders"),
    ("no-view", "--view is required"),
    ("unknown-size", "a 96x72 view is neither DEBISim's cone-beam"),
    ("all-bad", "no scans written (2 bad bags skipped"),
])
def test_run_level_errors(tmp_path, case, message):
    root = tmp_path / "run"
    write_run(root, n_bags=2)
    out = tmp_path / "out"
    args = ["prepare", "debisim", "--root", str(root), "--outdir", str(out), "--view", "top"]
    if case == "no-bags":
        args[3] = str(tmp_path)
    elif case == "no-view":
        args = args[:-2]
    if case != "unknown-size":
        args += ["--geometry", str(root / "scanner.yaml")]
    if case != "all-bad":
        assert_failed_cleanly(CliRunner().invoke(cli, args), message, out)
        return
    for b in (1, 2):
        (root / f"simulation_00{b}" / "sl_metadata.pyc").unlink()
    result = CliRunner().invoke(cli, args + ["--skip-bad"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 3 and lines[-1].startswith("error: ") and message in lines[-1]
    assert [line.split(":")[0] for line in lines[:2]] == ["skipped simulation_001", "skipped simulation_002"]
    assert not out.exists()


class _CheapFeatures:
    """Stands in for the Inception network (which test_evaluate_realism runs): pixel features, same shape."""

    def __init__(self, device, batch_size=16):
        pass

    def __call__(self, images, progress=None):
        flat = np.asarray(images, np.float64).reshape(len(images), -1)[:, :64]
        return np.repeat(flat, 32, axis=1)


def test_evaluation_recipe_on_the_fixture(tmp_path, monkeypatch):
    """docs/evaluation.md's recipe: DEBISim sets into realism and downstream (R:A with DEBISim as synthetic)."""
    from baggan.metrics import fid

    monkeypatch.setattr(fid, "InceptionFeatures", _CheapFeatures)
    sets = {}
    for seed, name in enumerate(("real", "synthetic", "test"), 1):
        write_run(tmp_path / f"{name}-run", n_bags=1, seed=seed)
        sets[name] = tmp_path / name
        result = _prepare(tmp_path / f"{name}-run", sets[name], "--view", "both", "--size", "64")
        assert result.exit_code == 0, result.output
    report = tmp_path / "realism"
    result = CliRunner().invoke(cli, ["evaluate", "realism", "--sets", str(sets["real"]), str(sets["synthetic"]),
                                      "--outdir", str(report), "--max-images", "4", "--resolution", "32",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    data = json.loads((report / "realism.json").read_text())
    assert [s["kind"] for s in data["sets"]] == ["coco", "coco"] and data["comparisons"][0]["fid"] >= 0
    preset = yaml.safe_load((Path(__file__).parents[1] / "configs/eval/downstream-debisim-fixture.yaml").read_text())
    cfg = tmp_path / "tiny.yaml"  # the recipe's preset, cut down to two steps per run
    cfg.write_text(yaml.safe_dump({**preset, "resolution": 32, "steps": 2, "batch_size": 2, "seeds": [0],
                                   "ratios": [0, 1], "num_real": 2, "max_test": 2, "show": 1,
                                   "models": [{"name": "deeplabv3", "depth": 18, "width": 8, "output_stride": 8,
                                               "head_channels": 8}]}))
    out = tmp_path / "downstream"
    result = CliRunner().invoke(cli, ["evaluate", "downstream", "--config", str(cfg), "--real", str(sets["real"]),
                                      "--synthetic", str(sets["synthetic"]), "--test", str(sets["test"]),
                                      "--outdir", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "downstream.json").read_text())
    assert summary["data"]["classes"] == ["background", "H2O2", "ethanol"]
    assert len(summary["runs"]) == 2
