"""Read NVlabs stylegan2-ada-pytorch network pickles without their source code and without running anything.

Those pickles store each network as `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where
`meta` carries the class name, the embedded module source (which the official loader `exec`s) and the
module's `__dict__` (`_parameters`, `_buffers`, `_modules`, `_init_kwargs`, ...). Here a restricted
unpickler turns every such record into a plain `Record`, never touching `module_src`; tensor storages
(nested torch.save payloads) are read with `torch.load(weights_only=True)`; any global outside a short
allow-list stops the load with one line naming it. Records are then mapped onto our own modules.
"""

from __future__ import annotations

import collections
import io
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baggan.errors import UserError
from baggan.io import AllowListUnpickler
from hfc.safe_load import first_sentence, load_failure
from baggan.stylegan2.config import NetworkConfig


@dataclass
class Record:
    """A persistent object of the pickle: its class name and its `__dict__`, nothing executed."""

    class_name: str
    state: dict


class _EasyDict(dict):
    """Stand-in for dnnlib.util.EasyDict (a dict subclass); behaves as a plain dict."""


def _reconstruct_persistent_obj(meta: Any) -> Record:
    """Stand-in for torch_utils.persistence._reconstruct_persistent_obj: keep class name + state, drop the source."""
    if not (isinstance(meta, dict) and meta.get("type") == "class" and isinstance(meta.get("class_name"), str)
            and isinstance(meta.get("state"), dict)):
        raise pickle.UnpicklingError("malformed persistent-object record")
    return Record(meta["class_name"], dict(meta["state"]))


def _load_from_bytes(data: bytes) -> Any:
    """Stand-in for torch.storage._load_from_bytes: the nested torch.save payload, read with weights_only=True."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage deprecation notice
        return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_scalar(dtype: Any, data: bytes) -> Any:
    """Stand-in for numpy's scalar reconstructor, for plain (non-object) dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("unsupported numpy scalar")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


def read_official_pickle(path: str | Path) -> dict:
    """Unpickle an official network pickle safely: its top-level dict with networks as `Record`s."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = AllowListUnpickler(f, _ALLOWED, lambda reason: UserError(f"{path}: refused to load: {reason}"),
                                      "a StyleGAN2-ADA network pickle never needs (nothing from the file was "
                                      "run)").load()
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file for the user
        reason = load_failure(e)  # a nested torch payload may be refused
        raise UserError(f"{path}: {reason}" if reason.startswith("refused") else
                        f"{path}: not a readable network file, neither a torch file nor a network pickle "
                        f"({first_sentence(e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a dict of networks at the top of the pickle, got {type(data).__name__}")
    return data


# ----------------------------------------------------------------------------------------------------
# Records → our modules.


def flat_state(record: Record, prefix: str = "") -> dict[str, torch.Tensor]:
    """Dotted-name tensors of a module record (parameters and persistent buffers, recursively)."""
    out: dict[str, torch.Tensor] = {}
    skip = set(record.state.get("_non_persistent_buffers_set") or ())
    for key in ("_parameters", "_buffers"):
        for name, t in (record.state.get(key) or {}).items():
            if t is not None and name not in skip:
                out[prefix + name] = t.detach().clone() if isinstance(t, torch.Tensor) else t
    for name, child in (record.state.get("_modules") or {}).items():
        if isinstance(child, Record):
            out.update(flat_state(child, f"{prefix}{name}."))
    return out


def _init_kwargs(record: Record, positional: list[str]) -> dict:
    """The constructor arguments the record was built with, positional ones named."""
    args = list(record.state.get("_init_args") or ())
    kwargs = dict(record.state.get("_init_kwargs") or {})
    kwargs.update(zip(positional, args))
    return kwargs


def _plain(v: Any) -> Any:
    """numpy scalars → Python numbers, dict subclasses → dicts, tuples → lists (for comparisons)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _take(kwargs: dict, where: str, path: Path, supported: dict[str, Any], fixed: dict[str, Any],
          ignored: tuple[str, ...] = ()) -> dict:
    """Supported kwargs (defaults filled); `fixed` ones must keep their only supported value; others refused."""
    out = dict(supported)
    for key, value in kwargs.items():
        value = _plain(value)
        if key in supported:
            out[key] = value
        elif key in fixed:
            if value != fixed[key]:
                raise UserError(f"{path}: {where}.{key}={value!r} is not supported (only {fixed[key]!r})")
        elif key not in ignored:
            raise UserError(f"{path}: {where}.{key} is not supported by baggan's networks")
    return out


