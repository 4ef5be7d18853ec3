"""Masks from the annotation tools people use → a category-id map aligned with one sample.

Formats, told apart by content (not by suffix):

* **id PNG**: single-channel (or grey) PNG whose pixel values are category ids (0 background, 255 not annotated);
* **palette PNG**: a colour PNG painted in the label set's palette (`baggan.data.xray.preview.PALETTE`,
  colour k-1 for category k, as every picture of the toolkit shows them), black = background,
  white = not annotated; any other colour is refused, naming it and a pixel that has it;
* **LabelMe JSON** (`shapes`: polygon, rectangle, circle, as LabelMe's own `shape_to_mask` rasterises them
  with PIL; later shapes paint over earlier ones; `imagePath`, `imageHeight`, `imageWidth`);
* **COCO JSON** (e.g. CVAT's "COCO 1.0" export: `images`, `annotations` with polygons, or RLE, compressed or
  not, `categories`; annotations painted in file order).

Category names are matched to the label set with case, spaces, `_` and `-` forgiven; LabelMe's
`_background_` / `__ignore__` (and "background", "not annotated") name 0 and 255. An unknown name, a mask of
another size than the generator's, or a file that refers to another image than the sample's is a DataError
naming it (one line; exit 2 on the command line).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baggan.data.labelsets import LabelSet
from baggan.errors import DataError

IGNORE = 255  # not annotated
BACKGROUND_NAMES = ("background", "_background_", "bg")
IGNORE_NAMES = ("__ignore__", "ignore", "not annotated", "unannotated", "void")


@dataclass(frozen=True)
class SampleRef:
    """The scan an annotation must belong to: an image file name, or a seed (file names like seed0005.png)."""

    name: str | None = None
    seed: int | None = None

    def matches(self, ref: str) -> bool:
        """Whether an annotation file's image reference (a path or file name) names this sample."""
        base = Path(str(ref).replace("\\", "/")).name
        if self.name is not None and base == Path(self.name).name:
            return True
        if self.seed is not None:
            m = re.search(r"seed0*(\d+)", base)
            return m is not None and int(m.group(1)) == self.seed
        return self.name is None

    def __str__(self) -> str:
        return self.name if self.name is not None else f"seed{self.seed:04d}.png" if self.seed is not None else "?"


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def category_id(label_set: LabelSet, name: str, where: str) -> int:
    """Category id of a name from a tool (case, spaces, _ and - forgiven; background 0, not annotated 255)."""
    key = _norm(name)
    if key in {_norm(n) for n in BACKGROUND_NAMES}:
        return 0
    if key in {_norm(n) for n in IGNORE_NAMES}:
        return IGNORE
    for i, known in enumerate(label_set.names):
        if _norm(known) == key:
            return i + 1
    raise DataError(f"{where}: unknown category {name!r} (label set {label_set.name}: {', '.join(label_set.names)})")


def palette_colours(label_set: LabelSet) -> dict[tuple[int, int, int], int]:
    """RGB colour → category id of a palette PNG (black background, white not annotated)."""
    from baggan.data.xray.preview import PALETTE

    colours = {(0, 0, 0): 0, (255, 255, 255): IGNORE}
    for cid in range(1, label_set.num_classes):
        colours.setdefault(tuple(int(v) for v in PALETTE[(cid - 1) % len(PALETTE)]), cid)
    return colours


# ----------------------------------------------------------------------------------------------------
# PNGs.


def _read_png(data: bytes, where: str, label_set: LabelSet) -> np.ndarray:
    """An id PNG (grey values are ids) or a palette PNG (colours of `palette_colours`) → id map."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DataError(f"{where}: not a readable PNG")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)  # an alpha channel is left out
        if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
            return _from_palette(arr, where, label_set)
        arr = arr[..., 0]
    return arr.astype(np.int64)


def _from_palette(rgb: np.ndarray, where: str, label_set: LabelSet) -> np.ndarray:
    """Palette-coloured RGB → id map; DataError naming the first colour that is no category's."""
    colours = palette_colours(label_set)
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    values, inverse = np.unique(packed, return_inverse=True)
    ids = np.empty(len(values), np.int64)
    for k, v in enumerate(values.tolist()):
        colour = (v >> 16, (v >> 8) & 255, v & 255)
        if colour not in colours:
            y, x = np.argwhere(packed == v)[0]
            raise DataError(f"{where}: colour RGB{colour} at pixel ({x}, {y}) is no category of the {label_set.name} "
                            "palette (nor black = background, white = not annotated)")
        ids[k] = colours[colour]
    return ids[inverse.reshape(packed.shape)]


# ----------------------------------------------------------------------------------------------------
# LabelMe.


