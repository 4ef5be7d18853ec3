"""Bag shells and the composition of one scan's scene (everything in centimetres, in the bag's frame).

A scene is the bag shell (panels, rim, frame rails, handles, zips, wheels), 5-30 clutter items plus
scattered small metal parts at random poses, and 0-3 threat items. Items overlap freely: X-rays pass
through everything, so drawing order only matters for the semantic mask of overlapping threats (the
later-drawn threat wins there; each keeps its full instance mask).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from baggan.data.xray.clutter import CLUTTER, small_metal, zip_puller
from baggan.data.xray.geometry import (Circle, Part, Poly, Pose, Stroke, arc, bezier, blob, bounds, box,
                                       merge_similar, move_all, pick, rect, rounded_rect, tube)
from baggan.data.xray.threats import THREATS

BAG_TYPES = ("suitcase", "softbag", "backpack")


@dataclass
class Scene:
    """A sampled bag: parts with their instance index (-1 for non-threats), threat names, view geometry."""

    bag: str
    parts: list[tuple[Part, int]] = field(default_factory=list)
    threats: list[str] = field(default_factory=list)
    n_clutter: int = 0
    items: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of each clutter item in `parts`
    view: Pose = Pose()
    fov: float = 60.0

    def add(self, parts: list[Part], instance: int = -1) -> None:
        """Append parts (of one threat instance when `instance` >= 0)."""
        self.parts.extend((p, instance) for p in parts)


def _shell(rng: np.random.Generator, material: str, outline: np.ndarray, depth: float, panel: float,
           rim: float) -> list[Part]:
    """Bag panels seen from above (top and bottom layers) with a few fabric creases, and the side walls as a
    bulging rim band."""
    lo, hi = outline.min(0), outline.max(0)
    creases = []
    for _ in range(int(rng.integers(3, 9))):
        p0, p1 = lo + rng.random(2) * (hi - lo), lo + rng.random(2) * (hi - lo)
        creases.append(Stroke(bezier([p0, (p0 + p1) / 2 + rng.normal(0, 4, 2), p1], 12), rng.uniform(0.3, 1.0)))
    return [Part(material, (Poly(outline),), 2 * panel),
            Part(material, tuple(creases), 4 * panel, 0.2),
            Part(material, (Stroke(outline, rim, closed=True),), depth * panel / rim * 0.35, rim / 2)]


def _along(path: np.ndarray, step: float, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Points every `step` cm along a polyline and the unit directions there."""
    pts = np.vstack([path, path[:1]]) if closed else path
    seg = np.diff(pts, axis=0)
    cum = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    t = np.arange(0.0, cum[-1], step)
    x, y = np.interp(t, cum, pts[:, 0]), np.interp(t, cum, pts[:, 1])
    k = np.clip(np.searchsorted(cum, t, side="right") - 1, 0, len(seg) - 1)
    d = seg[k] / np.maximum(np.hypot(seg[k, 0], seg[k, 1]), 1e-9)[:, None]
    return np.stack([x, y], 1), d


def _zip_track(rng: np.random.Generator, path: np.ndarray, closed: bool = False) -> list[Part]:
    """A zip along a path: a fabric tape, a row of metal or plastic teeth, one or two pullers."""
    metal = rng.random() < 0.6
    centres, dirs = _along(path, 0.7, closed)
    n = np.stack([-dirs[:, 1], dirs[:, 0]], 1)
    corners = np.stack([-0.18 * dirs - 0.35 * n, 0.18 * dirs - 0.35 * n, 0.18 * dirs + 0.35 * n,
                        -0.18 * dirs + 0.35 * n], 1) + centres[:, None]
    teeth = tuple(Poly(q) for q in corners)
    parts = [Part("steel" if metal else "plastic", teeth, 0.25 if metal else 0.5, 0.05),
             Part("textile", (Stroke(path, 2.2, closed),), 0.4, 0.3)]
    for _ in range(int(rng.integers(1, 3))):
        i = int(rng.integers(0, len(path) - 1))
        d = path[i + 1] - path[i]
        ang = math.atan2(d[1], d[0]) + math.pi / 2 * pick(rng, [-1, 1]) + rng.normal(0, 0.4)
        parts += move_all(zip_puller(rng), Pose(*path[i], ang))
    return parts


