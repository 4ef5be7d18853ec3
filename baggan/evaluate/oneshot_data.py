"""Scans of the one-shot protocol: simulator scans with exact masks, the annotated sets of each repetition, and
their W+ projections, cached on disk.

Every scan is rendered by the built-in simulator (`baggan.data.xraysim`) from a seed, so its threat mask is exact:
a whole bag, or with `scans.sim` (a simulator config with a `window:` block) a threat window, the threat-free
scans then being negative windows (`window.draw: negative`). Scans smaller than the simulator's 16 px minimum
are rendered at 16 px and resized (area for the scan, nearest for the mask). Four streams of seeds never
overlap: `scan_seed(base + 1, i)` for test scans with threats, `scan_seed(base + 2, i)` for threat-free test
scans, `scan_seed(base + 3, i)` for the oracle's annotated scans, `scan_seed(base + 10 + r, i)` for the
candidates of repetition r's annotated scans.

A scan enters the segmenters through its projection into W+ (and the noise maps): `ProjectionCache.get` runs
`baggan.stylegan2.projector.project` once per (scan seed, simulator settings, size, projector settings,
generator file) and keeps the result in a `.pt` file; `ProjectionCache.features` renders the hidden features of a
projection with its own noise maps. The ground truth stays the simulator's mask, aligned with the scan.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Sequence

import numpy as np
import torch

from baggan.data.labelsets import PIDRAY
from baggan.data.xraysim import MAX_SIZE, MIN_SIZE, SimConfig, XRaySimulator, scan_seed
from baggan.errors import DataError, UserError
from baggan.io import save_torch_atomic
from baggan.stylegan2.networks import Generator
from baggan.stylegan2.projector import ProjectionResult, ProjectorConfig, noise_layers, project, with_noise

if TYPE_CHECKING:
    from baggan.stylegan2 import StyleGANFeatureGenerator

Kind = Literal["threat", "clean"]
TEST_THREAT_STREAM, TEST_CLEAN_STREAM, ORACLE_STREAM, TRAIN_STREAM = 1, 2, 3, 10


def stable_hash(obj: Any, n: int = 16) -> str:
    """First n hex digits of the SHA-256 of obj as canonical JSON (dataclasses → dicts): a cache key."""
    from baggan.evaluate.report import to_jsonable

    text = json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass
class EvalScan:
    """One simulator scan at the generator's resolution: HxWx3 uint8 scan, HxW int64 PIDRay category ids."""

    seed: int
    kind: Kind
    image: np.ndarray
    label: np.ndarray
    sim_key: str  # hash of the simulator settings that rendered it (part of the projection cache key)
    present: tuple[int, ...] = ()  # PIDRay category ids of its threat instances (a conditional generator's label)

    def condition(self) -> torch.Tensor:
        """Multi-hot [12] over PIDRay's categories present: the label a conditional generator was trained with."""
        c = torch.zeros(len(PIDRAY.names))
        c[[i - 1 for i in self.present]] = 1.0
        return c

    def categories(self, min_pixels: int = 1) -> list[int]:
        """Category ids covering at least min_pixels pixels, in id order."""
        ids, counts = np.unique(self.label, return_counts=True)
        return [int(i) for i, c in zip(ids, counts) if i > 0 and c >= min_pixels]


