"""DEBISim reader: reading speed at DEBISim's real sizes, and fixture runs for the evaluation recipe.

    .venv/bin/python scripts/bench_debisim.py read [--z 350 600] [--bags 3] [--workdir DIR]
    .venv/bin/python scripts/bench_debisim.py fixture --workdir DIR

`read` writes, for each --z, a run of one synthetic two-view cone-beam bag at the real sizes (label volume
600 x 600 x Z int16, four 1024 x 1024 float32 views, ~35 objects as DEBISim's default bag creator makes,
liquids and threats included) into --workdir (never into the repository), links it --bags times and times
`prepare_debisim --view both` on it: bags/s and scans/s, each stage on one bag, peak memory. Summary:
docs/benchmarks/debisim_read.json. The views are monochromatic projections (60 keV) of the label volume,
enough for timing, not a physical simulation.

`fixture` writes the tests' tiny fixture runs real/ (8 bags), synthetic/ (6) and test/ (4) and their
prepared sets (`--view both --size 64`) into --workdir for scripts/bench_realism.py and
scripts/bench_downstream.py (docs/benchmarks.md, DEBISim), and the picture docs/img/debisim_fixture.png
(the first two bags' views at the detector's grid, above their threat labels).
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def real_size_bag(bag: Path, z: int, seed: int = 0) -> None:
    """One two-view cone-beam bag at DEBISim's sizes, in its layout (see the module docstring)."""
    from debisim_fixture import MATERIALS, mu_curve, write_fits

    from baggan.data.debisim.geometry import CONE, project_sum

    rng = np.random.default_rng(seed)
    n = CONE.volume_hw
    vol = np.zeros((n, n, z), np.int16)
    vol[448:460] = 1  # belt (DEBISim's table height 448)
    vol[440:448, 40:560, 10:z - 10] = 2  # tray
    vol[150:440, 60:540, 20:z - 20] = 3  # bag shell, 3-voxel walls
    vol[153:437, 63:537, 23:z - 23] = 0
    solids = [m for m in MATERIALS if m not in ("H2O2", "ethanol")]
    objs, label = {}, 4
    for k in range(int(rng.integers(30, 40))):
        d = rng.integers(20, 71, 3)
        lo = [int(rng.integers(a, b - s)) for (a, b), s in zip(((155, 435), (65, 535), (25, z - 25)), d)]
        box = tuple(slice(a, a + int(s)) for a, s in zip(lo, d))
        material = "ethanol" if k % 12 == 0 else str(rng.choice(solids))
        vol[box] = label
        obj = {"label": label, "shape": "B", "material": np.str_(material), "geom": {"center": np.array(lo, float)},
               "lqd_flag": False, "lqd_param": {}, "mu_curve": mu_curve(material), "mu_dict": {}}
        if k % 10 == 5:  # a liquid-filled container: the fill takes the next label
            inner = tuple(slice(s.start + 2, s.stop - 2) for s in box)
            vol[inner] = label + 1
            obj.update(lqd_flag=True, lqd_param={"lqd_material": np.str_("H2O2"), "lqd_label": label + 1,
                                                  "lqd_level": 1.0, "cntr_thickness": 2, "mu_curve": mu_curve("H2O2")})
            label += 1
        objs[str(obj["label"])] = obj
        label += 1
    (bag / "ground_truth").mkdir(parents=True, exist_ok=True)
    write_fits(bag / "ground_truth" / "gt_label_image.fits.gz", vol)
    (bag / "sl_metadata.pyc").write_bytes(pickle.dumps(objs, protocol=4))
    lut = np.full(label, 0.02, np.float32)
    lut[0] = 0.0
    for key, obj in objs.items():
        lut[int(key)] = obj["mu_curve"][50]
        if obj["lqd_flag"]:
            lut[obj["lqd_param"]["lqd_label"]] = obj["lqd_param"]["mu_curve"][50]
    for view in ("top", "side"):
        a = project_sum(vol, CONE, view, lut=lut)
        for s, gain in ((1, 1.03), (2, 1.0)):
            noisy = a * gain + rng.normal(0, 0.002, a.shape).astype(np.float32)
            write_fits(bag / "images" / f"bag_{view}_view_spec{s}.fits.gz", noisy.astype(np.float32))


