"""Settings and plan types of `baggan evaluate oneshot` (the compared methods, the YAML config, the units of work),
apart from the runner (evaluate.oneshot) and its report (evaluate.oneshot_report), which both read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

from baggan.config import check
from baggan.data.labelsets import PAPER_THREATS, PIDRAY
from baggan.errors import UserError
from baggan.oneshot import THREAT_THRESHOLD
from baggan.stylegan2.projector import ProjectorConfig
from hfc.names import IMAGE_CONTROL, RAW_METHODS, SEGMENTERS

Part = Literal["main", "shots", "depth", "layer", "tau", "dk", "patch"]
PARTS: tuple[str, ...] = get_args(Part)
Constraint = Literal["equipartition", "pixel_distribution"]


@dataclass(frozen=True)
class Method:
    """A compared method: an HFC encoder variant + a segmenter on its codes, or a raw-feature baseline."""

    key: str
    label: str  # as the paper's tables name it
    hfc: str | None = None  # HFC variant (HFC_VARIANTS) whose codes the segmenter reads
    segmenter: str | None = None
    raw: str | None = None  # a raw-feature baseline (hfc.names.RAW_METHODS)


METHODS = {m.key: m for m in (
    Method("ours-mlp", "Ours / MLP", "swav", "mlp1"),
    Method("ours-fcn", "Ours / FCN", "swav", "fcn3"),
    Method("ours-nolocal-mlp", "Ours w/o local loss / MLP", "swav-nolocal", "mlp1"),
    Method("ours-nolocal-fcn", "Ours w/o local loss / FCN", "swav-nolocal", "fcn3"),
    Method("kmeans", "HFC+KMeans", "kmeans", "mlp1"),
    Method("simclr-mlp", "HFC+SimCLR / MLP", "simclr", "mlp1"),
    Method("simclr-fcn", "HFC+SimCLR / FCN", "simclr", "fcn3"),
    Method("datasetgan", "DatasetGAN", raw="datasetgan"),
    Method("repurpose-mlp", "RepurposeGAN / MLP", raw="repurpose-mlp"),
    Method("repurpose-fcn", "RepurposeGAN / FCN", raw="repurpose-fcn"),
    Method(IMAGE_CONTROL, "Control: image only / MLP", raw=IMAGE_CONTROL),  # not a paper method: what the image holds
)}  # fmt: skip
PAPER_METHODS = [k for k in METHODS if k != IMAGE_CONTROL]  # the ten methods of Tables 2 / 6
ORACLE = "Oracle: "  # label prefix of the oracle rows of the main table
# How each HFC variant differs from the base HFC config (after hfc_overrides).
HFC_VARIANTS: dict[str, dict[str, Any]] = {"swav": {"method": "swav"},
                                           "swav-nolocal": {"method": "swav", "global_loss": True, "local_loss": False},
                                           "simclr": {"method": "simclr"}, "kmeans": {"method": "kmeans"}}


# ------------------------------------------------------------------------------------------------ configuration

def _check_methods(methods: Sequence[str], key: str) -> None:
    check(len(methods) > 0 and len(set(methods)) == len(methods), key, "must be distinct, ≥ 1")
    for m in methods:
        check(m in METHODS, key, f"unknown method {m!r} (known: {', '.join(METHODS)})")


@dataclass(frozen=True)
class ScanConfig:
    """Which simulator scans are annotated and tested (see oneshot_data)."""

    categories: list[str] = field(default_factory=lambda: list(PAPER_THREATS))  # PIDRay names segmented
    annotation: Literal["per_category", "per_scan"] = "per_category"  # k-shot = k examples of each category / k scans
    repetitions: int = 5  # different annotated sets (mean ± std over them)
    candidates: int = 200  # candidate scans per repetition the annotated scans are picked from
    test_threat: int = 16  # test scans showing threats
    test_clean: int = 4  # threat-free test scans (false positives of the low-frequency labels)
    min_pixels: int = 12  # a threat counts as shown (annotated example, threat test scan) from this many pixels
    max_threats: int = 3  # threats per bag, 1..3 (simulator; not used with `sim`, whose own max_threats holds)
    seed: int = 0  # base of the scan seed streams
    sim: str | None = None  # simulator YAML with a `window:` block: threat windows instead of whole bags (null: bags)

    def __post_init__(self):
        check(len(self.categories) > 0, "categories", "must name at least one PIDRay category")
        for name in self.categories:
            check(name in PIDRAY.names, "categories", f"unknown category {name!r} (known: {', '.join(PIDRAY.names)})")
        check(len(set(self.categories)) == len(self.categories), "categories", "has duplicates")
        check(self.repetitions >= 1, "repetitions", f"must be ≥ 1, got {self.repetitions}")
        check(self.candidates >= 1, "candidates", f"must be ≥ 1, got {self.candidates}")
        check(self.test_threat >= 1, "test_threat", f"must be ≥ 1, got {self.test_threat}")
        check(self.test_clean >= 0, "test_clean", f"must be ≥ 0, got {self.test_clean}")
        check(self.min_pixels >= 1, "min_pixels", f"must be ≥ 1, got {self.min_pixels}")
        check(1 <= self.max_threats <= 3, "max_threats", f"must be 1, 2 or 3, got {self.max_threats}")
        check(self.seed >= 0, "seed", f"must be ≥ 0, got {self.seed}")


@dataclass(frozen=True)
class OracleConfig:
    """Oracle rows of the main table: `methods` fitted on `train` projected threat scans with their exact masks
    (one repetition), scored on the same test scans — the ceiling the generator and the projection allow."""

    train: int = 0  # annotated scans of the oracle (0: no oracle rows)
    methods: list[str] = field(default_factory=lambda: ["ours-mlp", "repurpose-mlp"])

    def __post_init__(self):
        check(self.train >= 0, "train", f"must be ≥ 0, got {self.train}")
        _check_methods(self.methods, "methods")


@dataclass(frozen=True)
class FitConfig:
    """The one-shot fit of every method (section 6.2.4: Adam, lr 0.01, betas (0.9, 0.99), 200 epochs)."""

    epochs: int = 200
    lr: float = 0.01
    hidden: int = 128  # width of the hidden layers of MLP-3 / FCN-n on the codes
    datasetgan_members: int = 10  # DatasetGAN ensemble size (Zhang et al.: 10)
    seed: int = 0  # initialisation seed of repetition r is seed + r
    # segmenters on the codes (mlp1, fcn3, ...) whose input is standardised per channel (hfc.segmenters): the unit
    # codes vary by ~0.08 per channel, and a linear head trained for a few hundred Adam steps stays near the prior
    standardize: list[str] = field(default_factory=list)
    # segmenters on the codes fitted with L-BFGS to convergence (at most `epochs` loss evaluations) instead of Adam
    lbfgs: list[str] = field(default_factory=list)
    # segmenters on the codes and raw-feature baselines (hfc.names.RAW_METHODS) that also read the generated image
    # (hfc.generator.ImageLayer): the codes lose the dark-metal-on-light-clutter contrast the image keeps
    image: list[str] = field(default_factory=list)
    # segmenters on the codes and raw-feature baselines fitted with `views_per_sample` W+ views of each annotated
    # window beside it (hfc OneShotConfig.views: Eq. 7 at fit time on the blocks of >= views_min_resolution px)
    views: list[str] = field(default_factory=list)
    views_per_sample: int = 8
    views_tau_p: float = 0.5
    views_min_resolution: int = 8
    # segmenters on the codes and raw-feature baselines fitted with class weights ∝ share^-balance_power
    # (hfc OneShotConfig.class_balance; 1: inverse frequency of the annotated pixels)
    balance: list[str] = field(default_factory=list)
    balance_power: float = 1.0
    # the class from the label (conditional generators): a pixel is threat where 1 - p(background) exceeds this
    # (baggan.oneshot.condition_classes; scripts/bench_threat_rule.py chooses it on validation windows)
    threat_threshold: float = THREAT_THRESHOLD

    def __post_init__(self):
        for key in ("standardize", "lbfgs"):
            bad = sorted(set(getattr(self, key)) - set(SEGMENTERS))
            check(not bad, key, f"unknown segmenter(s) {bad}; choose from {list(SEGMENTERS)}")
        for key in ("image", "views", "balance"):
            bad = sorted(set(getattr(self, key)) - set(SEGMENTERS) - set(RAW_METHODS))
            check(not bad, key, f"unknown segmenter(s) or baseline(s) {bad}; choose from "
                                f"{list(SEGMENTERS) + list(RAW_METHODS)}")
        check(0 < self.threat_threshold < 1, "threat_threshold", f"must lie in (0, 1), got {self.threat_threshold}")
        check(self.balance_power >= 0, "balance_power", f"must be ≥ 0, got {self.balance_power}")
        check(self.views_per_sample >= 1, "views_per_sample", f"must be ≥ 1, got {self.views_per_sample}")
        check(0 <= self.views_tau_p <= 1, "views_tau_p", f"must be in [0, 1], got {self.views_tau_p}")
        check(self.views_min_resolution >= 1, "views_min_resolution", f"must be ≥ 1, got {self.views_min_resolution}")
        check(self.epochs >= 1, "epochs", f"must be ≥ 1, got {self.epochs}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.hidden >= 1, "hidden", f"must be ≥ 1, got {self.hidden}")
        check(self.datasetgan_members >= 1, "datasetgan_members", f"must be ≥ 1, got {self.datasetgan_members}")


@dataclass(frozen=True)
class ShotsConfig:
    """Few-shot sweep (Table 10)."""

    shots: list[int] = field(default_factory=lambda: [1, 5, 10])
    methods: list[str] = field(default_factory=lambda: ["ours-fcn", "kmeans", "simclr-fcn", "datasetgan",
                                                        "repurpose-fcn"])
    repetitions: int | None = None  # null: scans.repetitions

    def __post_init__(self):
        check(len(self.shots) > 0 and min(self.shots) >= 1, "shots", "needs shot counts ≥ 1")
        check(len(set(self.shots)) == len(self.shots), "shots", "has duplicates")
        _check_methods(self.methods, "methods")
        check(self.repetitions is None or self.repetitions >= 1, "repetitions", "must be ≥ 1 or null")


@dataclass(frozen=True)
class DepthConfig:
    """Segmenter depth sweep on our codes (Table 9)."""

    segmenters: list[str] = field(default_factory=lambda: list(SEGMENTERS))
    repetitions: int | None = None

    def __post_init__(self):
        check(len(self.segmenters) > 0, "segmenters", "must not be empty")
        for s in self.segmenters:
            check(s in SEGMENTERS, "segmenters", f"unknown segmenter {s!r} (known: {', '.join(SEGMENTERS)})")
        check(self.repetitions is None or self.repetitions >= 1, "repetitions", "must be ≥ 1 or null")


@dataclass(frozen=True)
class AblationConfig:
    """HFC ablations (Table 7, Fig. 14): each value trains its own encoder; ours + `segmenter` at 1-shot."""

    segmenter: str = "fcn3"
    repetitions: int | None = None
    perturbations: list[Literal["interpolate", "noise"]] = field(default_factory=lambda: ["interpolate", "noise"])
    blocks: list[int] | None = None  # fixed perturbed style blocks (null: every block); "random" is always added
    tau_p: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9, 1.0])
    dims: list[int] = field(default_factory=lambda: [16, 64, 256])
    prototypes: list[int] = field(default_factory=lambda: [100, 500, 1000])
    patch_sizes: list[int] = field(default_factory=lambda: [8, 16, 32, 64])
    constraints: list[Constraint] = field(default_factory=lambda: ["equipartition", "pixel_distribution"])

    def __post_init__(self):
        check(self.segmenter in SEGMENTERS, "segmenter", f"unknown segmenter {self.segmenter!r}")
        check(self.repetitions is None or self.repetitions >= 1, "repetitions", "must be ≥ 1 or null")
        check(self.blocks is None or (len(self.blocks) > 0 and min(self.blocks) >= 0), "blocks",
              "must be style block indices ≥ 0, or null")
        check(all(0 <= t <= 1 for t in self.tau_p), "tau_p", "values must be in [0, 1]")
        check(all(d >= 1 for d in self.dims), "dims", "values must be ≥ 1")
        check(all(k >= 2 for k in self.prototypes), "prototypes", "values must be ≥ 2")
        check(all(p >= 1 for p in self.patch_sizes), "patch_sizes", "values must be ≥ 1")
        for key in ("perturbations", "tau_p", "dims", "prototypes", "patch_sizes", "constraints"):
            check(len(getattr(self, key)) > 0, key, "must not be empty")


@dataclass(frozen=True)
class FpsConfig:
    """Inference speed (Table 5): generator + features + segmenter per image, batch 1 and batch `batch`."""

    images: int = 16
    batch: int = 8
    warmup: int = 2

    def __post_init__(self):
        check(self.images >= 1 and self.batch >= 1 and self.warmup >= 0, "images", "images, batch ≥ 1, warmup ≥ 0")


@dataclass(frozen=True)
class OneShotEvalConfig:
    """`baggan evaluate oneshot` settings (configs/eval/oneshot-*.yaml)."""

    network: str | None = None  # generator file (--network overrides)
    hfc: str = "configs/hfc/xray.yaml"  # base HFC config of every variant
    hfc_overrides: dict[str, Any] = field(default_factory=dict)  # merged into it (nested keys), e.g. {epochs: 10}
    parts: list[Part] = field(default_factory=lambda: ["main"])  # --parts overrides
    methods: list[str] = field(default_factory=lambda: list(PAPER_METHODS))
    scans: ScanConfig = ScanConfig()
    oracle: OracleConfig = OracleConfig()
    projector: ProjectorConfig = ProjectorConfig()
    fit: FitConfig = FitConfig()
    shots: ShotsConfig = ShotsConfig()
    depth: DepthConfig = DepthConfig()
    ablation: AblationConfig = AblationConfig()
    fps: FpsConfig = FpsConfig()
    threads: int | None = 1  # torch CPU threads (1 is fastest on a busy shared CPU); null: leave as is
    cache_dir: str | None = None  # projections (null: <outdir>/projections); share it between runs
    workers: int = 1  # CPU: processes projecting scans side by side, one thread each (1: in this process)
    show: int = 4  # test scans shown in the predictions figure (the threat-free ones last)

    def __post_init__(self):
        check(len(self.parts) > 0 and len(set(self.parts)) == len(self.parts), "parts", "must be distinct, ≥ 1")
        _check_methods(self.methods, "methods")
        check(IMAGE_CONTROL not in self.methods or IMAGE_CONTROL in self.fit.image, "methods",
              f"{IMAGE_CONTROL} (the control on the image alone) needs fit.image to list {IMAGE_CONTROL}")
        check(self.threads is None or self.threads >= 1, "threads", "must be ≥ 1 or null")
        check(self.show >= 0, "show", f"must be ≥ 0, got {self.show}")
        check(self.workers >= 1, "workers", f"must be ≥ 1, got {self.workers}")


def parse_parts(text: str) -> list[str]:
    """'main,shots' → ['main', 'shots']; UserError naming an unknown part."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise UserError(f"--parts {text!r}: unknown part {bad[0] if bad else '(none)'} (known: {', '.join(PARTS)})")
    return parts


# ------------------------------------------------------------------------------------------------------- the plan

@dataclass(frozen=True)
class Model:
    """What one unit fits: an HFC variant's codes + a segmenter, or a raw-feature baseline."""

    hfc: str | None
    segmenter: str | None = None
    raw: str | None = None


@dataclass(frozen=True)
class Unit:
    """One fit-and-test: a model on repetition `rep`'s k-shot annotated set, placed in a part's table."""

    part: str
    group: str  # column / series of the part's table ("" when it has one)
    row: str  # row label
    model: Model
    shots: int
    rep: int
    oracle: bool = False  # fitted on the oracle's scans (OracleConfig) instead of repetition rep's annotated set


def load_oneshot_config(path: str | Path) -> OneShotEvalConfig:
    """Read a oneshot YAML config (strict: unknown keys and bad values are errors naming the key)."""
    from baggan.config import load_config

    return load_config(path, OneShotEvalConfig)
