"""Shapes in centimetres: drawing ops, parts (a shape of one material with a thickness profile), poses.

Every object in a scan is a list of `Part`s. A part is a sequence of 2-D drawing ops (filled polygons,
circles, ellipses, strokes; an op with `erase=True` cuts a hole) in one material, seen along the beam
with a peak path length `thickness` and a cross-section profile: flat (a plate), rounded (edges bevelled
with radius `bevel`: a tube or an ellipsoid-like body when bevel ~ half the width), optionally hollow
(`wall`: a shell such as a can, a bottle or a box). Parts are built in an object's own frame and moved
into the bag by a `Pose` (a similarity: rotation, uniform scale, mirror, translation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Union

import numpy as np


@dataclass(frozen=True)
class Pose:
    """Similarity transform p -> scale * R(angle) * F p + (tx, ty); F mirrors y when `flip`."""

    tx: float = 0.0
    ty: float = 0.0
    angle: float = 0.0
    scale: float = 1.0
    flip: bool = False

    def __post_init__(self):
        c, s = math.cos(self.angle) * self.scale, math.sin(self.angle) * self.scale
        f = -1.0 if self.flip else 1.0
        object.__setattr__(self, "_m", np.array([[c, -s * f, self.tx], [s, c * f, self.ty]], np.float64))

    def matrix(self) -> np.ndarray:
        """The 2x3 affine matrix of this pose."""
        return self._m

    def apply(self, pts: np.ndarray) -> np.ndarray:
        """Transform an (N, 2) array of points."""
        m = self._m
        return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]

    def point(self, p) -> tuple[float, float]:
        """Transform one point."""
        m = self._m
        return (m[0, 0] * p[0] + m[0, 1] * p[1] + m[0, 2], m[1, 0] * p[0] + m[1, 1] * p[1] + m[1, 2])

    def then(self, outer: "Pose") -> "Pose":
        """The pose that applies `self` first and `outer` second."""
        m = outer.matrix() @ np.vstack([self.matrix(), [0.0, 0.0, 1.0]])
        angle = math.atan2(m[1, 0], m[0, 0])
        return Pose(float(m[0, 2]), float(m[1, 2]), angle, self.scale * outer.scale, self.flip != outer.flip)

    def angle_of(self, local_angle: float) -> float:
        """Direction (radians) in the outer frame of a direction `local_angle` in the local frame."""
        return self.angle + (-local_angle if self.flip else local_angle)


class Poly(NamedTuple):
    """Filled polygon (even-odd rule when a part has several)."""

    pts: np.ndarray
    erase: bool = False

    def moved(self, pose: Pose) -> "Poly":
        """This op under `pose`."""
        return Poly(pose.apply(self.pts), self.erase)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the bounding box."""
        return self.pts.min(0), self.pts.max(0)

    def area(self) -> float:
        """Enclosed area (shoelace formula)."""
        x, y = self.pts[:, 0], self.pts[:, 1]
        return 0.5 * abs(float(x[:-1] @ y[1:] - y[:-1] @ x[1:] + x[-1] * y[0] - y[-1] * x[0]))


class Circle(NamedTuple):
    """Filled disc."""

    center: tuple[float, float]
    r: float
    erase: bool = False

    def moved(self, pose: Pose) -> "Circle":
        """This op under `pose`."""
        return Circle(pose.point(self.center), self.r * pose.scale, self.erase)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the bounding box."""
        c = np.asarray(self.center, float)
        return c - self.r, c + self.r

    def area(self) -> float:
        """Area of the disc."""
        return math.pi * self.r * self.r


class Ellipse(NamedTuple):
    """Filled ellipse with semi-axes (a, b), `a` along direction `angle` (radians)."""

    center: tuple[float, float]
    axes: tuple[float, float]
    angle: float = 0.0
    erase: bool = False

    def moved(self, pose: Pose) -> "Ellipse":
        """This op under `pose`."""
        return Ellipse(pose.point(self.center), (self.axes[0] * pose.scale, self.axes[1] * pose.scale),
                       pose.angle_of(self.angle), self.erase)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the bounding box."""
        c = np.asarray(self.center, float)
        r = max(self.axes)
        return c - r, c + r

    def area(self) -> float:
        """Area of the ellipse."""
        return math.pi * self.axes[0] * self.axes[1]


