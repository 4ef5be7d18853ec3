"""hfc.metrics on hand-computed cases."""

import numpy as np
import pytest

from hfc import metrics as M

# One 2x4 image, K = 3 (worked by hand):
#   gt   0 0 1 1      pred 0 1 1 1
#        0 2 2 1           0 0 2 2
GT = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
PRED = np.array([[0, 1, 1, 1], [0, 0, 2, 2]])
CM = np.array([[2, 1, 0],
               [0, 2, 1],
               [1, 0, 1]])


def test_confusion_matrix_by_hand():
    assert np.array_equal(M.confusion_matrix(GT, PRED, 3), CM)
    assert M.confusion_matrix(GT, PRED, 3).dtype == np.int64


def test_confusion_matrix_matches_pixel_loop():
    rng = np.random.default_rng(1)
    gt, pred = rng.integers(0, 5, (17, 13)), rng.integers(0, 5, (17, 13))
    ref = np.zeros((5, 5), np.int64)
    for g, p in zip(gt.ravel(), pred.ravel()):
        ref[g, p] += 1
    assert np.array_equal(M.confusion_matrix(gt, pred, 5), ref)


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        M.confusion_matrix(GT, PRED[:, :3], 3)
    with pytest.raises(ValueError, match="outside"):
        M.confusion_matrix(GT, PRED, 2)


def test_iou_by_hand_and_absent_conventions():
    # IoU0 = 2/(3+3-2), IoU1 = 2/(3+3-2), IoU2 = 1/(2+2-1)
    assert np.allclose(M.iou_from_confusion(CM), [0.5, 0.5, 1 / 3])
    cm4 = M.confusion_matrix(GT, PRED, 4)  # class 3 in neither
    assert np.isnan(M.iou_from_confusion(cm4)[3])
    assert M.iou_from_confusion(cm4, absent="zero")[3] == 0.0
    assert M.mean_iou(M.iou_from_confusion(cm4)) == pytest.approx((0.5 + 1 / 3) / 2)  # NaN skipped
    assert M.mean_iou(M.iou_from_confusion(cm4, absent="zero")) == pytest.approx((0.5 + 1 / 3) / 3)
    assert M.mean_iou(M.iou_from_confusion(CM), include_background=True) == pytest.approx((0.5 + 0.5 + 1 / 3) / 3)
    with pytest.raises(ValueError, match="absent"):
        M.iou_from_confusion(CM, absent="skip")


def test_weighted_iou_by_hand():
    # |gt=1| = 3, |gt=2| = 2, H·W = 8: wIoU = 3/8·0.5 + 2/8·1/3 (not renormalised by the foreground area 5/8)
    assert M.weighted_iou(CM) == pytest.approx(3 / 8 * 0.5 + 2 / 8 / 3)
    perfect = M.confusion_matrix(GT, GT, 3)
    assert M.weighted_iou(perfect) == pytest.approx(5 / 8)  # at most the foreground fraction
    # a class predicted but absent from the ground truth has weight 0
    assert M.weighted_iou(M.confusion_matrix(np.zeros(4, int), np.array([0, 1, 1, 2]), 3)) == 0.0


def test_foreground_iou_by_hand():
    # gt>0: 5 pixels, pred>0: 5 pixels, both: 4 → 4/6
    assert M.foreground_iou(CM) == pytest.approx(4 / 6)
    empty = M.confusion_matrix(np.zeros(3, int), np.zeros(3, int), 2)
    assert np.isnan(M.foreground_iou(empty)) and M.foreground_iou(empty, absent="zero") == 0.0
    # class confusions still count as foreground overlap
    assert M.foreground_iou(M.confusion_matrix(np.array([1, 1, 0]), np.array([2, 2, 0]), 3)) == 1.0


