"""Everyday bag contents as parametric parts (centimetres, object frame).

Builders return the parts of one item at a random size/variant. `CLUTTER` maps names to (builder, weight):
the weight is the relative frequency with which a bag's clutter items are drawn. Small metal parts
(zip pullers, clips, buckles, rivets), cables and coiled wires are what make real scans busy, so they are
frequent; large soft organics (clothes) fill most of the bag's area.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from baggan.data.xray.geometry import (Circle, Ellipse, Part, Poly, Pose, Stroke, arc, bezier, blob, box, cylinder,
                                       ellipse_pts, move_all, pick, random_walk, rect, ribbon, rounded_rect, tube)

Builder = Callable[[np.random.Generator], list[Part]]


def clothes(rng: np.random.Generator) -> list[Part]:
    """A folded garment: a soft textile blob with fold ridges, sometimes buttons, a zip or rivets."""
    a, b = rng.uniform(10, 24), rng.uniform(8, 18)
    outline = blob(rng, a, b, rough=rng.uniform(0.1, 0.3))
    depth = rng.uniform(1.0, 5.0)
    parts = [Part("textile", (Poly(outline),), depth, rng.uniform(2.0, 5.0))]
    folds = []
    for _ in range(int(rng.integers(2, 6))):  # folds: extra layers along curved bands
        p0 = (rng.random(2) * 2 - 1) * [a, b] * 0.6
        p1 = p0 + rng.normal(0, 1, 2) * a * 0.6
        folds.append(Stroke(bezier([p0, (p0 + p1) / 2 + rng.normal(0, 3, 2), p1], 10), rng.uniform(1.5, 4.0)))
    parts.append(Part("textile", tuple(folds), depth * rng.uniform(0.2, 0.5), 1.5))
    extra = rng.random()
    if extra < 0.25:  # buttons
        x = rng.uniform(-a, a) * 0.4
        r = rng.uniform(0.5, 0.9)
        ys = np.linspace(-b * 0.6, b * 0.6, int(rng.integers(3, 7)))
        parts.append(Part(pick(rng, ["plastic", "steel"]), tuple(Circle((x, y), r) for y in ys), 0.3))
    elif extra < 0.45:  # a zip with its puller
        zip_line = bezier([[-a * 0.5, -b * 0.5], [0, rng.uniform(-3, 3)], [a * 0.5, b * 0.4]], 12)
        parts.append(Part("steel", (Stroke(zip_line, 0.55),), 0.12))
        parts += move_all(zip_puller(rng), Pose(*zip_line[-1], rng.uniform(0, 2 * math.pi)))
    elif extra < 0.55:  # jeans rivets
        spots = (rng.random((int(rng.integers(4, 8)), 2)) * 2 - 1) * [a, b] * 0.5
        parts.append(Part("copper", tuple(Circle(tuple(c), 0.45) for c in spots), 0.35))
    return parts


def shoes(rng: np.random.Generator) -> list[Part]:
    """A pair of shoes: rubber soles (thick rim), uppers, sometimes metal eyelets or a steel shank."""
    length, width = rng.uniform(24, 31), rng.uniform(8.5, 10.5)
    sole = np.vstack([ellipse_pts(length / 2, width / 2, 36)])
    sole[:, 1] *= np.where(sole[:, 0] < 0, 0.8, 1.0)
    parts = []
    for k, y in enumerate((-width * 0.6, width * 0.6)):
        s = sole * ([1, -1] if k else [1, 1]) + [rng.uniform(-2, 2), y]
        parts.append(Part("rubber", (Poly(s),), rng.uniform(2.5, 4.0), 0.0, rng.uniform(0.8, 1.5)))
        parts.append(Part("textile", (Poly(s * 0.8 + [length * 0.04, y * 0.2]),), rng.uniform(4, 8), 2.5))
        if rng.random() < 0.5:
            for x in np.linspace(length * 0.05, length * 0.3, 5):
                for dy in (-1.2, 1.2):
                    parts.append(Part("steel", (Circle((x, y + dy), 0.35), Circle((x, y + dy), 0.18, erase=True)),
                                      0.2))
        if rng.random() < 0.3:
            parts.append(Part("steel", (Poly(rect(8, 1.2, -length * 0.1, y)),), 0.15))
    return parts


def bottle(rng: np.random.Generator) -> list[Part]:
    """A glass or PET bottle (hollow body, neck, cap) partly filled with liquid, lying on its side."""
    d, length = rng.uniform(5.5, 8.5), rng.uniform(16, 28)
    glass = rng.random() < 0.35
    shell, wall = ("glass", rng.uniform(0.25, 0.45)) if glass else ("plastic", 0.04)
    neck_len, neck_d = length * 0.25, d * 0.4
    body = [[-length / 2, -d / 2], [length / 2 - neck_len, -d / 2], [length / 2 - neck_len * 0.5, -neck_d / 2],
            [length / 2, -neck_d / 2], [length / 2, neck_d / 2], [length / 2 - neck_len * 0.5, neck_d / 2],
            [length / 2 - neck_len, d / 2], [-length / 2, d / 2]]
    fill = rng.uniform(0.2, 1.0)
    liquid = pick(rng, ["water", "food"])
    return [Part(shell, (Poly(np.array(body)),), d, d / 2, wall),
            cylinder(liquid, (-length / 2 + wall, 0), (length / 2 - neck_len, 0), d - 2 * wall, fill=fill),
            cylinder(pick(rng, ["plastic", "aluminium"]), (length / 2 - 0.3, 0), (length / 2 + 1.8, 0),
                     neck_d * 1.2, wall=0.12)]


def book(rng: np.random.Generator) -> list[Part]:
    """A book, notebook or magazine stack; sometimes with a metal spiral binding."""
    w, h = rng.uniform(12, 30), rng.uniform(15, 24)
    parts = [Part("paper", (Poly(rect(w, h)),), rng.uniform(0.8, 4.0), 0.3)]
    if rng.random() < 0.3:
        for y in np.arange(-h / 2 + 0.8, h / 2 - 0.5, 0.85):
            parts.append(Part("steel", (Ellipse((-w / 2, y), (0.6, 0.28)),
                                        Ellipse((-w / 2, y), (0.45, 0.15), erase=True)), 0.1))
    return parts


def laptop(rng: np.random.Generator) -> list[Part]:
    """A laptop or tablet: aluminium/plastic shell, Li-ion pack, main board, chips, heat pipe, fan, screws."""
    tablet = rng.random() < 0.3
    w, h = (rng.uniform(18, 26), rng.uniform(13, 18)) if tablet else (rng.uniform(29, 37), rng.uniform(20, 25))
    shell = pick(rng, ["aluminium", "plastic"])
    parts = [box(shell, rounded_rect(w, h, 1.0), rng.uniform(0.7, 2.0), 0.15 if shell == "aluminium" else 0.3)]
    if tablet:
        parts.append(Part("battery", (Poly(rect(w * 0.6, h * 0.75, -w * 0.15)),), 0.4, 0.2))
        parts.append(Part("pcb", (Poly(rect(w * 0.25, h * 0.6, w * 0.3)),), 0.2))
    else:
        n = int(rng.integers(3, 7))
        for i in range(n):
            x = (i - (n - 1) / 2) * (w * 0.7 / n)
            parts.append(Part("battery", (Poly(rect(w * 0.7 / n - 0.3, h * 0.28, x, h * 0.3)),), 0.6, 0.2))
        parts.append(Part("pcb", (Poly(rect(w * 0.55, h * 0.4, -w * 0.1, -h * 0.15)),), 0.18))
        for _ in range(int(rng.integers(4, 10))):
            cw, ch = rng.uniform(0.6, 2.6, 2)
            cx, cy = rng.uniform(-w * 0.35, w * 0.15), rng.uniform(-h * 0.33, h * 0.02)
            parts.append(Part(pick(rng, ["pcb", "steel", "aluminium"]), (Poly(rect(cw, ch, cx, cy)),), 0.3))
        fan = (w * 0.3, -h * 0.2)
        parts.append(Part("plastic", (Circle(fan, 3.0), Circle(fan, 1.0, erase=True)), 0.8))
        parts.append(tube("copper", [[fan[0] - 2.5, fan[1]], [-w * 0.05, -h * 0.1], [-w * 0.2, -h * 0.1]], 0.6))
        parts.append(Part("glass", (Poly(rect(w * 0.9, h * 0.08, 0, -h * 0.45)),), 0.4))  # hinge/speaker bar
        for kx in np.linspace(-w * 0.4, w * 0.4, 9):
            parts.append(Part("steel", (Poly(rect(0.15, h * 0.45, kx, h * 0.05)),), 0.08))  # keyboard plate
    for sx, sy in ((-1, -1), (-1, 1), (1, -1), (1, 1), (0, -1), (0, 1)):
        parts.append(Part("steel", (Circle((sx * (w / 2 - 0.8), sy * (h / 2 - 0.8)), 0.25),), 0.5))
    return parts


def charger(rng: np.random.Generator) -> list[Part]:
    """A mains charger: plastic box, transformer core and coil, prongs and a cable to a connector."""
    w, h = rng.uniform(3.5, 7.5), rng.uniform(3.5, 6.5)
    parts = [box("plastic", rounded_rect(w, h, 0.6), rng.uniform(2.0, 3.5), 0.2),
             Part("steel", (Poly(rect(w * 0.35, h * 0.45, -w * 0.1)),), 1.4, 0.0, 0.25),
             Part("copper", (Poly(rect(w * 0.2, h * 0.5, -w * 0.1)),), 1.0, 0.3),
             Part("pcb", (Poly(rect(w * 0.7, h * 0.3, 0, h * 0.25)),), 0.2)]
    for dy in (-0.9, 0.9):
        parts.append(Part("copper", (Poly(rect(1.6, 0.25, w / 2 + 0.8, dy)),), 0.15))
    region = (-30, -20, 30, 20)
    path = random_walk(rng, (-w / 2, 0), int(rng.integers(30, 80)), 1.2, 0.25, region)
    parts += cable_parts(path, rng.uniform(0.3, 0.55))
    end = path[-1]
    parts.append(Part("steel", (Poly(rect(1.8, 0.9, *end)),), 0.5, 0.0, 0.05))
    return parts


def cable_parts(path: np.ndarray, diameter: float) -> list[Part]:
    """A cable along `path`: PVC insulation and two copper cores."""
    return [tube("pvc", path, diameter), tube("copper", path, diameter * 0.35)]


def cable(rng: np.random.Generator) -> list[Part]:
    """A loose cable or wire wandering through the bag, or a bundled coil of loops."""
    d = rng.uniform(0.2, 0.6)
    if rng.random() < 0.5:
        path = random_walk(rng, (0, 0), int(rng.integers(40, 140)), 1.2, 0.22, (-25, -18, 25, 18))
        return cable_parts(path, d)
    parts = []
    r = rng.uniform(4, 10)
    c = np.zeros(2)
    for _ in range(int(rng.integers(3, 9))):
        rr = r * rng.uniform(0.85, 1.15)
        loop = ellipse_pts(rr, rr * rng.uniform(0.5, 1.0), 28) + c + rng.normal(0, 0.8, 2)
        parts.append(Part("pvc", (Stroke(loop, d, closed=True),), d, d / 2))
        parts.append(Part("copper", (Stroke(loop, d * 0.35, closed=True),), d * 0.35, d * 0.17))
    return parts


def toiletry(rng: np.random.Generator) -> list[Part]:
    """Toiletries: a plastic bottle of liquid, a toothpaste tube, a razor or a deodorant can."""
    kind = pick(rng, ["bottle", "tube", "razor", "can"])
    if kind == "bottle":
        w, h = rng.uniform(3.5, 7), rng.uniform(8, 18)
        return [box("plastic", rounded_rect(h, w, 1.0), w * 0.7, 0.1),
                Part("water", (Poly(rounded_rect(h * rng.uniform(0.4, 0.95), w - 0.3, 0.8)),), w * 0.6, w * 0.3),
                cylinder("plastic", (h / 2, 0), (h / 2 + 2.5, 0), w * 0.6)]
    if kind == "tube":
        h, w = rng.uniform(12, 20), rng.uniform(3.5, 5.5)
        outline = np.array([[-h / 2, -w / 2], [h / 2 - 1, -w * 0.3], [h / 2 - 1, w * 0.3], [-h / 2, w / 2]])
        return [Part("food", (Poly(outline),), w * 0.6, w * 0.3),
                Part("aluminium", (Poly(outline),), 0.04),
                cylinder("plastic", (h / 2 - 1.2, 0), (h / 2 + 0.8, 0), w * 0.5)]
    if kind == "razor":
        h = rng.uniform(11, 15)
        return [Part("plastic", (Poly(ribbon(np.array([[-h / 2, 0], [h / 2 - 3, 0]]), 1.3)),), 1.0, 0.5),
                Part("plastic", (Poly(rect(1.8, 4.2, h / 2 - 1.5, 0)),), 1.0, 0.3),
                Part("steel", (Poly(rect(0.25, 3.6, h / 2 - 1.2, 0)), Poly(rect(0.25, 3.6, h / 2 - 1.9, 0))), 0.05),
                Part("steel", (Poly(rect(h * 0.6, 0.3, -h * 0.15, 0)),), 0.2)]
    d, h = rng.uniform(4.5, 6.5), rng.uniform(13, 20)
    return [cylinder("aluminium", (-h / 2, 0), (h / 2, 0), d, wall=0.05),
            cylinder("water", (-h / 2 + 0.5, 0), (h / 2 - 0.5, 0), d - 0.2, fill=rng.uniform(0.2, 0.8)),
            cylinder("plastic", (h / 2, 0), (h / 2 + 3, 0), d * 0.9, wall=0.1)]


def coins(rng: np.random.Generator) -> list[Part]:
    """A handful of coins (copper alloy or steel discs), loosely clustered."""
    parts = []
    for _ in range(int(rng.integers(1, 9))):
        c = tuple(rng.normal(0, 2.0, 2))
        parts.append(Part(pick(rng, ["copper", "steel"]), (Circle(c, rng.uniform(0.8, 1.4)),),
                          rng.uniform(0.15, 0.25), 0.1))
    return parts


def keys(rng: np.random.Generator) -> list[Part]:
    """A key ring with 1-5 brass or steel keys (bow with hole, toothed blade)."""
    ring_r = rng.uniform(1.2, 1.8)
    parts = [Part("steel", (Stroke(ellipse_pts(ring_r, ring_r, 24), 0.15, closed=True),), 0.15, 0.07)]
    for k in range(int(rng.integers(1, 6))):
        a = rng.uniform(0, 2 * math.pi)
        blade = rng.uniform(3.5, 5.5)
        teeth = np.stack([np.linspace(1.8, 1.8 + blade, 9), -0.45 + 0.25 * (np.arange(9) % 2)], 1)
        outline = np.vstack([[[1.8, 0.45], [1.8 + blade, 0.45]], teeth[::-1]])
        bow = (Ellipse((0.9, 0.0), (1.3, 1.1)), Circle((0.3, 0.0), 0.3, erase=True))
        key = Part(pick(rng, ["copper", "steel"]), bow + (Poly(outline),), 0.22, 0.05)
        parts.append(key.moved(Pose(ring_r * math.cos(a), ring_r * math.sin(a), a)))
    return parts


def small_metal(rng: np.random.Generator) -> list[Part]:
    """A small metal part: zip puller, paper clip, safety pin, D-ring, buckle, hair clip or screw."""
    kind = pick(rng, ["puller", "clip", "pin", "dring", "buckle", "screw"])
    if kind == "puller":
        return zip_puller(rng)
    if kind == "clip":
        w, h = rng.uniform(2.5, 4.5), rng.uniform(0.7, 1.0)
        path = np.vstack([arc(0, 0, h / 2, 0.5 * math.pi, 1.5 * math.pi, 6) + [0, 0],
                          arc(w, -0.1, h / 2 - 0.15, -0.5 * math.pi, 0.5 * math.pi, 6),
                          arc(0.4, 0.05, h / 2 - 0.3, 0.5 * math.pi, 1.5 * math.pi, 6)])
        return [tube("steel", path, 0.1)]
    if kind == "pin":
        length = rng.uniform(2.5, 5.0)
        path = np.array([[0, 0], [length, 0.25], [length, -0.25], [0.3, -0.3]])
        return [tube("steel", path, 0.1), Part("steel", (Circle((-0.3, 0), 0.35),), 0.2)]
    if kind == "dring":
        r = rng.uniform(1.0, 2.2)
        d = arc(0, 0, r, -0.5 * math.pi, 0.5 * math.pi, 12)
        return [tube("steel", np.vstack([d, d[:1]]), rng.uniform(0.25, 0.4))]
    if kind == "buckle":
        w, h = rng.uniform(3, 5.5), rng.uniform(2.5, 4.5)
        return [Part(pick(rng, ["steel", "plastic"]), (Poly(rounded_rect(w, h, 0.6)),
                                                       Poly(rounded_rect(w - 1.0, h - 1.0, 0.3), erase=True)),
                     0.4, 0.1), tube("steel", [[0, -h / 2], [0, h / 2]], 0.25)]
    length = rng.uniform(1.5, 4.0)
    return [cylinder("steel", (0, 0), (length, 0), rng.uniform(0.3, 0.5)),
            Part("steel", (Circle((0.0, 0.0), 0.45),), 0.3)]


def zip_puller(rng: np.random.Generator) -> list[Part]:
    """A zip slider with its pull tab (the D- and loop shapes that dot every scan)."""
    length, w = rng.uniform(2.0, 4.0), rng.uniform(0.8, 1.4)
    tab = rounded_rect(length, w, w * 0.45, length / 2 + 0.9)
    hole = rounded_rect(length * 0.45, w * 0.45, w * 0.2, length * 0.75 + 0.9)
    return [Part("steel", (Poly(rect(1.4, 1.1, 0.0)),), 0.5, 0.0, 0.1),
            Part(pick(rng, ["steel", "copper"]), (Poly(tab), Poly(hole, erase=True)), 0.12, 0.05)]


def food(rng: np.random.Generator) -> list[Part]:
    """Food: fruit, a snack bag, a chocolate bar, a sandwich box or a tin can with contents."""
    kind = pick(rng, ["fruit", "snack", "bar", "tin"])
    if kind == "fruit":
        r = rng.uniform(3.0, 4.5)
        return [Part("water", (Circle((0.0, 0.0), r),), 2 * r * 0.9, r)]
    if kind == "snack":
        a, b = rng.uniform(7, 14), rng.uniform(5, 10)
        return [Part("food", (Poly(blob(rng, a, b, 0.2)),), rng.uniform(1.5, 4), 2.0),
                Part("aluminium", (Poly(rect(2 * a, 2 * b)),), 0.003)]
    if kind == "bar":
        return [Part("food", (Poly(rect(rng.uniform(10, 18), rng.uniform(4, 8))),), rng.uniform(0.8, 2.0), 0.3)]
    d, h = rng.uniform(6.5, 9.5), rng.uniform(5, 11)
    return [cylinder("steel", (-h / 2, 0), (h / 2, 0), d, wall=0.025),
            cylinder("food", (-h / 2 + 0.2, 0), (h / 2 - 0.2, 0), d - 0.2),
            Part("steel", (Poly(rect(0.4, d, -h / 2)), Poly(rect(0.4, d, h / 2))), d, 0.3)]


def umbrella(rng: np.random.Generator) -> list[Part]:
    """A folded umbrella: steel shaft, thin ribs, fabric and a plastic handle."""
    length = rng.uniform(22, 32)
    parts = [cylinder("steel", (0, 0), (length, 0), rng.uniform(0.8, 1.2), wall=0.08),
             Part("textile", (Poly(np.array([[2, -2.2], [length, -0.6], [length, 0.6], [2, 2.2]])),), 4.0, 1.5)]
    for y in np.linspace(-1.8, 1.8, int(rng.integers(5, 9))):
        parts.append(tube("steel", [[2.5, y], [length - 1, y * 0.3]], 0.12))
    parts.append(cylinder("plastic", (-8, 0), (0.5, 0), 2.8))
    return parts


def belt(rng: np.random.Generator) -> list[Part]:
    """A rolled or loose belt: leather strap with a metal buckle."""
    region = (-15, -10, 15, 10)
    path = random_walk(rng, (0, 0), int(rng.integers(20, 40)), 2.0, 0.2, region)
    parts = [Part("food", (Stroke(path, 3.5),), 0.4, 0.2)]
    end = path[0]
    parts.append(Part("steel", (Poly(rounded_rect(5.0, 4.0, 0.8, *end)), Poly(rounded_rect(3.6, 2.8, 0.3, *end),
                                                                             erase=True)), 0.5, 0.1))
    return parts


def headphones(rng: np.random.Generator) -> list[Part]:
    """Headphones: plastic band with a steel spring, two ear cups with magnets, a cable."""
    r = rng.uniform(7, 10)
    band = arc(0, 0, r, math.pi * 1.1, math.pi * 1.9, 20)
    parts = [Part("plastic", (Stroke(band, 2.5),), 1.2, 0.5), tube("steel", band, 0.25)]
    for end in (band[0], band[-1]):
        parts.append(Part("plastic", (Circle(tuple(end + [0, 2.5]), 3.5),), 3.0, 1.5, 0.2))
        parts.append(Part("steel", (Circle(tuple(end + [0, 2.5]), 1.2),), 0.6))
        parts.append(Part("copper", (Circle(tuple(end + [0, 2.5]), 2.0), Circle(tuple(end + [0, 2.5]), 1.6,
                                                                                erase=True)), 0.3))
    return parts


def glasses(rng: np.random.Generator) -> list[Part]:
    """Spectacles: two lens rims (metal or plastic), bridge and folded temples; sometimes in a case."""
    r = rng.uniform(2.0, 2.8)
    mat = pick(rng, ["steel", "plastic"])
    parts = []
    for x in (-r - 0.8, r + 0.8):
        parts.append(Part(mat, (Stroke(ellipse_pts(r, r * 0.75, 24, x), 0.3, closed=True),), 0.3, 0.15))
        parts.append(Part("plastic", (Poly(ellipse_pts(r - 0.1, r * 0.75 - 0.1, 24, x)),), 0.3))
    parts.append(tube(mat, arc(0, -0.4, 0.9, math.pi * 1.15, math.pi * 1.85, 8), 0.25))
    parts.append(tube(mat, [[-2 * r - 0.8, 0.5], [2 * r + 0.8, 0.8]], 0.25))
    if rng.random() < 0.4:
        parts.append(box(pick(rng, ["plastic", "steel"]), rounded_rect(4 * r + 3.5, 2 * r + 1.5, r), 3.5, 0.04))
    return parts


def pens(rng: np.random.Generator) -> list[Part]:
    """A few pens and pencils: plastic barrels with ink refills, springs and metal clips."""
    parts = []
    for _ in range(int(rng.integers(1, 4))):
        length = rng.uniform(12, 15)
        y = rng.uniform(-2, 2)
        parts += [cylinder("plastic", (0, y), (length, y), 1.0, wall=0.1),
                  tube("plastic", [[1, y], [length - 1, y]], 0.3),
                  tube("steel", [[length - 3, y], [length - 2, y]], 0.35),
                  Part("steel", (Poly(rect(4, 0.3, 2.5, y + 0.55)),), 0.1)]
    return parts


CLUTTER: dict[str, tuple[Builder, float]] = {
    "clothes": (clothes, 2.0), "shoes": (shoes, 0.6), "bottle": (bottle, 1.0), "book": (book, 0.8),
    "laptop": (laptop, 0.5), "charger": (charger, 0.8), "cable": (cable, 1.6), "toiletry": (toiletry, 1.2),
    "coins": (coins, 0.6), "keys": (keys, 0.6), "small_metal": (small_metal, 1.5), "food": (food, 0.8),
    "umbrella": (umbrella, 0.3), "belt": (belt, 0.4), "headphones": (headphones, 0.4), "glasses": (glasses, 0.4),
    "pens": (pens, 0.6),
}

__all__ = ["CLUTTER", "Builder", "cable_parts", "zip_puller"] + [f.__name__ for f, _ in CLUTTER.values()]