class Stroke(NamedTuple):
    """A polyline of the given width (a wire, a strap, a rim)."""

    pts: np.ndarray
    width: float
    closed: bool = False
    erase: bool = False

    def moved(self, pose: Pose) -> "Stroke":
        """This op under `pose`."""
        return Stroke(pose.apply(self.pts), self.width * pose.scale, self.closed, self.erase)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners of the bounding box."""
        return self.pts.min(0) - self.width / 2, self.pts.max(0) + self.width / 2

    def area(self) -> float:
        """Area covered by the stroke (length x width)."""
        return self.length() * self.width

    def length(self) -> float:
        """Length of the polyline (cm)."""
        d = self.pts[1:] - self.pts[:-1]
        total = float(np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]).sum())
        return total + (math.dist(self.pts[0], self.pts[-1]) if self.closed else 0.0)


Op = Union[Poly, Circle, Ellipse, Stroke]


class Part(NamedTuple):
    """One material's shape with a thickness profile; see the module docstring."""

    material: str
    ops: tuple
    thickness: float
    bevel: float = 0.0
    wall: float = 0.0

    def moved(self, pose: Pose) -> "Part":
        """This part under `pose` (lengths scale with the pose)."""
        s = pose.scale
        return Part(self.material, tuple(op.moved(pose) for op in self.ops), self.thickness * s,
                    self.bevel * s, self.wall * s)

    def area(self) -> float:
        """Approximate projected area: drawn ops minus erased ones (overlaps counted twice), > 0."""
        drawn = sum(op.area() for op in self.ops if not op.erase)
        return max(drawn - sum(op.area() for op in self.ops if op.erase), 0.1 * drawn)

    def stroke_volume(self) -> float | None:
        """Volume (cm^3) when the part is made of strokes only (used to conserve mass of thin lines)."""
        if not self.ops or not all(type(op) is Stroke and not op.erase for op in self.ops):
            return None
        vol = 0.0
        for op in self.ops:
            w, t = op.width, self.thickness
            inner = max(w - 2 * self.wall, 0.0) * max(t - 2 * self.wall, 0.0) if self.wall > 0 else 0.0
            area = (math.pi / 4 if self.bevel > 0 else 1.0) * (w * t - inner)  # ellipse or rectangle section
            vol += area * op.length()
        return vol


def move_all(parts: list[Part], pose: Pose) -> list[Part]:
    """All parts under `pose` (the polygon and stroke points of all parts transformed in one go)."""
    arrays = [op.pts for p in parts for op in p.ops if type(op) is Poly or type(op) is Stroke]
    if not arrays:
        return [p.moved(pose) for p in parts]
    pts = pose.apply(np.concatenate(arrays))
    ends = np.cumsum([len(a) for a in arrays]).tolist()
    moved = iter([pts[i0:i1] for i0, i1 in zip([0] + ends[:-1], ends)])
    s = pose.scale
    out = []
    for p in parts:
        ops = []
        for op in p.ops:
            if type(op) is Poly:
                ops.append(Poly(next(moved), op.erase))
            elif type(op) is Stroke:
                ops.append(Stroke(next(moved), op.width * s, op.closed, op.erase))
            else:
                ops.append(op.moved(pose))
        out.append(Part(p.material, tuple(ops), p.thickness * s, p.bevel * s, p.wall * s))
    return out


def merge_similar(parts: list[Part]) -> list[Part]:
    """Parts of equal material and profile joined into one part each (fewer, larger stamps; drawing order
    between the groups changes, which only matters for overlapping erasing ops)."""
    groups: dict[tuple, list] = {}
    for p in parts:
        groups.setdefault((p.material, p.thickness, p.bevel, p.wall), []).extend(p.ops)
    return [Part(m, tuple(ops), t, b, w) for (m, t, b, w), ops in groups.items()]


