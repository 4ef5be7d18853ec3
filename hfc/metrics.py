"""Segmentation metrics as the paper reports them: per-class IoU, mIoU, wIoU, FG-IoU, precision at IoU 0.5
for low-frequency labels, IoU-vs-PD curves, and mean ± std over repeats.

Everything derives from confusion matrices `cm[g, p]` = number of pixels whose ground truth is g and whose
prediction is p (rows = ground truth, columns = prediction, class 0 = background). One image gives a [K, K]
matrix, a test set a stack [N, K, K]; every function below works on any leading dimensions.

Absent classes: a class in neither the ground truth nor the prediction of an image has no IoU (0 / 0).
`absent="nan"` (the default, and what our reports use) returns NaN there and every mean skips it;
`absent="zero"` returns 0, as the paper's released code does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

Absent = Literal["nan", "zero"]


def confusion_matrix(gt: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """[K, K] int64 pixel counts of one label map pair (rows = ground truth, columns = prediction)."""
    gt, pred = np.asarray(gt), np.asarray(pred)
    if gt.shape != pred.shape:
        raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
    for name, a in (("ground truth", gt), ("prediction", pred)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{name} has labels outside [0, {num_classes}): {a.min()}..{a.max()}")
    index = gt.astype(np.int64).ravel() * num_classes + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def confusion_matrices(gts: Sequence[np.ndarray], preds: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """[N, K, K] confusion matrices of N label map pairs (the images may differ in size)."""
    if len(gts) != len(preds):
        raise ValueError(f"{len(gts)} ground truths but {len(preds)} predictions")
    if not len(gts):
        return np.zeros((0, num_classes, num_classes), np.int64)
    return np.stack([confusion_matrix(g, p, num_classes) for g, p in zip(gts, preds)])


def _ratio(num: np.ndarray, den: np.ndarray, absent: Absent) -> np.ndarray:
    """num / den as float64, with NaN or 0 (per `absent`) where den == 0."""
    if absent not in ("nan", "zero"):
        raise ValueError(f"absent must be 'nan' or 'zero', got {absent!r}")
    out = np.full(np.broadcast(num, den).shape, np.nan if absent == "nan" else 0.0)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_from_confusion(cm: np.ndarray, absent: Absent = "nan") -> np.ndarray:
    """Per-class IoU_c = |gt=c ∧ pred=c| / |gt=c ∨ pred=c|: [..., K, K] → [..., K]."""
    cm = np.asarray(cm, np.float64)
    inter = np.diagonal(cm, axis1=-2, axis2=-1)
    union = cm.sum(-1) + cm.sum(-2) - inter
    return _ratio(inter, union, absent)


def mean_iou(iou: np.ndarray, include_background: bool = False) -> np.ndarray | float:
    """Mean over classes of a [..., K] IoU array, skipping NaN (absent) classes; background (0) left out by default."""
    iou = np.asarray(iou, np.float64)
    iou = iou if include_background else iou[..., 1:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN, silently
        return np.nanmean(iou, axis=-1)


def weighted_iou(cm: np.ndarray) -> np.ndarray | float:
    """wIoU of each image: Σ_{c≠0} (|gt=c| / (H·W)) · IoU_c  ([..., K, K] → [...]).

    The weights are the ground-truth area fractions of the foreground classes; they are not renormalised, so
    wIoU is at most the image's foreground fraction (the paper's definition). A class absent from the ground
    truth has weight 0 whatever was predicted, so the absent-class convention does not matter here.
    """
    cm = np.asarray(cm, np.float64)
    area = cm.sum(-1)  # ground-truth pixels per class
    total = cm.sum((-2, -1))
    iou = iou_from_confusion(cm, absent="zero")
    return (area[..., 1:] * iou[..., 1:]).sum(-1) / np.maximum(total, 1)


def foreground_iou(cm: np.ndarray, absent: Absent = "nan") -> np.ndarray | float:
    """FG-IoU of each image: IoU of (gt > 0) against (pred > 0), whatever the classes ([..., K, K] → [...])."""
    cm = np.asarray(cm, np.float64)
    inter = cm[..., 1:, 1:].sum((-2, -1))
    union = cm.sum((-2, -1)) - cm[..., 0, 0]
    return _ratio(inter, union, absent)


def class_presence(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(in ground truth, in prediction): two [..., K] bool arrays saying which classes occur in each image."""
    cm = np.asarray(cm)
    return cm.sum(-1) > 0, cm.sum(-2) > 0