_G_POSITIONAL = ["z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs"]
_D_POSITIONAL = ["c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                 "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs"]
_FIR = [1, 3, 3, 1]


def config_from_records(g: Record | None, d: Record | None, path: Path) -> NetworkConfig:
    """A 'custom' NetworkConfig equal to the constructor arguments recorded for G and/or D."""
    fields: dict[str, Any] = {}
    if g is not None:
        kw = _take(_init_kwargs(g, _G_POSITIONAL), "G", path,
                   dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=None, img_channels=3, mapping_kwargs={},
                        synthesis_kwargs={}), {})
        mk = _take(kw["mapping_kwargs"], "G.mapping_kwargs", path,
                   dict(num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995),
                   dict(embed_features=None, layer_features=None, activation="lrelu"))
        sk = _take(kw["synthesis_kwargs"], "G.synthesis_kwargs", path,
                   dict(channel_base=32768, channel_max=512, num_fp16_res=0, conv_clamp=None, architecture="skip"),
                   dict(resample_filter=_FIR, use_noise=True, activation="lrelu", kernel_size=3),
                   ignored=("fp16_channels_last",))
        fields.update(z_dim=kw["z_dim"], c_dim=kw["c_dim"], w_dim=kw["w_dim"], resolution=kw["img_resolution"],
                      img_channels=kw["img_channels"], mapping_layers=mk["num_layers"],
                      mapping_lr_multiplier=float(mk["lr_multiplier"]), w_avg_beta=float(mk["w_avg_beta"]),
                      channel_base=sk["channel_base"], channel_max=sk["channel_max"],
                      num_fp16_res=sk["num_fp16_res"], conv_clamp=sk["conv_clamp"], architecture=sk["architecture"])
    if d is not None:
        kw = _take(_init_kwargs(d, _D_POSITIONAL), "D", path,
                   dict(c_dim=0, img_resolution=None, img_channels=3, architecture="resnet", channel_base=32768,
                        channel_max=512, num_fp16_res=0, conv_clamp=None, block_kwargs={}, epilogue_kwargs={}),
                   dict(cmap_dim=None, mapping_kwargs={}))
        _take(kw["block_kwargs"], "D.block_kwargs", path, {}, dict(activation="lrelu", resample_filter=_FIR),
              ignored=("fp16_channels_last", "freeze_layers"))
        ek = _take(kw["epilogue_kwargs"], "D.epilogue_kwargs", path,
                   dict(mbstd_group_size=4, mbstd_num_channels=1), dict(activation="lrelu"))
        shared = dict(c_dim=kw["c_dim"], resolution=kw["img_resolution"], img_channels=kw["img_channels"],
                      channel_base=kw["channel_base"], channel_max=kw["channel_max"],
                      num_fp16_res=kw["num_fp16_res"], conv_clamp=kw["conv_clamp"])
        for key, value in shared.items():
            if key in fields and fields[key] != value:
                raise UserError(f"{path}: G and D disagree on {key} ({fields[key]!r} vs {value!r}); "
                                "baggan's NetworkConfig needs them equal")
            fields[key] = value
        group = ek["mbstd_group_size"]
        fields.update(d_architecture=kw["architecture"], mbstd_group_size=0 if group is None else group,
                      mbstd_num_channels=ek["mbstd_num_channels"])
    fields.setdefault("d_architecture", "resnet")
    fields.setdefault("mbstd_group_size", 4)
    if fields.get("conv_clamp") is not None:
        fields["conv_clamp"] = float(fields["conv_clamp"])
    try:
        return NetworkConfig(cfg="custom", **fields)
    except (TypeError, ValueError) as e:
        raise UserError(f"{path}: unsupported network arguments: {e}") from None


__all__ = ["Record", "read_official_pickle", "flat_state", "config_from_records"]
