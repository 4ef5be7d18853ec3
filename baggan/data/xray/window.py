"""Threat windows: a square field of view around one threat item of a bag, instead of the whole bag.

At 64x64 a whole bag leaves a threat ~10 px long among strokes of the same colour; a window makes the
threat the subject of the image. The window is a second view of the same scene (centimetres, bag frame):
the scan is rendered directly inside it, so masks, instances and the detector physics (blur, photon noise
per pixel area) are exact at the output size — the same result as rendering the whole bag at a higher
resolution and cutting the window out, without the resize (tests/test_data_xraysim.py checks the
equivalence on an aligned crop).

Geometry, in the view frame of the whole scan (axis-aligned with the output image):
  positive window: b = bounding box of threat 0, E = its longer side; share s ~ U(lo, hi);
                   window side W = E / s; centre = centre(b) + u * (W - size(b)) / 2, u ~ U(-1, 1)^2,
                   so the threat lies wholly inside and its box's longer side is s of the window side;
  negative window: a bag drawn without threats; W from the extent of a threat item drawn (not placed)
                   as above, centre uniform where the window stays inside the bag's field of view.
Other threats that fall inside a positive window are kept, clipped to it.
Two kinds for the judge's hard negatives (off by default; baggan.evaluate.judge):
  clutter window:  a bag drawn without threats; W as for a negative, centred on the box centre of one
                   clutter item (a bag without clutter: a negative window's random centre);
  cut window:      around threat 0 as a positive window, but centre = centre(b) + u * (W + size(b)) / 2,
                   u ~ U(-1, 1)^2, so anything from the whole threat to a sliver of it lies inside.
`inside_share` gives the share of a threat's area that lies inside the window (for the "cut off" rule).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from baggan.config import check
from baggan.data.xray.bag import Scene
from baggan.data.xray.geometry import Pose, bounds, move_all, pick
from baggan.data.xray.raster import Rasterizer
from baggan.data.xray.threats import THREATS


@dataclass(frozen=True)
class WindowConfig:
    """Threat-window knobs (the `window:` block of a simulator config; docs/datasets.md)."""

    share: tuple[float, float] = (0.5, 0.8)  # threat box's longer side / window side, drawn uniformly
    negatives: float = 0.15                  # share of windows cut from bags without threats
    clutter: float = 0.0                     # share of windows centred on a clutter item (judge's hard negatives)
    cut: float = 0.0                         # share of windows that may cut threat 0 off (judge's hard negatives)
    draw: Literal["mixed", "threat", "negative"] = "mixed"  # mixed: the shares decide; else every window is one

    def __post_init__(self):
        lo, hi = self.share
        check(0.0 < lo <= hi <= 1.0, "window.share", f"need 0 < lo <= hi <= 1, got {list(self.share)}")
        check(0.0 <= self.negatives < 1.0, "window.negatives", f"must be in [0, 1), got {self.negatives}")
        check(self.draw in ("mixed", "threat", "negative"), "window.draw",
              f"must be mixed, threat or negative, got {self.draw!r}")
        for key in ("clutter", "cut"):
            check(0.0 <= getattr(self, key) <= 1.0, f"window.{key}", f"must be in [0, 1], got {getattr(self, key)}")
        check(self.negatives + self.clutter + self.cut <= 1.0, "window.negatives",
              "negatives + clutter + cut must be <= 1")


WindowKind = Literal["positive", "negative", "clutter", "cut"]


def threat_box(scene: Scene, instance: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (lo, hi) of one threat instance in the scene's view frame (cm, centred on the scan)."""
    parts = [p for p, i in scene.parts if i == instance]
    if not parts:
        raise ValueError(f"scene has no threat instance {instance}")
    return bounds(move_all(parts, scene.view))


def windowed(scene: Scene, centre: tuple[float, float], side: float) -> Scene:
    """The scene seen through a square window of `side` cm centred at `centre` (view frame)."""
    return replace(scene, view=scene.view.then(Pose(-float(centre[0]), -float(centre[1]))), fov=float(side))


def positive_window(scene: Scene, rng: np.random.Generator, share: tuple[float, float]) -> tuple[Scene, float]:
    """A window around threat 0 whose box's longer side is a share ~ U(share) of the window side."""
    lo, hi = threat_box(scene, 0)
    ext = hi - lo
    s = float(rng.uniform(*share))
    side = float(ext.max()) / s
    centre = (lo + hi) / 2 + rng.uniform(-1.0, 1.0, 2) * (side - ext) / 2
    return windowed(scene, (float(centre[0]), float(centre[1])), side), s