def bounds(parts: list[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper corners of the bounding box of the parts' non-erasing ops."""
    lo, hi = [math.inf, math.inf], [-math.inf, -math.inf]
    arrays, pad = [], 0.0
    for p in parts:
        for op in p.ops:
            if op.erase:
                continue
            if type(op) is Poly or type(op) is Stroke:
                arrays.append(op.pts)
                pad = max(pad, op.width / 2 if type(op) is Stroke else 0.0)
            else:
                r = op.r if type(op) is Circle else max(op.axes)
                lo = [min(lo[0], op.center[0] - r), min(lo[1], op.center[1] - r)]
                hi = [max(hi[0], op.center[0] + r), max(hi[1], op.center[1] + r)]
    if arrays:  # strokes pad everything by the widest stroke: a slightly loose box is harmless here
        pts = np.concatenate(arrays) if len(arrays) > 1 else arrays[0]
        lo = np.minimum(lo, pts.min(0) - pad)
        hi = np.maximum(hi, pts.max(0) + pad)
    return np.asarray(lo, float), np.asarray(hi, float)


def centred(parts: list[Part]) -> list[Part]:
    """The parts shifted so that their bounding box is centred on the origin."""
    lo, hi = bounds(parts)
    c = (lo + hi) / 2
    return move_all(parts, Pose(-float(c[0]), -float(c[1])))


def tube(material: str, pts: np.ndarray, diameter: float, wall: float = 0.0, closed: bool = False) -> Part:
    """A round tube or wire of `diameter` along a polyline (hollow when `wall` > 0)."""
    return Part(material, (Stroke(np.asarray(pts, float), diameter, closed),), diameter, diameter / 2, wall)


def cylinder(material: str, p0, p1, diameter: float, wall: float = 0.0, fill: float = 1.0) -> Part:
    """A cylinder seen from the side between two points (chord profile; hollow when `wall` > 0).

    `fill` < 1 scales the path length, e.g. a liquid that fills part of a can lying on its side.
    """
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9) * diameter / 2
    quad = np.array([p0 + n, p1 + n, p1 - n, p0 - n])
    return Part(material, (Poly(quad),), diameter * fill, diameter / 2, wall)


def box(material: str, outline: np.ndarray, depth: float, wall: float) -> Part:
    """A closed box (case, housing, bag) seen from above: two plates plus the side walls along the outline."""
    return Part(material, (Poly(np.asarray(outline, float)),), depth, 0.0, wall)


def ring(center, r_out: float, r_in: float) -> tuple[Circle, Circle]:
    """Ops of an annulus."""
    return Circle(tuple(center), r_out), Circle(tuple(center), r_in, erase=True)


def rect(w: float, h: float, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    """Axis-aligned rectangle centred at (cx, cy)."""
    return np.array([[cx - w / 2, cy - h / 2], [cx + w / 2, cy - h / 2], [cx + w / 2, cy + h / 2],
                     [cx - w / 2, cy + h / 2]])


_QUARTER = {n: np.linspace(0, math.pi / 2, n) for n in range(2, 13)}


def rounded_rect(w: float, h: float, r: float, cx: float = 0.0, cy: float = 0.0, n: int = 5) -> np.ndarray:
    """Rectangle with corners rounded to radius r (n points per corner, 2..12)."""
    r = min(r, w / 2, h / 2)
    a = np.concatenate([_QUARTER[n] + k * math.pi / 2 for k in range(4)])
    sx = np.repeat([1.0, -1.0, -1.0, 1.0], n)
    sy = np.repeat([1.0, 1.0, -1.0, -1.0], n)
    return np.stack([cx + sx * (w / 2 - r) + r * np.cos(a), cy + sy * (h / 2 - r) + r * np.sin(a)], 1)


def arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int = 16) -> np.ndarray:
    """Points on a circular arc from angle a0 to a1 (radians)."""
    a = np.linspace(a0, a1, n)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)


def ellipse_pts(a: float, b: float, n: int = 32, cx: float = 0.0, cy: float = 0.0) -> np.ndarray:
    """Polygon approximating an axis-aligned ellipse."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([cx + a * np.cos(t), cy + b * np.sin(t)], 1)


def blob(rng: np.random.Generator, a: float, b: float, rough: float = 0.15, n: int = 40) -> np.ndarray:
    """A smooth random star-shaped outline inside an a x b ellipse (low-order Fourier radius)."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    k = np.arange(1, 5)
    amp = rough * rng.normal(size=(4, 2)) / k[:, None]
    r = 1 + (amp[:, :1] * np.cos(np.outer(k, t)) + amp[:, 1:] * np.sin(np.outer(k, t))).sum(0)
    r = np.clip(r, 0.55, 1.25)
    return np.stack([a * r * np.cos(t), b * r * np.sin(t)], 1)


def ribbon(centre: np.ndarray, widths) -> np.ndarray:
    """Outline polygon of a band of (per-point) widths around a centreline."""
    c = np.asarray(centre, float)
    w = np.broadcast_to(np.asarray(widths, float), (len(c),))
    d = np.gradient(c, axis=0)
    n = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    return np.vstack([c + n * (w[:, None] / 2), (c - n * (w[:, None] / 2))[::-1]])


def bezier(ctrl: np.ndarray, n: int = 24) -> np.ndarray:
    """Points of a Bezier curve with the given control points (de Casteljau)."""
    ctrl = np.asarray(ctrl, float)
    t = np.linspace(0, 1, n)[:, None, None]
    pts = np.broadcast_to(ctrl, (n,) + ctrl.shape)
    while pts.shape[1] > 1:
        pts = (1 - t) * pts[:, :-1] + t * pts[:, 1:]
    return pts[:, 0]


def pick(rng: np.random.Generator, options):
    """One of `options`, uniformly (a cheaper rng.choice for short lists)."""
    return options[int(rng.random() * len(options))]


def random_walk(rng: np.random.Generator, start, n: int, step: float, turn: float, box) -> np.ndarray:
    """A smooth meandering path (a cable) that turns back when it leaves `box` = (x0, y0, x1, y1)."""
    noise = rng.normal(0, turn, n).tolist()
    x, y = float(start[0]), float(start[1])
    heading, omega = float(rng.uniform(0, 2 * math.pi)), 0.0
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    pts = []
    for e in noise:
        pts.append((x, y))
        omega = 0.8 * omega + e
        heading += omega
        if not (x0 < x < x1 and y0 < y < y1):
            heading += 0.35 * math.remainder(math.atan2(cy - y, cx - x) - heading, 2 * math.pi)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
    return np.array(pts)


__all__ = ["Pose", "Poly", "Circle", "Ellipse", "Stroke", "Op", "Part", "move_all", "merge_similar", "bounds",
           "centred", "tube", "cylinder", "box", "ring", "rect", "rounded_rect", "arc", "ellipse_pts", "blob", "ribbon",
           "bezier", "pick", "random_walk"]
