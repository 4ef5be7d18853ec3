"""The annotator's work without the web: samples (a seed and ψ, or an uploaded scan projected into W+), masks with
their JSON sidecars, the one-shot fit with predictions on other seeds, and the export through `synthesize`.

Everything it reads or writes lies under its work folder:

    WORKDIR/scans/NAME.png        the scan of sample NAME (seed0005_psi0.70, or upload-bag for an uploaded scan)
    WORKDIR/masks/NAME.png|.json  the saved mask (category ids) and its sidecar (seed/ψ or ws file, label set, ...)
    WORKDIR/uploads/, ws/         uploaded scans and their projections (ws .npy: `oneshot fit --ws` reads them)
    WORKDIR/fit/                  segmenter.pt, fit.png, previews/ (predictions on the preview seeds)
    WORKDIR/export/run-NNN/       data sets written by `synthesize`, with contact.png
"""

from __future__ import annotations

import base64
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from baggan.errors import UserError
from baggan.label.jobs import Report, Work

if TYPE_CHECKING:
    from hfc.oneshot import PixelClassifier

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}")
SEED_NAME = re.compile(r"seed(\d{4,10})_psi(-?\d+\.\d\d)")
SUBDIRS = ("scans", "masks", "uploads", "ws", "fit", "fit/previews", "export")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class LabelSettings:
    """How the annotator fits, previews and projects (the `baggan label` options)."""

    label_set: str = "pidray"
    segmenter: str = "fcn3"
    hidden: int = 64  # the quick-start's fit; the paper's 128 takes ~3-4x as long on a 2-core CPU
    epochs: int = 200
    lr: float = 0.01
    previews: int = 16  # predictions shown after a fit ...
    preview_seed: int = 100  # ... on seeds from this one on, skipping the annotated ones
    project_steps: int = 200
    max_upload_mb: float = 16.0
    device: str = "cpu"


def seed_name(seed: int, psi: float) -> str:
    """Sample name of the scan of `seed` at truncation `psi`."""
    return f"seed{seed:04d}_psi{psi:.2f}"


def encode_ids(mask: np.ndarray) -> str:
    """A category-id map as base64 of its uint8 pixels, row by row (what the page sends and receives)."""
    return base64.b64encode(np.ascontiguousarray(mask, np.uint8).tobytes()).decode("ascii")