def cut_window(scene: Scene, rng: np.random.Generator, share: tuple[float, float]) -> Scene:
    """A window of a positive window's size whose centre may lie up to (W + box) / 2 off threat 0's centre."""
    lo, hi = threat_box(scene, 0)
    ext = hi - lo
    side = float(ext.max()) / float(rng.uniform(*share))
    centre = (lo + hi) / 2 + rng.uniform(-1.0, 1.0, 2) * (side + ext) / 2
    return windowed(scene, (float(centre[0]), float(centre[1])), side)


def _threat_side(rng: np.random.Generator, share: tuple[float, float], classes: tuple[str, ...]) -> float:
    """The window side a threat of `classes` (drawn, not placed) would get at a share ~ U(share)."""
    lo, hi = bounds(THREATS[pick(rng, list(classes))](rng))
    return float((hi - lo).max()) / float(rng.uniform(*share))


def negative_window(scene: Scene, rng: np.random.Generator, share: tuple[float, float],
                    classes: tuple[str, ...]) -> Scene:
    """A window of the size a threat of `classes` would get, at a random place inside the field of view."""
    side = _threat_side(rng, share, classes)
    room = max(scene.fov - side, 0.0) / 2
    centre = rng.uniform(-room, room, 2)
    return windowed(scene, (float(centre[0]), float(centre[1])), side)


def clutter_window(scene: Scene, rng: np.random.Generator, share: tuple[float, float],
                   classes: tuple[str, ...]) -> Scene:
    """A window of the size a threat of `classes` would get, centred on a random clutter item of the bag."""
    if not scene.items:
        return negative_window(scene, rng, share, classes)
    side = _threat_side(rng, share, classes)
    start, end = scene.items[int(rng.integers(len(scene.items)))]
    lo, hi = bounds(move_all([p for p, _ in scene.parts[start:end]], scene.view))
    centre = (lo + hi) / 2
    return windowed(scene, (float(centre[0]), float(centre[1])), side)


def inside_share(scene: Scene, instance: int, res: int = 96) -> float:
    """Share of a threat instance's area (rasterised at res² over its bounding box) inside the scene's
    square field of view."""
    lo, hi = threat_box(scene, instance)
    ext = float((hi - lo).max())
    cx, cy = (lo + hi) / 2
    raster = Rasterizer(res, scene.view.then(Pose(-float(cx), -float(cy))).then(
        Pose((res - 1) / 2, (res - 1) / 2, 0.0, res / ext)))
    mask = np.zeros((res, res), bool)
    for part, i in scene.parts:
        st = raster.stamp(part) if i == instance else None
        if st is not None:
            mask[st.slices] |= st.thickness > 0
    total = int(mask.sum())
    if total == 0:
        return 0.0
    coords = (np.arange(res) - (res - 1) / 2) * ext / res  # pixel centres in the view frame, minus (cx, cy)
    half = scene.fov / 2
    in_x, in_y = np.abs(coords + cx) <= half, np.abs(coords + cy) <= half
    return float((mask & in_y[:, None] & in_x[None, :]).sum()) / total


def window_rng(seed: int) -> np.random.Generator:
    """The random stream of a scan's window draw (independent of its scene and noise streams)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def window_kind(rng: np.random.Generator, config: WindowConfig) -> WindowKind:
    """Which kind this window is: one draw, first from the window stream, whatever config.draw says (so that a
    seed's window is the same under every draw that keeps its kind); no draw when every share is 0."""
    kind: WindowKind = "positive"
    shares = (config.negatives, config.clutter, config.cut)
    if any(shares):
        r, edge = rng.random(), 0.0
        for name, p in zip(("negative", "clutter", "cut"), shares):
            edge += p
            if r < edge:
                kind = name
                break
    if config.draw == "mixed":
        return kind
    return "negative" if config.draw == "negative" else "positive"


__all__ = ["WindowConfig", "WindowKind", "threat_box", "windowed", "positive_window", "cut_window", "negative_window",
           "clutter_window", "inside_share", "window_rng", "window_kind"]
