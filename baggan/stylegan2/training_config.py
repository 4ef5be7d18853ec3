"""The training config (YAML → frozen dataclasses): network, loss, augment, optim, schedule, metrics, data."""

from __future__ import annotations

from dataclasses import dataclass, field

from baggan.config import check
from baggan.stylegan2.augment import AugmentConfig
from baggan.stylegan2.config import NetworkConfig
from baggan.stylegan2.loss import LossConfig


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G and D; lr and betas are corrected for lazy regularisation by the loop."""

    g_lr: float = 0.002
    d_lr: float = 0.002
    betas: tuple[float, float] = (0.0, 0.99)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check(self.g_lr > 0 and self.d_lr > 0, "g_lr", "learning rates must be > 0")
        check(all(0 <= b < 1 for b in self.betas), "betas", f"must be in [0, 1), got {self.betas}")
        check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")


@dataclass(frozen=True)
class ScheduleConfig:
    """Batch sizes, length, and how often the loop logs, draws samples and writes snapshots."""

    batch: int = 32  # global minibatch, over all processes
    batch_gpu: int | None = None  # samples per forward pass and process (gradient accumulation); null = batch / processes
    total_kimg: float = 25000.0
    kimg_per_tick: float = 4.0
    snapshot_ticks: int = 50  # checkpoint every N ticks (and at the end)
    image_snapshot_ticks: int = 50  # sample grid every N ticks (and at the end)
    ema_kimg: float | None = None  # half-life of the G_ema average; null = batch * 10 / 32 (official)
    ema_rampup: float | None = 0.05  # half-life ≤ rampup × images seen so far; null = no ramp-up

    def __post_init__(self) -> None:
        check(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")
        check(self.batch_gpu is None or (self.batch_gpu >= 1 and self.batch % self.batch_gpu == 0), "batch_gpu",
              f"must divide batch ({self.batch}), got {self.batch_gpu}")
        check(self.total_kimg > 0, "total_kimg", f"must be > 0, got {self.total_kimg}")
        check(self.kimg_per_tick > 0, "kimg_per_tick", f"must be > 0, got {self.kimg_per_tick}")
        check(self.snapshot_ticks >= 1, "snapshot_ticks", f"must be >= 1, got {self.snapshot_ticks}")
        check(self.image_snapshot_ticks >= 1, "image_snapshot_ticks", f"must be >= 1, got {self.image_snapshot_ticks}")
        check(self.ema_kimg is None or self.ema_kimg >= 0, "ema_kimg", f"must be >= 0, got {self.ema_kimg}")
        check(self.ema_rampup is None or self.ema_rampup > 0, "ema_rampup", f"must be > 0, got {self.ema_rampup}")

    def ema_half_life_kimg(self) -> float:
        """ema_kimg, or the official default batch * 10 / 32."""
        return self.batch * 10 / 32 if self.ema_kimg is None else self.ema_kimg


@dataclass(frozen=True)
class MetricsConfig:
    """FID/KID of G_ema against the training images, every N ticks (0 = off) and at the end."""

    fid_ticks: int = 0
    fid_samples: int = 1000  # generated images (and at most this many reals)
    seed: int = 123  # latents of the generated images

    def __post_init__(self) -> None:
        check(self.fid_ticks >= 0, "fid_ticks", f"must be >= 0, got {self.fid_ticks}")
        check(self.fid_samples >= 2, "fid_samples", f"must be >= 2, got {self.fid_samples}")


@dataclass(frozen=True)
class DataConfig:
    """How the training images are read."""

    xflip: bool = False  # add mirrored copies (doubles the data set)
    labels: bool = False  # condition on the multi-hot set of categories in each scan (network.c_dim must match)
    in_memory: bool | None = None  # decode everything once into RAM; null = when it fits in 4 GiB
    workers: int = 2  # data-loader worker processes when streaming from disk
    # {category name: n}: a scan holding that category is seen n times per epoch (the largest n of its
    # categories), by D as a real and by G as a label to draw; FID probes still read the data set as it is
    repeat: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self.workers >= 0, "workers", f"must be >= 0, got {self.workers}")
        bad = {k: v for k, v in self.repeat.items() if not isinstance(v, int) or v < 1}
        check(not bad, "repeat", f"counts must be integers >= 1, got {bad}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything `baggan train` needs besides the data and output folders."""

    network: NetworkConfig
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    seed: int = 0  # every random draw of the run derives from it
    grid: int = 8  # the sample grid shows grid x grid images from fixed latents (their spread is the log's diversity)

    def __post_init__(self) -> None:
        check(self.grid >= 2, "grid", f"must be >= 2 (the diversity of the samples needs two), got {self.grid}")


__all__ = ["TrainConfig", "OptimConfig", "ScheduleConfig", "MetricsConfig", "DataConfig"]
