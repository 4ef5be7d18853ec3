"""Annotated samples for one-shot fitting, the fit itself for every method, and the pictures of both.

An annotated sample is a generated scan plus a mask of category ids aligned with it, from one of:
  * a seed (z from numpy RandomState(seed), as `baggan generate`, truncation psi) + mask PNG;
  * a saved ws file (.npy / .pt; [1, num_ws, w_dim], [num_ws, w_dim] or FILE:ROW of [N, num_ws, w_dim],
    e.g. the latents.npy of a `baggan synthesize` shard) + mask PNG;
  * a real scan + its mask: the scan is projected into W+ (baggan.stylegan2.projector) and the hidden
    features of the projection are used; the mask stays aligned because the projection reproduces
    the scan's geometry.
Masks are category ids of a label set (0 = background, 255 = not annotated), from an id PNG, a palette PNG,
LabelMe or COCO JSON (baggan.data.mask_formats).
The segmenter's classes are background plus the categories the masks use, in id order; the fitted
file's metadata records the class → category table that `baggan synthesize` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from baggan.data.labelsets import LabelSet
from baggan.data.mask_formats import IGNORE, SampleRef, read_mask_file
from baggan.errors import DataError, UserError, about
from baggan.io import file_sha256
from baggan.stylegan2.features import StyleGANFeatureGenerator
from baggan.stylegan2.networks import Discriminator
from baggan.stylegan2.projector import ProjectionResult, ProjectorConfig, project, to_uint8
from hfc.safe_load import load_weights_only

if TYPE_CHECKING:
    from hfc.config import OneShotConfig
    from hfc.features import PixelEncoder
    from hfc.generator import ImageLayer
    from hfc.oneshot import PixelClassifier


@dataclass
class AnnotatedSample:
    """One annotated scan ready for fitting: latents, features, the scan they render, and its mask."""

    source: str  # "seed 5", "ws FILE", "image FILE"
    ws: torch.Tensor  # [1, num_ws, w_dim]
    features: list[torch.Tensor]  # [H_1..H_L] of the scan, batch 1
    image: np.ndarray  # the scan the features belong to (generated, or the projection's reconstruction), HxWx3 uint8
    mask: np.ndarray  # category ids, HxW int64
    mask_path: str
    projection: ProjectionResult | None = None
    gen: StyleGANFeatureGenerator | ImageLayer | None = None  # renders ws as `features` were (a projection's noise)


# ----------------------------------------------------------------------------------------------------
# Reading the inputs.


def read_ws(spec: str, num_ws: int, w_dim: int) -> torch.Tensor:
    """ws [1, num_ws, w_dim] from FILE or FILE:ROW (.npy or .pt holding an array/tensor); UserError naming the file."""
    path, row = Path(spec), None
    head, sep, tail = spec.rpartition(":")
    if sep and tail.isdigit() and not path.is_file():
        path, row = Path(head), int(tail)
    if not path.is_file():
        raise DataError(f"{path}: ws file not found")
    try:
        if path.suffix == ".npy":
            data = torch.from_numpy(np.load(path, allow_pickle=False))
        else:
            data = torch.as_tensor(load_weights_only(path))
    except Exception as e:  # noqa: BLE001 - any failure to read is the file's fault
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path}: not a readable .npy/.pt ws file: {reason}") from None
    data = data.float()
    if not torch.isfinite(data).all():
        raise DataError(f"{path}: the ws hold NaN or infinite values")
    if data.ndim == 2:
        data = data[None]
    shape = f"{list(data.shape)}"
    if data.ndim != 3 or tuple(data.shape[1:]) != (num_ws, w_dim):
        raise DataError(f"{path}: ws of shape {shape}; this generator needs [1, {num_ws}, {w_dim}] or [{num_ws}, {w_dim}]")
    if row is None and data.shape[0] != 1:
        raise DataError(f"{path}: holds {data.shape[0]} ws; pick one with {path}:ROW (0..{data.shape[0] - 1})")
    row = row or 0
    if not 0 <= row < data.shape[0]:
        raise DataError(f"{path}: row {row} is out of range (it holds {data.shape[0]} ws)")
    return data[row : row + 1]


def read_mask(path: str | Path, resolution: int, label_set: LabelSet, resize: bool = False,
              sample: SampleRef | None = None) -> np.ndarray:
    """Category-id map [R, R] int64 from an id PNG, palette PNG, LabelMe or COCO JSON file (baggan.data.mask_formats);
    UserError for a wrong size, unknown ids or names, or a file that annotates another image than `sample`."""
    return read_mask_file(path, resolution, label_set, sample, resize)


# ----------------------------------------------------------------------------------------------------
# Annotated samples.


def rgb(image: np.ndarray) -> np.ndarray:
    """HxWx1 or HxW grey → HxWx3 (RGB passes through)."""
    image = image[..., None] if image.ndim == 2 else image
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def generated_sample(gen: StyleGANFeatureGenerator, ws: torch.Tensor, mask: np.ndarray, source: str,
                     mask_path: str) -> AnnotatedSample:
    """A generated scan (ws rendered with the generator's constant noise) and its mask."""
    with torch.no_grad():
        images, feats = gen.synthesize(ws.to(gen.device), noise_mode="const", return_features=True)
    return AnnotatedSample(source, ws.cpu(), feats, rgb(to_uint8(images)[0]), mask, mask_path, gen=gen)


def projected_sample(
    gen: StyleGANFeatureGenerator, scan: np.ndarray, mask: np.ndarray, source: str, mask_path: str, cfg: ProjectorConfig,
    D: Discriminator | None = None, progress: bool = True, c: torch.Tensor | None = None,
    result: ProjectionResult | None = None,
) -> AnnotatedSample:
    """A real scan projected into W+ (and noise); its features are those of the projection, rendered with its noise
    (and its image, when `gen` offers it as a feature layer, hfc.generator.ImageLayer). `c` [c_dim]: the scan's
    label for a conditional generator (the projection starts from that label's mean w). `result`: the scan's
    projection, made already (e.g. by baggan.stylegan2.project_pool); else it is made here."""
    from hfc.generator import ImageLayer

    result = result or project(gen.G, scan, cfg, D=D, progress=progress, c=c)
    projected = StyleGANFeatureGenerator(result.generator(gen.G), noise_mode="const")
    if isinstance(gen, ImageLayer):  # the image stays a feature layer of the projection's features
        projected = ImageLayer(projected)
    sample = generated_sample(projected, result.ws, mask, source, mask_path)
    sample.projection = result
    return sample


def annotated_samples(gen: StyleGANFeatureGenerator, sources: Sequence[tuple[str, Any]], masks: Sequence[str | Path],
                      label_set: LabelSet, psi: float, class_idx: int | None, cfg: ProjectorConfig,
                      D: Discriminator | None = None, resize: bool = False,
                      echo: Callable[[str], None] = print) -> list[AnnotatedSample]:
    """The annotated samples of `sources`, each (kind, value) with its mask: ("seed", N) the scan of seed N (psi,
    class_idx), ("ws", FILE[:ROW]) saved ws, ("image", SCAN) a real scan projected into W+ (cfg, D; `resize` lets
    one of another size in); `echo` reports the projections and resizes."""
    from baggan.stylegan2.latents import ws_from_seed
    from baggan.stylegan2.projector import load_scan

    G, res, samples = gen.G, gen.img_resolution, []
    for (kind, value), mask_path in zip(sources, masks):
        if kind == "image":
            scan, note = load_scan(value, res, resize)
            if note:
                echo(f"note: {note}; its mask is resized too (nearest)")
            mask = read_mask(mask_path, res, label_set, resize=note is not None,
                             sample=SampleRef(name=Path(value).name))
            echo(f"projecting {value} ({cfg.steps} steps)")
            s = projected_sample(gen, scan, mask, f"image {Path(value).name}", str(mask_path), cfg, D)
            echo(f"  reconstruction: PSNR {s.projection.psnr:.2f} dB, SSIM {s.projection.ssim:.4f}")
        else:
            ws = ws_from_seed(G, [value], psi, class_idx) if kind == "seed" else read_ws(value, G.num_ws, G.w_dim)
            mask = read_mask(mask_path, res, label_set, sample=SampleRef(seed=value) if kind == "seed" else None)
            s = generated_sample(gen, ws, mask, f"{kind} {value}" if kind == "seed" else f"ws {Path(value).name}",
                                 str(mask_path))
        samples.append(s)
    return samples


def class_table(masks: Sequence[np.ndarray], categories: Sequence[int] | None = None) -> list[int]:
    """Class index → category id: background, then the categories the masks use (of `categories` only, when given),
    in id order."""
    used = set().union(*(np.unique(m).tolist() for m in masks)) - {0, IGNORE}
    return [0] + sorted(used if categories is None else used & set(categories))


def to_classes(mask: np.ndarray, table: Sequence[int], outside: int = IGNORE) -> torch.Tensor:
    """Category-id map → class-index map, int64 tensor; IGNORE stays, other ids not in `table` become `outside`."""
    lut = np.full(max(max(table), IGNORE, int(mask.max(initial=0))) + 1, outside, np.int64)
    lut[IGNORE] = IGNORE
    lut[list(table)] = np.arange(len(table))
    return torch.from_numpy(lut[mask])


# ----------------------------------------------------------------------------------------------------
# Fitting.


def load_encoder(hfc: str | Path | None, method: str | None,
                 device: torch.device) -> tuple[str, PixelEncoder | None]:
    """(method, HFC encoder or None for a raw-feature baseline): the encoder file `hfc` checked against `method`
    (None: the method the encoder was trained with)."""
    from hfc.checkpoint import load_module
    from hfc.features import PixelEncoder
    from hfc.names import HFC_METHODS, RAW_METHODS

    if method in RAW_METHODS:
        return method, None
    if hfc is None:
        raise UserError(f"--hfc is required for --method {method or 'swav'} (or use --method "
                        f"{'|'.join(RAW_METHODS)}, which need no HFC encoder)")
    with about("--hfc"):
        encoder = load_module(hfc, device, expect=PixelEncoder)
    trained = (getattr(encoder, "meta", {}) or {}).get("method")
    if method is not None and trained is not None and trained != method:
        raise UserError(f"{hfc}: an HFC encoder trained with {trained}, but --method {method}")
    method = method or trained or "swav"
    assert method in HFC_METHODS
    return method, encoder


def check_encoder(gen: StyleGANFeatureGenerator, encoder: PixelEncoder | None, hfc: str | Path | None) -> None:
    """HFCError unless the encoder (if any) was built for this generator's hidden layers."""
    from hfc.checkpoint import check_layers
    from hfc.generator import layer_channels

    if encoder is not None:
        check_layers(encoder.layer_channels, layer_channels(gen), f"{hfc}")


def fit_samples(method: str, gen: StyleGANFeatureGenerator, encoder: PixelEncoder | None,
                samples: Sequence[AnnotatedSample], cfg: OneShotConfig, progress: bool = True,
                on_epoch: Callable[[int, float], None] | None = None) -> tuple[PixelClassifier, list[int], list[float]]:
    """(fitted PixelClassifier, class → category table, loss per epoch) from the annotated samples."""
    from hfc.generator import ImageLayer, layer_channels
    from hfc.methods import make_classifier
    from hfc.names import RAW_METHODS
    from hfc.oneshot import Annotation, fit

    table = class_table([s.mask for s in samples])
    if len(table) == 1:
        raise UserError("the masks hold no category (only background / not annotated): nothing to learn")
    hidden = layer_channels(gen.inner if isinstance(gen, ImageLayer) else gen)  # the image is added by make_classifier
    model = make_classifier(method if method in RAW_METHODS else None, hidden, encoder, len(table),
                            cfg, image_channels=gen.img_channels).to(gen.device)
    annotations = [Annotation(s.ws[0], to_classes(s.mask, table), tuple(s.features), s.gen) for s in samples]
    history = fit(model, gen, annotations, cfg, progress=progress, on_epoch=on_epoch)
    return model, table, history


# a pixel of a scan whose threat classes are known is threat where 1 - p(background) > THREAT_THRESHOLD
THREAT_THRESHOLD = 0.5


def condition_classes(probs: torch.Tensor, allowed: torch.Tensor, threshold: float = THREAT_THRESHOLD,
                      among_allowed: bool = False) -> torch.Tensor:
    """Class maps [N, H, W] when each image's threat classes are known (the label a conditional generator drew it
    with): a pixel is threat where the segmenter's threat probability exceeds `threshold` and takes the most probable
    of its image's allowed classes; an image with no allowed class is all background. The threat probability is
    1 - p(background), or with `among_allowed` the allowed classes' share of p(allowed) + p(background) (the other
    threat classes left out).

    probs [N, K, H, W] (softmax, index 0 = background), allowed [N, K] bool over the same classes (column 0 ignored).
    """
    assert probs.ndim == 4 and allowed.shape == probs.shape[:2], (
        f"allowed {list(allowed.shape)} must be [N, K] of probs {list(probs.shape)}")
    allowed = allowed.clone()
    allowed[:, 0] = False
    best = probs.masked_fill(~allowed[:, :, None, None], -1.0).argmax(dim=1)  # an allowed class wherever any is
    if among_allowed:
        mass = (probs * allowed[:, :, None, None]).sum(dim=1)
        threat = mass > threshold * (mass + probs[:, 0])
    else:
        threat = probs[:, 0] < 1.0 - threshold
    threat &= allowed.any(dim=1)[:, None, None]
    return torch.where(threat, best, torch.zeros_like(best))


@torch.no_grad()
def predict_probs(model: PixelClassifier, sample: AnnotatedSample, size: int) -> torch.Tensor:
    """The fitted model's class probabilities of a sample, [1, K, size, size]."""
    return model.predict([h.to(next(model.parameters()).device) for h in sample.features], size)[1]


def categories_from(probs: torch.Tensor, table: Sequence[int], drawn: Sequence[int] | None = None,
                    threshold: float = THREAT_THRESHOLD, among_allowed: bool = False) -> np.ndarray:
    """Category-id map HxW int64 of one image's probabilities [1, K, H, W]: the most probable class, or with `drawn`
    (the category ids of the label the sample was projected or drawn with) `condition_classes` among those."""
    if drawn is None:
        labels = probs.max(dim=1).indices  # as PixelClassifier.predict: the first maximum
    else:
        labels = condition_classes(probs, torch.tensor([[c in drawn for c in table]], device=probs.device),
                                   threshold, among_allowed)
    return np.asarray(table, np.int64)[labels[0].cpu().numpy()]


def predict_categories(model: PixelClassifier, sample: AnnotatedSample, table: Sequence[int], size: int) -> np.ndarray:
    """The fitted model's category-id map of a sample, HxW int64."""
    return categories_from(predict_probs(model, sample, size), table)


def training_iou(mask: np.ndarray, pred: np.ndarray, table: Sequence[int]) -> float:
    """Mean IoU over the annotated categories of the sample (background excluded, unannotated pixels ignored)."""
    from hfc.metrics import confusion_matrix, iou_from_confusion, mean_iou

    gt, pr = to_classes(mask, table).numpy(), to_classes(pred, table).numpy()
    keep = gt != IGNORE
    cm = confusion_matrix(gt[keep], pr[keep], len(table))
    return float(mean_iou(iou_from_confusion(cm)))


def save_segmenter(path: str | Path, model: PixelClassifier, samples: Sequence[AnnotatedSample], table: Sequence[int],
                   history: Sequence[float], ious: Sequence[float], label_set: LabelSet, method: str,
                   network: str | Path, hfc: str | Path | None, psi: float | None = None) -> dict:
    """Write a fitted segmenter file (every command that makes one comes here) with its metadata: what `baggan
    synthesize` reads (label set, class → category table) and where it came from; returns the metadata.
    `psi` is the truncation of seed samples (recorded when given)."""
    from hfc.oneshot import HFCSegmenter, save_classifier

    ours = isinstance(model, HFCSegmenter)
    projections = [s.projection for s in samples if s.projection is not None]
    meta = {
        "label_set": label_set.name, "class_to_category": list(table),
        "categories": [label_set.names[c - 1] for c in table[1:]], "method": method,
        "segmenter": model.segmenter.name if ours else method, "epochs": len(history), "generator": str(network),
        "generator_sha256": file_sha256(network), "hfc": str(hfc) if ours and hfc is not None else "",
        "samples": [s.source for s in samples], "masks": [s.mask_path for s in samples],
        **({"psi": psi} if psi is not None else {}), "final_loss": history[-1], "training_iou": list(ious),
        "projection_psnr": [p.psnr for p in projections], "projection_ssim": [p.ssim for p in projections],
    }  # fmt: skip
    save_classifier(path, model, meta)
    return meta


class Fitted(NamedTuple):
    """What `fit_and_save` made."""

    model: PixelClassifier
    table: list[int]  # class → category id
    history: list[float]  # loss per epoch
    ious: list[float]  # training IoU per sample
    meta: dict  # the segmenter file's metadata
    sheet: Path  # the picture of the fit


def fit_and_save(out: Path, method: str, gen: StyleGANFeatureGenerator, encoder: PixelEncoder | None,
                 samples: Sequence[AnnotatedSample], cfg: OneShotConfig, label_set: LabelSet, network: str | Path,
                 hfc: str | Path | None, psi: float | None = None, title: str | None = None,
                 sheet: Path | None = None, progress: bool = True) -> Fitted:
    """Fit `method` on the samples, draw the fit (`sheet`, default `out` as .png; `title` may hold {loss}, the final
    loss), then write the segmenter file `out` (save_segmenter; last, so that its presence means all is done)."""
    model, table, history = fit_samples(method, gen, encoder, samples, cfg, progress=progress)
    preds = [predict_categories(model, s, table, gen.img_resolution) for s in samples]
    ious = [training_iou(s.mask, p, table) for s, p in zip(samples, preds)]
    title = title or (f"{method}{'+' + cfg.segmenter if encoder is not None else ''}: {len(samples)}-shot, "
                      f"{cfg.epochs} epochs, final loss {{loss:.4f}}")
    sheet = sheet or out.with_suffix(".png")
    fit_sheet(sheet, samples, preds, ious, label_set, title.format(loss=history[-1]))
    meta = save_segmenter(out, model, samples, table, history, ious, label_set, method, network, hfc, psi)
    return Fitted(model, table, history, ious, meta, sheet)


# ----------------------------------------------------------------------------------------------------
# Pictures.


def _legend(fig, label_set: LabelSet, ids: Sequence[int]) -> None:
    """A legend of category colours (the simulator previews' palette) below the figure."""
    from matplotlib.patches import Patch

    from baggan.data.xray.preview import PALETTE

    handles = [Patch(color=PALETTE[(c - 1) % len(PALETTE)] / 255, label=label_set.names[c - 1]) for c in ids if c > 0]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8, frameon=False)


