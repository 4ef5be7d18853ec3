"""A tiny DEBISim run written in DEBISim's exact layout (astropy FITS, pickled metadata), for the tests.

Each bag: belt (1), tray (2), bag shell (3), an aluminium box (4), a steel cylinder standing upright (5), a
polyethylene container (6) holding H2O2 (7, a threat liquid), an ethanol box (8, a threat) above the
aluminium box. Positions shift per bag (seeded). The two views' line integrals are computed from the label
volume with the spectra (polychromatic, energy-integrating), so `prepare debisim` sees what DEBISim writes;
`box_footprint` and `cylinder_footprint` give the expected label footprints in closed form.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from baggan.data.debisim import colour as col
from baggan.data.debisim.geometry import VIEWS, Geometry, project_sum

# Small scanners for the tests: magnification 2 (cone) and a parallel beam with its views' names swapped.
FIXTURE_CONE = Geometry("cone", 96, 72, 2.0, 2.0, 64, source_origin=100.0, origin_det=100.0)
FIXTURE_PARALLEL = Geometry("parallel", 80, 64, 1.0, 1.0, 64, swap_views=True)
SHAPE = (64, 64, 48)

# name -> (composition by mass, density g/cm^3); neoprene approximated without its chlorine
MATERIALS = {
    "polyethylene": ((("C", 0.8563), ("H", 0.1437)), 0.95),
    "polystyrene": ((("C", 0.9226), ("H", 0.0774)), 1.05),
    "neoprene": ((("C", 0.8563), ("H", 0.1437)), 1.23),
    "Al": ((("Al", 1.0),), 2.699),
    "Fe": ((("Fe", 1.0),), 7.874),
    "H2O2": ((("H", 0.0593), ("O", 0.9407)), 1.45),
    "ethanol": ((("C", 0.5214), ("H", 0.1313), ("O", 0.3473)), 0.789),
}


def mu_curve(material: str) -> np.ndarray:
    """151 linear attenuation values (per mm, 10..160 keV), as DEBISim stores them."""
    comp, density = MATERIALS[material]
    return col.mass_attenuation(comp) * density * 0.1


@dataclass(frozen=True)
class Box:
    """Voxel index ranges [lo, hi) along the volume's three axes."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    slices: tuple[int, int]

    def fill(self, vol: np.ndarray, label: int) -> None:
        """Write the box into a label volume."""
        vol[self.rows[0]:self.rows[1], self.cols[0]:self.cols[1], self.slices[0]:self.slices[1]] = label


@dataclass(frozen=True)
class Cylinder:
    """An upright cylinder: rows [lo, hi), axis at (col, slice) (voxel index coordinates), radius in voxels."""

    rows: tuple[int, int]
    centre: tuple[float, float]
    radius: float

    def fill(self, vol: np.ndarray, label: int) -> None:
        """Write the voxels whose centres lie inside the cylinder."""
        j, k = np.meshgrid(np.arange(vol.shape[1]) + 0.5, np.arange(vol.shape[2]) + 0.5, indexing="ij")
        disc = (j - self.centre[0]) ** 2 + (k - self.centre[1]) ** 2 <= self.radius ** 2
        vol[self.rows[0]:self.rows[1]][:, disc] = label


def layout(seed: int) -> dict[int, tuple[str, str, object]]:
    """label -> (material, DEBISim shape code, Box/Cylinder) of one fixture bag."""
    dx, dz = (int(v) for v in np.random.default_rng(seed).integers(-3, 4, 2))
    return {
        4: ("Al", "B", Box((40, 50), (10 + dx, 22 + dx), (8 + dz, 20 + dz))),
        5: ("Fe", "Y", Cylinder((30, 50), (40.5 - dx, 14.5 + dz), 5.0)),
        6: ("polyethylene", "B", Box((30, 50), (30, 44), (26 - dz, 40 - dz))),
        7: ("H2O2", "B", Box((38, 49), (31, 43), (27 - dz, 39 - dz))),
        8: ("ethanol", "B", Box((24, 30), (14 + dx, 20 + dx), (12 + dz, 18 + dz))),
    }


