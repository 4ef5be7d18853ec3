"""PIDRay's 12 threat categories as parametric parts (centimetres, object frame, main axis along x).

Each builder draws one item at a random size and variant from `rng` and returns its parts; the scene
places it with a random pose. Dimensions follow common real items (e.g. claw hammers 26-34 cm with a
10-13 cm steel head, combination pliers 15-23 cm, handcuff rings of 6.5-8 cm).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from baggan.data.xray.geometry import (Circle, Ellipse, Part, Poly, Pose, Stroke, arc, bezier, box, cylinder,
                                       move_all, pick, rect, ribbon, ring, rounded_rect, tube)

Builder = Callable[[np.random.Generator], list[Part]]


def baton(rng: np.random.Generator) -> list[Part]:
    """Telescopic steel baton (extended or collapsed) with a foam grip, or a solid rubber baton."""
    if rng.random() < 0.2:
        length, d = rng.uniform(45, 60), rng.uniform(3.0, 3.8)
        return [cylinder("rubber", (-length / 2, 0), (length / 2, 0), d),
                cylinder("steel", (-length / 2 + 1, 0), (length / 2 - 1, 0), 0.6)]
    d1 = rng.uniform(2.0, 2.6)
    l1 = rng.uniform(17, 24)
    diam, lens = (d1, d1 * 0.78, d1 * 0.6), (l1, l1 * 0.95, l1 * 0.9)
    collapsed = rng.random() < 0.35
    x, parts = 0.0, []
    for i, (d, ln) in enumerate(zip(diam, lens)):
        x0, x1 = (0.3 * i, l1) if collapsed else (x, x + ln)
        parts.append(cylinder("steel", (x0, 0), (x1, 0), d, wall=rng.uniform(0.12, 0.2)))
        x = x1 - 2.0
    tip = x + 2.0 + diam[2] * 0.4
    parts.append(Part("steel", (Circle((tip, 0.0), diam[2] * 0.7),), diam[2] * 1.4, diam[2] * 0.7))
    parts.append(cylinder("rubber", (0.2, 0), (l1 * 0.7, 0), d1 + 0.5, wall=0.25))
    parts.append(Part("steel", (Poly(rect(0.6, d1 * 0.9, -0.2, 0)),), d1 * 0.9, 0.2))
    return parts


def pliers(rng: np.random.Generator) -> list[Part]:
    """Combination or needle-nose pliers: crossed forged halves, pivot, dipped grips."""
    length = rng.uniform(15, 23)
    needle = rng.random() < 0.35
    jaw = length * (rng.uniform(0.36, 0.42) if needle else rng.uniform(0.27, 0.33))
    px = -length / 2 + jaw
    spread = rng.uniform(1.2, 3.2)
    tip_w, piv_w = (0.25, 1.2) if needle else (0.5, 1.6)
    grip_mat = pick(rng, ["rubber", "pvc", "plastic"])
    parts = []
    for sign in (1.0, -1.0):
        jaw_c = np.stack([np.linspace(-length / 2, px, 8), sign * np.linspace(0.18, 0.05, 8) * piv_w], 1)
        handle_c = bezier([[px, 0], [px + (length / 2 - px) * 0.4, -sign * spread * 0.2],
                           [length / 2, -sign * spread]], 12)
        centre = np.vstack([jaw_c, handle_c[1:]])
        widths = np.concatenate([np.linspace(tip_w, piv_w, 8), np.linspace(piv_w * 0.9, 1.0, 11)])
        parts.append(Part("steel", (Poly(ribbon(centre, widths)),), rng.uniform(0.7, 0.95), 0.3))
        grip = handle_c[4:]
        parts.append(Part(grip_mat, (Poly(ribbon(grip, np.linspace(1.7, 1.9, len(grip)))),), 1.4, 0.6))
    parts.append(Part("steel", (Circle((px, 0.0), 0.85),), 1.3, 0.3))
    return parts


def hammer(rng: np.random.Generator) -> list[Part]:
    """Claw or ball-peen hammer: steel head, wooden, steel-tube or fibreglass handle with grip."""
    length, hw = rng.uniform(26, 34), rng.uniform(2.3, 3.1)
    head_len, head_w, depth = rng.uniform(10, 13.5), rng.uniform(2.4, 3.2), rng.uniform(2.3, 3.0)
    xh = length - head_w / 2
    handle = ribbon(np.stack([np.linspace(0, xh, 10), np.zeros(10)], 1),
                    np.interp(np.linspace(0, 1, 10), [0, 0.15, 0.8, 1], [hw * 1.15, hw, hw * 0.85, hw]))
    kind = pick(rng, ["wood", "tube", "fibre"])
    parts = []
    if kind == "wood":
        parts.append(Part("wood", (Poly(handle),), hw * 0.75, hw * 0.4))
    else:
        core = "steel" if kind == "tube" else "glass"
        parts.append(Part(core, (Poly(handle),), hw * 0.7, hw * 0.35, 0.15 if kind == "tube" else 0.0))
        grip = ribbon(np.array([[0.0, 0.0], [length * 0.42, 0.0]]), hw * 1.25)
        parts.append(Part("rubber", (Poly(grip),), hw * 0.95, hw * 0.45, 0.3))
    face_len = head_len * 0.55
    face = np.array([[xh - head_w / 2, 0], [xh + head_w / 2, 0], [xh + head_w * 0.42, face_len - 1.3],
                     [xh + head_w * 0.58, face_len - 1.1], [xh + head_w * 0.58, face_len],
                     [xh - head_w * 0.58, face_len], [xh - head_w * 0.58, face_len - 1.1],
                     [xh - head_w * 0.42, face_len - 1.3]])
    ops = [Poly(face)]
    back = head_len - face_len
    if rng.random() < 0.7:  # claw curving back towards the handle
        claw_c = bezier([[xh, 0], [xh, -back * 0.6], [xh - 2.2, -back]], 10)
        ops.append(Poly(ribbon(claw_c, np.linspace(head_w, 0.5, 10))))
    else:  # ball peen
        ops.append(Poly(rect(head_w * 0.8, back * 0.7, xh, -back * 0.35)))
        ops.append(Circle((xh, -back * 0.75), head_w * 0.55))
    parts.append(Part("steel", tuple(ops), depth, 0.4))
    return parts


def powerbank(rng: np.random.Generator) -> list[Part]:
    """Power bank: plastic or aluminium case, 18650 cells or a pouch cell, charging board, USB ports."""
    lp, wp, depth = rng.uniform(9, 15), rng.uniform(6, 8.5), rng.uniform(1.4, 2.4)
    parts = [box(pick(rng, ["plastic", "aluminium"]), rounded_rect(lp, wp, rng.uniform(0.5, 1.2)), depth,
                  rng.uniform(0.12, 0.22))]
    board_w = rng.uniform(1.6, 2.4)
    cell_len = lp - board_w - 0.8
    if rng.random() < 0.6:
        n = max(1, int((wp - 0.6) // 1.85))
        for i in range(n):
            y = (i - (n - 1) / 2) * 1.85
            parts.append(cylinder("battery", (-lp / 2 + 0.4, y), (-lp / 2 + 0.4 + min(cell_len, 6.5), y), 1.8))
        if cell_len > 8.0:
            parts.append(Part("plastic", (Poly(rect(cell_len - 6.5, wp - 1, -lp / 2 + 7.2 + (cell_len - 6.5) / 2)),),
                              depth * 0.5, 0.2))
    else:
        parts.append(Part("battery", (Poly(rounded_rect(cell_len, wp - 0.9, 0.3, -lp / 2 + 0.4 + cell_len / 2)),),
                          depth * 0.65, 0.3))
    bx = lp / 2 - 0.3 - board_w / 2
    parts.append(Part("pcb", (Poly(rect(board_w, wp - 1.0, bx)),), 0.16))
    for _ in range(rng.integers(3, 7)):
        cw, ch = rng.uniform(0.3, 0.8, 2)
        parts.append(Part("pcb", (Poly(rect(cw, ch, bx + rng.uniform(-0.4, 0.4) * board_w,
                                            rng.uniform(-0.35, 0.35) * wp)),), rng.uniform(0.2, 0.5)))
    for y in rng.choice([-1.5, 0.0, 1.5], size=rng.integers(1, 3), replace=False):
        parts.append(box("steel", rect(1.0, 1.3, lp / 2 - 0.45, y), 0.6, 0.05))
    parts.append(tube("steel", [[-lp / 2 + 0.3 + min(cell_len, 6.5), -wp / 4], [bx - board_w / 2, -wp / 4]], 0.15))
    return parts


def scissors(rng: np.random.Generator) -> list[Part]:
    """Scissors: two steel blades crossing at a pivot screw, plastic or steel finger loops."""
    length = rng.uniform(13, 25)
    half = math.radians(rng.uniform(0, 14))
    plastic = rng.random() < 0.6
    blade_len, loop = length * 0.55, length / 18
    parts = []
    for sign in (1.0, -1.0):
        a = sign * half
        d = np.array([math.cos(a), math.sin(a)])
        nrm = np.array([-d[1], d[0]]) * sign
        centre = np.array([d * s for s in np.linspace(-0.8, blade_len, 10)]) + nrm * 0.25
        parts.append(Part("steel", (Poly(ribbon(centre, np.linspace(1.5, 0.2, 10) * loop ** 0.5)),),
                          rng.uniform(0.18, 0.3), 0.25))
        h = np.array([math.cos(math.pi - a), math.sin(math.pi - a)])
        lc = h * length * 0.3 - nrm * 1.2 * loop
        shank = np.array([[0.0, 0.0], lc * 0.55])
        ops = (Poly(ribbon(shank, 0.9 * loop)), Ellipse(tuple(lc), (1.5 * loop, 1.05 * loop), math.atan2(h[1], h[0])),
               Ellipse(tuple(lc), (1.0 * loop, 0.55 * loop), math.atan2(h[1], h[0]), erase=True))
        parts.append(Part("plastic" if plastic else "steel", ops, 0.9 if plastic else 0.3, 0.3 if plastic else 0.1))
        if plastic:
            parts.append(Part("steel", (Poly(ribbon(shank, 0.5 * loop)),), 0.25))
    parts.append(Part("steel", (Circle((0.0, 0.0), 0.45),), 0.7, 0.2))
    return parts


def wrench(rng: np.random.Generator) -> list[Part]:
    """Open-end, combination (open + ring) or adjustable spanner: one flat forged steel plate."""
    length = rng.uniform(14, 26)
    w = length * rng.uniform(0.085, 0.11)
    kind = rng.choice(["double", "combination", "adjustable"], p=[0.35, 0.45, 0.2])
    r1, r2 = w * rng.uniform(0.95, 1.15), w * rng.uniform(0.85, 1.05)
    x1, x2 = -length / 2 + r1, length / 2 - r2
    ops: list = [Poly(ribbon(np.array([[x1, 0], [0, 0], [x2, 0]]), [w, w * 0.82, w]))]
    extra = []
    if kind == "adjustable":
        r1 *= 1.35
        ops.append(Circle((x1, 0.0), r1))
        ops.append(_slot((x1, 0.0), r1, r1 * 0.75, math.pi + math.radians(15)))
        extra.append(cylinder("steel", (x1 + r1 * 0.2, -r1 * 0.55), (x1 + r1 * 0.9, -r1 * 0.55), r1 * 0.5))
    else:
        ops.append(Circle((x1, 0.0), r1))
        ops.append(_slot((x1, 0.0), r1, r1 * 0.95, math.pi + math.radians(15)))
    if kind == "double":
        ops.append(Circle((x2, 0.0), r2))
        ops.append(_slot((x2, 0.0), r2, r2 * 0.95, math.radians(-15)))
    elif kind == "combination":
        ops.extend(ring((x2, 0.0), r2, r2 * 0.55))
    t = rng.uniform(0.45, 0.8)
    return [Part("steel", tuple(ops), t, 0.12)] + extra


def _slot(center, r: float, width: float, angle: float) -> Poly:
    """Erasing op of the jaw opening of an open-end spanner head, pointing along `angle`."""
    d = np.array([math.cos(angle), math.sin(angle)])
    n = np.array([-d[1], d[0]]) * width / 2
    c = np.asarray(center, float) - d * r * 0.15
    far = c + d * r * 2.0
    return Poly(np.array([c + n, far + n, far - n, c - n]), erase=True)


def gun(rng: np.random.Generator) -> list[Part]:
    """Semi-automatic pistol (slide, frame, grip with loaded magazine) or revolver."""
    s = rng.uniform(0.85, 1.15)
    guard = (Ellipse((-0.8, -2.3), (2.4, 1.6)), Ellipse((-0.8, -2.3), (1.8, 1.05), erase=True))
    if rng.random() < 0.65:
        polymer = rng.random() < 0.5
        grip = np.array([[-7.8, -0.6], [-3.2, -0.6], [-4.4, -11.5], [-9.3, -11.8], [-9.4, -10.5]])
        frame = np.array([[-8.3, 0.0], [8.0, 0.0], [8.0, -1.2], [-3.0, -1.2], [-8.3, -1.0]])
        parts = [Part("plastic" if polymer else "steel", (Poly(grip), Poly(frame)) + guard, 3.0 if polymer else 2.6,
                      0.5),
                 Part("steel", (Poly(rounded_rect(18.0, 3.0, 0.4, -0.5, 1.5)),), 2.6, 0.4),
                 cylinder("steel", (-3.0, 1.5), (8.6, 1.5), 1.4, wall=0.35),
                 box("steel", np.array([[-7.0, -1.0], [-4.4, -1.0], [-5.5, -10.8], [-8.1, -10.8]]), 2.2, 0.1)]
        for k in range(int(rng.integers(4, 9))):
            y = -1.8 - 1.05 * k
            x = -5.8 - 0.12 * k
            parts.append(cylinder("copper", (x - 1.4, y), (x + 1.4, y), 0.95, wall=0.06))
            parts.append(Part("lead", (Poly(rect(0.6, 0.8, x + 1.7, y)),), 0.8, 0.3))
    else:
        barrel = rng.uniform(8, 15)
        grip = bezier([[-5.5, -1.0], [-7.0, -5.5], [-10.0, -10.5]], 8)
        parts = [Part("wood", (Poly(ribbon(grip, np.linspace(3.2, 3.8, 8))),), 3.2, 1.2),
                 Part("steel", (Poly(np.array([[-6.5, 1.6], [3.5, 1.6], [3.5, -1.6], [-1.0, -2.0], [-5.5, -1.6]])),)
                      + guard, 2.0, 0.3),
                 Part("steel", (Poly(rounded_rect(4.4, 4.0, 0.5, 0.8, 0.0)),), 3.8, 1.6),
                 cylinder("steel", (3.5, 0.9), (3.5 + barrel, 0.9), 1.7, wall=0.4),
                 Part("steel", (Poly(rect(barrel, 0.6, 3.5 + barrel / 2, 1.9)),), 0.8, 0.2)]
        for y in (-1.1, 0.0, 1.1):
            parts.append(cylinder("lead", (-1.0, y), (2.6, y), 0.9))
    parts.append(tube("steel", bezier([[-0.2, -0.8], [-0.5, -2.2], [-1.4, -2.8]], 8), 0.45))
    return move_all(parts, Pose(scale=s))


def bullet(rng: np.random.Generator) -> list[Part]:
    """A cartridge: brass case (hollow, powder inside), primer rim and a lead or jacketed bullet."""
    rifle = rng.random() < 0.5
    case_len = rng.uniform(3.5, 5.5) if rifle else rng.uniform(1.6, 2.4)
    d = rng.uniform(0.9, 1.25) if rifle else rng.uniform(0.9, 1.15)
    bd = d * (0.65 if rifle else 0.85)
    blen = bd * (3.0 if rifle else 1.6)
    parts = [cylinder("copper", (0, 0), (case_len, 0), d, wall=0.06),
             cylinder("food", (0.3, 0), (case_len - 0.2, 0), d - 0.15),
             Part("copper", (Poly(rect(0.25, d * 1.05, 0.12, 0)),), d, 0.3)]
    nose = np.vstack([[[case_len - 0.3, bd / 2], [case_len + blen * 0.45, bd / 2]],
                      bezier([[case_len + blen * 0.45, bd / 2], [case_len + blen * 0.9, bd / 2],
                              [case_len + blen, 0.0]], 6)[1:]])
    outline = np.vstack([nose, (nose * [1, -1])[::-1]])
    parts.append(Part(pick(rng, ["lead", "copper"]), (Poly(outline),), bd, bd / 2))
    return parts


def sprayer(rng: np.random.Generator) -> list[Part]:
    """Aerosol or pepper-spray can: thin metal shell, liquid, valve cup, plastic actuator cap."""
    d = rng.uniform(3.0, 6.5)
    length = rng.uniform(10, 14) if d < 4 else rng.uniform(14, 22)
    shell = pick(rng, ["aluminium", "steel"])
    fill = rng.uniform(0.3, 0.95)
    x0, x1 = -length / 2, length / 2
    return [cylinder(shell, (x0, 0), (x1, 0), d, wall=0.05 if shell == "aluminium" else 0.03),
            cylinder("water", (x0 + 0.3, 0), (x1 - 0.4, 0), d - 0.2, fill=fill),
            Part(shell, (Stroke(arc(x0 + d * 0.55, 0, d * 0.6, math.pi * 0.65, math.pi * 1.35, 12), 0.2),), d * 0.6),
            box("steel", rect(0.7, d * 0.55, x1 + 0.3, 0), d * 0.55, 0.06),
            cylinder("plastic", (x1 - 0.3, 0), (x1 + rng.uniform(2.0, 4.5), 0), d * 0.95, wall=0.12),
            tube("plastic", [[x0 + 0.5, d * 0.2], [x1, 0]], 0.3)]


def handcuffs(rng: np.random.Generator) -> list[Part]:
    """Chain handcuffs: two steel cuffs (ring, double bar, lock housing) joined by a chain of 2-3 links."""
    r_out, band = rng.uniform(3.3, 4.0), rng.uniform(0.75, 0.95)
    hl, hw = rng.uniform(4.2, 5.0), rng.uniform(1.8, 2.3)
    n_links, link = int(rng.integers(2, 4)), 1.6
    reach = n_links * link * 0.4 + 0.3
    c = (-(0.3 + hw * 0.55 + r_out - band * 0.6), 0.0)
    cuff = [Part("steel", ring(c, r_out, r_out - band), 0.45, 0.1),
            Part("steel", (Stroke(arc(c[0], c[1], r_out - band / 2, -0.5 * math.pi, 0.5 * math.pi, 14), band),), 0.45),
            box("steel", rect(hw, hl, -0.3 - hw / 2, 0), 1.3, 0.2),
            Part("steel", (Circle((-0.3 - hw / 2, hl * 0.25), 0.35),), 1.0)]
    parts = []
    for side in (-1.0, 1.0):
        swivel = math.radians(rng.uniform(-35, 35)) + (0.0 if side < 0 else math.pi)
        parts += move_all(cuff, Pose(side * reach, 0.0, swivel))
    for k in range(n_links):
        x = (k - (n_links - 1) / 2) * link * 0.8
        ang = math.pi / 2 * (k % 2)
        parts.append(Part("steel", (Ellipse((x, 0.0), (link / 2, link / 3), ang),
                                    Ellipse((x, 0.0), (link / 2 - 0.4, link / 3 - 0.35), ang, erase=True)), 0.45, 0.2))
    return parts


def knife(rng: np.random.Generator) -> list[Part]:
    """Kitchen knife (full tang, riveted scales), folding knife or dagger with a cross-guard."""
    kind = rng.choice(["kitchen", "folding", "dagger"], p=[0.5, 0.25, 0.25])
    bl = {"kitchen": rng.uniform(10, 22), "folding": rng.uniform(6, 10), "dagger": rng.uniform(10, 17)}[kind]
    bw = {"kitchen": rng.uniform(2.5, 4.5), "folding": rng.uniform(1.6, 2.6), "dagger": rng.uniform(2.4, 3.4)}[kind]
    hl = {"kitchen": rng.uniform(9, 13), "folding": bl * 1.1, "dagger": rng.uniform(9, 12)}[kind]
    if kind == "dagger":
        top = bezier([[0, bw / 2], [bl * 0.7, bw / 2], [bl, 0]], 10)
        outline = np.vstack([top, (top * [1, -1])[::-1][1:]])
    else:
        spine = bezier([[0, bw / 2], [bl * 0.8, bw / 2], [bl, bw * 0.15]], 10)
        edge = bezier([[bl, bw * 0.15], [bl * 0.75, -bw / 2], [0, -bw / 2]], 10)
        outline = np.vstack([spine, edge[1:]])
    parts = [Part("steel", (Poly(outline),), rng.uniform(0.15, 0.3), bw * 0.35)]
    handle = rounded_rect(hl, bw * 0.62 if kind != "kitchen" else min(bw * 0.6, 2.4), 0.6, -hl / 2, 0)
    scale = pick(rng, ["wood", "plastic"])
    if kind == "folding":
        parts += [box("steel", handle, 1.2, 0.12), Part(scale, (Poly(handle),), 1.0, 0.3),
                  Part("steel", (Circle((-0.4, 0.0), 0.45),), 1.4)]
    else:
        parts += [Part(scale, (Poly(handle),), 1.9, 0.6),
                  Part("steel", (Poly(rect(hl - 0.6, bw * 0.35, -hl / 2, 0)),), 0.25)]
        parts += [Part("steel", (Circle((-hl * f, 0.0), 0.25),), 1.9) for f in (0.2, 0.5, 0.8)[:rng.integers(2, 4)]]
        if kind == "dagger":
            parts.append(Part("steel", (Poly(rect(0.8, bw * 2.3, -0.3, 0)),), 1.2, 0.2))
        else:
            parts.append(Part("steel", (Poly(rect(0.9, bw * 0.75, -0.2, -bw * 0.1)),), 1.0, 0.2))
    return parts


def lighter(rng: np.random.Generator) -> list[Part]:
    """Disposable gas lighter (body, butane, wind guard, spark wheel, flint spring) or a petrol lighter."""
    if rng.random() < 0.7:
        length, w, depth = rng.uniform(7.2, 8.3), rng.uniform(2.2, 2.6), rng.uniform(1.1, 1.3)
        body = rounded_rect(length - 1.3, w, 0.5, -0.65, 0)
        fill = rng.uniform(0.3, 0.9) * (length - 1.6)
        return [box("plastic", body, depth, 0.12),
                Part("plastic", (Poly(rect(fill, w - 0.3, -length / 2 + 0.15 + fill / 2)),), depth * 0.55 * 0.6),
                box("steel", rect(1.3, w * 0.9, length / 2 - 0.65, 0), depth, 0.04),
                Part("steel", (Circle((length / 2 - 0.8, 0.2), 0.45),), 0.8, 0.2),
                tube("steel", [[length / 2 - 4.0, -w * 0.2], [length / 2 - 1.0, -w * 0.2]], 0.14)]
    w, length = rng.uniform(3.6, 3.9), rng.uniform(5.5, 5.9)
    chimney = [Circle((length / 2 - 0.6, y), 0.18, erase=True) for y in np.linspace(-0.9, 0.9, 4)]
    return [box("steel", rounded_rect(length, w, 0.4), 1.3, 0.08),
            Part("steel", (Poly(rect(length * 0.8, w * 0.85, -length * 0.05, 0)),) + tuple(chimney), 1.1, 0.0, 0.06),
            Part("textile", (Poly(rect(length * 0.6, w * 0.75, -length * 0.12, 0)),), 1.0, 0.3)]


THREATS: dict[str, Builder] = {
    "Baton": baton, "Pliers": pliers, "Hammer": hammer, "Powerbank": powerbank, "Scissors": scissors,
    "Wrench": wrench, "Gun": gun, "Bullet": bullet, "Sprayer": sprayer, "HandCuffs": handcuffs, "Knife": knife,
    "Lighter": lighter,
}

__all__ = ["THREATS", "Builder"] + [f.__name__ for f in THREATS.values()]
