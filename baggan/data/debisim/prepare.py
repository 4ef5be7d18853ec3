"""`baggan prepare debisim`: a DEBISim run folder -> the toolkit's COCO data set (docs/datasets.md, DEBISim).

Two-view runs: one scan per bag and view, pseudo-coloured from the two spectra (`colour.py`, grey with one
spectrum), labelled by projecting the bag's label volume with the scanner's geometry (`geometry.py`).
Before a view is labelled, its agreement with the label volume is checked: the line integrals predicted
from the labels (each label's recorded attenuation at 60 keV, projected on a coarse grid) must correlate
with the measured ones (Pearson r >= MIN_AGREEMENT), which refuses bags rotated after their labels were
saved (DEBISim's rotate_bag) and views that do not belong to the volume. CT runs (`ct=True`): axial slices
of recon_image_1 with their label slices.

Categories: `threats` (default) the 14 DEBISim target materials; `materials` those plus every other
material of the run (one instance per object and per liquid fill). A bad bag stops the run (nothing is
written) unless `skip_bad`, which leaves it out and reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from baggan.data.coco import CocoWriter, Instance
from baggan.data.datasets import crop_resize, crop_resize_mask, label_from_instances, staged_output
from baggan.data.debisim import colour as col
from baggan.data.debisim.files import (FIRST_OBJECT, TARGETS, BagObject, find_bags, read_fits, read_labels,
                                       read_metadata, read_view, view_files)
from baggan.data.debisim.geometry import PRESETS, Geometry, check_volume, footprints, object_boxes, project_sum
from baggan.errors import DataError, UserError

MIN_AGREEMENT = 0.8   # Pearson r between predicted and measured line integrals (coarse grid)
AGREEMENT_GRID = 160  # the coarse grid of the check has at most this many voxels along an axis
MU_INDEX = 50         # 60 keV on DEBISim's 10..160 keV grid: the attenuation the check uses
MU_DEFAULT = 0.02     # per mm, for labels without a recorded curve (belt, tray, bag shell: plastics)
HUE_SMOOTH_PX = 1.5    # smoothing of the two line integrals before their ratio is read (detector pixels)
CT_WINDOW = (-1000.0, 2000.0)  # HU shown from black to white in CT slices


@dataclass
class PrepareResult:
    """What `prepare_debisim` did: scans written, bags read and bags left out (with the reason)."""

    scans: int = 0
    bags: int = 0
    skipped: list[str] = field(default_factory=list)


def categories_for(mode: str, materials: Sequence[str] = ()) -> list[dict]:
    """COCO categories: the target materials (ids 1..14), then, in `materials` mode, the other materials."""
    names = list(TARGETS)
    if mode == "materials":
        names += sorted(set(materials) - set(TARGETS))
    elif mode != "threats":
        raise UserError(f"unknown category mode {mode!r} (threats or materials)")
    return [{"id": i + 1, "name": n, "supercategory": "threat" if n in TARGETS else "material"}
            for i, n in enumerate(names)]


def detect_geometry(shape: tuple[int, int], where: Path) -> Geometry:
    """The preset scanner whose detector has this view shape."""
    for geom in PRESETS.values():
        if shape == (geom.det_u, geom.det_v):
            return geom
    raise DataError(f"{where}: a {shape[0]}x{shape[1]} view is neither DEBISim's cone-beam (1024x1024) nor its "
                    "parallel-beam (512x512) two-view scanner: pass --geometry FILE.yaml")


def _pool(image: np.ndarray, f: int) -> np.ndarray:
    """Block mean of a 2-D array by f, padded symmetrically with zeros to a multiple of f."""
    (a, b) = (-n % f for n in image.shape)
    image = np.pad(image, ((a // 2, a - a // 2), (b // 2, b - b // 2)))
    return image.reshape(image.shape[0] // f, f, image.shape[1] // f, f).mean(axis=(1, 3))


def agreement(labels: np.ndarray, objects: dict[int, BagObject], line_integrals: np.ndarray, geom: Geometry,
              view: str, max_label: int | None = None) -> float:
    """Pearson r between the line integrals predicted from the label volume and the measured ones (coarse);
    `max_label` (the largest label id, if known) saves a pass over the volume."""
    f = max(1, -(-max(labels.shape) // AGREEMENT_GRID))
    max_label = int(labels.max(initial=0)) if max_label is None else max_label
    lut = np.full(max(max_label, 0) + 1, MU_DEFAULT, np.float32)
    lut[0] = 0.0
    for label, obj in objects.items():
        if label < len(lut) and obj.mu_curve is not None and len(obj.mu_curve) > MU_INDEX:
            lut[label] = obj.mu_curve[MU_INDEX]
    h, w, z = labels.shape
    ph, pw, pz = (-n % f for n in (h, w, z))
    mu = np.zeros(((h + ph) // f, (w + pw) // f, (z + pz) // f), np.float32)
    padded_rows = np.arange(-(ph // 2), h + ph - ph // 2)
    for i in range(mu.shape[0]):  # one slab of f rows at a time: the full mu volume is never held
        rows = padded_rows[i * f:(i + 1) * f]
        rows = rows[(rows >= 0) & (rows < h)]
        if not len(rows):
            continue
        slab = np.take(lut, labels[rows[0]:rows[-1] + 1], mode="clip").sum(axis=0)
        slab = np.pad(slab, ((pw // 2, pw - pw // 2), (pz // 2, pz - pz // 2)))
        # an exact block mean (the padded size is a multiple of f): OpenCV's area resampling
        mu[i] = cv2.resize(slab, (mu.shape[2], mu.shape[1]), interpolation=cv2.INTER_AREA) / f
    coarse = geom.coarse(f)
    predicted = project_sum(mu, coarse, view)
    measured = _pool(line_integrals, f)
    n_u, n_v = min(predicted.shape[0], measured.shape[0]), min(predicted.shape[1], measured.shape[1])
    p, m = predicted[:n_u, :n_v].ravel(), measured[:n_u, :n_v].ravel()
    if p.std() == 0 or m.std() == 0:
        return 0.0
    return float(np.corrcoef(p, m)[0, 1])


def _instances(masks: dict[int, np.ndarray], objects: dict[int, BagObject], cat_ids: dict[str, int]) -> list[Instance]:
    """One instance per connected part of each object's mask; non-threats first so that threats win."""
    out = []
    for label in sorted(masks, key=lambda l: (objects[l].threat, l)):
        obj = objects[label]
        n, comp = cv2.connectedComponents(masks[label].astype(np.uint8), connectivity=8)
        for k in range(1, n):
            out.append(Instance(cat_ids[obj.material], comp == k,
                                {"debisim_label": label, "material": obj.material, "kind": obj.kind}))
    return out