def _save(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically and close it."""
    import io

    import matplotlib.pyplot as plt

    from baggan.io import write_bytes_atomic

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def fit_sheet(path: Path, samples: Sequence[AnnotatedSample], preds: Sequence[np.ndarray], ious: Sequence[float],
              label_set: LabelSet, title: str) -> None:
    """One row per sample: [projection target | reconstruction with PSNR/SSIM] scan | annotation | fitted prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baggan.data.xray.preview import overlay

    projected = any(s.projection is not None for s in samples)
    cols = 4 if projected else 3
    fig, axes = plt.subplots(len(samples), cols, figsize=(2.4 * cols, 2.5 * len(samples) + 0.6), squeeze=False)
    for row, (s, pred, iou) in zip(axes, zip(samples, preds, ious)):
        cells = [(s.image, f"{s.source}"), (overlay(s.image, np.where(s.mask == IGNORE, 0, s.mask)), "annotation"),
                 (overlay(s.image, pred), f"fitted: IoU {iou:.3f}")]
        if projected:
            p = s.projection
            cells.insert(0, (rgb(p.target), "target scan") if p is not None else (None, ""))
            if p is not None:
                cells[1] = (s.image, f"projection\nPSNR {p.psnr:.2f} dB, SSIM {p.ssim:.3f}")
        for ax, (img, caption) in zip(row, cells):
            ax.axis("off")
            if img is not None:
                ax.imshow(img, interpolation="nearest")
                ax.set_title(caption, fontsize=8)
    _legend(fig, label_set, sorted(set().union(*(np.unique(s.mask).tolist() for s in samples)) - {IGNORE}))
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _save(fig, path)


def annotate_grid(path: Path, images: Sequence[np.ndarray], labels: Sequence[np.ndarray], captions: Sequence[str],
                  label_set: LabelSet, categories: Sequence[int], title: str, cols: int = 4) -> None:
    """Grid of (scan | scan with the predicted mask), `cols` pairs per row, with a legend of `categories`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baggan.data.xray.preview import overlay

    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.0 * 2 * cols, 2.3 * rows + 0.7), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (img, lab, cap) in enumerate(zip(images, labels, captions)):
        a, b = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        a.imshow(img, interpolation="nearest")
        a.set_title(cap, fontsize=8)
        b.imshow(overlay(img, lab), interpolation="nearest")
        b.set_title("mask", fontsize=8)
    _legend(fig, label_set, categories)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _save(fig, path)


def outline_sheet(path: Path, targets: Sequence[np.ndarray], projections: Sequence[np.ndarray],
                  exact: Sequence[np.ndarray], preds: Sequence[np.ndarray], captions: Sequence[str],
                  label_set: LabelSet, title: str, cols: int = 4, scale: int = 4) -> None:
    """Grid of (scan with its exact outline in green | projection with the predicted outline in red), `cols` pairs
    per row; each predicted region is named by its category."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baggan.data.xray.preview import outline

    def names(lab: np.ndarray) -> str:
        return ", ".join(label_set.names[c - 1] for c in np.unique(lab) if 0 < c != IGNORE) or "none"

    cols = min(cols, len(targets))
    rows = -(-len(targets) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2.0 * 2 * cols, 2.4 * rows + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (t, p, m, pr, cap) in enumerate(zip(targets, projections, exact, preds, captions)):
        a, b = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        a.imshow(outline(rgb(t), np.where(m == IGNORE, 0, m), (0, 200, 0), scale))
        a.set_title(f"{cap}\nexact: {names(m)}", fontsize=7, color="darkgreen")
        b.imshow(outline(rgb(p), pr, (230, 0, 0), scale))
        b.set_title(f"predicted: {names(pr)}", fontsize=7, color="darkred")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _save(fig, path)
