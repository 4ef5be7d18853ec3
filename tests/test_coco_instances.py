"""Instances from label maps (components, min-area, holes) and exact RLE / polygon round-trips."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from baggan.data.coco import (annotation_record, decode_rle, encode_rle, instances_from_label_map,
                              label_map_from_instances, mask_to_polygons)


def _random_label(rng, h=48, w=40, k=4):
    """A label map of blocky blobs of k categories on background."""
    coarse = rng.integers(0, k + 1, (h // 4, w // 4)) * (rng.random((h // 4, w // 4)) < 0.5)
    return np.kron(coarse, np.ones((4, 4), np.int64))


def test_components_per_category_are_separate_instances():
    label = np.zeros((20, 20), np.int64)
    label[1:4, 1:4] = 3  # two separate squares of category 3
    label[10:15, 10:15] = 3
    label[1:4, 10:12] = 7
    label[5, 5] = 7  # touches nothing
    label[6, 6] = 7  # diagonal neighbour of (5, 5): same component under 8-connectivity
    inst = instances_from_label_map(label)
    got = sorted((i.category_id, int(i.mask.sum())) for i in inst)
    assert got == [(3, 9), (3, 25), (7, 2), (7, 6)]
    four = instances_from_label_map(label, connectivity=4)
    assert sorted((i.category_id, int(i.mask.sum())) for i in four) == [(3, 9), (3, 25), (7, 1), (7, 1), (7, 6)]
    assert np.array_equal(label_map_from_instances(inst, label.shape), label)


def test_min_area_drops_small_components_only():
    label = np.zeros((16, 16), np.int64)
    label[0:2, 0:2] = 1  # 4 px
    label[5:10, 5:10] = 1  # 25 px
    label[12:15, 0:3] = 2  # 9 px
    inst = instances_from_label_map(label, min_area=9)
    assert sorted((i.category_id, int(i.mask.sum())) for i in inst) == [(1, 25), (2, 9)]
    cleaned = label_map_from_instances(inst, label.shape)
    assert cleaned[0:2, 0:2].sum() == 0 and np.array_equal(cleaned[5:, :], label[5:, :])


def test_fill_holes_takes_background_only_and_nested_rings_do_not_overlap():
    label = np.zeros((20, 20), np.int64)
    label[2:18, 2:18] = 1
    label[4:16, 4:16] = 0  # ring of category 1 with a 12x12 hole
    label[6:14, 6:14] = 2
    label[8:12, 8:12] = 0  # ring of category 2 inside the hole, with its own 4x4 hole
    label[4, 4] = 5  # a pixel of another category inside the outer hole stays its own
    plain = instances_from_label_map(label)
    filled = instances_from_label_map(label, fill_holes=True)
    by_cat = {i.category_id: i.mask for i in filled}
    assert by_cat[2].sum() == 64  # inner ring + its hole
    assert by_cat[1].sum() == 16 * 16 - 64 - 1  # outer ring + background of its hole, not the inner ring nor (4, 4)
    assert not (by_cat[1] & by_cat[2]).any()
    assert by_cat[5][4, 4]
    assert sum(i.mask.sum() for i in plain) < sum(i.mask.sum() for i in filled)
    rebuilt = label_map_from_instances(filled, label.shape)
    assert (rebuilt == 0).sum() == 20 * 20 - 16 * 16


@pytest.mark.parametrize("seed", range(5))
def test_rle_round_trip_is_exact(seed):
    label = _random_label(np.random.default_rng(seed))
    inst = instances_from_label_map(label)
    rebuilt = np.zeros_like(label)
    for i in inst:
        rec = annotation_record(i, 1, 1)
        mask = decode_rle(rec["segmentation"])
        assert rec["area"] == mask.sum()
        x, y, w, h = rec["bbox"]
        ys, xs = np.nonzero(mask)
        assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        rebuilt[mask] = i.category_id
    assert np.array_equal(rebuilt, label)


@pytest.mark.parametrize("seed", range(5))
def test_polygons_rasterise_back_to_the_hole_filled_mask(seed):
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    label = (rng.random((30, 26)) < 0.45).astype(np.int64)  # ragged shapes, one-pixel parts, diagonal contacts
    for inst in instances_from_label_map(label):
        polys = mask_to_polygons(inst.mask)
        rles = mask_utils.frPyObjects(polys, *label.shape)
        raster = mask_utils.decode(mask_utils.merge(rles)).astype(bool)
        assert np.array_equal(raster, ndimage.binary_fill_holes(inst.mask))


def test_polygons_of_a_small_mask_in_a_large_image_and_of_an_empty_one():
    mask = np.zeros((300, 400), bool)
    mask[250:260, 390:400] = True  # touches the right border
    mask[252:255, 393:396] = False  # a hole: COCO polygons fill it
    polys = mask_to_polygons(mask)
    assert polys == [[390.0, 250.0, 390.0, 260.0, 400.0, 260.0, 400.0, 250.0]]
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def test_encode_rle_is_json_ready():
    m = np.zeros((5, 7), bool)
    m[1:3, 2:6] = True
    rle = encode_rle(m)
    assert isinstance(rle["counts"], str) and rle["size"] == [5, 7]
    assert np.array_equal(decode_rle(rle), m)
