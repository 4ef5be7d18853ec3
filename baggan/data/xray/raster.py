"""Parts -> per-material mass-thickness maps (g/cm^2) at any resolution.

Each part is drawn anti-aliased (OpenCV, 1/16-pixel coordinates) into a small patch around it, so the
cost grows with the part's size in pixels, not the image's. The coverage c in [0, 1] of a pixel is the
fraction of it inside the shape (partial-volume effect of a detector pixel). The path length through the
part at a pixel is

    flat:     t = T * c
    rounded:  t = T * c * sqrt(1 - (1 - min(d / b, 1))^2)     (d: distance to the outline, b: bevel)
    hollow:   t = t_outer - t_inner  (inner outline `wall` further in); flat + hollow = a box seen from above

so a tube of diameter D (T = D, b = D/2) gets the exact chord 2 sqrt(d (D - d)). Strokes narrower than a
couple of pixels are drawn one or more pixels wide and their thickness rescaled to keep the part's mass
(volume x density) exact, and shapes whose anti-aliased footprint exceeds their true area (sub-pixel
parts) are scaled down to it: thin wires and small parts never vanish at 64 x 64 nor gain mass, they get
fainter, as in a real detector.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from baggan.data.xray.geometry import Circle, Ellipse, Part, Poly, Pose, Stroke
from baggan.data.xray.materials import MATERIALS, material_id

_SHIFT = 4
_ONE = 1 << _SHIFT
OVERDRAW = 4  # parts are drawn up to this many image sizes beyond the image border (Rasterizer.stamp)


@functools.lru_cache(maxsize=1)
def _stroke_widths() -> np.ndarray:
    """Effective width (pixels) of an anti-aliased cv2 polyline for thickness arguments 1..64."""
    out = np.zeros(65)
    img = np.zeros((16, 96), np.uint8)
    for k in range(1, 65):
        img[:] = 0
        cv2.line(img, (48 * _ONE, 4 * _ONE), (48 * _ONE, 12 * _ONE), 255, k, cv2.LINE_AA, _SHIFT)
        out[k] = img[8].astype(np.float64).sum() / 255.0
    return out


def _stroke_arg(width_px: float) -> int:
    """The cv2 thickness argument whose drawn width is closest to `width_px` (at least 1)."""
    widths = _stroke_widths()
    return int(np.argmin(np.abs(widths[1:] - width_px))) + 1


@dataclass
class Stamp:
    """A part's path-length patch (cm) at pixel offset (x0, y0) in the image."""

    material: int
    thickness: np.ndarray
    x0: int
    y0: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """Row and column slices of the patch in the image."""
        h, w = self.thickness.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


