"""Atomic file writes: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np


def name_user_path(e: OSError, tmp: Path, path: Path) -> None:
    """Make an OSError raised while writing `tmp` (staged in place of `path`) name the user's path instead:
    a failed write (disk full) names no file at all, a failed rename names the temporary one."""
    if e.filename is None:
        e.filename = str(path)
    elif str(e.filename).startswith(str(tmp)):
        e.filename = str(path) + str(e.filename)[len(str(tmp)):]


def remove_stale(folder: str | os.PathLike, pattern: str) -> list[Path]:
    """Delete what killed runs left in `folder` matching the glob `pattern` (temporary files and folders)."""
    import shutil

    gone = []
    for p in Path(folder).glob(pattern):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        gone.append(p)
    return gone


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on error delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the mode open() would
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        if isinstance(e, OSError):
            name_user_path(e, tmp_path, path)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success rename it to `path` (which must not exist).

    What a killed run left beside `path` (`.NAME.*.partial`) is removed first."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path.parent, f".{path.name}.*.partial")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; give the folder the mode mkdir() would
    try:
        yield tmp
        os.rename(tmp, path)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):
            name_user_path(e, tmp, path)
        raise


def write_plain(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` without a rename (a file inside a staged folder); an OSError names the file."""
    try:
        Path(path).write_bytes(data)
    except OSError as e:
        if e.filename is None:  # a failed write() (disk full) names no file
            e.filename = str(path)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    """Serialise `obj` as JSON and write it to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=indent))


def save_torch_atomic(path: str | os.PathLike, obj: Any) -> None:
    """torch.save `obj` to `path` atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes_atomic(path, buf.getvalue())


def quantize(images: Any) -> Any:
    """Generator images (a float tensor in [-1, 1], any layout and device) → uint8 pixels as StyleGAN writes and
    scores them: x * 127.5 + 128, clamped to [0, 255], truncated (torch tensor methods only: io imports no torch)."""
    return (images.detach().float() * 127.5 + 128).clamp(0, 255).byte()


def encode_image(path: str | os.PathLike, image: np.ndarray) -> bytes:
    """An HxW or HxWx3 uint8 RGB array encoded as PNG/JPEG by the suffix of `path`."""
    import cv2

    arr = np.ascontiguousarray(image)
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, enc = cv2.imencode(Path(path).suffix or ".png", arr)
    if not ok:
        raise OSError(f"could not encode image for {path}")
    return enc.tobytes()


def write_image_atomic(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an HxW or HxWx3 uint8 RGB array as PNG/JPEG (by suffix) atomically."""
    write_bytes_atomic(path, encode_image(path, image))


def read_image_rgb(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array; raise DataError naming the file if unreadable."""
    import cv2

    from baggan.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    arr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if arr is None:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def read_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a single-channel label-map PNG as an HxW int64 array; raise DataError if unreadable."""
    import cv2

    from baggan.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: label map not found")
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DataError(f"{path}: not a readable label-map PNG")
    if arr.ndim == 3:
        arr = arr[..., 0]
    return arr.astype(np.int64)


class AllowListUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in `allowed` ((module, name) → the object to use, often a harmless
    stand-in); any other global or a persistent id stops the load with `refuse(reason)`, before anything runs."""

    def __init__(self, file: Any, allowed: dict[tuple[str, str], Any], refuse: Callable[[str], Exception],
                 never: str, encoding: str = "ASCII"):
        super().__init__(file, encoding=encoding)
        self.allowed, self.refuse, self.never = allowed, refuse, never

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle hook
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise self.refuse(f"the pickle names '{module}.{name}', which {self.never}") from None

    def persistent_load(self, pid: Any) -> Any:  # noqa: D401 - pickle hook
        raise self.refuse("unexpected persistent id in the pickle")


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (identifies the generator a segmenter was fitted on)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; raise DataError naming the file (and the position) if missing or malformed."""
    from baggan.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