def test_vectorised_over_images():
    cms = np.stack([CM, M.confusion_matrix(GT, GT, 3)])
    assert np.allclose(M.weighted_iou(cms), [3 / 16 + 1 / 12, 5 / 8])
    assert np.allclose(M.foreground_iou(cms), [4 / 6, 1.0])
    assert M.iou_from_confusion(cms).shape == (2, 3)
    stacked = M.confusion_matrices([GT, GT[:, :2]], [PRED, PRED[:, :2]], 3)  # images of different sizes
    assert stacked.shape == (2, 3, 3) and stacked[1].sum() == 4


def test_precision_at_iou_by_hand():
    gts = [np.array([1, 1, 0, 0]), np.array([0, 0, 0, 0]), np.array([1, 1, 1, 1]), np.array([1, 0, 0, 0]),
           np.array([0, 0, 0, 0])]
    preds = [np.array([1, 1, 0, 0]),  # IoU 1: TP
             np.array([1, 0, 0, 0]),  # predicted, not in gt: FP
             np.array([1, 0, 0, 0]),  # IoU 0.25: FP (and FN)
             np.array([0, 0, 0, 0]),  # missed: FN
             np.array([0, 0, 0, 0])]  # neither: not counted
    p = M.precision_at_iou(M.confusion_matrices(gts, preds, 2), threshold=0.5)
    assert (p.tp[1], p.fp[1], p.fn[1]) == (1, 2, 2)
    assert p.precision[1] == pytest.approx(1 / 3) and p.recall[1] == pytest.approx(1 / 3)
    # threshold 0.25 turns image 3 into a TP (IoU ≥ t)
    assert M.precision_at_iou(M.confusion_matrices(gts, preds, 2), threshold=0.25).precision[1] == pytest.approx(2 / 3)
    never = M.precision_at_iou(M.confusion_matrices([np.zeros(2, int)], [np.zeros(2, int)], 2))
    assert np.isnan(never.precision[1]) and np.isnan(never.recall[1])


def test_pd_curve_by_hand():
    ious = np.array([0.0, 0.3, 0.6, 1.0, np.nan])
    assert np.allclose(M.pd_curve(ious, [0.0, 0.5, 1.0]), [3 / 4, 2 / 4, 0.0])  # NaN image left out
    two = np.stack([ious, [0.9, 0.9, 0.9, np.nan, np.nan]], axis=1)  # [N, K]
    assert np.allclose(M.pd_curve(two, [0.5]), [[0.5], [1.0]])
    t = M.pd_thresholds()
    assert len(t) == 20 and t[0] == 0.0 and t[-1] == 1.0
    assert M.pd_curve(ious).shape == (20,)


def test_plot_pd_curves_writes_png(tmp_path):
    t = M.pd_thresholds()
    fig = M.plot_pd_curves(t, {"a": M.pd_curve(np.array([0.2, 0.7]), t)}, title="demo")
    fig.savefig(tmp_path / "pd.png")
    assert (tmp_path / "pd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mean_std():
    assert M.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, std = M.mean_std([1.0, np.nan, 3.0])
    assert mean == 2.0 and std == pytest.approx(np.sqrt(2.0))
    assert M.mean_std([5.0]) == (5.0, 0.0)
    mean, std = M.mean_std([[1.0, 10.0], [3.0, np.nan]])
    assert np.allclose(mean, [2.0, 10.0]) and np.allclose(std, [np.sqrt(2.0), 0.0])
    assert all(np.isnan(M.mean_std([np.nan])))


def test_segmentation_scores():
    cms = np.stack([CM, M.confusion_matrix(GT, GT, 3)])
    s = M.segmentation_scores(cms)
    assert np.array_equal(s.confusion, CM + M.confusion_matrix(GT, GT, 3))
    # summed: class 1 inter 2+3, union (3+3)+(3+3)-5; class 2 inter 1+2, union (2+2)+(2+2)-3
    assert np.allclose(s.class_iou[1:], [5 / 7, 3 / 5])
    assert s.miou == pytest.approx((5 / 7 + 3 / 5) / 2)
    assert s.wiou == pytest.approx((3 / 16 + 1 / 12 + 5 / 8) / 2)
    assert s.fg_iou == pytest.approx((4 / 6 + 1) / 2)
    assert s.image_iou.shape == (2, 3)