class Rasterizer:
    """Draws parts given in bag-frame centimetres into `size` x `size` pixels through pose `to_px`."""

    def __init__(self, size: int, to_px: Pose):
        self.size = size
        self.to_px = to_px
        self.ppc = to_px.scale  # pixels per centimetre

    def coverage(self, part: Part, margin: int = 0) -> tuple[np.ndarray, int, int, bool] | None:
        """Anti-aliased uint8 coverage patch of a part (bag-frame cm), its pixel offset, and whether the
        part reaches beyond the image grown by `margin` pixels on every side (the patch may cover that
        margin: offsets can be negative); None when it is entirely off the grown image."""
        pose, s = self.to_px, self.ppc
        m = pose.matrix()
        lines = [op.pts for op in part.ops if type(op) is Poly or type(op) is Stroke]
        lo, hi = [math.inf, math.inf], [-math.inf, -math.inf]
        if lines:
            px = (np.concatenate(lines) if len(lines) > 1 else lines[0]) @ m[:, :2].T + m[:, 2]
            pad = max((op.width * s / 2 for op in part.ops if type(op) is Stroke), default=0.0) + 1.0
            (lo[0], lo[1]), (hi[0], hi[1]) = px.min(0) - pad, px.max(0) + pad
        for op in part.ops:
            if (type(op) is Circle or type(op) is Ellipse) and not op.erase:
                cx, cy = pose.point(op.center)
                r = (op.r if type(op) is Circle else max(op.axes)) * s + 1.0
                lo = [min(lo[0], cx - r), min(lo[1], cy - r)]
                hi = [max(hi[0], cx + r), max(hi[1], cy + r)]
        if not math.isfinite(lo[0]):
            return None
        end = self.size + margin
        clipped = lo[0] < -margin or lo[1] < -margin or hi[0] >= end or hi[1] >= end
        x0, y0 = max(int(math.floor(lo[0])) - 2, -margin), max(int(math.floor(lo[1])) - 2, -margin)
        x1, y1 = min(int(math.ceil(hi[0])) + 3, end), min(int(math.ceil(hi[1])) + 3, end)
        if x1 <= x0 or y1 <= y0:
            return None
        patch = np.zeros((y1 - y0, x1 - x0), np.uint8)
        if lines:
            q = np.rint((px - (x0, y0)) * _ONE).astype(np.int32)
        i = 0
        for op in part.ops:
            col = 0 if op.erase else 255
            kind = type(op)
            if kind is Poly or kind is Stroke:
                n = len(op.pts)
                if kind is Poly:
                    cv2.fillPoly(patch, [q[i:i + n]], col, cv2.LINE_AA, _SHIFT)
                else:
                    cv2.polylines(patch, [q[i:i + n]], op.closed, col, _stroke_arg(op.width * s), cv2.LINE_AA,
                                  _SHIFT)
                i += n
                continue
            cx, cy = pose.point(op.center)
            c = (int(round((cx - x0) * _ONE)), int(round((cy - y0) * _ONE)))
            if kind is Circle:
                cv2.circle(patch, c, max(int(round(op.r * s * _ONE)), 1), col, -1, cv2.LINE_AA, _SHIFT)
            else:
                axes = (max(int(round(op.axes[0] * s * _ONE)), 1), max(int(round(op.axes[1] * s * _ONE)), 1))
                cv2.ellipse(patch, c, axes, math.degrees(pose.angle_of(op.angle)), 0, 360, col, -1, cv2.LINE_AA,
                            _SHIFT)
        return patch, x0, y0, clipped

    def stamp(self, part: Part) -> Stamp | None:
        """Path-length patch (cm) of a part given in bag-frame centimetres; None when off the image.

        A part crossing the image border (always the case in a threat window) is drawn whole, up to
        `OVERDRAW` image sizes beyond the border, and cut to the image afterwards: the border is then not
        taken for its outline (rounded profiles, box walls) and its mass correction (thin strokes) is the
        same as in a view that holds all of it, so a window is an exact crop of a larger scan."""
        cov = self.coverage(part, OVERDRAW * self.size)
        if cov is None:
            return None
        patch, x0, y0, clipped = cov
        if not patch.any():
            return None
        c = patch.astype(np.float32) * np.float32(1.0 / 255.0)
        t_cm, wall_cm, b, w = part.thickness, part.wall, part.bevel * self.ppc, part.wall * self.ppc
        if b >= 1.0:  # rounded profile resolved in pixels (a hollow one minus its core)
            d = cv2.distanceTransform((patch > 0).view(np.uint8), cv2.DIST_L2, 3) - 0.5
            t = t_cm * _bevel(d, b)
            if w > 0:
                t -= t_cm * max(b - w, 0.0) / b * _bevel(d - w, max(b - w, 1e-3))
            t *= c
        elif b > 0:  # rounded but narrower than a pixel: its mean chord
            core = (max(b - w, 0.0) / b) ** 2 if w > 0 else 0.0
            t = c * np.float32(t_cm * math.pi / 4 * (1.0 - core))
        elif w > 0:  # a box seen from above: top and bottom plates plus the side walls along the outline
            d = cv2.distanceTransform((patch > 0).view(np.uint8), cv2.DIST_L2, 3) - 0.5
            band = max(w, 1.0)
            plates = min(2 * wall_cm, t_cm)
            t = (np.float32(plates) + (d < band) * np.float32((t_cm - plates) * w / band)) * c
        else:
            t = c * np.float32(t_cm)
        volume = part.stroke_volume()
        if not clipped and volume is not None:  # thin lines: exact mass
            total = float(t.sum())
            if total > 0:
                t *= np.float32(volume * self.ppc ** 2 / total)
        elif not clipped and min(patch.shape) <= 12:  # sub-pixel shapes: anti-aliasing must not add area (mass)
            drawn, true = float(c.sum()), part.area() * self.ppc ** 2
            if drawn > true:
                t *= np.float32(true / drawn)
        cx, cy = max(-x0, 0), max(-y0, 0)  # cut the margin off
        t = t[cy:max(self.size - y0, cy), cx:max(self.size - x0, cx)]
        if t.size == 0 or not t.any():
            return None
        return Stamp(material_id(part.material), t, x0 + cx, y0 + cy)


def _bevel(d: np.ndarray, b: float) -> np.ndarray:
    """Rounded-edge profile in [0, 1]: a quarter circle of radius b (pixels) from the outline inwards."""
    x = np.clip(d * np.float32(1.0 / b), 0.0, 1.0)
    return np.sqrt(x * (2.0 - x))


class Canvas:
    """Per-material mass thickness (g/cm^2) of a scan: `mass[m - 1]` for material id m."""

    def __init__(self, size: int, to_px: Pose):
        self.raster = Rasterizer(size, to_px)
        self.size = size
        self.mass = np.zeros((len(MATERIALS), size, size), np.float32)
        self._density = np.array([m.density for m in MATERIALS], np.float32)

    def draw(self, part: Part) -> Stamp | None:
        """Add a part's mass to the canvas and return its stamp (None when off the image)."""
        st = self.raster.stamp(part)
        if st is not None:
            rows, cols = st.slices
            self.mass[st.material - 1, rows, cols] += self._density[st.material - 1] * st.thickness
        return st


__all__ = ["Stamp", "Rasterizer", "Canvas"]
