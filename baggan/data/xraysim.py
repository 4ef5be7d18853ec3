"""The built-in dual-energy X-ray baggage simulator: `XRaySimulator(SimConfig()).render(seed, size) -> Scan`.

A scan is rendered directly at the requested size (64..1024 pixels square) from a scene sampled in
centimetres, so one seed gives the same bag at every size (only the photon noise differs). Threat masks are
exact: a threat's instance mask is the set of pixels its parts cover (path length > 0), whether or not other
items lie in the same rays (X-rays are transmissive; see `Scan.visibility` for how buried it is). Where two
threats overlap, the later-drawn one wins in the semantic label map; each keeps its full instance mask.

Determinism: everything is drawn from `np.random.SeedSequence(seed)`; scan i of a data set made with run
seed s uses `scan_seed(s, i)`, so the output does not depend on the number of worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from baggan.config import check
from baggan.data.coco import Instance
from baggan.data.labelsets import PIDRAY
from baggan.data.xray.bag import BAG_TYPES, Scene, sample_scene
from baggan.data.xray.geometry import Pose
from baggan.data.xray.materials import MATERIALS, densities, linear_coefficients
from baggan.data.xray.raster import Canvas
from baggan.data.xray.render import attenuation, material_map, measure, pseudo_colour
from baggan.data.xray.window import (WindowConfig, clutter_window, cut_window, inside_share, negative_window,
                                     positive_window, window_kind, window_rng)

MIN_SIZE, MAX_SIZE = 16, 1024


@dataclass(frozen=True)
class SimConfig:
    """Simulator knobs (YAML-loadable with baggan.config.load_config); docs/datasets.md explains each."""

    size: int = 256                       # default render size (pixels, square)
    threat_rate: float = 0.3              # P(bag carries >= 1 threat); with `window`, window.negatives instead
    max_threats: int = 3                  # threats per threat-carrying bag: 1..max_threats
    threat_classes: tuple[str, ...] = PIDRAY.names  # categories drawn (uniformly) for threats
    clutter_min: int = 5                  # clutter items per bag, drawn uniformly in [min, max]
    clutter_max: int = 30
    small_parts_max: int = 15             # extra loose small metal parts per bag, uniformly in [0, max]
    bag_types: tuple[str, ...] = BAG_TYPES
    fov_margin: tuple[float, float] = (0.9, 1.15)  # field of view / bag extent (< 1 crops the bag's ends)
    photons_per_mm2: float = 1.5e4        # unattenuated photons per mm^2 at each energy (noise level)
    blur_mm: float = 0.8                  # detector PSF (Gaussian sigma, mm)
    scatter: float = 0.002                # scatter haze fraction (0 = off)
    scatter_cm: float = 3.0               # scatter kernel sigma (cm)
    hue_smooth_mm: float = 1.5            # smoothing of the dual-energy ratio before colouring (mm)
    contrast: float = 1.0                 # brightness gain of the pseudo-colour mapping
    window: WindowConfig | None = None    # threat windows instead of whole bags (baggan.data.xray.window)

    def __post_init__(self):
        check(MIN_SIZE <= self.size <= MAX_SIZE, "size", f"must be in [{MIN_SIZE}, {MAX_SIZE}]")
        check(0.0 <= self.threat_rate <= 1.0, "threat_rate", "must be in [0, 1]")
        check(1 <= self.max_threats <= 3, "max_threats", "must be 1, 2 or 3")
        check(len(self.threat_classes) > 0, "threat_classes", "must name at least one category")
        for name in self.threat_classes:
            check(name in PIDRAY.names, "threat_classes",
                  f"unknown category {name!r} (known: {', '.join(PIDRAY.names)})")
        check(0 <= self.clutter_min <= self.clutter_max <= 60, "clutter_min",
              "need 0 <= clutter_min <= clutter_max <= 60")
        check(0 <= self.small_parts_max <= 100, "small_parts_max", "must be in [0, 100]")
        check(len(self.bag_types) > 0 and all(b in BAG_TYPES for b in self.bag_types), "bag_types",
              f"must be a non-empty subset of {', '.join(BAG_TYPES)}")
        check(0.5 <= self.fov_margin[0] <= self.fov_margin[1] <= 2.0, "fov_margin", "need 0.5 <= lo <= hi <= 2")
        check(self.photons_per_mm2 >= 10, "photons_per_mm2", "must be >= 10")
        for key in ("blur_mm", "scatter", "scatter_cm", "hue_smooth_mm"):
            check(getattr(self, key) >= 0, key, "must be >= 0")
        check(self.scatter <= 0.5, "scatter", "must be <= 0.5")
        check(self.contrast > 0, "contrast", "must be > 0")


@dataclass
class Scan:
    """One simulated scan. `label`: category id per pixel (0 = background); `material`: material id per pixel
    (index into MATERIALS + 1, 0 = air); `transmission`: measured (T_low, T_high), 2xHxW in (0, 1];
    `visibility[i]`: share of instance i's own attenuation in the total along its pixels; `inside[i]`: share of
    instance i's area (in the whole bag) that lies inside the image (< 1 when the image's edge cuts it
    off)."""

    image: np.ndarray
    label: np.ndarray
    instances: list[Instance]
    material: np.ndarray
    visibility: list[float]
    transmission: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    inside: list[float] = field(default_factory=list)


def scan_seed(run_seed: int, index: int) -> int:
    """Seed of scan `index` in a run with seed `run_seed` (independent of how the run is split up)."""
    return int(np.random.SeedSequence([run_seed, index]).generate_state(1)[0])


class XRaySimulator:
    """Renders simulated dual-energy baggage scans; see the module docstring."""

    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
        lo, hi = linear_coefficients()
        self._mu_hi_lin = hi * densities()  # cm^-1 per cm of path, per material
        self._cat_ids = {name: PIDRAY.id_of(name) for name in PIDRAY.names}

    def scene(self, seed: int) -> Scene:
        """The scene of scan `seed` (in centimetres), before rasterisation: the whole bag, or with
        `config.window` a threat window of it (a bag with a threat, or without for a negative)."""
        c = self.config
        rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[0])
        if c.window is None:
            return self._bag(rng, c.threat_rate)
        wrng = window_rng(seed)
        kind = window_kind(wrng, c.window)
        if kind == "negative":
            return negative_window(self._bag(rng, 0.0), wrng, c.window.share, tuple(c.threat_classes))
        if kind == "clutter":
            return clutter_window(self._bag(rng, 0.0), wrng, c.window.share, tuple(c.threat_classes))
        if kind == "cut":
            return cut_window(self._bag(rng, 1.0), wrng, c.window.share)
        return positive_window(self._bag(rng, 1.0), wrng, c.window.share)[0]

    def _bag(self, rng: np.random.Generator, threat_rate: float) -> Scene:
        """One bag drawn with the config's knobs and the given threat rate."""
        c = self.config
        return sample_scene(rng, threat_rate, c.max_threats, tuple(c.threat_classes), (c.clutter_min, c.clutter_max),
                            c.small_parts_max, tuple(c.bag_types), tuple(c.fov_margin))

    def to_pixels(self, scene: Scene, size: int) -> Pose:
        """The pose mapping the scene's bag frame (cm) to pixel coordinates of a `size` x `size` image."""
        return scene.view.then(Pose((size - 1) / 2, (size - 1) / 2, 0.0, size / scene.fov))

    def render(self, seed: int, size: int | None = None) -> Scan:
        """Render scan `seed` at `size` x `size` pixels (default: config.size)."""
        size = self.config.size if size is None else int(size)
        if not MIN_SIZE <= size <= MAX_SIZE:
            raise ValueError(f"size must be in [{MIN_SIZE}, {MAX_SIZE}], got {size}")
        scene = self.scene(seed)
        noise_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        return self.render_scene(scene, size, noise_rng, meta={"seed": int(seed)})

    def render_scene(self, scene: Scene, size: int, noise_rng: np.random.Generator,
                     meta: dict | None = None) -> Scan:
        """Rasterise a scene, simulate the detector and colour it."""
        c = self.config
        canvas = Canvas(size, self.to_pixels(scene, size))
        n = len(scene.threats)
        masks = [np.zeros((size, size), bool) for _ in range(n)]
        own = [np.zeros((size, size), np.float32) for _ in range(n)]
        for part, inst in scene.parts:
            st = canvas.draw(part)
            if st is not None and inst >= 0:
                rows, cols = st.slices
                masks[inst][rows, cols] |= st.thickness > 0
                own[inst][rows, cols] += self._mu_hi_lin[st.material - 1] * st.thickness
        a_lo, a_hi = attenuation(canvas.mass)
        mm_per_px = 10.0 * scene.fov / size
        photons = c.photons_per_mm2 * mm_per_px ** 2
        args = (photons, c.blur_mm / mm_per_px, c.scatter, 10.0 * c.scatter_cm / mm_per_px, noise_rng)
        (t_lo, floor_lo), (t_hi, _) = measure(a_lo, *args), measure(a_hi, *args)
        image = pseudo_colour(t_lo, t_hi, floor_lo, c.contrast, c.hue_smooth_mm / mm_per_px)
        label = np.zeros((size, size), np.uint8)
        instances, visibility, inside = [], [], []
        for k, (name, mask, own_a) in enumerate(zip(scene.threats, masks, own)):
            if not mask.any():  # entirely outside the field of view
                continue
            cat = self._cat_ids[name]
            label[mask] = cat
            vis = round(float(own_a[mask].sum()) / max(float(a_hi[mask].sum()), 1e-12), 4)
            visibility.append(vis)
            inside.append(inside_share(scene, k))
            instances.append(Instance(cat, mask, {"visibility": vis}))
        info = {"size": size, "bag": scene.bag, "n_clutter": scene.n_clutter, "fov_cm": round(scene.fov, 2),
                "threats": [PIDRAY.names[i.category_id - 1] for i in instances]}
        return Scan(image, label, instances, material_map(canvas.mass), visibility, np.stack([t_lo, t_hi]),
                    {**(meta or {}), **info}, inside)


