"""Map rosinality/stylegan2-pytorch checkpoints (`g_ema`, `g`, `d` state dicts) onto our modules.

The two implementations compute the same functions with differently shaped tensors:
rosinality keeps a leading batch axis on modulated weights ([1, O, I, k, k]), [1, C, 1, 1] ToRGB biases,
[1] noise strengths, [1, 1, R, R] noise buffers and a [1, C, 4, 4] constant; its mapping layers are
`style.1..n` (index 0 is the pixel norm), its D a `convs` Sequential of ResBlocks with Blur-then-stride
down-sampling (equal to our FIR down-sampling). Blur/up-sampling kernels are fixed [1, 3, 3, 1] buffers
and are not copied. Channel counts follow `channel_multiplier` (channel_base = 16384 x multiplier), capped at
the width of the 4x4 constant (512 in rosinality's code).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from baggan.errors import UserError
from baggan.stylegan2.config import NetworkConfig


def _need(sd: dict, key: str, where: str, path: Path) -> torch.Tensor:
    """sd[key] or a UserError naming the missing key."""
    if key not in sd:
        raise UserError(f"{path}: rosinality {where} state dict has no '{key}'")
    return sd[key]


def _num_mapping_layers(sd: dict) -> int:
    """Count of `style.N.weight` keys (the dense layers of the mapping network)."""
    return sum(1 for k in sd if re.fullmatch(r"style\.\d+\.weight", k))


def _channel_base(ch: int, res: int) -> int:
    """channel_base (16384 x channel_multiplier) implied by `ch` channels at resolution `res` (2 if undetermined)."""
    return 16384 * (round(ch * res / 16384) if res >= 64 else 2)


def config_from_state(g: dict | None, d: dict | None, path: Path) -> NetworkConfig:
    """The 'custom' NetworkConfig of a rosinality generator and/or discriminator state dict."""
    if g is not None:
        num_rgbs = sum(1 for k in g if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k))
        size = 2 ** (num_rgbs + 2)
        w_dim = int(_need(g, "style.1.weight", "G", path).shape[0])
        last = _need(g, "to_rgb1.conv.weight", "G", path) if num_rgbs == 0 else g[f"to_rgbs.{num_rgbs - 1}.conv.weight"]
        layers = _num_mapping_layers(g)
        base = _channel_base(int(last.shape[2]), size)
        cmax = int(_need(g, "input.input", "G", path).shape[1])
    else:
        first = _need(d, "convs.0.0.weight", "D", path)
        size = 2 ** (sum(1 for k in d if re.fullmatch(r"convs\.\d+\.conv1\.0\.weight", k)) + 2)
        w_dim, layers, base = 512, 8, _channel_base(int(first.shape[0]), size)
        cmax = int(_need(d, "final_conv.0.weight", "D", path).shape[0])
    return NetworkConfig(cfg="custom", resolution=size, img_channels=3, z_dim=w_dim, w_dim=w_dim, c_dim=0,
                         mapping_layers=layers, channel_base=base, channel_max=cmax, num_fp16_res=0, conv_clamp=None,
                         architecture="skip", d_architecture="resnet", mbstd_group_size=4, mbstd_num_channels=1)


def _styled_conv(src: str, dst: str, noise: str) -> dict[str, tuple[str, str | None]]:
    """Key map of one StyledConv (+ its noise buffer) onto a SynthesisLayer: src key → (our key, reshape)."""
    return {
        f"{src}.conv.weight": (f"{dst}.weight", "squeeze0"),
        f"{src}.conv.modulation.weight": (f"{dst}.affine.weight", None),
        f"{src}.conv.modulation.bias": (f"{dst}.affine.bias", None),
        f"{src}.noise.weight": (f"{dst}.noise_strength", "scalar"),
        f"{src}.activate.bias": (f"{dst}.bias", "flat"),
        noise: (f"{dst}.noise_const", "plane"),
    }


def _to_rgb(src: str, dst: str) -> dict[str, tuple[str, str | None]]:
    """Key map of one ToRGB onto a ToRGBLayer."""
    return {
        f"{src}.conv.weight": (f"{dst}.weight", "squeeze0"),
        f"{src}.conv.modulation.weight": (f"{dst}.affine.weight", None),
        f"{src}.conv.modulation.bias": (f"{dst}.affine.bias", None),
        f"{src}.bias": (f"{dst}.bias", "flat"),
    }


def generator_key_map(cfg: NetworkConfig) -> dict:
    """rosinality G key → (our key, reshape) for a generator of `cfg`."""
    keys = {f"style.{i + 1}.{p}": (f"mapping.fc{i}.{p}", None) for i in range(cfg.mapping_layers) for p in ("weight", "bias")}
    keys["input.input"] = ("synthesis.b4.const", "squeeze0")
    keys.update(_styled_conv("conv1", "synthesis.b4.conv1", "noises.noise_0"))
    keys.update(_to_rgb("to_rgb1", "synthesis.b4.torgb"))
    for k in range(int(math.log2(cfg.resolution)) - 2):
        res = 2 ** (k + 3)
        keys.update(_styled_conv(f"convs.{2 * k}", f"synthesis.b{res}.conv0", f"noises.noise_{2 * k + 1}"))
        keys.update(_styled_conv(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", f"noises.noise_{2 * k + 2}"))
        keys.update(_to_rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb"))
    return keys


def discriminator_key_map(cfg: NetworkConfig) -> dict:
    """rosinality D key → (our key, reshape) for a resnet discriminator of `cfg`."""
    size = cfg.resolution
    keys = {"convs.0.0.weight": (f"b{size}.fromrgb.weight", None), "convs.0.1.bias": (f"b{size}.fromrgb.bias", "flat")}
    for k in range(int(math.log2(size)) - 2):
        res, src = size // 2**k, f"convs.{k + 1}"
        keys.update({
            f"{src}.conv1.0.weight": (f"b{res}.conv0.weight", None),
            f"{src}.conv1.1.bias": (f"b{res}.conv0.bias", "flat"),
            f"{src}.conv2.1.weight": (f"b{res}.conv1.weight", None),
            f"{src}.conv2.2.bias": (f"b{res}.conv1.bias", "flat"),
            f"{src}.skip.1.weight": (f"b{res}.skip.weight", None),
        })
    keys.update({
        "final_conv.0.weight": ("b4.conv.weight", None),
        "final_conv.1.bias": ("b4.conv.bias", "flat"),
        "final_linear.0.weight": ("b4.fc.weight", None),
        "final_linear.0.bias": ("b4.fc.bias", None),
        "final_linear.1.weight": ("b4.out.weight", None),
        "final_linear.1.bias": ("b4.out.bias", None),
    })
    return keys


_RESHAPE = {
    None: lambda t: t,
    "squeeze0": lambda t: t.squeeze(0),
    "scalar": lambda t: t.reshape([]),
    "flat": lambda t: t.reshape(-1),
    "plane": lambda t: t.reshape(t.shape[-2], t.shape[-1]),
}


def convert_state(src: dict, key_map: dict, module: torch.nn.Module, where: str, path: Path) -> None:
    """Copy `src` into `module` through `key_map`; every parameter must be covered, shapes must agree."""
    ours = module.state_dict()
    for src_key, (dst_key, how) in key_map.items():
        t = _RESHAPE[how](_need(src, src_key, where, path).detach().float())
        if t.shape != ours[dst_key].shape:
            raise UserError(f"{path}: rosinality {where}.{src_key} has shape {list(t.shape)}, "
                            f"expected {list(ours[dst_key].shape)} for {dst_key}")
        ours[dst_key] = t
    covered = {dst for dst, _ in key_map.values()}
    missing = [n for n, _ in module.named_parameters() if n not in covered]
    if missing:
        raise UserError(f"{path}: rosinality {where} state dict does not cover {missing[0]}")
    module.load_state_dict(ours)


__all__ = ["config_from_state", "generator_key_map", "discriminator_key_map", "convert_state"]
