"""The quick-start: the whole chain on the built-in simulator, no downloads, under ten minutes on a 2-core CPU.

Two kinds of scans: with `windows:` (a simulator config with a `window:` block, the default config's choice)
threat windows, as the shipped threat-window generator was trained on; without it whole bags (the whole-bag
generator, configs/quickstart-bags.yaml). A conditional generator gets each scan's own label wherever a scan
is projected, and draws its samples' labels among the threat categories.

Stages, each resumable (a finished stage is skipped when the command runs again with the same OUTDIR, generator
and config; OUTDIR/run.json records them, and a folder of another run is refused):
  1. hfc      train the HFC encoder (SwAV hidden-feature clustering) of the shipped X-ray generator;
  2. example  render the annotated example(s) with exact threat masks — ONE whole-bag scan showing the most
              categories, or ONE threat window per category — project them into the generator's W+, and fit
              the one-shot segmenter on the HFC codes of the projections;
  3. eval     score the segmenter on held-out simulator scans or windows (projected the same way) against their
              exact masks: per-category IoU, mIoU, projection PSNR/SSIM;
  4. coco     synthesise N annotated scans (COCO, sharded) with generator + encoder + segmenter;
  5. report   OUTDIR/report.md with the timings, the scores and the pictures.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from baggan.config import check
from baggan.errors import ConfigError, UserError
from baggan.oneshot import THREAT_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "quickstart.yaml"
STAGES = ("hfc", "example", "eval", "coco", "report")


@dataclass(frozen=True)
class ExampleConfig:
    """How the annotated example is chosen: the whole-bag candidate showing the most threat categories, or (windows)
    the first candidate window of each category."""

    candidates: int = 100  # simulator scans (windows) looked at
    max_threats: int = 3  # threats per simulated bag (whole bags only)
    min_pixels: int = 12  # a threat counts if it covers at least this many pixels
    seed: int = 0  # base seed of the simulator streams
    tries: int = 1  # (windows) candidate windows projected per category; the best reconstructed one is annotated

    def __post_init__(self) -> None:
        check(self.candidates >= 1, "example.candidates", f"must be >= 1, got {self.candidates}")
        check(self.tries >= 1, "example.tries", f"must be >= 1, got {self.tries}")
        check(self.max_threats >= 1, "example.max_threats", f"must be >= 1, got {self.max_threats}")


@dataclass(frozen=True)
class FitSettings:
    """The one-shot fit of the segmenter on the HFC codes (section 6.2.4)."""

    segmenter: str = "fcn3"
    hidden: int = 64
    epochs: int = 200
    lr: float = 0.01
    image: bool = False  # the segmenter also reads the generated image's colours (hfc OneShotConfig.image)
    standardize: bool = False  # standardise its inputs per channel (hfc OneShotConfig.standardize)
    views: int = 0  # W+ views of each example fitted beside it (hfc OneShotConfig.views; helps MLP-1, not FCN-3)


@dataclass(frozen=True)
class TestSettings:
    """Held-out simulator scans the segmenter is scored on."""

    threat: int = 12
    clean: int = 4

    def __post_init__(self) -> None:
        check(self.threat >= 1 and self.clean >= 0, "test", f"needs threat >= 1, clean >= 0, got {self}")


@dataclass(frozen=True)
class SynthOptions:
    """The synthesised data set."""

    n: int = 300
    shard_size: int = 100
    psi: float = 0.7
    min_area: int = 4
    batch: int = 16
    seed: int = 0
    class_from: str = "segmenter"  # or "condition": a threat pixel takes the label a conditional generator drew
    threat_threshold: float = THREAT_THRESHOLD  # class from the label: threat where 1 - p(background) > this

    def __post_init__(self) -> None:
        from baggan.synth.engine import CLASS_FROM

        check(self.class_from in CLASS_FROM, "synth.class_from",
              f"must be one of {', '.join(CLASS_FROM)}, got {self.class_from!r}")
        check(0.0 < self.threat_threshold < 1.0, "synth.threat_threshold",
              f"must lie in (0, 1), got {self.threat_threshold}")


@dataclass(frozen=True)
class QuickstartConfig:
    """configs/quickstart.yaml."""

    network: str = "checkpoints/xraysim-64.pt"  # relative paths are relative to the repository
    windows: str | None = None  # simulator config with a window: block: threat windows instead of whole bags
    hfc: str = "configs/hfc/xray.yaml"
    hfc_epochs: int | None = None  # override of the HFC config's epochs
    categories: list[str] = field(default_factory=lambda: ["Hammer", "HandCuffs", "Pliers", "Powerbank", "Wrench"])
    projector_steps: int = 200
    example: ExampleConfig = field(default_factory=ExampleConfig)
    fit: FitSettings = field(default_factory=FitSettings)
    test: TestSettings = field(default_factory=TestSettings)
    synth: SynthOptions = field(default_factory=SynthOptions)
    threads: int = 0  # torch threads on the CPU (0: torch's default)
    workers: int = 1  # CPU: processes projecting scans side by side, one thread each (1: in this process)

    def __post_init__(self) -> None:
        check(len(self.categories) >= 1, "categories", "needs at least one threat category")
        check(self.projector_steps >= 1, "projector_steps", f"must be >= 1, got {self.projector_steps}")
        check(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")


def repo_path(path: str | Path) -> Path:
    """A config path: as given if absolute or present from the working directory, else under the repository."""
    p = Path(path)
    return p if p.is_absolute() or p.exists() else ROOT / p


def load_quickstart_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> QuickstartConfig:
    """Read the quick-start YAML (default configs/quickstart.yaml); errors name the key."""
    from baggan.config import load_config

    return load_config(path or DEFAULT_CONFIG, QuickstartConfig, overrides)


class Timings:
    """Wall and CPU seconds per stage, kept in OUTDIR/timings.json across resumed runs."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, dict[str, float]] = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, stage: str, fn: Callable[[], Any]) -> Any:
        """Run fn, record its time under `stage` (replacing an earlier record) and return its value."""
        from baggan.io import write_json_atomic

        t, c = time.perf_counter(), time.process_time()
        out = fn()
        self.data[stage] = {"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2)}
        write_json_atomic(self.path, self.data, indent=1)
        return out


def _hfc_config(cfg: QuickstartConfig):
    """The HFC config file with the quick-start's epochs override."""
    from baggan.config import load_config
    from hfc.config import HFCConfig

    override = {"epochs": cfg.hfc_epochs} if cfg.hfc_epochs is not None else None
    return load_config(repo_path(cfg.hfc), HFCConfig, override)


def choose_example(scans, cfg: QuickstartConfig):
    """The candidate simulator scan that shows the most threat categories (the first of equals)."""
    from baggan.data.xraysim import scan_seed
    from baggan.evaluate.oneshot_data import TRAIN_STREAM

    best = None
    for i in range(cfg.example.candidates):
        scan = scans.render(scan_seed(cfg.example.seed + TRAIN_STREAM, i), "threat")
        if best is None or len(scan.categories(cfg.example.min_pixels)) > len(best.categories(cfg.example.min_pixels)):
            best = scan
    shown = best.categories(cfg.example.min_pixels)
    if not shown:
        raise UserError(f"example.candidates: none of {cfg.example.candidates} simulator scans shows a threat of "
                        f">= {cfg.example.min_pixels} px; raise it or lower example.min_pixels")
    label = np.where(np.isin(best.label, shown), best.label, 0)  # specks below min_pixels are background
    best.label = label
    return best


def main_category(label: np.ndarray) -> int:
    """The category id covering most of a window's threat pixels (how candidate windows are grouped)."""
    ids, counts = np.unique(label[label > 0], return_counts=True)
    return int(ids[counts.argmax()])


def score_predictions(samples: Sequence[Any], preds: Sequence[np.ndarray], table: list[int]) -> dict[str, Any]:
    """Per-category IoU, mIoU over the threat categories, pixel accuracy, and the threat-vs-background IoU (any
    threat category against background, pooled over the scans), from the held-out predictions."""
    from baggan.oneshot import to_classes
    from hfc.metrics import confusion_matrices, iou_from_confusion, mean_iou

    gts, prs = [to_classes(s.mask, table).numpy() for s in samples], [to_classes(p, table).numpy() for p in preds]
    cm = confusion_matrices(gts, prs, len(table)).sum(axis=0)
    iou = iou_from_confusion(cm)
    fg = confusion_matrices([np.minimum(g, 1) for g in gts], [np.minimum(p, 1) for p in prs], 2).sum(axis=0)
    return {"iou": [None if np.isnan(v) else float(v) for v in iou], "miou": float(mean_iou(iou)),
            "pixel_accuracy": float(np.trace(cm) / cm.sum()), "threat_iou": float(iou_from_confusion(fg)[1])}


class Quickstart:
    """One quick-start run in OUTDIR (see the module docstring)."""

    def __init__(self, cfg: QuickstartConfig, outdir: str | Path, device: torch.device,
                 network: str | Path | None = None, progress: bool = True, echo: Callable[[str], None] = print):
        from baggan.data.labelsets import PIDRAY
        from baggan.evaluate.oneshot import load_windows
        from baggan.evaluate.oneshot_data import SimScans
        from baggan.stylegan2 import load_feature_generator
        from hfc.generator import offering_image
        from hfc.names import SEGMENTERS

        self.cfg, self.outdir, self.device, self.progress, self.echo = cfg, Path(outdir), device, progress, echo
        self.network = repo_path(network or cfg.network)
        if not self.network.is_file():
            raise UserError(f"{self.network}: generator file not found (--network, or network: in the config)")
        self.hfc_cfg = _hfc_config(cfg)
        if cfg.fit.segmenter not in SEGMENTERS:
            raise ConfigError(f"fit.segmenter: unknown segmenter {cfg.fit.segmenter!r}")
        self.label_set = PIDRAY
        ids = [PIDRAY.id_of(c) for c in cfg.categories]  # a UserError naming an unknown category
        self.windows = load_windows(repo_path(cfg.windows), "windows") if cfg.windows else None
        if self.windows is not None:
            sim = {PIDRAY.id_of(c) for c in self.windows.threat_classes}
            missing = [c for c, i in zip(cfg.categories, ids) if i not in sim]
            if missing:
                raise ConfigError(f"categories: {', '.join(missing)} never appear in the windows of {cfg.windows} "
                                  f"(its threat_classes: {', '.join(self.windows.threat_classes)})")
        self.gen = load_feature_generator(self.network, device)
        if self.gen.G.c_dim == len(PIDRAY.names):  # labelled with PIDRay's categories: draw the threat ones
            self.gen.draw_among([i - 1 for i in ids])
        self.size = self.gen.img_resolution
        # what the segmenter reads: the hidden features, and with fit.image the image as their last layer
        self.seg_gen = offering_image(self.gen, self.gen.img_channels if cfg.fit.image else 0)
        self.scans = SimScans(cfg.categories, self.size, cfg.example.max_threats, cfg.example.min_pixels,
                              cfg.example.seed, self.windows)
        self.timings = Timings(self.outdir / "timings.json")

    # ------------------------------------------------------------------------------------------------ stages

    def train_encoder(self):
        """Stage 1: the HFC encoder (resumes an interrupted training)."""
        from baggan.config import save_config
        from hfc.train import train_hfc

        save_config(self.outdir / "hfc" / "config.yaml", self.hfc_cfg)
        return train_hfc(self.gen, self.hfc_cfg, self.outdir / "hfc", progress=self.progress)

    @property
    def unit(self) -> str:
        """What one scan is: "window" or "scan"."""
        return "window" if self.windows is not None else "scan"

    def project_scans(self, scans: Sequence[Any], sources: Sequence[str], mask_paths: Sequence[str],
                      desc: str) -> list:
        """AnnotatedSamples of simulator scans: their W+ projections (from each one's own label's mean w, for a
        conditional generator; on the CPU in `workers` processes) and exact masks (saved at `mask_paths`)."""
        from tqdm.auto import tqdm

        from baggan.oneshot import projected_sample
        from baggan.stylegan2.project_pool import project_many
        from baggan.stylegan2.projector import ProjectorConfig

        pcfg = ProjectorConfig(steps=self.cfg.projector_steps, seed=0)
        labels = [scan.condition() for scan in scans] if self.gen.G.c_dim else None
        with tqdm(total=len(scans), desc=desc, disable=not self.progress) as bar:
            results = project_many(self.network, self.gen.G, [scan.image for scan in scans], pcfg, labels,
                                   self.cfg.workers, on_done=lambda i, r: bar.update())
        return [projected_sample(self.seg_gen, scan.image, scan.label, source, mask_path, pcfg, result=r)
                for scan, source, mask_path, r in zip(scans, sources, mask_paths, results)]

    def candidate_groups(self) -> list[list]:
        """The example candidates, one group per example: ONE whole-bag scan, or per category the first
        `example.tries` threat windows (grouped by the category covering most of the window)."""
        if self.windows is None:
            return [[choose_example(self.scans, self.cfg)]]
        t = self.cfg.example.tries
        scans = self.scans.annotated_sets(0, [t], "per_category", self.cfg.example.candidates)[t]
        if t == 1:
            return [[s] for s in scans]
        groups: dict[int, list] = {}
        for scan in scans:
            groups.setdefault(main_category(scan.label), []).append(scan)
        return list(groups.values())

    def fit_example(self, encoder) -> None:
        """Stage 2: the annotated example(s) → projections → fitted segmenter (segmenter.pt, fit.png)."""
        from baggan.io import write_image_atomic
        from baggan.oneshot import fit_and_save
        from hfc.config import OneShotConfig

        groups = self.candidate_groups()
        d = self.outdir / "example"
        stems = ["" if len(groups) == 1 else f"-{k}" for k in range(len(groups))]
        flat = [(scan, stem) for group, stem in zip(groups, stems) for scan in group]
        projected = iter(self.project_scans([scan for scan, _ in flat],
                                            [f"{self.unit} {scan.seed}" for scan, _ in flat],
                                            [str(d / f"mask{stem}.png") for _, stem in flat], "example (projecting)"))
        samples, scans = [], []
        for group, stem in zip(groups, stems):  # per group the candidate whose projection reconstructs it best
            tried = [(scan, next(projected)) for scan in group]
            scan, sample = max(tried, key=lambda pair: pair[1].projection.psnr)
            write_image_atomic(d / f"scan{stem}.png", scan.image)
            write_image_atomic(d / f"mask{stem}.png", scan.label.astype(np.uint8))
            samples.append(sample)
            scans.append(scan)
        shown = ", ".join(f"{s.seed} ({', '.join(self.label_set.names[c - 1] for c in s.categories())})"
                          for s in scans)
        self.echo(f"the annotated example{'s' * (len(scans) > 1)}: simulator {self.unit} {shown}"
                  + (f" (each the best projected of {self.cfg.example.tries})" if self.cfg.example.tries > 1 else ""))
        f = self.cfg.fit
        ocfg = OneShotConfig(segmenter=f.segmenter, hidden=f.hidden, epochs=f.epochs, lr=f.lr, seed=0, image=f.image,
                             standardize=f.standardize, views=f.views)
        title = (f"one-shot fit: swav codes{' + image' * f.image} → {f.segmenter}, {f.epochs} epochs, "
                 f"final loss {{loss:.4f}}")
        fit_and_save(d / "segmenter.pt", "swav", self.seg_gen, encoder, samples, ocfg, self.label_set, self.network,
                     self.outdir / "hfc" / "encoder.pt", title=title, sheet=d / "fit.png",
                     progress=self.progress)  # segmenter.pt, written last, marks the stage done

    def evaluate(self) -> dict[str, Any]:
        """Stage 3: IoU of the segmenter on held-out simulator scans (projected) against their exact masks."""
        from baggan.evaluate.oneshot_data import SimScans
        from baggan.io import write_json_atomic
        from baggan.oneshot import categories_from, outline_sheet, predict_probs
        from hfc.checkpoint import load_module
        from hfc.features import PixelEncoder
        from hfc.oneshot import load_classifier

        encoder = load_module(self.outdir / "hfc" / "encoder.pt", self.device, expect=PixelEncoder)
        model = load_classifier(self.outdir / "example" / "segmenter.pt", encoder, self.device)
        table = [int(c) for c in model.segmenter.meta["class_to_category"]]
        learned = [self.label_set.names[c - 1] for c in table[1:]]
        # Test scans hold only the categories the example shows (the others were never annotated); a window holds
        # one threat, so there a category the examples miss is background.
        t = self.cfg.test
        sims = self.scans if self.windows is not None else SimScans(
            learned, self.size, self.cfg.example.max_threats, self.cfg.example.min_pixels, self.cfg.example.seed)
        scans = sims.test_scans(t.threat, t.clean)
        for scan in scans:
            scan.label = np.where(np.isin(scan.label, table), scan.label, 0)
        samples = self.project_scans(scans, [f"{scan.kind} {self.unit} {scan.seed}" for scan in scans],
                                     ["simulator (exact)"] * len(scans), f"held-out {self.unit}s (projecting)")
        preds, by_label = [], []
        for s, scan in zip(samples, scans):
            probs = predict_probs(model, s, self.size)
            preds.append(categories_from(probs, table))
            if self.gen.G.c_dim:  # the class a threat pixel would get from the scan's own label (synth.class_from)
                by_label.append(categories_from(probs, table, scan.present, self.cfg.synth.threat_threshold))
        scores = score_predictions(samples, preds, table)
        scores.update(categories=["background", *learned], test_scans=[[s.kind, s.seed] for s in scans],
                      projection_psnr=float(np.mean([s.projection.psnr for s in samples])),
                      projection_ssim=float(np.mean([s.projection.ssim for s in samples])))
        if by_label:
            scores["condition"] = score_predictions(samples, by_label, table)
        shown, whose = scores, "the segmenter's classes"
        if self.cfg.synth.class_from == "condition" and by_label:  # the sheet shows what the synthesis writes
            preds, shown, whose = by_label, scores["condition"], "classes from each label"
        captions = [f"{s.source}, IoU {_caption_iou(score_predictions([s], [p], table)['miou'])}"
                    for s, p in zip(samples, preds)]
        outline_sheet(self.outdir / "eval" / "heldout.png", [s.projection.target for s in samples],
                      [s.image for s in samples], [s.mask for s in samples], preds, captions, self.label_set,
                      f"held-out simulator {self.unit}s: exact outline (green, on the {self.unit}) vs one-shot "
                      f"prediction (red, on its projection, {whose}); mIoU over all {len(samples)}: {shown['miou']:.3f}")
        write_json_atomic(self.outdir / "eval" / "scores.json", scores, indent=1)
        return scores

    def synthesize(self):
        """Stage 4: N annotated scans as a sharded COCO data set in OUTDIR/coco."""
        from baggan.synth import SynthSettings, synthesize
        from baggan.synth.build import load_annotator

        w = load_annotator(self.network, self.outdir / "hfc" / "encoder.pt", self.outdir / "example" / "segmenter.pt",
                           self.device)  # a conditional generator draws the segmenter's categories as labels
        o = self.cfg.synth
        settings = SynthSettings(n=o.n, shard_size=o.shard_size, seed=o.seed, psi=o.psi, batch=o.batch,
                                 min_area=o.min_area, class_from=o.class_from,
                                 threat_threshold=o.threat_threshold)
        return synthesize(w.annotate, w.gen.sample_ws, w.label_set.coco_categories(), w.class_to_category,
                          self.outdir / "coco", settings, device=self.device, provenance=w.provenance,
                          progress=self.progress, inputs=w.inputs, conditions=w.conditions)

    # ------------------------------------------------------------------------------------------------ driver

    def check_same_run(self) -> None:
        """Record what defines this run in OUTDIR/run.json; UserError if OUTDIR holds a run of another one."""
        from baggan.config import to_dict
        from baggan.io import read_json, write_json_atomic
        from baggan.io import file_sha256

        cfg = {k: v for k, v in to_dict(self.cfg).items() if k not in ("network", "threads", "workers")}
        identity = {"generator_sha256": file_sha256(self.network), "config": cfg}
        path = self.outdir / "run.json"
        if not path.is_file():
            write_json_atomic(path, identity, indent=2)
            return
        old = read_json(path)
        diff = [{"generator_sha256": "generator", "config": "config"}[k] for k in identity if old.get(k) != identity[k]]
        if diff:
            raise UserError(f"{self.outdir} holds a quick-start run of another {' and '.join(diff)}; its finished "
                            "stages would be reused: choose a new --outdir or delete that folder")

    def run(self) -> Path:
        """Run (or finish) every stage; returns the report path."""
        from hfc.checkpoint import load_module
        from hfc.features import PixelEncoder

        out = self.outdir
        out.mkdir(parents=True, exist_ok=True)
        self.check_same_run()
        if self.cfg.threads and self.device.type == "cpu":
            torch.set_num_threads(self.cfg.threads)
        self.echo(f"[1/5] HFC encoder of {self.network.name} ({self.hfc_cfg.epochs} epochs) → {out / 'hfc'}")
        if (out / "hfc" / "encoder.pt").is_file() and "hfc" in self.timings.data:
            encoder = load_module(out / "hfc" / "encoder.pt", self.device, expect=PixelEncoder)
        else:
            encoder = self.timings.run("hfc", self.train_encoder)
        self.echo(f"[2/5] one-shot segmenter from ONE annotated simulator scan → {out / 'example'}")
        if not (out / "example" / "segmenter.pt").is_file():
            self.timings.run("example", lambda: self.fit_example(encoder))
        self.echo(f"[3/5] scoring on held-out simulator scans → {out / 'eval'}")
        if (out / "eval" / "scores.json").is_file():
            scores = json.loads((out / "eval" / "scores.json").read_text())
        else:
            scores = self.timings.run("eval", self.evaluate)
        self.echo(f"[4/5] synthesising {self.cfg.synth.n} annotated scans → {out / 'coco'}")
        if not _complete(out / "coco"):
            summary = self.timings.run("coco", self.synthesize)
            for line in summary.lines():
                self.echo("  " + line)
        self.echo(f"[5/5] report → {out / 'report.md'}")
        return self.timings.run("report", lambda: write_report(self, scores))


def _caption_iou(v: float) -> str:
    """A per-scan IoU for a caption ("n/a" where the scan holds no threat and none was predicted)."""
    return "n/a" if np.isnan(v) else f"{v:.2f}"


def _iou_cell(v: float | None) -> str:
    """An IoU table cell ("n/a" where the category never occurs nor is predicted)."""
    return "n/a" if v is None else f"{v:.3f}"


def _complete(coco_dir: Path) -> bool:
    """Whether a synthesised data set in coco_dir is finished."""
    index = coco_dir / "index.json"
    return index.is_file() and bool(json.loads(index.read_text()).get("complete"))


def _synth_grid(q: Quickstart, rows: int = 4) -> tuple[int, dict, dict[str, int]]:
    """grid.png of synthesised scans with their masks: the first 4 x `rows`, or for a conditional generator one
    column per label drawn (round robin over the labels); (images shown, totals of the data set, scans per label)."""
    from baggan.data.coco import CocoDataset, dataset_dirs
    from baggan.oneshot import annotate_grid, rgb
    from baggan.stylegan2 import StyleGANFeatureGenerator
    from baggan.synth.build import drawn_category

    index = json.loads((q.outdir / "coco" / "index.json").read_text())
    table = index["settings"]["class_to_category"]
    drawn = (index["settings"].get("inputs") or {}).get("labels")  # class indices of a conditional generator
    entries = [(ds, i, rec) for ds in map(CocoDataset, dataset_dirs(q.outdir / "coco")) for i, rec in
               enumerate(ds.images)]
    per_label: dict[str, int] = {}
    if drawn:
        gen = StyleGANFeatureGenerator(q.gen.G, classes=drawn)
        by_label: dict[int, list] = {c: [] for c in drawn}
        for ds, i, rec in entries:
            c = drawn_category(gen, rec["z_seed"]) - 1
            by_label[c].append((ds, i, f"label {q.label_set.names[c]}"))
        per_label = {q.label_set.names[c]: len(v) for c, v in by_label.items()}
        order = [col[r] for r in range(rows) for col in by_label.values() if r < len(col)]
        cols = len(drawn)
    else:
        cols = 4
        order = [(ds, i, f"{ds.root.name} #{i}") for ds, i, _ in entries[:cols * rows]]
    annotate_grid(q.outdir / "grid.png", [rgb(ds.read_image(i)) for ds, i, _ in order],
                  [ds.read_label(i) for ds, i, _ in order], [c for *_, c in order], q.label_set, table[1:],
                  f"synthesised {q.unit}s: generator image | one-shot annotation", cols=cols)
    return len(order), index["totals"], per_label


def next_commands(out: Path, network: str | Path) -> list[list[str]]:
    """The commands the report suggests next (argv after `baggan`): view the data set, check it, make more."""
    coco = str(out / "coco")
    return [["baggan", "coco", "view", coco, "--out", "view.png"], ["baggan", "coco", "check", coco],
            ["baggan", "synthesize", "--network", str(network), "--hfc", str(out / "hfc/encoder.pt"),
             "--segmenter", str(out / "example/segmenter.pt"), "--n", "10000", "--outdir", "more"]]


def write_report(q: Quickstart, scores: dict) -> Path:
    """OUTDIR/report.md: what ran, how long it took, how good the annotation is, and the pictures."""
    import platform

    from baggan.io import write_json_atomic, write_text_atomic

    out = q.outdir
    _, totals, per_label = _synth_grid(q)
    seg_meta = _segmenter_meta(out)
    t = q.timings.data
    coco_s = t.get("coco", {}).get("wall_s")
    rate = f"{q.cfg.synth.n / coco_s:.2f} annotated {q.unit}s/s" if coco_s else "n/a"
    unit, n_ex = q.unit, len(seg_meta["samples"])
    what = (f"ONE simulator {unit} per threat category ({n_ex} {unit}s, one-shot per class)" if q.windows is not None
            else f"ONE simulator scan, with {', '.join(seg_meta['categories'])}")
    md = ["# BagGAN quick-start report", "",
          f"Generator `{q.network}` ({q.size}x{q.size}"
          f"{', conditional: each projection starts from its label' if q.gen.G.c_dim else ''}); "
          f"{'threat windows of `' + str(q.cfg.windows) + '`' if q.windows is not None else 'whole-bag scans'}; "
          f"HFC config `{q.cfg.hfc}` ({q.hfc_cfg.epochs} epochs, D = {q.hfc_cfg.dim}); projector "
          f"{q.cfg.projector_steps} steps; {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, device {q.device}.", "",
          "| stage | wall s | CPU s |", "|---|---:|---:|"]
    md += [f"| {s} | {t[s]['wall_s']:.1f} | {t[s]['cpu_s']:.1f} |" for s in STAGES if s in t]
    md += ["", "## The annotated example" + "s" * (n_ex > 1), "",
           f"{what}, with the simulator's exact mask, projected into W+; segmenter swav"
           f"{' codes + image' * q.cfg.fit.image} + {seg_meta['segmenter']} "
           f"fitted on {'them' if n_ex > 1 else 'it'}. Rows of the picture: target | projection | annotation | fit.",
           "", "| example | PSNR dB | SSIM | IoU of the fit on it |", "|---|---:|---:|---:|"]
    md += [f"| {src} | {p:.2f} | {ss:.3f} | {iou:.3f} |" for src, p, ss, iou in
           zip(seg_meta["samples"], seg_meta["projection_psnr"], seg_meta["projection_ssim"], seg_meta["training_iou"])]
    md += ["", "![fit](example/fit.png)", "",
           f"## Held-out simulator {unit}s (exact masks)", "",
           f"{len(scores['test_scans'])} {unit}s ({sum(k == 'threat' for k, _ in scores['test_scans'])} with a "
           f"threat, the others without) projected into W+ (mean PSNR {scores['projection_psnr']:.2f} dB, "
           f"SSIM {scores['projection_ssim']:.3f}), annotated by the segmenter, compared with the simulator's "
           f"exact masks. mIoU over threat categories **{scores['miou']:.3f}**, pixel accuracy "
           f"{scores['pixel_accuracy']:.3f}, threat-vs-background IoU {scores['threat_iou']:.3f}."]
    cond = scores.get("condition")
    if cond is None:
        md += ["", "| category | IoU |", "|---|---:|"]
        md += [f"| {c} | {_iou_cell(v)} |" for c, v in zip(scores["categories"], scores["iou"])]
    else:
        md += ["", f"The generator is conditional, so each window's category is also known from its label (the one its "
               f"projection starts from, and the one a synthesised window is drawn with): with the segmenter saying "
               f"only *where* the threat is (threat where 1 − p(background) > {q.cfg.synth.threat_threshold:g}, "
               f"`synth.threat_threshold`) and the label saying *what*, mIoU "
               f"**{cond['miou']:.3f}**, threat-vs-background IoU {cond['threat_iou']:.3f}. The synthesised set "
               f"below takes its categories from the {q.cfg.synth.class_from} (`synth.class_from`).", "",
               "| category | IoU, segmenter's classes | IoU, classes from the label |", "|---|---:|---:|"]
        md += [f"| {c} | {_iou_cell(v)} | {_iou_cell(w)} |" for c, v, w in
               zip(scores["categories"], scores["iou"], cond["iou"])]
    labels = (f" Labels drawn (uniformly from each z seed): "
              f"{', '.join(f'{k} {v}' for k, v in per_label.items())}." if per_label else "")
    md += ["", "Green: the exact outline on the target; red: the predicted one on the projection the segmenter saw.",
           "", "![held-out](eval/heldout.png)", "", "## Synthesised data set", "",
           f"`{out / 'coco'}`: {totals['images']} {unit}s, {totals['annotations']} instances "
           f"({', '.join(f'{k} {v}' for k, v in sorted(totals['instances_per_category'].items())) or 'none'}); "
           f"{rate} end to end on this machine.{labels}", "", "![grid](grid.png)", "",
           "## Next", ""]
    view, check, more = (" ".join(c) for c in next_commands(out, q.network))
    md += [f"- Look at it: `{view}`; check it: `{check}`.", f"- More scans: `{more}`.",
           "- Your own generator and data: docs/training.md, docs/oneshot.md, docs/synthesis.md, docs/evaluation.md."]
    write_text_atomic(out / "report.md", "\n".join(md) + "\n")
    write_json_atomic(out / "summary.json", {"config": asdict(q.cfg), "network": str(q.network), "scores": scores,
                                             "timings": t, "totals": totals, "labels_drawn": per_label,
                                             "annotated_scans_per_s": q.cfg.synth.n / coco_s if coco_s else None},
                      indent=1)
    return out / "report.md"


def _segmenter_meta(outdir: Path) -> dict:
    """The metadata stored with the fitted segmenter."""
    from hfc.checkpoint import load_module

    return load_module(outdir / "example" / "segmenter.pt", "cpu").meta


__all__ = ["QuickstartConfig", "Quickstart", "load_quickstart_config", "choose_example", "write_report", "STAGES"]