def _resize(image: np.ndarray, instances: list[Instance], size: int | None) -> tuple[np.ndarray, list[Instance]]:
    """The scan and its instance masks resampled to size x size (area-weighted; masks thresholded at 1/2)."""
    if size is None or image.shape[:2] == (size, size):
        return image, instances
    box = (0, 0, image.shape[1], image.shape[0])
    out = []
    for inst in instances:
        m = crop_resize_mask(inst.mask, box, (size, size))
        if m.any():
            out.append(Instance(inst.category_id, m, inst.extra))
    return crop_resize(image, box, (size, size)), out


@dataclass(frozen=True)
class _Run:
    """Run-wide settings of one preparation."""

    views: tuple[str, ...]
    size: int | None
    geometry: Geometry | None
    spectra: tuple[np.ndarray, ...] | None
    cat_ids: dict
    all_objects: bool
    ct_step: int
    calibrations: dict = field(default_factory=dict)

    def calibration(self, n: int) -> col.Calibration:
        """The colour calibration for a bag with n spectra (computed once)."""
        if n not in self.calibrations:
            spectra = self.spectra[:n] if self.spectra is not None else col.default_spectra(n)
            self.calibrations[n] = col.calibrate(spectra)
        return self.calibrations[n]

    def wanted(self, objects: dict[int, BagObject]) -> list[int]:
        """The labels that become instances."""
        return sorted(l for l, o in objects.items() if l >= FIRST_OBJECT and (self.all_objects or o.threat))


def two_view_scans(bag: Path, run: _Run) -> list[tuple[np.ndarray, list[Instance], dict]]:
    """The scans of one two-view bag: (RGB image, instances, image-record metadata) per view."""
    objects = read_metadata(bag)
    probe = view_files(bag, run.views[0])[0]  # every view has the detector's shape
    cache = {probe: read_view(probe)}
    geom = run.geometry or detect_geometry(cache[probe].shape, probe)
    files = {view: view_files(bag, geom.file_view(view)) for view in run.views}
    views = {view: [cache.pop(p) if p in cache else read_view(p) for p in paths] for view, paths in files.items()}
    labels = read_labels(bag)
    check_volume(labels.shape, geom, str(bag / "ground_truth/gt_label_image.fits.gz"))
    boxes = object_boxes(labels)
    unlisted = [i + 1 for i, b in enumerate(boxes) if b is not None and i + 1 >= FIRST_OBJECT and i + 1 not in objects]
    out = []
    for view, arrays in views.items():
        for path, a in zip(files[view], arrays):
            if a.shape != (geom.det_u, geom.det_v):
                raise DataError(f"{path}: view is {a.shape[0]}x{a.shape[1]}, the {geom.kind}-beam scanner's "
                                f"detector is {geom.det_u}x{geom.det_v}")
        r = agreement(labels, objects, arrays[-1], geom, view, len(boxes))
        if r < MIN_AGREEMENT:
            raise DataError(f"{files[view][-1]}: the view does not match the label volume (correlation {r:.2f} < "
                            f"{MIN_AGREEMENT}; a bag rotated after its labels were saved?)")
        cal = run.calibration(len(arrays))
        image = cal.colour(arrays[0], arrays[1], smooth_px=HUE_SMOOTH_PX) if len(arrays) == 2 else cal.grey(arrays[0])
        masks = footprints(labels, run.wanted(objects), geom, view, boxes)
        image, instances = _resize(image, _instances(masks, objects, run.cat_ids), run.size)
        meta = {"bag": bag.name, "view": view, "source_files": [str(p.relative_to(bag)) for p in files[view]],
                "geometry": geom.kind, "spectra": len(arrays), "agreement": round(r, 4),
                "unlisted_labels": unlisted}
        out.append((image, instances, meta))
    return out


