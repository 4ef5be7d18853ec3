"""Reading one DEBISim run folder safely: its layout, FITS arrays (astropy) and the pickled metadata.

Layout (docs/datasets.md, DEBISim section): SIM_DIR/simulation_NNN/ with `sl_metadata.pyc` (a pickle of
{str(label): object dict}), `ground_truth/gt_label_image.fits.gz` (int16 H x W x Z), `images/` with
`bag_{top,side}_view_spec{1,2}.fits.gz` (two spectra) or `bag_{top,side}_view.fits.gz` (one), or CT
reconstructions `recon_image_{1,2}.fits.gz`. Every failure is a DataError naming the file.
"""

from __future__ import annotations

import codecs
import gzip
import pickle
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from baggan.errors import DataError, UserError
from baggan.io import AllowListUnpickler

METADATA = "sl_metadata.pyc"
LABELS = "ground_truth/gt_label_image.fits.gz"
BAG_DIR = re.compile(r"simulation_(\d{3,})$")
# Target materials (DEBISim's include/mu/targets): an object of one of these is a threat.
TARGETS = ("H2O2", "ethanol") + tuple(f"saline{c:03d}" for c in (35, 50, 60, 70, 80, 90, 100, 110, 120, 130,
                                                                   140, 150))
# Labels below FIRST_OBJECT are the scanner and the bag: 1 belt/table, 2 tray, 3 bag shell.
FIRST_OBJECT = 4


