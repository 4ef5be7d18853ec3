"""Network configuration: a frozen dataclass (YAML `network:` block) and builders for G and D.

The named configs reproduce `cfg_specs` of stylegan2-ada-pytorch's train.py (single-GPU 'auto'):

| cfg       | channel_base (fmaps x 32768) | mapping layers | mbstd group | D architecture |
|-----------|------------------------------|----------------|-------------|----------------|
| auto      | 32768 if res >= 512 else 16384 | 2            | min(4096 // res, 32, 4) | resnet |
| stylegan2 | 32768                        | 8              | 4           | resnet         |
| paper256  | 16384                        | 8              | 8           | resnet         |
| paper512  | 32768                        | 8              | 8           | resnet         |
| paper1024 | 32768                        | 8              | 4           | resnet         |
| cifar     | 32768                        | 2              | 32          | orig           |

All of them use channel_max 512, num_fp16_res 4 and conv_clamp 256 (as train.py without --fp32).
'custom' takes every field from the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from baggan.config import check
from baggan.stylegan2.networks import Discriminator, Generator

CfgName = Literal["auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar", "custom"]
Architecture = Literal["orig", "skip", "resnet"]

# cfg → (fmaps, mapping layers, mbstd group size, D architecture); 'auto' depends on the resolution.
_SPECS: dict[str, tuple[float, int, int, str]] = {
    "stylegan2": (1.0, 8, 4, "resnet"),
    "paper256": (0.5, 8, 8, "resnet"),
    "paper512": (1.0, 8, 8, "resnet"),
    "paper1024": (1.0, 8, 4, "resnet"),
    "cifar": (1.0, 2, 32, "orig"),
}


def _spec(cfg: str, resolution: int) -> tuple[float, int, int, str]:
    """(fmaps, mapping layers, mbstd group, D architecture) of a named cfg at `resolution`."""
    if cfg == "auto":
        batch = min(4096 // resolution, 32) or 1  # train.py's single-GPU minibatch
        return (1.0 if resolution >= 512 else 0.5), 2, min(batch, 4), "resnet"
    return _SPECS[cfg]


@dataclass(frozen=True)
class NetworkConfig:
    """Generator + discriminator hyper-parameters; fields left None are filled from `cfg` by `resolved()`."""

    cfg: CfgName = "auto"
    resolution: int = 256
    img_channels: int = 3
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0  # number of classes (one-hot labels); 0 = unconditional
    mapping_layers: int | None = None
    channel_base: int | None = None
    channel_max: int = 512
    num_fp16_res: int = 4  # fp16 for the N highest resolutions (CUDA only; always fp32 on the CPU)
    conv_clamp: float | None = 256.0  # clamp conv outputs to ±X; None = off
    use_noise: bool = True  # G's per-pixel noise inputs; off: every detail comes from the styles
    architecture: Architecture = "skip"  # generator
    d_architecture: Architecture | None = None
    mbstd_group_size: int | None = None  # 0 = the whole minibatch
    mbstd_num_channels: int = 1
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.995

    def __post_init__(self) -> None:
        res = self.resolution
        check(res >= 4 and res & (res - 1) == 0, "resolution", f"must be a power of two >= 4, got {res}")
        check(self.img_channels >= 1, "img_channels", f"must be >= 1, got {self.img_channels}")
        check(self.z_dim >= 1 and self.w_dim >= 1, "z_dim", "z_dim and w_dim must be >= 1")
        check(self.c_dim >= 0, "c_dim", f"must be >= 0, got {self.c_dim}")
        check(self.mapping_layers is None or self.mapping_layers >= 1, "mapping_layers", "must be >= 1")
        check(self.channel_base is None or self.channel_base >= 1, "channel_base", "must be >= 1")
        check(self.channel_max >= 1, "channel_max", "must be >= 1")
        check(self.num_fp16_res >= 0, "num_fp16_res", "must be >= 0")
        check(self.conv_clamp is None or self.conv_clamp > 0, "conv_clamp", "must be > 0 or null")
        check(self.mbstd_group_size is None or self.mbstd_group_size >= 0, "mbstd_group_size", "must be >= 0")
        check(self.mbstd_num_channels >= 0, "mbstd_num_channels", "must be >= 0")
        check(0 < self.mapping_lr_multiplier, "mapping_lr_multiplier", "must be > 0")
        check(0 <= self.w_avg_beta < 1, "w_avg_beta", "must be in [0, 1)")
        if self.cfg == "custom":
            for name in ("mapping_layers", "channel_base", "d_architecture", "mbstd_group_size"):
                check(getattr(self, name) is not None, name, "cfg 'custom' needs an explicit value")

    def resolved(self) -> NetworkConfig:
        """A copy with every None field filled from the named cfg."""
        if self.cfg == "custom":
            return self
        fmaps, layers, mbstd, d_arch = _spec(self.cfg, self.resolution)
        fill = {
            "mapping_layers": layers,
            "channel_base": int(fmaps * 32768),
            "d_architecture": d_arch,
            "mbstd_group_size": mbstd,
        }
        return dataclasses.replace(self, **{k: v for k, v in fill.items() if getattr(self, k) is None})

    def channels(self, res: int) -> int:
        """Feature maps at resolution `res` (the same for G and D)."""
        r = self.resolved()
        return min(r.channel_base // res, r.channel_max)


def generator_kwargs(cfg: NetworkConfig) -> dict:
    """Constructor kwargs of networks.Generator for `cfg`."""
    r = cfg.resolved()
    return dict(
        z_dim=r.z_dim, c_dim=r.c_dim, w_dim=r.w_dim, img_resolution=r.resolution, img_channels=r.img_channels,
        mapping_kwargs=dict(num_layers=r.mapping_layers, lr_multiplier=r.mapping_lr_multiplier, w_avg_beta=r.w_avg_beta),
        synthesis_kwargs=dict(channel_base=r.channel_base, channel_max=r.channel_max, num_fp16_res=r.num_fp16_res,
                              architecture=r.architecture, conv_clamp=r.conv_clamp, use_noise=r.use_noise),
    )


def discriminator_kwargs(cfg: NetworkConfig) -> dict:
    """Constructor kwargs of networks.Discriminator for `cfg`."""
    r = cfg.resolved()
    return dict(
        c_dim=r.c_dim, img_resolution=r.resolution, img_channels=r.img_channels, architecture=r.d_architecture,
        channel_base=r.channel_base, channel_max=r.channel_max, num_fp16_res=r.num_fp16_res, conv_clamp=r.conv_clamp,
        epilogue_kwargs=dict(mbstd_group_size=r.mbstd_group_size, mbstd_num_channels=r.mbstd_num_channels),
    )


def build_generator(cfg: NetworkConfig) -> Generator:
    """A freshly initialised networks.Generator for `cfg`."""
    return Generator(**generator_kwargs(cfg))


def build_discriminator(cfg: NetworkConfig) -> Discriminator:
    """A freshly initialised networks.Discriminator for `cfg`."""
    return Discriminator(**discriminator_kwargs(cfg))


__all__ = ["NetworkConfig", "build_generator", "build_discriminator", "generator_kwargs", "discriminator_kwargs"]
