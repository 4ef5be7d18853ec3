"""Network files: our own format (plain state dicts + config, torch.load(weights_only=True)), official
NVlabs stylegan2-ada-pytorch pickles (see official.py) and rosinality checkpoints (see rosinality.py).

`load_network(path)` reads any of them into our modules: {'G', 'D', 'G_ema'} as present in the file.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from baggan.config import from_dict, to_dict
from baggan.errors import ConfigError, UserError
from baggan.io import save_torch_atomic
from baggan.stylegan2 import official, rosinality
from baggan.stylegan2.config import NetworkConfig, build_discriminator, build_generator
from hfc.safe_load import load_weights_only

FORMAT = "baggan.stylegan2.network/1"
NET_NAMES = ("G", "D", "G_ema")
Source = Literal["baggan", "nvlabs", "rosinality"]


@dataclass
class NetworkFile:
    """What a network file holds: our modules, their config, extra payload and the format it came in."""

    nets: dict[str, nn.Module]
    cfg: NetworkConfig
    source: Source
    extra: dict[str, Any] = field(default_factory=dict)


def save_network(path: str | Path, nets: dict[str, nn.Module], cfg: NetworkConfig, extra: dict | None = None) -> None:
    """Write `nets` (any of 'G', 'D', 'G_ema') as plain CPU state dicts + `cfg` (+ `extra`), atomically."""
    unknown = sorted(set(nets) - set(NET_NAMES))
    if unknown:
        raise ValueError(f"save_network: unknown network name {unknown[0]!r} (allowed: {', '.join(NET_NAMES)})")
    payload = {
        "format": FORMAT,
        "config": to_dict(cfg),
        "nets": {name: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()} for name, m in nets.items()},
        "extra": dict(extra or {}),
    }
    save_torch_atomic(path, payload)


def _build(name: str, cfg: NetworkConfig) -> nn.Module:
    """A fresh module for network `name` ('G'/'G_ema' → Generator, 'D' → Discriminator)."""
    return build_discriminator(cfg) if name == "D" else build_generator(cfg)


def _load_state(module: nn.Module, state: dict, what: str, path: Path) -> None:
    """load_state_dict(strict) with a one-line UserError naming the first mismatch."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e))
        raise UserError(f"{path}: {what} does not fit the network it describes: {first}") from None


def _read_ours(payload: dict, path: Path) -> NetworkFile:
    """Our format → NetworkFile."""
    try:
        cfg = from_dict(NetworkConfig, payload.get("config"))
    except ConfigError as e:
        raise UserError(f"{path}: bad network config: {e}") from None
    nets = {}
    for name, state in (payload.get("nets") or {}).items():
        if name not in NET_NAMES:
            raise UserError(f"{path}: unknown network {name!r} in file")
        nets[name] = _build(name, cfg)
        _load_state(nets[name], state, name, path)
    return NetworkFile(nets, cfg, "baggan", dict(payload.get("extra") or {}))


def _read_nvlabs(path: Path) -> NetworkFile:
    """Official pickle → NetworkFile (restricted unpickling, records mapped onto our modules)."""
    data = official.read_official_pickle(path)
    records = {k: v for k, v in data.items() if k in NET_NAMES and isinstance(v, official.Record)}
    if not records:
        raise UserError(f"{path}: the pickle holds none of {', '.join(NET_NAMES)}")
    g = records.get("G_ema") or records.get("G")
    cfg = official.config_from_records(g, records.get("D"), path)
    nets = {}
    for name, rec in records.items():
        expected = "Discriminator" if name == "D" else "Generator"
        if rec.class_name != expected:
            raise UserError(f"{path}: {name} is a {rec.class_name}, expected a {expected}")
        nets[name] = _build(name, cfg)
        _load_state(nets[name], official.flat_state(rec), name, path)
    extra = {"training_set_kwargs": dict(data["training_set_kwargs"])} if isinstance(data.get("training_set_kwargs"), dict) else {}
    return NetworkFile(nets, cfg, "nvlabs", extra)


def _estimate_w_avg(G: nn.Module, n: int = 4096, seed: int = 0) -> torch.Tensor:
    """Mean of w over `n` latents from `seed` (for rosinality files without 'latent_avg')."""
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z, None)[:, 0].mean(dim=0)


def _read_rosinality(payload: dict, path: Path) -> NetworkFile:
    """rosinality checkpoint → NetworkFile (keys 'g_ema', 'g', 'd'; 'latent_avg' → mapping.w_avg)."""
    names = {"g_ema": "G_ema", "g": "G", "d": "D"}
    states = {names[k]: v for k, v in payload.items() if k in names and isinstance(v, dict)}
    g = states.get("G_ema") or states.get("G")
    cfg = rosinality.config_from_state(g, states.get("D"), path)
    nets = {}
    for name, state in states.items():
        module = _build(name, cfg)
        if name == "D":
            rosinality.convert_state(state, rosinality.discriminator_key_map(cfg), module, "d", path)
        else:
            rosinality.convert_state(state, rosinality.generator_key_map(cfg), module, name.lower(), path)
            latent_avg = payload.get("latent_avg")
            module.mapping.w_avg.copy_(latent_avg.reshape(-1) if isinstance(latent_avg, torch.Tensor)
                                       else _estimate_w_avg(module))
        nets[name] = module
    return NetworkFile(nets, cfg, "rosinality", {})


def load_network_file(path: str | Path, device: str | torch.device = "cpu") -> NetworkFile:
    """Read any supported network file (ours, NVlabs pickle, rosinality .pt); modules in eval mode on `device`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: network file not found")
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"PK") or head.startswith(b"\x80\x02"):  # torch.save: zip, or legacy (pickle protocol 2)
        try:
            with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
                warnings.simplefilter("ignore", UserWarning)
                payload = load_weights_only(path)
        except ValueError as e:
            raise UserError(f"{path}: {e}") from None
        if isinstance(payload, dict) and payload.get("format") == FORMAT:
            result = _read_ours(payload, path)
        elif isinstance(payload, dict) and any(k in payload for k in ("g_ema", "g", "d")):
            result = _read_rosinality(payload, path)
        else:
            raise UserError(f"{path}: neither a baggan network file nor a rosinality checkpoint ('g_ema' missing)")
    else:
        result = _read_nvlabs(path)
    for m in result.nets.values():
        m.to(device).eval()
    return result


def load_network(path: str | Path, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """{'G', 'D', 'G_ema'} (as present) from our file, an official NVlabs pickle or a rosinality checkpoint."""
    return load_network_file(path, device).nets


__all__ = ["FORMAT", "NetworkFile", "save_network", "load_network", "load_network_file"]