class SimScans:
    """The protocol's scans: test scans (with threats of `categories`, and threat-free) and annotated sets."""

    def __init__(self, categories: Sequence[str], size: int, max_threats: int, min_pixels: int, base_seed: int,
                 windows: SimConfig | None = None):
        """Whole bags (threat classes `categories`, up to `max_threats`), or with `windows` (a SimConfig with a
        window block) its threat windows and negative windows."""
        if size > MAX_SIZE:
            raise UserError(f"the generator makes {size}x{size} scans; the simulator renders at most {MAX_SIZE}")
        self.size, self.min_pixels, self.base_seed = size, min_pixels, base_seed
        self.category_ids = [PIDRAY.id_of(c) for c in categories]
        if windows is None:
            threat = SimConfig(threat_rate=1.0, max_threats=max_threats, threat_classes=tuple(categories))
            clean = SimConfig(threat_rate=0.0)
        else:
            assert windows.window is not None, "windows: a SimConfig with a window block"
            threat, clean = (dataclasses.replace(windows, window=dataclasses.replace(windows.window, draw=d))
                             for d in ("threat", "negative"))
        self.sims = {"threat": XRaySimulator(threat), "clean": XRaySimulator(clean)}
        self.sim_keys = {k: stable_hash(sim.config, 8) for k, sim in self.sims.items()}

    def render(self, seed: int, kind: Kind) -> EvalScan:
        """Scan `seed` of the `kind` simulator at the generator's size (rendered at 64 px and resized if smaller)."""
        import cv2

        scan = self.sims[kind].render(seed, max(self.size, MIN_SIZE))
        image, label = scan.image, scan.label.astype(np.int64)
        if self.size < MIN_SIZE:
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
            label = cv2.resize(scan.label, (self.size, self.size), interpolation=cv2.INTER_NEAREST).astype(np.int64)
        present = tuple(sorted({inst.category_id for inst in scan.instances}))
        return EvalScan(int(seed), kind, image, label, self.sim_keys[kind], present)

    def threat_scans(self, stream: int, n: int, max_draws: int = 20) -> list[EvalScan]:
        """The first n scans of seed stream base + `stream` that show a threat (≥ min_pixels)."""
        out: list[EvalScan] = []
        for i in range(max_draws * max(n, 1)):
            if len(out) == n:
                break
            scan = self.render(scan_seed(self.base_seed + stream, i), "threat")
            if scan.categories(self.min_pixels):
                out.append(scan)
        if len(out) < n:
            raise DataError(f"only {len(out)} of {max_draws * n} simulator scans show a threat of "
                            f"≥ {self.min_pixels} px; lower scans.min_pixels")
        return out

    def test_scans(self, n_threat: int, n_clean: int) -> list[EvalScan]:
        """n_threat scans showing at least one threat (≥ min_pixels), then n_clean threat-free scans."""
        clean = [self.render(scan_seed(self.base_seed + TEST_CLEAN_STREAM, i), "clean") for i in range(n_clean)]
        return self.threat_scans(TEST_THREAT_STREAM, n_threat) + clean

    def oracle_scans(self, n: int) -> list[EvalScan]:
        """The oracle's n annotated scans: threat scans of their own seed stream."""
        return self.threat_scans(ORACLE_STREAM, n)

    def annotated_sets(self, rep: int, shots: Sequence[int], mode: Literal["per_category", "per_scan"],
                       candidates: int) -> dict[int, list[EvalScan]]:
        """Repetition rep's annotated scans for each k in shots; the k-shot set extends the smaller ones.

        per_scan: the first k candidates that show a threat. per_category: greedily, the first candidate whose scene
        holds two categories still short of k examples (else one) until every category has k examples of
        ≥ min_pixels px in the rendered scan.
        """
        seeds = [scan_seed(self.base_seed + TRAIN_STREAM + rep, i) for i in range(candidates)]
        chosen: list[EvalScan] = []
        out: dict[int, list[EvalScan]] = {}
        if mode == "per_scan":
            stream = (self.render(s, "threat") for s in seeds)
            for k in sorted(shots):
                while len(chosen) < k:
                    scan = next(stream, None)
                    if scan is None:
                        raise DataError(f"scans.candidates: {candidates} candidates of repetition {rep} hold fewer "
                                        f"than {k} scans with a threat; raise it")
                    if scan.categories(self.min_pixels):
                        chosen.append(scan)
                out[k] = list(chosen)
            return out
        names = {c: PIDRAY.names[c - 1] for c in self.category_ids}
        scenes: dict[int, set[int]] = {}  # seed → category ids its scene holds (drawn lazily: each costs tens of ms)

        def holds(s: int) -> set[int]:
            if s not in scenes:
                scenes[s] = {PIDRAY.id_of(t) for t in self.sims["threat"].scene(s).threats}
            return scenes[s]

        have = {c: 0 for c in self.category_ids}
        tried: set[int] = set()
        for k in sorted(shots):
            while True:
                short = {c for c, n in have.items() if n < k}
                if not short:
                    break
                best = None
                for want in (min(len(short), 2), 1):  # the first candidate holding two short categories, else one
                    best = next((s for s in seeds if s not in tried and len(holds(s) & short) >= want), None)
                    if best is not None:
                        break
                if best is None:
                    missing = ", ".join(f"{names[c]} ({have[c]})" for c in sorted(short))
                    raise DataError(f"scans.candidates: {candidates} candidate scans of repetition {rep} give fewer "
                                    f"than {k} annotated examples of {missing}; raise it")
                tried.add(best)
                scan = self.render(best, "threat")
                shown = set(scan.categories(self.min_pixels)) & set(self.category_ids)
                if shown & short:
                    chosen.append(scan)
                    for c in shown:
                        have[c] += 1
            out[k] = list(chosen)
        return out


