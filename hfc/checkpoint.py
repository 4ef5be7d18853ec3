"""Saving and loading hfc modules (encoders, segmenters, baselines) and training checkpoints.

Files are written atomically (temporary file + rename) and read with torch.load(weights_only=True):
they hold only tensors, numbers, strings, lists and dicts. A module file is
{"format": "hfc-module", "kind", "spec" (constructor kwargs), "state_dict", "meta"}; `kind` names a
class registered with `@register`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, TypeVar

import torch
from torch import nn

from hfc.errors import HFCError
from hfc.safe_load import load_weights_only

MODULE_FORMAT, CHECKPOINT_FORMAT = "hfc-module", "hfc-checkpoint"
_KINDS: dict[str, type] = {}
M = TypeVar("M", bound=type)


def register(cls: M) -> M:
    """Class decorator: make `cls` (with `kind` and `spec()`) loadable by `load_module`."""
    assert cls.kind and cls.kind not in _KINDS, f"duplicate or empty kind {cls.kind!r}"
    _KINDS[cls.kind] = cls
    return cls


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success flush it to disk (fsync) and rename it to `path`, on error
    delete it (hfc's one atomic writer: it never imports baggan.io)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """torch.save `obj` to `path` atomically."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def load_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """torch.load(weights_only=True); HFCError naming the file if it is missing or not such a file."""
    path = Path(path)
    if not path.is_file():
        raise HFCError(f"{path}: file not found")
    try:
        return load_weights_only(path, map_location)
    except ValueError as e:
        raise HFCError(f"{path}: {e}") from None


def module_record(module: nn.Module, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict a module file holds (also embedded in training checkpoints)."""
    return {
        "format": MODULE_FORMAT,
        "kind": module.kind,
        "spec": module.spec(),
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "meta": meta or {},
    }


def save_module(path: str | os.PathLike, module: nn.Module, meta: dict[str, Any] | None = None) -> None:
    """Write a registered module (encoder, segmenter, baseline) to `path`, atomically."""
    save_atomic(module_record(module, meta), path)


def _import_kinds() -> None:
    """Import the modules that register kinds (lazily: they import this module)."""
    import hfc.baselines  # noqa: F401
    import hfc.clusterers.kmeans  # noqa: F401
    import hfc.segmenters  # noqa: F401
    import hfc.swav  # noqa: F401


def module_from_record(record: Any, source: str = "record") -> nn.Module:
    """Rebuild a module from `module_record` output."""
    _import_kinds()
    if not isinstance(record, dict) or record.get("format") != MODULE_FORMAT:
        raise HFCError(f"{source}: not an hfc module file (expected format {MODULE_FORMAT!r})")
    cls = _KINDS.get(record.get("kind"))
    if cls is None:
        raise HFCError(f"{source}: unknown module kind {record.get('kind')!r} (known: {', '.join(sorted(_KINDS))})")
    module = cls(**record["spec"])
    module.load_state_dict(record["state_dict"])
    module.meta = record.get("meta", {})
    return module


def load_module(
    path: str | os.PathLike, map_location: str | torch.device = "cpu", expect: type | None = None
) -> nn.Module:
    """Load a module file written by `save_module` (or the encoder of an HFC training checkpoint)."""
    record = load_weights(path, map_location)
    if isinstance(record, dict) and record.get("format") == CHECKPOINT_FORMAT:
        record = record["encoder"]
    module = module_from_record(record, str(path)).to(map_location).eval()  # loaded for inference
    if expect is not None and not isinstance(module, expect):
        raise HFCError(f"{path}: holds a {type(module).__name__}, expected a {expect.__name__}")
    return module


def check_layers(layer_channels: tuple[int, ...], gen_channels: tuple[int, ...], what: str) -> None:
    """HFCError unless a module's expected hidden layers match the generator's."""
    if tuple(layer_channels) != tuple(gen_channels):
        raise HFCError(
            f"{what} was built for hidden layers with channels {list(layer_channels)} "
            f"(C_hidden = {sum(layer_channels)}), but this generator has {list(gen_channels)} "
            f"(C_hidden = {sum(gen_channels)}): use the generator it was trained with"
        )