def label_volume(seed: int) -> np.ndarray:
    """The int16 label volume of fixture bag `seed`."""
    vol = np.zeros(SHAPE, np.int16)
    Box((56, 58), (0, SHAPE[1]), (0, SHAPE[2])).fill(vol, 1)  # belt
    Box((54, 56), (8, 56), (4, 44)).fill(vol, 2)  # tray
    Box((20, 54), (6, 58), (2, 46)).fill(vol, 3)  # bag shell: a one-voxel wall around the inside
    Box((21, 53), (7, 57), (3, 45)).fill(vol, 0)
    for label, (_, _, shape) in layout(seed).items():
        shape.fill(vol, label)
    return vol


def metadata(seed: int, protocol: int = 4) -> bytes:
    """The pickled sl_metadata.pyc of a bag: {str(label): object dict}, numpy strings and arrays included."""
    objs = {}
    items = layout(seed)
    for label, (material, code, shape) in items.items():
        if label == 7:
            continue  # the liquid lives in its container's lqd_param
        obj = {"label": label, "shape": code, "material": np.str_(material), "geom": {"center": np.array(
            [float(np.mean(getattr(shape, "rows")))] * 3)}, "lqd_flag": label == 6, "lqd_param": {},
            "mu_curve": mu_curve(material), "mu_dict": {"density": MATERIALS[material][1]}}
        if label == 6:
            obj["lqd_param"] = {"lqd_material": np.str_("H2O2"), "lqd_label": 7, "lqd_level": np.float64(0.6),
                                "cntr_thickness": 1, "mu_curve": mu_curve("H2O2"), "mu_dict": {"density": 1.45}}
        objs[str(label)] = obj
    return pickle.dumps(objs, protocol=protocol)


def line_integrals(vol: np.ndarray, geom: Geometry, view: str, spectra: tuple[np.ndarray, ...],
                   rng: np.random.Generator) -> list[np.ndarray]:
    """The view's polychromatic line integrals per spectrum (with a little detector noise), float32."""
    materials = {1: "polyethylene", 2: "polystyrene", 3: "neoprene"}
    materials.update({label: m for label, (m, _, _) in layout(0).items()})
    paths, mus = [], []
    for label, material in materials.items():
        length = project_sum((vol == label).astype(np.float32), geom, view)
        if length.any():
            paths.append(length)
            mus.append(mu_curve(material))
    total = np.einsum("muv,me->uve", np.array(paths), np.array(mus))  # sum_m mu_m(E) L_m per pixel and energy
    out = []
    for s in spectra:
        w = s * col.KEV
        a = -np.log(np.exp(-total) @ (w / w.sum()))
        out.append((a + rng.normal(0.0, 0.002, a.shape)).astype(np.float32))
    return out


def write_fits(path: Path, array: np.ndarray, compress: bool = False) -> None:
    """As DEBISim's save_fits_data: a primary HDU (or tile-compressed HDU 1), .gz names gzip the file."""
    from astropy.io import fits

    path.parent.mkdir(parents=True, exist_ok=True)
    hdu = fits.CompImageHDU(array, fits.Header()) if compress else fits.PrimaryHDU(array, fits.Header())
    hdu.writeto(path, overwrite=True)


def rotated(vol: np.ndarray, degrees: float) -> np.ndarray:
    """DEBISim's rotate_bag: the part above the belt turned in the (vertical, belt) plane."""
    from scipy import ndimage

    out = vol.copy()
    out[:54] = ndimage.rotate(vol[:54], degrees, axes=(0, 2), reshape=False, order=0)
    return out


def write_run(root: Path, n_bags: int = 2, geom: Geometry = FIXTURE_CONE, n_spectra: int = 2,
              rotate: dict[int, float] | None = None, compress: bool = False, seed: int = 0) -> Path:
    """Write a fixture run under `root` (simulation_001...) and the scanner as root/scanner.yaml; returns that
    YAML's path. Bag b is layout `100 seed + b`. `rotate` {bag number: degrees} makes DEBISim's rotated bags
    (labels saved before rotating)."""
    spectra = col.default_spectra(2)[:n_spectra]
    rng = np.random.default_rng(seed)
    for b in range(1, n_bags + 1):
        bag = root / f"simulation_{b:03d}"
        vol = label_volume(100 * seed + b)
        (bag / "ground_truth").mkdir(parents=True, exist_ok=True)
        write_fits(bag / "ground_truth" / "gt_label_image.fits.gz", vol, compress)
        (bag / "sl_metadata.pyc").write_bytes(metadata(100 * seed + b))
        (bag / "debisim_bag.log").write_text("DEBISIM fixture bag\n")
        scanned = rotated(vol, rotate[b]) if rotate and b in rotate else vol
        for view in VIEWS:
            arrays = line_integrals(scanned, geom, view, spectra, rng)
            name = geom.file_view(view)
            if n_spectra == 1:
                write_fits(bag / "images" / f"bag_{name}_view.fits.gz", arrays[0], compress)
            else:
                for s, a in enumerate(arrays, 1):
                    write_fits(bag / "images" / f"bag_{name}_view_spec{s}.fits.gz", a, compress)
    path = root / "scanner.yaml"
    path.write_text(yaml.safe_dump({k: getattr(geom, k) for k in geom.__dataclass_fields__}))
    return path