def suitcase(rng: np.random.Generator) -> tuple[list[Part], tuple[float, float, float]]:
    """Trolley suitcase, hard or soft shell: rails, telescopic handle, wheels, carry handle, zip, straps."""
    w, h = rng.uniform(55, 76), rng.uniform(38, 50)
    hard = rng.random() < 0.5
    depth = rng.uniform(20, 30)
    outline = rounded_rect(w, h, rng.uniform(4, 9), n=8)
    fabric = "plastic" if hard else str(rng.choice(["textile", "pvc"], p=[0.7, 0.3]))
    panel = {"plastic": 0.3, "textile": 0.3, "pvc": 0.08}[fabric]
    parts = _shell(rng, fabric, outline, depth, panel, rng.uniform(1.0, 2.5))
    if hard:  # moulded ribs
        for y in np.linspace(-h * 0.35, h * 0.35, int(rng.integers(3, 8))):
            parts.append(Part("plastic", (Stroke(np.array([[-w * 0.45, y], [w * 0.45, y]]), 1.2),), 0.5, 0.3))
    for y in (-1, 1):  # trolley rails (aluminium tubes) along the long side, and their mounts
        ry = y * h * rng.uniform(0.18, 0.3)
        for k, (x0, x1) in enumerate(((-w / 2 + 3, w / 2 - 6), (-w / 2 + 3, w * 0.05))):
            parts.append(box("aluminium", rect(x1 - x0, 2.2 - 0.5 * k, (x0 + x1) / 2, ry), 1.2 - 0.2 * k, 0.12))
        for x in (-w / 2 + 4, w / 2 - 7):
            parts.append(Part("steel", (Circle((x, ry), 0.35),), 2.0))
    parts.append(box("plastic", rounded_rect(4, h * 0.55, 1.5, -w / 2 + 2.5, 0), 3.0, 0.3))  # handle grip
    corners = [(w / 2 - 3.5, -h / 2 + 4), (w / 2 - 3.5, h / 2 - 4)]
    if rng.random() < 0.5:
        corners += [(-w / 2 + 3.5, -h / 2 + 4), (-w / 2 + 3.5, h / 2 - 4)]
    for c in corners:  # wheels: housing, rubber wheel, steel axle
        parts += [box("plastic", rounded_rect(7, 6, 2, *c), 6.0, 0.35),
                  Part("rubber", (Poly(rounded_rect(5.5, 2.2, 1.0, *c)),), 5.5, 2.0),
                  Part("steel", (Poly(rect(0.5, 3.0, *c)),), 0.5)]
    side = pick(rng, [-1, 1])
    handle = bezier([[-10, side * h / 2], [-8, side * (h / 2 + 4)], [8, side * (h / 2 + 4)], [10, side * h / 2]], 16)
    parts.append(tube("plastic", handle, 2.6, wall=0.3))
    for x in (-10, 10):
        parts += [box("plastic", rect(4, 2.5, x, side * (h / 2 - 1)), 2.5, 0.3),
                  Part("steel", (Circle((x, side * (h / 2 - 1)), 0.3),), 2.5)]
    zip_line = rounded_rect(w - 5, h - 5, 4, n=8)
    parts += _zip_track(rng, np.vstack([zip_line, zip_line[:1]]))
    if rng.random() < 0.6:  # packing straps with buckles
        for y in (-h * 0.2, h * 0.2):
            strap = np.array([[-w * 0.45, y + rng.normal(0, 1)], [w * 0.45, y + rng.normal(0, 1)]])
            parts.append(Part("textile", (Stroke(strap, 2.5),), 0.4))
            parts.append(box("plastic", rect(3, 4, 0, y), 1.0, 0.3))
    return parts, (w - 8, h - 8, depth)


def softbag(rng: np.random.Generator) -> tuple[list[Part], tuple[float, float, float]]:
    """Duffel, tote or shoulder bag: soft fabric shell, two strap handles with rings, top zip, shoulder strap."""
    w, h = rng.uniform(42, 66), rng.uniform(28, 42)
    outline = blob(rng, w / 2, h / 2, rough=0.06, n=48)
    outline = np.clip(outline, [-w / 2, -h / 2], [w / 2, h / 2])
    fabric = pick(rng, ["textile", "pvc", "plastic"])
    panel = {"textile": 0.3, "pvc": 0.08, "plastic": 0.1}[fabric]
    depth = rng.uniform(18, 30)
    parts = _shell(rng, fabric, outline, depth, panel, rng.uniform(1.5, 3.5))
    for side in (-1, 1):  # strap handles, sewn on with metal rings
        x0, x1 = rng.uniform(-w * 0.3, -w * 0.15), rng.uniform(w * 0.15, w * 0.3)
        loop = bezier([[x0, side * h * 0.35], [x0, side * h * 0.95], [x1, side * h * 0.95], [x1, side * h * 0.35]], 20)
        parts.append(Part("textile", (Stroke(loop, 3.0),), 0.6, 0.3))
        for x in (x0, x1):
            c = (x, side * h * 0.36)
            parts.append(Part("steel", (Stroke(np.vstack([arc(*c, 1.5, 0, 2 * math.pi, 16)]), 0.35, True),), 0.35,
                              0.17))
    zip_path = bezier([[-w * 0.42, -h * 0.05], [0, -h * 0.05 + rng.normal(0, 2)], [w * 0.42, -h * 0.05]], 16)
    parts += _zip_track(rng, zip_path)
    if rng.random() < 0.5:
        strap = bezier([[-w / 2, 0], [-w * 0.2, h * rng.uniform(-0.5, 0.5)], [w * 0.2, h * rng.uniform(-0.5, 0.5)],
                        [w / 2, 0]], 24)
        parts.append(Part("textile", (Stroke(strap, 4.0),), 0.5, 0.3))
        for end in (strap[0], strap[-1]):
            parts.append(Part("steel", (Poly(rounded_rect(3.5, 5.0, 1.0, *end)),
                                        Poly(rounded_rect(2.0, 3.5, 0.5, *end), erase=True)), 0.5, 0.1))
    return parts, (w - 6, h - 6, depth)