def _labelme(doc: dict, where: str, label_set: LabelSet, sample: SampleRef | None) -> np.ndarray:
    """LabelMe document → id map, each shape rasterised as LabelMe's shape_to_mask does (PIL, inclusive edges)."""
    from PIL import Image, ImageDraw

    try:
        h, w = int(doc["imageHeight"]), int(doc["imageWidth"])
        shapes = list(doc["shapes"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{where}: a LabelMe file needs shapes, imageHeight and imageWidth") from None
    ref = doc.get("imagePath")
    if sample is not None and ref and not sample.matches(ref):
        raise DataError(f"{where}: annotates image {ref!r}, not the sample {sample}")
    out = np.zeros((h, w), np.int64)
    for k, shape in enumerate(shapes):
        at = f"{where}: shape {k}"
        try:
            label, kind = shape["label"], shape.get("shape_type") or "polygon"
            points = [(float(x), float(y)) for x, y in shape["points"]]
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{at}: needs a label and points [[x, y], ...]") from None
        cid = category_id(label_set, label, at)
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        if kind == "polygon" and len(points) >= 3:
            draw.polygon(points, outline=1, fill=1)
        elif kind == "rectangle" and len(points) == 2:
            (x0, y0), (x1, y1) = points
            draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
        elif kind == "circle" and len(points) == 2:
            (cx, cy), (px, py) = points
            r = float(np.hypot(cx - px, cy - py))
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
        else:
            raise DataError(f"{at}: shape type {kind!r} with {len(points)} points has no area "
                            "(polygon, rectangle and circle are read)")
        out[np.asarray(canvas, bool)] = cid
    return out


# ----------------------------------------------------------------------------------------------------
# COCO (CVAT's COCO 1.0 export, and any other).


def _coco(doc: dict, where: str, label_set: LabelSet, sample: SampleRef | None) -> np.ndarray:
    """COCO document → id map of the one image that is the sample's (polygons and RLE, in file order)."""
    from baggan.data.pidray import decode_segmentation

    try:
        images = list(doc["images"])
        names = {int(c["id"]): str(c["name"]) for c in doc["categories"]}
        anns = list(doc["annotations"])
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{where}: a COCO file needs images, annotations and categories (with id and name)") from None
    if not images:
        raise DataError(f"{where}: holds no image")
    picked = [im for im in images if sample is None or sample.matches(str(im.get("file_name", "")))]
    if not picked:
        raise DataError(f"{where}: none of its images ({', '.join(str(im.get('file_name')) for im in images[:5])}) "
                        f"is the sample {sample}")
    if len(picked) > 1:
        raise DataError(f"{where}: holds {len(picked)} images that could be the sample "
                        f"({', '.join(str(im.get('file_name')) for im in picked[:5])}); export only its own")
    image = picked[0]
    try:
        h, w, image_id = int(image["height"]), int(image["width"]), image["id"]
    except (KeyError, TypeError, ValueError):
        raise DataError(f"{where}: image record {image!r} needs id, width and height") from None
    out = np.zeros((h, w), np.int64)
    for ann in anns:
        if ann.get("image_id") != image_id:
            continue
        at = f"{where}: annotation {ann.get('id')}"
        cat = ann.get("category_id")
        if cat not in names:
            raise DataError(f"{at}: category id {cat} is not among the file's categories")
        cid = category_id(label_set, names[cat], at)
        out[decode_segmentation(ann.get("segmentation"), h, w, at)] = cid
    return out


# ----------------------------------------------------------------------------------------------------
# The entry points.


def sniff(data: bytes) -> str:
    """The kind of a mask file's bytes: 'png' (id or palette), 'labelme', 'coco', or 'unknown'."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "unknown"
    if isinstance(doc, dict) and "shapes" in doc:
        return "labelme"
    if isinstance(doc, dict) and "annotations" in doc and "images" in doc:
        return "coco"
    return "unknown"


def decode_mask(data: bytes, where: str, label_set: LabelSet, sample: SampleRef | None = None) -> np.ndarray:
    """Id map (HxW int64, the file's own size) from the bytes of an id/palette PNG, LabelMe or COCO JSON file."""
    kind = sniff(data)
    if kind == "png":
        return _read_png(data, where, label_set)
    if kind == "unknown":
        if data[:1] in (b"{", b"["):
            try:
                json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                raise DataError(f"{where}: malformed JSON ({e})") from None
        raise DataError(f"{where}: neither a PNG mask nor a LabelMe or COCO JSON file")
    doc = json.loads(data.decode("utf-8"))
    return _labelme(doc, where, label_set, sample) if kind == "labelme" else _coco(doc, where, label_set, sample)


def fit_to(mask: np.ndarray, resolution: int, where: str, label_set: LabelSet, resize: bool = False) -> np.ndarray:
    """The id map checked (size, ids) and, with `resize`, resized (nearest) to resolution²."""
    import cv2

    h, w = mask.shape
    if (h, w) != (resolution, resolution):
        if not resize:
            raise DataError(f"{where}: mask is {w}x{h}, the generator makes {resolution}x{resolution} scans")
        mask = cv2.resize(mask.astype(np.uint16), (resolution, resolution),
                          interpolation=cv2.INTER_NEAREST).astype(np.int64)
    bad = sorted(set(np.unique(mask).tolist()) - set(range(label_set.num_classes)) - {IGNORE})
    if bad:
        raise DataError(f"{where}: ids {bad[:5]} are not categories of label set {label_set.name} "
                        f"(0 = background, 1..{label_set.num_classes - 1}, {IGNORE} = not annotated)")
    return mask


def read_mask_file(path: str | Path, resolution: int, label_set: LabelSet, sample: SampleRef | None = None,
                   resize: bool = False) -> np.ndarray:
    """Category-id map [R, R] int64 from an id/palette PNG, LabelMe or COCO JSON file; DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: label map not found")
    return fit_to(decode_mask(path.read_bytes(), str(path), label_set, sample), resolution, str(path), label_set,
                  resize)

