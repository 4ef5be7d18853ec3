"""The two-view scanner geometry of a DEBISim run, and projection of its 3-D label volume onto a view.

Volume (H, W, Z), 1 voxel = `voxel_mm` (1 mm in DEBISim), centred on the scanner's rotation centre;
axis 0 vertical (belt at high rows), axis 1 across, axis 2 along the belt. A view has a beam axis
(top: axis 0, the vertical beam; side: axis 1, the horizontal beam) and an image whose axis 0 spans
the other axis of the rotation plane (top: volume axis 1; side: volume axis 0) with `pitch_u` and whose
axis 1 runs along the belt (volume axis 2) with `pitch_v`. Detector pixel (p, q) has its centre at
u_p = (p + 1/2 - n_u/2) pitch_u, v_q = (q + 1/2 - n_v/2) pitch_v from the central ray.

- cone: a point source `source_origin` before the centre, the detector `origin_det` behind it; the ray
  to (u_p, v_q) crosses the plane at depth d (from the centre, towards the detector) at
  (u_p, v_q) (source_origin + d) / (source_origin + origin_det): objects near the source are magnified most.
- parallel: every ray is perpendicular to the detector, (u_p, v_q) at every depth (pitches in voxels).

A ray is sampled once per volume slice along the beam, at the slice's centre, in the voxel it falls in
(nearest voxel): the label footprint of an object is the set of pixels whose ray meets one of its voxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Literal

import numpy as np

from baggan.config import check
from baggan.errors import DataError

VIEWS = {"top": (0, 1), "side": (1, 0)}  # view -> (beam axis, image axis 0's volume axis); image axis 1 = axis 2


@dataclass(frozen=True)
class Geometry:
    """A two-view scanner (YAML-loadable with baggan.config.load_config; presets CONE and PARALLEL)."""

    kind: Literal["cone", "parallel"]
    det_u: int                    # detector pixels along image axis 0
    det_v: int                    # detector pixels along image axis 1 (along the belt)
    pitch_u: float                # mm at the detector (cone) or in volume units (parallel)
    pitch_v: float
    volume_hw: int                # H = W of the label volume this scanner writes
    source_origin: float = 500.0  # cone: source to rotation centre, mm
    origin_det: float = 500.0     # cone: rotation centre to detector, mm
    voxel_mm: float = 1.0
    swap_views: bool = False      # the file named bag_top_view holds the horizontal-beam view and vice versa

    def __post_init__(self):
        check(self.kind in ("cone", "parallel"), "kind", f"must be cone or parallel, got {self.kind!r}")
        for key in ("det_u", "det_v", "volume_hw"):
            check(getattr(self, key) >= 1, key, "must be >= 1")
        for key in ("pitch_u", "pitch_v", "source_origin", "origin_det", "voxel_mm"):
            check(getattr(self, key) > 0, key, "must be > 0")

    @property
    def magnification(self) -> float:
        """Magnification at the rotation centre (1 for parallel beams)."""
        return (self.source_origin + self.origin_det) / self.source_origin if self.kind == "cone" else 1.0

    def file_view(self, view: str) -> str:
        """The name in the file names ('top'/'side') of the view with beam `view`."""
        return {"top": "side", "side": "top"}[view] if self.swap_views else view

    def coarse(self, f: int) -> "Geometry":
        """The same scanner on an f times coarser detector and volume grid."""
        return Geometry(self.kind, -(-self.det_u // f), -(-self.det_v // f), self.pitch_u * f, self.pitch_v * f,
                        -(-self.volume_hw // f), self.source_origin, self.origin_det, self.voxel_mm * f,
                        self.swap_views)


# DEBISim's two-view scanners (lib/forward_model/template_default_two_view_*.py).
CONE = Geometry("cone", 1024, 1024, 1.44, 1.02, 600)
PARALLEL = Geometry("parallel", 512, 512, 0.75, 0.75, 512, swap_views=True)
PRESETS = {"cone": CONE, "parallel": PARALLEL}


def _lateral(geom: Geometry, n_det: int, pitch: float, n_vox: int, depth_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Voxel index (and validity) met by each detector pixel's ray in a slice at `depth_mm` from the centre."""
    centres = (np.arange(n_det) + 0.5 - n_det / 2) * pitch
    if geom.kind == "cone":
        centres = centres * (geom.source_origin + depth_mm) / (geom.source_origin + geom.origin_det)
    else:
        centres = centres * geom.voxel_mm
    idx = np.floor(centres / geom.voxel_mm + n_vox / 2).astype(np.int64)
    valid = (idx >= 0) & (idx < n_vox)
    return np.clip(idx, 0, n_vox - 1), valid