def material_names() -> list[str]:
    """Names of the material ids of `Scan.material` (index 0 = air)."""
    return ["air"] + [m.name for m in MATERIALS]


_WORKER: dict[str, Any] = {}


def _init_worker(config: SimConfig) -> None:
    """Pool initialiser: one simulator per process, single-threaded numerics."""
    import cv2

    cv2.setNumThreads(1)
    _WORKER["sim"] = XRaySimulator(config)


def _render_job(job: tuple[int, int]) -> Scan:
    """Render one scan in a worker: job = (seed, size)."""
    seed, size = job
    scan = _WORKER["sim"].render(seed, size)
    scan.transmission = np.empty(0, np.float32)  # not written to disk: don't ship it between processes
    return scan


def render_scans(config: SimConfig, jobs: Sequence[tuple[int, int]], workers: int = 1) -> Iterator[Scan]:
    """Scans of `jobs` ((seed, size) each), in order, rendered by `workers` processes (without transmissions)."""
    import multiprocessing

    # forkserver/spawn, not fork: the caller may hold threads (torch, BLAS) that fork would copy mid-state
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = multiprocessing.get_context(method).Pool(workers, _init_worker, (config,)) if workers > 1 else None
    if pool is None:
        _init_worker(config)
    try:
        yield from (pool.imap(_render_job, jobs, chunksize=4) if pool else map(_render_job, jobs))
    finally:
        if pool:
            pool.terminate()