# ------------------------------------------------------------------------------------- closed-form footprints

def _pixels(geom: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Detector pixel centres (mm at the detector, or voxels x voxel_mm for parallel beams)."""
    u = (np.arange(geom.det_u) + 0.5 - geom.det_u / 2) * geom.pitch_u
    v = (np.arange(geom.det_v) + 0.5 - geom.det_v / 2) * geom.pitch_v
    if geom.kind == "parallel":
        u, v = u * geom.voxel_mm, v * geom.voxel_mm
    return np.meshgrid(u, v, indexing="ij")


def _scale_range(geom: Geometry, depth: tuple[float, float]) -> tuple[float, float]:
    """Range of s = (source_origin + c) / (source_origin + origin_det) over depths c (1 for parallel beams)."""
    if geom.kind == "parallel":
        return 1.0, 1.0
    dist = geom.source_origin + geom.origin_det
    return (geom.source_origin + depth[0]) / dist, (geom.source_origin + depth[1]) / dist


def _extent(r: tuple[int, int], n: int) -> tuple[float, float]:
    """Voxel range [lo, hi) as centred mm (voxel 1 mm)."""
    return r[0] - n / 2, r[1] - n / 2


def _sample_depths(r: tuple[int, int], n: int) -> tuple[float, float]:
    """The first and last slice centres of a voxel range along the beam."""
    return r[0] + 0.5 - n / 2, r[1] - 0.5 - n / 2


def box_footprint(geom: Geometry, view: str, box: Box) -> np.ndarray:
    """Pixels whose ray, sampled at the slice centres of the box's depth, meets the box: an interval test on
    s = the ray's lateral scale at depth c, for each detector axis."""
    beam, ax_u = VIEWS[view]
    ranges = (box.rows, box.cols, box.slices)
    (a0, a1), (b0, b1) = _extent(ranges[ax_u], SHAPE[ax_u]), _extent(ranges[2], SHAPE[2])
    s0, s1 = _scale_range(geom, _sample_depths(ranges[beam], SHAPE[beam]))
    u, v = _pixels(geom)
    lo, hi = np.full(u.shape, s0), np.full(u.shape, s1)
    for x, (c0, c1) in ((u, (a0, a1)), (v, (b0, b1))):
        with np.errstate(divide="ignore", invalid="ignore"):
            e0, e1 = c0 / x, c1 / x
        inside0 = (c0 <= 0) & (0 < c1)  # x == 0: the central ray is inside iff the range holds 0
        lo = np.where(x > 0, np.maximum(lo, e0), np.where(x < 0, np.maximum(lo, e1), np.where(inside0, lo, np.inf)))
        hi = np.where(x > 0, np.minimum(hi, e1), np.where(x < 0, np.minimum(hi, e0), hi))
    return lo < hi if geom.kind == "cone" else lo <= hi


def cylinder_footprint(geom: Geometry, cyl: Cylinder) -> np.ndarray:
    """Top view of an upright cylinder: pixels whose ray comes within the radius of the axis at some depth."""
    xc, zc = cyl.centre[0] - SHAPE[1] / 2, cyl.centre[1] - SHAPE[2] / 2
    s0, s1 = _scale_range(geom, _sample_depths(cyl.rows, SHAPE[0]))
    u, v = _pixels(geom)
    with np.errstate(divide="ignore", invalid="ignore"):
        best = np.clip(np.nan_to_num((u * xc + v * zc) / (u * u + v * v), nan=s0), s0, s1)
    return (u * best - xc) ** 2 + (v * best - zc) ** 2 <= cyl.radius ** 2