def find_bags(root: str | Path) -> list[Path]:
    """The bag folders simulation_NNN of a run, in number order; UserError if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: run folder not found")
    bags = [p for p in root.iterdir() if p.is_dir() and BAG_DIR.match(p.name)]
    if not bags:
        raise UserError(f"{root}: no DEBISim bag folders (simulation_001, simulation_002, ...) in it")
    return sorted(bags, key=lambda p: int(BAG_DIR.match(p.name).group(1)))


_BITPIX = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}
_BLOCK = 2880  # FITS files are made of 2880-byte blocks


def _primary_image(f: Any, path: Path) -> np.ndarray | None:
    """The primary HDU's unscaled image read from an open (possibly gzip) file straight into one native-order
    array, or None when the primary HDU holds no plain image (then astropy decodes the file). One allocation,
    no copies: astropy's reader makes three, which costs seconds at 600^3."""
    from astropy.io import fits

    head = b""
    while True:
        block = f.read(_BLOCK)
        if len(block) < _BLOCK:
            raise DataError(f"{path}: truncated FITS file (the header is cut short)")
        head += block
        if any(block[k:k + 8] == b"END     " for k in range(0, _BLOCK, 80)):
            break
    hdr = fits.Header.fromstring(head.decode("ascii", "replace"))
    naxis = int(hdr.get("NAXIS", 0))
    if not naxis or hdr.get("BSCALE", 1) != 1 or hdr.get("BZERO", 0) != 0 or hdr.get("BITPIX") not in _BITPIX:
        return None
    shape = tuple(int(hdr[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
    data = np.empty(shape, np.dtype(_BITPIX[hdr["BITPIX"]]))
    view = memoryview(data.reshape(-1).view(np.uint8))
    got = 0
    while got < data.nbytes:
        n = f.readinto(view[got:])
        if not n:
            raise DataError(f"{path}: truncated FITS file (the data of a {'x'.join(map(str, shape))} array is cut "
                            "short)")
        got += n
    return data.byteswap(inplace=True).view(data.dtype.newbyteorder("=")) if data.dtype.byteorder == ">" else data


def read_fits(path: str | Path) -> np.ndarray:
    """The first HDU holding data of a FITS file (plain, gzip-wrapped or tile-compressed), in native byte order."""
    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, "rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with (gzip.GzipFile(fileobj=raw) if gz else raw) as f:
                data = _primary_image(f, path)
        if data is not None:
            return data
        with fits.open(path, memmap=False) as hdus:  # extensions (tile compression), scaled data
            for hdu in hdus:
                if hdu.data is not None and hdu.data.size:
                    data = np.asarray(hdu.data)
                    return data.astype(data.dtype.newbyteorder("="), copy=False)
    except (OSError, ValueError, EOFError, TypeError, IndexError, KeyError, zlib.error) as e:
        raise DataError(f"{path}: unreadable FITS file ({type(e).__name__}: {e})".replace("\n", " ")) from None
    raise DataError(f"{path}: FITS file holds no data")


# --------------------------------------------------------------------------------------- restricted unpickling

def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's array reconstructor, for plain ndarrays only (the state is set by BUILD)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError("only plain numpy arrays are allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _scalar(dtype: Any, data: Any = None) -> Any:
    """numpy's scalar reconstructor (numbers, bools, numpy.str_/bytes_) for non-object dtypes."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("only numpy scalars of plain dtypes are allowed")
    if isinstance(data, str):  # protocol 0-2 pickles from Python 2 hold bytes as latin-1 text
        data = data.encode("latin1")
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("malformed numpy scalar")
    return np.frombuffer(bytes(data), dtype=dtype, count=1)[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 array reconstructor, for plain dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise pickle.UnpicklingError("malformed numpy array")
    return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order).copy()


def _encode(text: Any, encoding: str = "utf-8") -> bytes:
    """codecs.encode as protocol-2 pickles use it for bytes (str -> bytes only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "ascii"):
        raise pickle.UnpicklingError("only text-to-bytes encoding is allowed")
    return codecs.encode(text, encoding)


_NUMPY = {"_reconstruct": _reconstruct, "scalar": _scalar}
_ALLOWED: dict[tuple[str, str], Any] = {
    **{(mod, name): fn for mod in ("numpy.core.multiarray", "numpy._core.multiarray") for name, fn in _NUMPY.items()},
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode,
    **{("builtins", t.__name__): t for t in (set, frozenset, complex, slice, range, bytearray, list, dict, tuple)},
    ("__builtin__", "set"): set,  # Python 2 pickles
}


def load_pickle(path: str | Path) -> Any:
    """Unpickle a DEBISim metadata file through the restricted unpickler (DataError naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, "rb") as f:
            return AllowListUnpickler(f, _ALLOWED, lambda reason: DataError(f"{path}: refused to load: {reason}"),
                                      "DEBISim metadata never holds (only builtins and numpy; nothing from the file "
                                      "was run)", encoding="latin1").load()
    except DataError:
        raise
    except Exception as e:  # a malformed pickle can fail in many ways; none of them runs code
        raise DataError(f"{path}: unreadable metadata pickle ({type(e).__name__}: {e})".replace("\n", " ")) from None


@dataclass(frozen=True)
class BagObject:
    """One labelled region of a bag: an object or the liquid filling a container."""

    label: int
    material: str
    kind: str  # "object" or "liquid"
    shape: str  # DEBISim shape code of the object (its container's for a liquid)
    mu_curve: np.ndarray | None  # linear attenuation per mm on 10..160 keV, if recorded

    @property
    def threat(self) -> bool:
        """Whether the material is a DEBISim target material."""
        return self.material in TARGETS


def _mu(value: Any) -> np.ndarray | None:
    """A 151-value attenuation curve as float64, or None when absent or malformed."""
    if value is None:
        return None
    arr = np.asarray(value)
    return arr.astype(np.float64) if arr.ndim == 1 and arr.dtype.kind in "fiu" and len(arr) else None


def _label(value: Any, where: str) -> int:
    """A label id as int; DataError naming the record otherwise."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DataError(f"{where} {value!r} is not an integer") from None


def parse_metadata(doc: Any, path: Path) -> dict[int, BagObject]:
    """The objects and liquids of a metadata dict {str(label): object dict}, by label id."""
    if not isinstance(doc, dict):
        raise DataError(f"{path}: metadata is not a dict of objects (got {type(doc).__name__})")
    out: dict[int, BagObject] = {}
    for key, obj in doc.items():
        where = f"{path}: object {key!r}"
        if not isinstance(obj, dict) or "label" not in obj or "material" not in obj:
            raise DataError(f"{where}: not an object dict with 'label' and 'material'")
        label = _label(obj["label"], f"{where}: label")
        out[label] = BagObject(label, str(obj["material"]), "object", str(obj.get("shape", "?")),
                               _mu(obj.get("mu_curve")))
        if obj.get("lqd_flag"):
            lqd = obj.get("lqd_param")
            if not isinstance(lqd, dict) or "lqd_label" not in lqd or "lqd_material" not in lqd:
                raise DataError(f"{where}: liquid container without lqd_param['lqd_label'/'lqd_material']")
            lqd_label = _label(lqd["lqd_label"], f"{where}: liquid label")
            out[lqd_label] = BagObject(lqd_label, str(lqd["lqd_material"]), "liquid", out[label].shape,
                                       _mu(lqd.get("mu_curve")))
    return out


def read_metadata(bag: Path) -> dict[int, BagObject]:
    """The objects of one bag folder (restricted unpickling of sl_metadata.pyc)."""
    path = bag / METADATA
    return parse_metadata(load_pickle(path), path)


def view_files(bag: Path, name: str) -> list[Path]:
    """The FITS files of one view file name ('top' or 'side'): [spec1, spec2] when the bag has both spectra,
    else [the single-spectrum file]; DataError naming the missing file."""
    images = bag / "images"
    dual = [images / f"bag_{name}_view_spec{s}.fits.gz" for s in (1, 2)]
    if any(p.exists() for p in dual):
        for p in dual:
            if not p.is_file():
                raise DataError(f"{p}: file not found (the bag has the other spectrum's view)")
        return dual
    single = images / f"bag_{name}_view.fits.gz"
    if not single.is_file():
        raise DataError(f"{dual[0]}: file not found (nor {single.name}: not a two-view bag)")
    return [single]


def read_labels(bag: Path) -> np.ndarray:
    """The bag's 3-D label volume (H x W x Z integers)."""
    path = bag / LABELS
    vol = read_fits(path)
    if vol.ndim != 3 or vol.dtype.kind not in "iu":
        raise DataError(f"{path}: label volume must be a 3-D integer array, got {vol.ndim}-D {vol.dtype}")
    return vol


def read_view(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """One radiograph (2-D float32 line integrals), checked finite and, if given, of `shape`."""
    img = read_fits(path)
    if img.ndim != 2 or img.dtype.kind not in "fiu":
        raise DataError(f"{path}: a view must be a 2-D numeric array, got {img.ndim}-D {img.dtype}")
    if shape is not None and img.shape != shape:
        raise DataError(f"{path}: view is {img.shape[0]}x{img.shape[1]}, expected {shape[0]}x{shape[1]}")
    img = img.astype(np.float32, copy=False)
    if not np.isfinite(img).all():
        raise DataError(f"{path}: view holds NaN or infinite values")
    return img


__all__ = ["METADATA", "LABELS", "TARGETS", "FIRST_OBJECT", "BagObject", "find_bags", "read_fits", "load_pickle",
           "parse_metadata", "read_metadata", "view_files", "read_labels", "read_view"]