class LabelSession:
    """One generator + HFC encoder + work folder, and the operations the page asks for."""

    def __init__(self, network: str | Path, hfc: str | Path, workdir: str | Path, settings: LabelSettings) -> None:
        from baggan.data.labelsets import get_label_set
        from baggan.device import resolve_device
        from baggan.io import file_sha256
        from baggan.oneshot import check_encoder, load_encoder
        from baggan.stylegan2 import StyleGANFeatureGenerator, load_network
        from hfc.config import OneShotConfig

        self.settings, self.network, self.hfc = settings, Path(network), Path(hfc)
        self.label_set = get_label_set(settings.label_set)
        try:
            self.fit_config = OneShotConfig(segmenter=settings.segmenter, hidden=settings.hidden,
                                            epochs=settings.epochs, lr=settings.lr)
        except ValueError as e:
            raise UserError(f"bad option: {e}") from None
        self.device = resolve_device(settings.device)
        self.method, self.encoder = load_encoder(self.hfc, None, self.device)
        nets = load_network(self.network, self.device)
        G = nets["G_ema"] if "G_ema" in nets else nets.get("G")
        if G is None:
            raise UserError(f"{network}: no generator (G_ema or G) in the file")
        if G.c_dim > 0:
            raise UserError(f"{network}: a conditional generator; the annotator renders unconditional ones only")
        self.G, self.gen = G, StyleGANFeatureGenerator(G)
        check_encoder(self.gen, self.encoder, self.hfc)
        self.resolution = G.img_resolution
        self.network_sha256 = file_sha256(self.network)
        self.workdir = Path(workdir).resolve()
        for sub in SUBDIRS:
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)

    def warm_up(self) -> None:
        """Import and initialise what the first fit needs (the optimiser, the pictures) before the first click."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401

        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])  # its first construction imports torch._dynamo
        self.render(torch.zeros(1, self.G.num_ws, self.G.w_dim))

    # ------------------------------------------------------------------------------------------------
    # Paths: nothing outside the work folder.

    def inside(self, relative: str) -> Path:
        """WORKDIR/relative, resolved; UserError if it leads outside the work folder."""
        path = (self.workdir / relative).resolve()
        if not path.is_relative_to(self.workdir):
            raise UserError(f"{relative}: outside the work folder")
        return path

    def check_name(self, name: object) -> str:
        """A sample name as sent by a page: letters, digits, _ . - only (no path)."""
        if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
            raise UserError(f"bad sample name {str(name)[:40]!r}: letters, digits, _ . - only")
        return name

    def url(self, path: Path) -> str:
        """The URL the server serves a work-folder file under (with its modification time against caching)."""
        return f"/files/{path.relative_to(self.workdir).as_posix()}?v={path.stat().st_mtime_ns}"

    # ------------------------------------------------------------------------------------------------
    # Samples.

    def info(self) -> dict:
        """What the page needs to start: resolution, categories and colours, saved shots, limits."""
        from baggan.data.mask_formats import IGNORE, palette_colours

        colours = {cid: rgb for rgb, cid in palette_colours(self.label_set).items()}
        cats = [{"id": 0, "name": "background", "colour": list(colours[0])}]
        cats += [{"id": i + 1, "name": n, "colour": list(colours[i + 1])} for i, n in enumerate(self.label_set.names)]
        cats.append({"id": IGNORE, "name": "not annotated", "colour": list(colours[IGNORE])})
        return {"resolution": self.resolution, "label_set": self.label_set.name, "categories": cats,
                "ignore": IGNORE, "shots": self.shots(), "max_upload_mb": self.settings.max_upload_mb,
                "network": self.network.name, "method": self.method, "epochs": self.settings.epochs,
                "previews": self.settings.previews, "fitted": (self.workdir / "fit/segmenter.pt").is_file()}

    def source(self, name: str) -> dict:
        """Where sample NAME comes from: {"source": "seed", "seed", "psi"} or {"source": "ws", "ws", ...}."""
        name = self.check_name(name)
        ws_file = self.workdir / "ws" / f"{name}.npy"
        if ws_file.is_file():
            from baggan.io import read_json

            return {"source": "ws", "ws": f"ws/{name}.npy", **read_json(ws_file.with_suffix(".json"))}
        m = SEED_NAME.fullmatch(name)
        if m is None:
            raise UserError(f"unknown sample {name!r}: load a seed or upload a scan first")
        return {"source": "seed", "seed": int(m.group(1)), "psi": float(m.group(2))}

    def ws_of(self, name: str) -> torch.Tensor:
        """ws [1, num_ws, w_dim] of a sample."""
        from baggan.oneshot import read_ws
        from baggan.stylegan2.latents import ws_from_seed

        src = self.source(name)
        if src["source"] == "seed":
            return ws_from_seed(self.G, [src["seed"]], src["psi"]).cpu()
        return read_ws(str(self.workdir / src["ws"]), self.G.num_ws, self.G.w_dim)

    def render(self, ws: torch.Tensor) -> list[np.ndarray]:
        """The scans (HxWx3 uint8) of ws [N, num_ws, w_dim], constant noise."""
        with torch.no_grad():
            return self.render_batch(self.G.synthesis(ws.to(self.device), noise_mode="const"))

    def seed_sample(self, seed: object, psi: object) -> dict:
        """Sample of a seed at truncation ψ: its scan written under scans/; the page's view of it."""
        from baggan.io import write_image_atomic

        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise UserError(f"seed must be an integer in 0..2^32-1, got {seed!r}")
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi) or not -2 <= psi <= 2:
            raise UserError(f"psi must be a number in [-2, 2], got {psi!r}")
        name = seed_name(seed, round(float(psi), 2))
        scan = self.workdir / "scans" / f"{name}.png"
        if not scan.is_file():
            write_image_atomic(scan, self.render(self.ws_of(name))[0])
        return self.sample_view(name)

    def sample_view(self, name: str) -> dict:
        """{name, source, scan URL, mask (base64 ids: the saved one, else the last fit's prediction, else None)}."""
        name = self.check_name(name)
        scan = self.workdir / "scans" / f"{name}.png"
        if not scan.is_file():
            raise UserError(f"unknown sample {name!r}: load a seed or upload a scan first")
        saved, predicted = self.workdir / "masks" / f"{name}.png", self.workdir / "fit/previews" / f"{name}_mask.png"
        mask_from = "saved" if saved.is_file() else "prediction" if predicted.is_file() else None
        ids = None
        if mask_from:
            from baggan.io import read_label_png

            ids = encode_ids(read_label_png(saved if mask_from == "saved" else predicted))
        return {"name": name, "source": self.source(name), "scan": self.url(scan), "mask": ids,
                "mask_from": mask_from, "resolution": self.resolution}

    def upload_job(self, filename: str, data: bytes) -> Work:
        """Decode an uploaded scan (never unpickled; UserError if it is no image) → the job that projects it into
        W+ with the generator's own noise (so that its ws file alone renders it again) and returns its view."""
        import cv2

        from baggan.io import write_image_atomic
        from werkzeug.utils import secure_filename

        stem = Path(secure_filename(filename or "")).stem[:60]
        stem = stem if NAME.fullmatch(stem) else "scan"
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
        if arr is None:
            raise UserError(f"{Path(filename or 'upload').name}: not a readable image (PNG, JPEG, ...)")
        image = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        write_image_atomic(self.workdir / "uploads" / f"{stem}.png", image)
        return lambda report: self._project(stem, filename, image, report)

    def _project(self, stem: str, filename: str, image: np.ndarray, report: Report) -> dict:
        """Project an upload (resized to the generator's size if need be); write its ws, sidecar and scan."""
        import cv2

        from baggan.io import write_image_atomic, write_json_atomic
        from baggan.stylegan2.projector import ProjectorConfig, project

        h, w = image.shape[:2]
        note = ""
        if (h, w) != (self.resolution, self.resolution):
            image = cv2.resize(image, (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
            note = f"resized {w}x{h} → {self.resolution}x{self.resolution}" + (" (aspect ratio changed)" if h != w else "")
        steps, name = self.settings.project_steps, f"upload-{stem}"
        report(0.0, f"projecting {stem} into W+ ({steps} steps)")
        result = project(self.G, image, ProjectorConfig(steps=steps, noise=False), progress=False,
                         on_step=lambda k: report(k / steps, f"projecting: step {k}/{steps}"))
        np.save(self.workdir / "ws" / f"{name}.npy", result.ws.numpy())
        meta = {"image": f"uploads/{stem}.png", "original": Path(filename or "").name, "original_size": [w, h],
                "note": note, "steps": steps, "psnr": round(result.psnr, 3), "ssim": round(result.ssim, 4)}
        write_json_atomic(self.workdir / "ws" / f"{name}.json", meta, indent=2)
        write_image_atomic(self.workdir / "scans" / f"{name}.png", self.render(result.ws)[0])
        return self.sample_view(name)

    # ------------------------------------------------------------------------------------------------
    # Masks.

    def save_mask(self, name: object, ids: object) -> dict:
        """Write masks/NAME.png (category ids) and its sidecar masks/NAME.json; {mask, sidecar, categories}."""
        from baggan.data.mask_formats import fit_to
        from baggan.io import write_image_atomic, write_json_atomic

        name = self.check_name(name)
        if not (self.workdir / "scans" / f"{name}.png").is_file():
            raise UserError(f"unknown sample {name!r}: load a seed or upload a scan first")
        try:
            raw = base64.b64decode(ids if isinstance(ids, str) else "", validate=True)
        except ValueError:
            raise UserError("ids: not base64") from None
        if len(raw) != self.resolution**2:
            raise UserError(f"ids: {len(raw)} pixels, the generator makes {self.resolution}x{self.resolution} scans")
        mask = np.frombuffer(raw, np.uint8).reshape(self.resolution, self.resolution).astype(np.int64)
        mask = fit_to(mask, self.resolution, f"mask of {name}", self.label_set)  # ids: categories, 0 or 255
        used = sorted(set(np.unique(mask).tolist()) - {0, 255})
        write_image_atomic(self.workdir / "masks" / f"{name}.png", mask.astype(np.uint8))
        sidecar = {"sample": name, **self.source(name), "mask": f"masks/{name}.png", "scan": f"scans/{name}.png",
                   "label_set": self.label_set.name, "categories": [self.label_set.names[c - 1] for c in used],
                   "resolution": self.resolution, "generator": str(self.network),
                   "generator_sha256": self.network_sha256, "saved": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_json_atomic(self.workdir / "masks" / f"{name}.json", sidecar, indent=2)
        return {"mask": f"masks/{name}.png", "sidecar": f"masks/{name}.json", "categories": sidecar["categories"],
                "shots": self.shots()}

    def import_mask(self, name: object, filename: str, data: bytes) -> dict:
        """A mask file of a tool (LabelMe, COCO/CVAT, palette or id PNG) for sample NAME → its ids (not saved yet)."""
        from baggan.data.mask_formats import SampleRef, decode_mask, fit_to

        name = self.check_name(name)
        src = self.source(name)
        ref = SampleRef(seed=src["seed"]) if src["source"] == "seed" else SampleRef(name=src.get("original"))
        where = Path(filename or "upload").name
        mask = decode_mask(data, where, self.label_set, ref)
        resize = src["source"] == "ws" and list(mask.shape[::-1]) == src.get("original_size")
        return {"name": name, "mask": encode_ids(fit_to(mask, self.resolution, where, self.label_set, resize))}

    def shots(self) -> list[str]:
        """Names of the samples with a saved mask, in name order."""
        return sorted(p.stem for p in (self.workdir / "masks").glob("*.png") if p.with_suffix(".json").is_file())

    # ------------------------------------------------------------------------------------------------
    # Fit and previews.

    def fit_job(self, names: list[str] | None) -> Work:
        """Check the shots (all saved masks, or `names`) → the job that fits on them and predicts the previews."""
        names = [self.check_name(n) for n in (names if names else self.shots())]
        if not names:
            raise UserError("no saved mask to fit on: paint a scan and save it first")
        for name in names:
            if not (self.workdir / "masks" / f"{name}.png").is_file():
                raise UserError(f"sample {name!r} has no saved mask")
        return lambda report: self._fit(names, report)

    def _fit(self, names: list[str], report: Report) -> dict:
        """Fit the one-shot segmenter on the saved masks of `names`, then predict the preview seeds."""
        from baggan.data.mask_formats import read_mask_file
        from baggan.oneshot import fit_samples, fit_sheet, generated_sample, predict_categories, save_segmenter, training_iou

        t0 = time.perf_counter()
        samples = []
        for name in names:
            mask = read_mask_file(self.workdir / "masks" / f"{name}.png", self.resolution, self.label_set)
            samples.append(generated_sample(self.gen, self.ws_of(name), mask, name, f"masks/{name}.png"))
        epochs = self.fit_config.epochs
        report(0.0, f"fitting on {len(samples)} shot(s)")
        model, table, history = fit_samples(
            self.method, self.gen, self.encoder, samples, self.fit_config, progress=False,
            on_epoch=lambda e, loss: report(0.8 * e / epochs, f"fit: epoch {e}/{epochs}, loss {loss:.4f}"))
        fit_seconds = time.perf_counter() - t0
        preds = [predict_categories(model, s, table, self.resolution) for s in samples]
        ious = [training_iou(s.mask, p, table) for s, p in zip(samples, preds)]
        out = self.workdir / "fit" / "segmenter.pt"
        psi = next((src["psi"] for src in map(self.source, names) if src["source"] == "seed"), 0.7)
        meta = save_segmenter(out, model, samples, table, history, ious, self.label_set, self.method, self.network,
                              self.hfc, psi)
        fit_sheet(out.with_suffix(".png"), samples, preds, ious, self.label_set,
                  f"{self.method}+{self.settings.segmenter}: {len(samples)}-shot, {epochs} epochs")
        report(0.8, "predicting the preview seeds")
        previews = self._previews(model, table, psi, names, report)
        return {"segmenter": "fit/segmenter.pt", "sheet": self.url(out.with_suffix(".png")), "shots": names,
                "categories": meta["categories"], "training_iou": [round(v, 4) for v in ious],
                "final_loss": round(history[-1], 5), "fit_seconds": round(fit_seconds, 3),
                "seconds": round(time.perf_counter() - t0, 3), "previews": previews}

    def _previews(self, model: PixelClassifier, table: list[int], psi: float, shots: list[str],
                  report: Report) -> list[dict]:
        """The fitted model's predictions on `previews` seeds from preview_seed on (annotated ones skipped)."""
        from baggan.data.xray.preview import overlay
        from baggan.io import write_image_atomic
        from baggan.stylegan2.latents import ws_from_seed
        from hfc.oneshot import Annotator

        taken = {self.source(n).get("seed") for n in shots}
        seeds = [s for s in range(self.settings.preview_seed, self.settings.preview_seed + 2 * self.settings.previews
                                  + len(taken)) if s not in taken][: self.settings.previews]
        annotate = Annotator(self.gen, None, model)  # the fitted model holds the encoder
        lut = np.asarray(table, np.int64)
        views = []
        for start in range(0, len(seeds), 8):
            batch = seeds[start:start + 8]
            out = annotate(ws_from_seed(self.G, batch, psi))
            images = self.render_batch(out.images)
            for seed, image, labels in zip(batch, images, lut[out.labels.cpu().numpy()]):
                name = seed_name(seed, psi)
                scan = self.workdir / "scans" / f"{name}.png"
                if not scan.is_file():
                    write_image_atomic(scan, image)
                shown = self.workdir / "fit" / "previews" / f"{name}_overlay.png"
                write_image_atomic(shown.with_name(f"{name}_mask.png"), labels.astype(np.uint8))
                write_image_atomic(shown, overlay(image, labels))
                views.append({"name": name, "seed": seed, "psi": psi, "scan": self.url(scan), "overlay": self.url(shown),
                              "categories": [self.label_set.names[c - 1] for c in sorted(set(labels.ravel().tolist())
                                                                                        - {0})]})
            report(0.8 + 0.2 * len(views) / len(seeds), f"previews: {len(views)}/{len(seeds)}")
        return views

    @staticmethod
    def render_batch(images: torch.Tensor) -> list[np.ndarray]:
        """Generator output [N, C, H, W] in [-1, 1] → HxWx3 uint8 scans."""
        from baggan.oneshot import rgb
        from baggan.stylegan2.projector import to_uint8

        return [rgb(im) for im in to_uint8(images)]

    # ------------------------------------------------------------------------------------------------
    # Export.

    def export_job(self, n: object, shard_size: object) -> Work:
        """Check the count and shard size → the job that synthesises the data set."""
        if not (self.workdir / "fit" / "segmenter.pt").is_file():
            raise UserError("nothing to export yet: fit a segmenter first")
        for what, v in (("count", n), ("shard size", shard_size)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 10_000_000:
                raise UserError(f"{what} must be an integer in 1..10000000, got {v!r}")
        return lambda report: self._export(n, shard_size, report)

    def _export(self, n: int, shard_size: int, report: Report) -> dict:
        """`synthesize` with the fitted files into a new export/run-NNN, then its contact sheet."""
        from baggan.data.coco_tools import contact_sheet
        from baggan.synth import SynthSettings, synthesize
        from baggan.synth.build import load_annotator

        segmenter = self.workdir / "fit" / "segmenter.pt"
        runs = sorted((self.workdir / "export").glob("run-*"))
        outdir = self.workdir / "export" / f"run-{len(runs) + 1:03d}"
        wiring = load_annotator(self.network, self.hfc, segmenter, self.device)
        done = [0]

        def annotate(ws: torch.Tensor):
            out = wiring.annotate(ws)
            done[0] += len(ws)
            report(0.95 * min(done[0] / n, 1.0), f"synthesis: {min(done[0], n)}/{n} scans")
            return out

        settings = SynthSettings(n=n, shard_size=shard_size)
        summary = synthesize(annotate, wiring.gen.sample_ws, wiring.label_set.coco_categories(),
                             wiring.class_to_category, outdir, settings, device=self.device,
                             provenance=wiring.provenance, progress=False, inputs=wiring.inputs)
        report(0.97, "contact sheet")
        sheet = contact_sheet(outdir, 16, outdir / "contact.png")
        return {"outdir": outdir.relative_to(self.workdir).as_posix(), "images": summary.images,
                "shards": settings.num_shards, "contact": self.url(sheet), "seconds": round(summary.seconds, 3)}