@dataclass(frozen=True)
class PrecisionAtIoU:
    """Per-class image-level detection counts at an IoU threshold (arrays of length K)."""

    threshold: float
    precision: np.ndarray  # TP / (TP + FP); NaN for a class never predicted
    recall: np.ndarray  # TP / (images with the class in the ground truth); NaN if there are none
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def precision_at_iou(cms: np.ndarray, threshold: float = 0.5) -> PrecisionAtIoU:
    """Precision of each class at an IoU threshold, counted over the test images ([N, K, K] → per class).

    For class c, the positives are the images whose prediction contains c. A positive is a true positive when
    IoU_c ≥ threshold, and a false positive otherwise — which includes every image without c in its ground
    truth where the segmenter predicts c (the paper's low-frequency-label test, Table 4). An image with c in
    its ground truth that is not a true positive is a false negative. precision = TP / (TP + FP).
    """
    cms = np.asarray(cms)
    if cms.ndim != 3:
        raise ValueError(f"expected [N, K, K] confusion matrices, got shape {cms.shape}")
    in_gt, in_pred = class_presence(cms)
    iou = iou_from_confusion(cms, absent="zero")
    hit = in_pred & in_gt & (iou >= threshold)
    tp, fp = hit.sum(0), (in_pred & ~hit).sum(0)
    fn = (in_gt & ~hit).sum(0)
    return PrecisionAtIoU(float(threshold), _ratio(tp, tp + fp, "nan"), _ratio(tp, tp + fn, "nan"), tp, fp, fn)


def pd_thresholds(num: int = 20) -> np.ndarray:
    """The IoU thresholds of an IoU-vs-PD curve: `num` evenly spaced points in [0, 1]."""
    return np.linspace(0.0, 1.0, num)


def pd_curve(ious: np.ndarray, thresholds: np.ndarray | None = None) -> np.ndarray:
    """PD(t): fraction of test images whose IoU exceeds t, per column ([N] or [N, K] → [T] or [K, T]).

    Images with a NaN IoU (class absent from both ground truth and prediction) are left out of that class's
    fraction; with absent="zero" IoUs they count as misses, as in the paper's code. Thresholds default to
    `pd_thresholds()` (20 points in [0, 1]).
    """
    t = pd_thresholds() if thresholds is None else np.asarray(thresholds, np.float64)
    ious = np.asarray(ious, np.float64)
    valid = ~np.isnan(ious)
    above = (np.nan_to_num(ious, nan=-1.0)[..., None] > t) & valid[..., None]  # [N, (K,) T]
    return _ratio(above.sum(0), valid.sum(0)[..., None], "nan")


def plot_pd_curves(thresholds: np.ndarray, curves: Mapping[str, np.ndarray], title: str = ""):
    """A matplotlib Figure of IoU-vs-PD curves, one line per named curve (save it with fig.savefig)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0, 4.0), dpi=120)
    ax = fig.add_subplot()
    for name, pd in curves.items():
        ax.plot(thresholds, 100.0 * np.asarray(pd), marker="o", markersize=3, label=name)
    ax.set(xlabel="IoU threshold t", ylabel="PD: % of test images with IoU > t", xlim=(0, 1), ylim=(0, 101),
           title=title)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mean_std(values: np.ndarray | Sequence, axis: int = 0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """(mean, std) over `axis`, skipping NaN; std is the sample std (ddof=1), 0 with a single value."""
    values = np.asarray(values, np.float64)
    n = (~np.isnan(values)).sum(axis)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=axis)
        var = np.nansum((values - np.expand_dims(mean, axis)) ** 2, axis=axis) / np.maximum(n - 1, 1)
    std = np.where(n > 0, np.sqrt(var), np.nan)
    return (float(mean), float(std)) if np.ndim(mean) == 0 else (mean, std)


@dataclass(frozen=True)
class SegmentationScores:
    """The scores of one segmenter on one test set (IoUs as fractions in [0, 1])."""

    class_iou: np.ndarray  # [K] IoU from the confusion matrix summed over the test set (NaN: class never seen)
    miou: float  # mean of class_iou over the foreground classes, NaN-skip
    wiou: float  # mean over images of weighted_iou
    fg_iou: float  # mean over images of foreground_iou, NaN-skip (images with no foreground anywhere)
    image_iou: np.ndarray  # [N, K] per-image IoU (NaN where a class is in neither gt nor prediction)
    confusion: np.ndarray  # [K, K] summed confusion matrix


def segmentation_scores(cms: np.ndarray) -> SegmentationScores:
    """Per-class IoU, mIoU, wIoU and FG-IoU of a test set from its [N, K, K] per-image confusion matrices."""
    cms = np.asarray(cms)
    if cms.ndim != 3 or not len(cms):
        raise ValueError(f"expected a non-empty [N, K, K] stack of confusion matrices, got shape {cms.shape}")
    total = cms.sum(0)
    class_iou = iou_from_confusion(total)
    fg = foreground_iou(cms)
    return SegmentationScores(class_iou, float(mean_iou(class_iou)), float(weighted_iou(cms).mean()),
                              mean_std(fg)[0], iou_from_confusion(cms), total)


__all__ = ["Absent", "confusion_matrix", "confusion_matrices", "iou_from_confusion", "mean_iou", "weighted_iou",
           "foreground_iou", "class_presence", "PrecisionAtIoU", "precision_at_iou", "pd_thresholds", "pd_curve",
           "plot_pd_curves", "mean_std", "SegmentationScores", "segmentation_scores"]