def _axes(view: str) -> tuple[int, int]:
    """(beam axis, image-axis-0 axis) of a view name."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r} (top or side)")
    return VIEWS[view]


def view_volume(volume: np.ndarray, view: str) -> np.ndarray:
    """The volume as (depth along the beam, image axis 0, image axis 1) (a view, no copy)."""
    beam, u = _axes(view)
    return np.transpose(volume, (beam, u, 2))


def ray_samples(geom: Geometry, view: str, shape: tuple[int, int, int],
                depths: range | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """For each slice d along the beam (of a volume of `shape` in view order): (d, u index, u valid,
    v index, v valid) of the voxel each detector row/column's ray meets there."""
    n_d, n_u, n_v = shape
    for d in depths if depths is not None else range(n_d):
        depth = (d + 0.5 - n_d / 2) * geom.voxel_mm
        ju, vu = _lateral(geom, geom.det_u, geom.pitch_u, n_u, depth)
        jv, vv = _lateral(geom, geom.det_v, geom.pitch_v, n_v, depth)
        yield d, ju, vu, jv, vv


def path_factor(geom: Geometry) -> np.ndarray:
    """[det_u, det_v] length of each ray inside one slice along the beam, in voxel_mm."""
    if geom.kind == "parallel":
        return np.ones((geom.det_u, geom.det_v), np.float32)
    dist = geom.source_origin + geom.origin_det
    u = (np.arange(geom.det_u) + 0.5 - geom.det_u / 2) * geom.pitch_u / dist
    v = (np.arange(geom.det_v) + 0.5 - geom.det_v / 2) * geom.pitch_v / dist
    return np.sqrt(1.0 + u[:, None] ** 2 + v[None, :] ** 2).astype(np.float32)


def project_sum(values: np.ndarray, geom: Geometry, view: str, lut: np.ndarray | None = None) -> np.ndarray:
    """Line integrals [det_u, det_v] of a volume of per-voxel values (per mm) along every ray of a view; with
    `lut`, the volume holds labels and a voxel's value is lut[label] (no float volume is made)."""
    vol = view_volume(values, view)
    out = np.zeros((geom.det_u, geom.det_v), np.float32)
    for d, ju, vu, jv, vv in ray_samples(geom, view, vol.shape):
        sample = vol[d][np.ix_(ju, jv)]
        out += (lut[sample] if lut is not None else sample) * (vu[:, None] & vv[None, :])
    return out * path_factor(geom) * np.float32(geom.voxel_mm)


def object_boxes(labels: np.ndarray) -> list:
    """Bounding boxes (slices, volume axes) of labels 1..max (None where absent): ndimage.find_objects."""
    from scipy import ndimage

    return ndimage.find_objects(labels)


def footprints(labels: np.ndarray, ids: list[int], geom: Geometry, view: str,
               boxes: list | None = None) -> dict[int, np.ndarray]:
    """For each label id: the [det_u, det_v] mask of pixels whose ray meets a voxel of that label.

    Only each object's bounding box (`boxes` from `object_boxes`, computed if not given) is visited, and only
    the detector pixels that can see it.
    """
    beam, ax_u = _axes(view)
    vol = view_volume(labels, view)
    boxes = object_boxes(labels) if boxes is None else boxes
    out: dict[int, np.ndarray] = {}
    for label in ids:
        box = boxes[label - 1] if 0 < label <= len(boxes) else None
        if box is None:
            continue
        (d0, d1), (u0, u1), (v0, v1) = ((box[a].start, box[a].stop) for a in (beam, ax_u, 2))
        block = vol[d0:d1, u0:u1, v0:v1] == label
        mask = np.zeros((geom.det_u, geom.det_v), bool)
        for d, ju, vu, jv, vv in ray_samples(geom, view, vol.shape, range(d0, d1)):
            rows = np.flatnonzero(vu & (ju >= u0) & (ju < u1))
            cols = np.flatnonzero(vv & (jv >= v0) & (jv < v1))
            if len(rows) and len(cols):
                r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1  # indices are monotone in p
                mask[r0:r1, c0:c1] |= block[d - d0][np.ix_(ju[r0:r1] - u0, jv[c0:c1] - v0)]
        if mask.any():
            out[label] = mask
    return out


def check_volume(shape: tuple[int, ...], geom: Geometry, where: str) -> None:
    """DataError unless a label volume of `shape` is one this scanner writes (H = W = volume_hw)."""
    if len(shape) != 3 or shape[0] != geom.volume_hw or shape[1] != geom.volume_hw:
        raise DataError(f"{where}: label volume is {'x'.join(map(str, shape))}, the {geom.kind}-beam scanner's "
                        f"is {geom.volume_hw}x{geom.volume_hw}xZ")


__all__ = ["Geometry", "CONE", "PARALLEL", "PRESETS", "VIEWS", "ray_samples", "path_factor", "project_sum",
           "footprints", "object_boxes", "view_volume", "check_volume"]