def backpack(rng: np.random.Generator) -> tuple[list[Part], tuple[float, float, float]]:
    """Backpack: rounded fabric body, padded shoulder straps with buckles, zip arcs, back frame bars."""
    w, h = rng.uniform(42, 54), rng.uniform(30, 38)  # long axis along x
    outline = rounded_rect(w, h, rng.uniform(6, 12), n=10)
    outline[:, 0] += np.where(outline[:, 0] < 0, 1.0, 0.0) * np.abs(outline[:, 1]) * 0.15
    depth = rng.uniform(15, 25)
    parts = _shell(rng, "textile", outline, depth, 0.3, rng.uniform(1.5, 3.0))
    for y in (-h * 0.22, h * 0.22):  # shoulder straps (foam-padded) and their buckles
        strap = bezier([[-w * 0.45, y], [-w * 0.1, y * 1.6], [w * 0.2, y * 0.6], [w * 0.45, y * 0.7]], 20)
        parts.append(Part("textile", (Stroke(strap, 5.5),), 1.5, 1.0))
        c = strap[14]
        parts.append(Part("plastic", (Poly(rounded_rect(3.5, 4.5, 0.6, *c)),
                                      Poly(rect(1.0, 3.0, c[0] - 0.6, c[1]), erase=True)), 0.6, 0.1))
    for k in range(int(rng.integers(1, 4))):
        r = h * rng.uniform(0.3, 0.55)
        cx = w * rng.uniform(-0.1, 0.25)
        parts += _zip_track(rng, arc(cx, 0, r, -0.45 * math.pi, 0.45 * math.pi, 18))
    if rng.random() < 0.4:
        for y in (-h * 0.12, h * 0.12):
            parts.append(Part("aluminium", (Poly(rect(w * 0.75, 2.0, 0, y)),), 0.3))
    loop = bezier([[-w / 2 + 1, -3], [-w / 2 - 4, -3], [-w / 2 - 4, 3], [-w / 2 + 1, 3]], 12)
    parts.append(Part("textile", (Stroke(loop, 2.5),), 0.5, 0.3))
    return parts, (w - 6, h - 6, depth)


BAGS = {"suitcase": suitcase, "softbag": softbag, "backpack": backpack}