# ----------------------------------------------------------------------------------------------------- projections

@dataclass
class Projection:
    """A scan's W+ projection: ws [1, num_ws, w_dim], noise maps, reconstruction (HxWxC uint8), PSNR, SSIM."""

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    image: np.ndarray
    psnr: float
    ssim: float


class ProjectionCache:
    """Projections of scans into W+ for one generator and projector setting, one .pt file per scan."""

    def __init__(self, root: str | Path, G: Generator, generator_sha256: str, cfg: ProjectorConfig):
        self.G, self.cfg = G, cfg
        self.dir = Path(root) / f"g{generator_sha256[:12]}-p{stable_hash(dataclasses.asdict(cfg), 8)}"
        self._work: Generator | None = None  # a private copy of G whose noise maps are swapped per scan
        self._own_noise = {name: layer.noise_const for name, layer in noise_layers(G)}

    def path(self, scan: EvalScan) -> Path:
        """Where the projection of `scan` lives."""
        return self.dir / f"scan-{scan.sim_key}-{scan.seed}-{scan.image.shape[0]}.pt"

    def has(self, scan: EvalScan) -> bool:
        """Whether the projection of `scan` is on disk."""
        return self.path(scan).is_file()

    def get(self, scan: EvalScan) -> Projection:
        """The projection of `scan`: read from disk, or computed and written (atomically)."""
        path = self.path(scan)
        if path.is_file():
            try:
                d = torch.load(path, map_location="cpu", weights_only=True)
                return Projection(d["ws"], d["noise"], d["image"].numpy(), float(d["psnr"]), float(d["ssim"]))
            except Exception as e:  # noqa: BLE001 - a damaged cache file is recomputed, not fatal
                print(f"warning: {path}: unreadable cached projection ({type(e).__name__}); projecting again")
        return self.put(scan, project(self.G, scan.image, self.cfg, progress=False, c=self.label(scan)))

    def label(self, scan: EvalScan) -> torch.Tensor | None:
        """What a projection of `scan` is conditioned on: its label for a conditional G, else None."""
        return scan.condition() if self.G.c_dim else None

    def put(self, scan: EvalScan, r: ProjectionResult) -> Projection:
        """Keep `r`, the projection of `scan` made elsewhere (e.g. by a worker process), on disk (atomically)."""
        save_torch_atomic(self.path(scan), {"ws": r.ws, "noise": r.noise, "image": torch.from_numpy(r.image),
                                            "psnr": r.psnr, "ssim": r.ssim, "seed": scan.seed, "kind": scan.kind})
        return Projection(r.ws, r.noise, r.image, r.psnr, r.ssim)

    @torch.no_grad()
    def features(self, proj: Projection, image: bool = False) -> list[torch.Tensor]:
        """Hidden features [H_1..H_L] (batch 1, on G's device) of a projection, rendered with its noise maps; with
        `image` the rendered image after them (the layers of hfc.generator.ImageLayer)."""
        if self._work is None:
            import copy

            self._work = copy.deepcopy(self.G).eval().requires_grad_(False)
        device = self._work.synthesis.b4.const.device
        for name, layer in noise_layers(self._work):  # maps the projection did not optimise stay G's own
            layer.noise_const = proj.noise.get(name, self._own_noise[name]).to(device)
        img, feats = self._work.synthesis(proj.ws.to(device), noise_mode="const", return_features=True)
        return [*feats, img] if image else feats

    def generator(self, proj: Projection) -> StyleGANFeatureGenerator:
        """A FeatureGenerator rendering any ws as `features` renders the projection's (its noise maps, constant):
        for the W+ views of an annotated window (hfc OneShotConfig.views)."""
        from baggan.stylegan2 import StyleGANFeatureGenerator

        return StyleGANFeatureGenerator(with_noise(self.G, proj.noise), noise_mode="const")


__all__ = ["stable_hash", "EvalScan", "SimScans", "Projection", "ProjectionCache"]
