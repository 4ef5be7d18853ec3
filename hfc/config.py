"""Configuration of hidden-feature clustering (HFC) training: frozen dataclasses, loaded from YAML.

`baggan.config.load_config(path, HFCConfig)` reads the presets in configs/hfc/; this module itself
never imports baggan. Validation errors are `ValueError("key: message")` (the loader adds the file and
the section prefix). Table A1 of the paper gives the values of the face/car/cat/horse presets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hfc.names import HFCMethod, Segmenter


def _require(cond: bool, key: str, message: str) -> None:
    """Raise ValueError('key: message') unless `cond` (mirrors baggan.config.check)."""
    if not cond:
        raise ValueError(f"{key}: {message}")


@dataclass(frozen=True)
class AugmentConfig:
    """W+ views (section 4.1): which style block is perturbed, and how."""

    method: Literal["interpolate", "noise"] = "interpolate"  # Eq. 7 or Eq. 6
    tau_p: float = 0.9  # Eq. 7 perturbation factor: w' = tau_p * w + (1 - tau_p) * w_partner
    sigma_d: float = 0.5  # Eq. 6 noise std: w' = w + N(0, sigma_d^2 I)
    block: int | None = None  # perturbed style block (0 = 4x4); null = drawn at random each iteration
    psi: float = 1.0  # truncation of the sampled latents (and of the interpolation partners)

    def __post_init__(self) -> None:
        _require(0.0 <= self.tau_p <= 1.0, "tau_p", f"must be in [0, 1], got {self.tau_p}")
        _require(self.sigma_d >= 0.0, "sigma_d", f"must be >= 0, got {self.sigma_d}")
        _require(self.block is None or self.block >= 0, "block", f"must be >= 0 or null, got {self.block}")
        _require(0.0 <= self.psi <= 1.0, "psi", f"must be in [0, 1], got {self.psi}")


@dataclass(frozen=True)
class SamplingConfig:
    """Which pixels enter the loss (Eq. 9): square patches, or sets of random pixels."""

    mode: Literal["patches", "pixels"] = "patches"
    num_patches: int = 5  # patches (or pixel sets) per image per iteration; one Sinkhorn problem each
    patch_size: int = 64  # side of a square patch (mode: patches)
    num_pixels: int = 20000  # pixels per set (mode: pixels) -- Table A1's "Patch Size"

    def __post_init__(self) -> None:
        _require(self.num_patches >= 1, "num_patches", f"must be >= 1, got {self.num_patches}")
        _require(self.patch_size >= 1, "patch_size", f"must be >= 1, got {self.patch_size}")
        _require(self.num_pixels >= 2, "num_pixels", f"must be >= 2, got {self.num_pixels}")


@dataclass(frozen=True)
class SwAVConfig:
    """Swapped prediction (Eq. 2-3) with Sinkhorn-Knopp codes (Eq. 5, appendix A)."""

    prototypes: int = 4000  # K (Table A1 "Number of Prototypes")
    temperature: float = 0.01  # tau of Eq. 3
    sinkhorn_iters: int = 10
    epsilon: float | None = None  # entropy regulariser (Table A1 "lambda"); null = 20 / K (section 9.2)
    constraint: Literal["equipartition", "pixel_distribution"] = "equipartition"  # Fig. 14c

    def __post_init__(self) -> None:
        _require(self.prototypes >= 2, "prototypes", f"must be >= 2, got {self.prototypes}")
        _require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")
        _require(self.sinkhorn_iters >= 1, "sinkhorn_iters", f"must be >= 1, got {self.sinkhorn_iters}")
        _require(self.epsilon is None or self.epsilon > 0, "epsilon", f"must be > 0 or null, got {self.epsilon}")

    @property
    def eps(self) -> float:
        """The Sinkhorn epsilon actually used (20/K unless given)."""
        return self.epsilon if self.epsilon is not None else 20.0 / self.prototypes


@dataclass(frozen=True)
class SimCLRConfig:
    """HFC+SimCLR ablation: pixel-level NT-Xent between the two views at the same positions."""

    temperature: float = 0.1
    pixels: int = 1024  # pixels per patch kept for NT-Xent (its similarity matrix is (2P)^2)

    def __post_init__(self) -> None:
        _require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")
        _require(self.pixels >= 2, "pixels", f"must be >= 2, got {self.pixels}")


@dataclass(frozen=True)
class KMeansConfig:
    """HFC+KMeans ablation: k-means (D centroids) on raw hidden features of sampled pixels."""

    images: int = 16  # generated images whose pixels are clustered
    pixels_per_image: int = 2048
    iters: int = 50  # Lloyd iterations
    temperature: float = 1.0  # soft assignment: softmax(-|h - mu|^2 / (temperature * mean inertia))

    def __post_init__(self) -> None:
        _require(self.images >= 1, "images", f"must be >= 1, got {self.images}")
        _require(self.pixels_per_image >= 1, "pixels_per_image", f"must be >= 1, got {self.pixels_per_image}")
        _require(self.iters >= 1, "iters", f"must be >= 1, got {self.iters}")
        _require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")


@dataclass(frozen=True)
class OptimConfig:
    """LARS (SGD with layer-wise trust ratio), section 6.2.3."""

    lr: float = 0.01
    momentum: float = 0.9
    trust_coefficient: float = 0.01  # Table A1 "LARS Co-efficient"
    weight_decay: float = 0.0
    exclude_bias_and_norm: bool = False  # true: biases get plain SGD (collapses the codes at lr 0.01, see lars.py)

    def __post_init__(self) -> None:
        _require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _require(0.0 <= self.momentum < 1.0, "momentum", f"must be in [0, 1), got {self.momentum}")
        _require(self.trust_coefficient > 0, "trust_coefficient", f"must be > 0, got {self.trust_coefficient}")
        _require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")


@dataclass(frozen=True)
class HFCConfig:
    """One HFC training run: encoder shape, loss, views, pixel sampling, optimiser, schedule."""

    method: HFCMethod = "swav"
    dim: int = 512  # D, width of the per-pixel code z (Table A1 "Number of Clusters")
    negative_slope: float = 0.2  # LeakyReLU of f_theta
    global_loss: bool = True  # Eq. 10 global term
    local_loss: bool = True  # Eq. 10-11 local term (layers before the perturbed block masked)
    epochs: int = 100
    images_per_epoch: int = 16  # paper: 1-50 generated images per epoch
    batch_size: int = 1  # latents per iteration
    checkpoint_every: int = 10  # epochs
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    swav: SwAVConfig = field(default_factory=SwAVConfig)
    simclr: SimCLRConfig = field(default_factory=SimCLRConfig)
    kmeans: KMeansConfig = field(default_factory=KMeansConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        _require(self.dim >= 1, "dim", f"must be >= 1, got {self.dim}")
        _require(self.negative_slope >= 0, "negative_slope", f"must be >= 0, got {self.negative_slope}")
        _require(
            self.method == "kmeans" or self.global_loss or self.local_loss,
            "global_loss",
            "global_loss and local_loss are both off: nothing to train",
        )
        _require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _require(self.images_per_epoch >= 1, "images_per_epoch", f"must be >= 1, got {self.images_per_epoch}")
        _require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _require(self.checkpoint_every >= 1, "checkpoint_every", f"must be >= 1, got {self.checkpoint_every}")

    @property
    def iters_per_epoch(self) -> int:
        """Optimiser steps per epoch: ceil(images_per_epoch / batch_size)."""
        return -(-self.images_per_epoch // self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for checkpoints and the resolved-config file)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HFCConfig:
        """Inverse of `to_dict` (trusted input, e.g. a checkpoint written by `train_hfc`)."""
        sections = {
            "augment": AugmentConfig,
            "sampling": SamplingConfig,
            "swav": SwAVConfig,
            "simclr": SimCLRConfig,
            "kmeans": KMeansConfig,
            "optim": OptimConfig,
        }
        kwargs = {k: (sections[k](**v) if k in sections else v) for k, v in data.items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class OneShotConfig:
    """Fitting a segmenter from 1..N annotated samples (section 6.2.4)."""

    segmenter: Segmenter = "fcn3"  # paper default: 3-layer FCN
    hidden: int = 128  # width of the hidden layers of MLP-3 / FCN-n
    epochs: int = 200
    lr: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    ignore_index: int = 255  # label value excluded from the loss (unannotated pixels)
    seed: int = 0
    # standardise the codes per channel before the segmenter (issue 20; hfc.segmenters). Off by default: it lets
    # MLP-1 fit its own example (9 % -> 65 % at 100 epochs) but the quick-start's FCN-3 fit on its example fell
    # from 0.961 to 0.642 IoU with it, and held-out scores fell too (docs/benchmarks.md)
    standardize: bool = False
    # adam: `epochs` full-batch Adam steps (section 6.2.4); lbfgs: L-BFGS to convergence, at most `epochs`
    # iterations (a linear head on the codes is a convex problem: on threat windows 100 Adam steps fitted 49 % of
    # the annotated windows, L-BFGS 92 %, docs/benchmarks.md)
    optimizer: Literal["adam", "lbfgs"] = "adam"
    # the segmenter also reads the generated image's colours beside the codes (hfc.generator.ImageLayer): on the
    # quick-start's threat windows the codes alone lose the dark-metal-against-light-clutter contrast
    # (docs/benchmarks.md, "Session 18")
    image: bool = False
    # W+ views of each annotated sample fitted beside it with the sample's label (section 4.1's Eq. 7 at fit time,
    # hfc.augment.fit_views): `views` per sample, the ws of one style block of resolution >= views_min_resolution
    # moved towards a random partner (w' = views_tau_p * w + (1 - views_tau_p) * w_partner); coarser blocks (the
    # 4x4 one by default), which set the layout and so the mask, are kept. 0: off. On the threat windows 8 views
    # (tau_p 0.5, >= 8 px) lifted the MLP-1 methods by 0.8-5.4 mIoU points held out and cost every head that fits its
    # example closely (FCN-3, MLP-3, MLP-1 at 1000 epochs; docs/benchmarks.md, "Session 23", "Session 24")
    views: int = 0
    views_tau_p: float = 0.5
    views_min_resolution: int = 8
    # class weights of the cross-entropy ∝ (share of the annotated pixels)^-class_balance (0: plain cross-entropy,
    # 1: inverse frequency), for a rare class the plain loss under-fits. Off by default: on the threat windows the
    # MLP-1 heads over-mark already, and weights cost them 5-20 mIoU points held out (docs/benchmarks.md, "Session 25")
    class_balance: float = 0.0

    def __post_init__(self) -> None:
        _require(self.class_balance >= 0.0, "class_balance", f"must be >= 0, got {self.class_balance}")
        _require(self.optimizer in ("adam", "lbfgs"), "optimizer", f"adam or lbfgs, got {self.optimizer!r}")
        _require(self.views >= 0, "views", f"must be >= 0, got {self.views}")
        _require(0.0 <= self.views_tau_p <= 1.0, "views_tau_p", f"must be in [0, 1], got {self.views_tau_p}")
        _require(self.views_min_resolution >= 1, "views_min_resolution",
                 f"must be >= 1, got {self.views_min_resolution}")
        _require(self.hidden >= 1, "hidden", f"must be >= 1, got {self.hidden}")
        _require(self.epochs >= 1, "epochs", f"must be >= 1, got {self.epochs}")
        _require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _require(all(0.0 <= b < 1.0 for b in self.betas), "betas", f"must be in [0, 1), got {self.betas}")
