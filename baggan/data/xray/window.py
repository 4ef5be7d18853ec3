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
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from baggan.config import check
from baggan.data.xray.bag import Scene
from baggan.data.xray.geometry import Pose, bounds, move_all, pick
from baggan.data.xray.threats import THREATS


@dataclass(frozen=True)
class WindowConfig:
    """Threat-window knobs (the `window:` block of a simulator config; docs/datasets.md)."""

    share: tuple[float, float] = (0.5, 0.8)  # threat box's longer side / window side, drawn uniformly
    negatives: float = 0.15                  # share of windows cut from bags without threats
    draw: Literal["mixed", "threat", "negative"] = "mixed"  # mixed: negatives decides; else every window is one

    def __post_init__(self):
        lo, hi = self.share
        check(0.0 < lo <= hi <= 1.0, "window.share", f"need 0 < lo <= hi <= 1, got {list(self.share)}")
        check(0.0 <= self.negatives < 1.0, "window.negatives", f"must be in [0, 1), got {self.negatives}")
        check(self.draw in ("mixed", "threat", "negative"), "window.draw",
              f"must be mixed, threat or negative, got {self.draw!r}")


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


def negative_window(scene: Scene, rng: np.random.Generator, share: tuple[float, float],
                    classes: tuple[str, ...]) -> Scene:
    """A window of the size a threat of `classes` would get, at a random place inside the field of view."""
    lo, hi = bounds(THREATS[pick(rng, list(classes))](rng))
    side = float((hi - lo).max()) / float(rng.uniform(*share))
    room = max(scene.fov - side, 0.0) / 2
    centre = rng.uniform(-room, room, 2)
    return windowed(scene, (float(centre[0]), float(centre[1])), side)


def window_rng(seed: int) -> np.random.Generator:
    """The random stream of a scan's window draw (independent of its scene and noise streams)."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])


def is_negative(rng: np.random.Generator, config: WindowConfig) -> bool:
    """Whether this window is a negative (drawn first from the window stream, whatever config.draw says, so that a
    seed's window is the same under every draw that keeps its kind)."""
    drawn = bool(rng.random() < config.negatives) if config.negatives > 0 else False
    return drawn if config.draw == "mixed" else config.draw == "negative"


__all__ = ["WindowConfig", "threat_box", "windowed", "positive_window", "negative_window", "window_rng",
           "is_negative"]