def simulate_dataset(outdir: str | Path, n: int, size: int, config: SimConfig | None = None, seed: int = 0,
                     workers: int = 1, progress: bool = True, overwrite: bool = False) -> Path:
    """Write `n` scans as a data set in the toolkit's COCO format (plus materials/ maps); returns its folder.

    Scan i uses seed `scan_seed(seed, i)` (stored in its image record), so any number of workers gives the
    same files. The folder appears only when complete (staged beside `outdir`, then renamed).
    """
    import dataclasses

    from tqdm import tqdm

    from baggan.data.coco import CocoWriter
    from baggan.data.datasets import staged_output
    from baggan.io import write_image_atomic

    config = config or SimConfig()
    jobs = [(scan_seed(seed, i), size) for i in range(n)]
    info = {"description": "baggan simulated dual-energy X-ray baggage scans", "label_set": "pidray",
            "run_seed": seed, "size": size, "simulator": dataclasses.asdict(config), "materials": material_names()}
    with staged_output(outdir, overwrite) as tmp:
        writer = CocoWriter(tmp, PIDRAY.coco_categories(), info)
        bar = tqdm(render_scans(config, jobs, workers), total=n, desc="simulate", unit="scan",
                   disable=None if progress else True)
        for i, scan in enumerate(bar):
            stem = f"{i:06d}"
            write_image_atomic(tmp / "materials" / f"{stem}.png", scan.material)
            meta = {k: scan.meta[k] for k in ("seed", "bag", "n_clutter", "fov_cm")}
            writer.add(scan.image, scan.label, scan.instances, {**meta, "material_file": f"{stem}.png"}, stem)
        writer.close()
    return Path(outdir)


__all__ = ["SimConfig", "Scan", "XRaySimulator", "scan_seed", "material_names", "render_scans", "simulate_dataset", "MIN_SIZE",
           "MAX_SIZE"]