def _timed(fn, *args):
    """(result, seconds) of one call."""
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def stage_times(bag: Path) -> dict[str, float]:
    """Seconds of each stage of reading one bag, both views."""
    from baggan.data.debisim import colour as col
    from baggan.data.debisim.files import read_labels, read_metadata, read_view, view_files
    from baggan.data.debisim.geometry import CONE, footprints, object_boxes
    from baggan.data.debisim.prepare import HUE_SMOOTH_PX, agreement

    t: dict[str, float] = {}
    objects, t["metadata"] = _timed(read_metadata, bag)
    labels, t["label_volume_fits"] = _timed(read_labels, bag)
    views = {}
    t["views_fits_4"] = 0.0
    for view in ("top", "side"):
        arrays = []
        for p in view_files(bag, view):
            a, s = _timed(read_view, p)
            arrays.append(a)
            t["views_fits_4"] += s
        views[view] = arrays
    cal, t["calibration"] = _timed(col.calibrate, col.default_spectra(2))
    boxes, t["object_boxes"] = _timed(object_boxes, labels)
    for key in ("agreement_2", "footprints_2", "colour_2"):
        t[key] = 0.0
    ids = sorted(l for l in objects if l >= 4)
    for view, (a1, a2) in views.items():
        t["agreement_2"] += _timed(agreement, labels, objects, a2, CONE, view)[1]
        t["footprints_2"] += _timed(footprints, labels, ids, CONE, view, boxes)[1]
        t["colour_2"] += _timed(lambda: cal.colour(a1, a2, smooth_px=HUE_SMOOTH_PX))[1]
    return t


def bench_read(args) -> None:
    """The `read` command."""
    from baggan.data.debisim.prepare import prepare_debisim
    from baggan.evaluate.report import environment, to_jsonable
    from baggan.io import write_json_atomic

    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        for z in args.z:
            run = Path(work) / f"run{z}"
            t0 = time.perf_counter()
            real_size_bag(run / "simulation_001", z)
            made = time.perf_counter() - t0
            for b in range(2, args.bags + 1):  # the same bag again, as hard links (no extra disk)
                for f in (run / "simulation_001").rglob("*"):
                    if f.is_file():
                        dst = run / f"simulation_{b:03d}" / f.relative_to(run / "simulation_001")
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        os.link(f, dst)
            sizes = {p.name: p.stat().st_size for p in (run / "simulation_001").rglob("*.gz")}
            stages = stage_times(run / "simulation_001")
            t0 = time.perf_counter()
            result = prepare_debisim(run, Path(work) / f"out{z}", ("top", "side"), progress=False)
            seconds = time.perf_counter() - t0
            rows.append({"volume": [600, 600, z], "views": [1024, 1024], "bags": result.bags, "scans": result.scans,
                         "seconds": seconds, "bags_per_s": result.bags / seconds, "scans_per_s": result.scans / seconds,
                         "stage_seconds_one_bag": stages, "file_bytes": sizes, "bag_made_in_s": made})
            print(f"600x600x{z}: {result.bags / seconds:.3f} bags/s ({seconds / result.bags:.1f} s per bag, both views)",
                  {k: round(v, 2) for k, v in stages.items()})
    summary = {"machine": environment("cpu"), "rows": rows,
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    write_json_atomic(ROOT / "docs/benchmarks/debisim_read.json", to_jsonable(summary), indent=2)


def fixture_picture(prepared: Path, path: Path) -> None:
    """Fixture scans (top and side views of two bags) above their label maps, written as a PNG."""
    import cv2

    from baggan.data.coco import CocoDataset
    from baggan.evaluate.report import overlay_labels
    from baggan.io import write_image_atomic

    ds = CocoDataset(prepared)
    classes = max(c["id"] for c in ds.categories) + 1
    tiles = []
    for i in range(4):
        s = ds[i]
        overlay = overlay_labels(s.image, s.label, classes)
        tiles.append(np.concatenate([s.image, overlay], 0))
    grid = np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], 1)
    write_image_atomic(path, cv2.resize(grid, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST))


def bench_fixture(args) -> None:
    """The `fixture` command."""
    from debisim_fixture import write_run

    from baggan.config import load_config
    from baggan.data.debisim.geometry import Geometry
    from baggan.data.debisim.prepare import prepare_debisim

    work = Path(args.workdir)
    for seed, (name, bags) in enumerate((("real", 8), ("synthetic", 6), ("test", 4)), 1):
        scanner = write_run(work / f"{name}-run", n_bags=bags, seed=seed)
        result = prepare_debisim(work / f"{name}-run", work / name, ("top", "side"), size=64,
                                 geometry=load_config(scanner, Geometry), overwrite=True, progress=False)
        print(f"{name}: {result.scans} scans in {work / name}")
    picture = prepare_debisim(work / "real-run", work / "native", ("top", "side"), overwrite=True, progress=False,
                              geometry=load_config(work / "real-run" / "scanner.yaml", Geometry))
    print(f"native: {picture.scans} scans at the detector's grid in {work / 'native'}")
    fixture_picture(work / "native", ROOT / "docs/img/debisim_fixture.png")


def main() -> None:
    """Parse the command line and run one command."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    read = sub.add_parser("read")
    read.add_argument("--z", type=int, nargs="+", default=[350, 600], help="volume depths along the belt")
    read.add_argument("--bags", type=int, default=3)
    read.add_argument("--workdir", default=None, help="where the temporary run goes (default: the system's)")
    fix = sub.add_parser("fixture")
    fix.add_argument("--workdir", required=True)
    args = ap.parse_args()
    bench_read(args) if args.command == "read" else bench_fixture(args)


if __name__ == "__main__":
    main()