class _Packer:
    """Places items in the bag's interior (w, h, depth in cm). With `tries` > 1 an item takes the least
    filled of that many random positions on a grid of 2 cm cells that sums the items' thicknesses over
    their footprints, which spreads the packing like a real bag; soft items (clothes) are squeezed to fit
    the bag's depth."""

    cell = 2.0

    def __init__(self, interior: tuple[float, float, float]):
        self.ix, self.iy, self.depth = interior[0] / 2, interior[1] / 2, interior[2]
        self.nx, self.ny = max(int(interior[0] / self.cell), 1), max(int(interior[1] / self.cell), 1)
        self.grid = np.zeros((self.ny, self.nx))

    def _window(self, x: float, y: float, r: float) -> tuple[int, int, int, int]:
        """Grid cells (j0, j1, i0, i1) of the square footprint of half-size r around (x, y)."""
        i0 = min(max(int((x - r + self.ix) / self.cell), 0), self.nx - 1)
        j0 = min(max(int((y - r + self.iy) / self.cell), 0), self.ny - 1)
        i1 = max(min(int((x + r + self.ix) / self.cell) + 1, self.nx), i0 + 1)
        j1 = max(min(int((y + r + self.iy) / self.cell) + 1, self.ny), j0 + 1)
        return j0, j1, i0, i1

    def place(self, rng: np.random.Generator, parts: list[Part], aligned: bool = False, tries: int = 1,
              shrink: float = 1.0, soft: bool = False) -> list[Part]:
        """Move an item (centred first) to a random pose inside the (shrunk) interior."""
        lo, hi = bounds(parts)
        ext = hi - lo
        ix, iy = self.ix * shrink, self.iy * shrink
        fit = min(1.0, 0.95 * 2 * max(ix, iy) / max(float(ext.max()), 1e-6))
        half = 0.5 * fit * float(ext.max())
        rx, ry = max(ix - half, 0.3 * ix), max(iy - half, 0.3 * iy)
        r = 0.5 * fit * math.sqrt(ext[0] * ext[1])  # footprint: square of the item's area
        sat = np.zeros((self.ny + 1, self.nx + 1))
        if tries > 1 or soft:
            sat[1:, 1:] = self.grid.cumsum(0).cumsum(1)  # summed-area table of the filling
        best = None
        for x, y in zip(rng.uniform(-rx, rx, tries).tolist(), rng.uniform(-ry, ry, tries).tolist()):
            j0, j1, i0, i1 = self._window(x, y, r)
            filled = (sat[j1, i1] - sat[j0, i1] - sat[j1, i0] + sat[j0, i0]) / ((j1 - j0) * (i1 - i0))
            if best is None or filled < best[0]:
                best = (filled, x, y, (j0, j1, i0, i1))
        filled, x, y, (j0, j1, i0, i1) = best
        thick = max(p.thickness for p in parts) * fit
        if soft and filled + thick > self.depth:  # squeeze clothes into the room left
            squeeze = max((self.depth - filled) / thick, 0.25)
            parts = [p._replace(thickness=p.thickness * squeeze, bevel=p.bevel * squeeze) for p in parts]
            thick *= squeeze
        self.grid[j0:j1, i0:i1] += thick
        u = rng.random(3)
        angle = (rng.normal(0, 0.15) + math.pi / 2 * (u[0] < 0.5)) if aligned else 2 * math.pi * u[1]
        pose = Pose(x, y, angle, fit, bool(u[2] < 0.5))
        c = pose.apply((lo + hi)[None] / 2)[0] - (x, y)  # where the item's centre would land
        return move_all(parts, Pose(x - float(c[0]), y - float(c[1]), angle, fit, pose.flip))


_ALIGNED = {"book", "laptop"}
_SOFT = {"clothes", "belt", "umbrella"}


def sample_scene(rng: np.random.Generator, threat_rate: float, max_threats: int, threat_classes: tuple[str, ...],
                 clutter: tuple[int, int], small_parts: int, bag_types: tuple[str, ...],
                 fov_margin: tuple[float, float]) -> Scene:
    """Draw one bag: shell, clutter, small metal parts, threats, and the view (rotation, field of view)."""
    bag = pick(rng, bag_types)
    shell, interior = BAGS[bag](rng)
    scene = Scene(bag)
    shell = merge_similar(shell)
    scene.add(shell)
    names = list(CLUTTER)
    weights = np.array([CLUTTER[n][1] for n in names])
    n_items = int(rng.integers(clutter[0], clutter[1] + 1))
    packer = _Packer(interior)
    for name in rng.choice(names, size=n_items, p=weights / weights.sum()):
        item = merge_similar(CLUTTER[name][0](rng))
        start = len(scene.parts)
        scene.add(packer.place(rng, item, aligned=name in _ALIGNED, tries=6, soft=name in _SOFT))
        if len(scene.parts) > start:
            scene.items.append((start, len(scene.parts)))
    for _ in range(int(rng.integers(0, small_parts + 1))):
        scene.add(packer.place(rng, small_metal(rng)))
    scene.n_clutter = n_items
    n_threats = 0
    if rng.random() < threat_rate:
        n_threats = 1 + sum(rng.random() < 0.3 for _ in range(max_threats - 1))
    for k in range(n_threats):
        name = pick(rng, threat_classes)
        scene.add(packer.place(rng, THREATS[name](rng), shrink=0.85), instance=k)
        scene.threats.append(name)
    lo, hi = bounds([p for p, _ in scene.parts[:len(shell)]])
    angle = pick(rng, [0.0, math.pi / 2, math.pi, 1.5 * math.pi]) + rng.normal(0, 0.1)
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    ext = hi - lo
    span = max(ext[0] * c + ext[1] * s, ext[0] * s + ext[1] * c)
    scene.fov = float(span * rng.uniform(*fov_margin))
    centre = (lo + hi) / 2 + rng.normal(0, 0.02 * span, 2)
    scene.view = Pose(-float(centre[0]), -float(centre[1])).then(Pose(0.0, 0.0, angle))
    return scene


__all__ = ["BAG_TYPES", "BAGS", "Scene", "sample_scene", "suitcase", "softbag", "backpack"]