def ct_grey(hu: np.ndarray) -> np.ndarray:
    """RGB uint8 of a CT slice in Hounsfield units (CT_WINDOW from black to white)."""
    lo, hi = CT_WINDOW
    v = np.clip((hu.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)
    return np.repeat((v * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


def ct_scans(bag: Path, run: _Run) -> list[tuple[np.ndarray, list[Instance], dict]]:
    """Axial slices (every ct_step-th holding an instance) of a CT bag with their label slices."""
    objects = read_metadata(bag)
    labels = read_labels(bag)
    path = bag / "images" / "recon_image_1.fits.gz"
    recon = read_fits(path)
    if recon.shape != labels.shape:
        raise DataError(f"{path}: reconstruction is {'x'.join(map(str, recon.shape))}, not on the label volume's "
                        f"grid ({'x'.join(map(str, labels.shape))}; spiral-scanner grids are not supported)")
    wanted = run.wanted(objects)
    out = []
    for k in range(0, labels.shape[2], run.ct_step):
        sl = labels[:, :, k]
        masks = {l: sl == l for l in wanted}
        masks = {l: m for l, m in masks.items() if m.any()}
        if not masks:
            continue
        image, instances = _resize(ct_grey(recon[:, :, k]), _instances(masks, objects, run.cat_ids), run.size)
        out.append((image, instances, {"bag": bag.name, "slice": k, "source_files": [str(path.relative_to(bag))]}))
    return out


def prepare_debisim(root: str | Path, outdir: str | Path, views: Sequence[str] = ("top",), size: int | None = None,
                    geometry: Geometry | None = None, spectra: Sequence[str | Path] | None = None,
                    categories: str = "threats", skip_bad: bool = False, ct: bool = False, ct_step: int = 10,
                    overwrite: bool = False, progress: bool = True, polygons: bool = False,
                    report: Callable[[str], None] | None = None) -> PrepareResult:
    """Convert one DEBISim run folder (see the module docstring); segmentations as RLE, or as polygons with
    `polygons`; `report` receives one line per skipped bag."""
    bags = find_bags(root)
    spec = tuple(col.read_spectrum(p) for p in spectra) if spectra else None
    result = PrepareResult()

    def bad(bag: Path, e: DataError) -> None:
        if not skip_bad:
            raise e
        result.skipped.append(bag.name)
        if report:
            report(f"skipped {bag.name}: {e}")

    materials: set[str] = set()
    if categories == "materials":  # the category list must be known before the first scan is written
        for bag in list(bags):
            try:
                materials |= {o.material for o in read_metadata(bag).values()}
            except DataError as e:
                bad(bag, e)
                bags.remove(bag)
    cats = categories_for(categories, sorted(materials))
    run = _Run(tuple(views), size, geometry, spec, {c["name"]: c["id"] for c in cats}, categories == "materials",
               ct_step)
    info = {"description": f"DEBISim run {Path(root).name} prepared by baggan", "label_set": f"debisim-{categories}",
            "source": str(root), "mode": "ct" if ct else "two-view", "views": list(views), "size": size,
            "spectra_files": [str(p) for p in spectra] if spectra else "built-in (Kramers, 55.8/58.8 keV)"}
    with staged_output(outdir, overwrite) as tmp:
        writer = CocoWriter(tmp, cats, info, polygons=polygons)
        for bag in tqdm(bags, desc="debisim", unit="bag", disable=None if progress else True):
            try:
                scans = ct_scans(bag, run) if ct else two_view_scans(bag, run)
            except DataError as e:
                bad(bag, e)
                continue
            result.bags += 1
            for image, instances, meta in scans:
                stem = f"{bag.name}_{meta['view']}" if "view" in meta else f"{bag.name}_z{meta['slice']:04d}"
                writer.add(image, label_from_instances(instances, image.shape[:2]), instances, meta, stem)
                result.scans += 1
        if not result.scans:
            raise DataError(f"{root}: no scans written ({len(result.skipped)} bad bags skipped"
                            f"{', no slice with an object' if ct else ''})")
        writer.info["skipped_bags"] = result.skipped
        writer.close()
    return result


__all__ = ["prepare_debisim", "PrepareResult", "agreement", "categories_for", "detect_geometry", "ct_grey",
           "MIN_AGREEMENT"]
