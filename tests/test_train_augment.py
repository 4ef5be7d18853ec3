"""ADA: every op keeps shape/dtype, is the identity at p=0, does what it says; the geometric path is exact
for identity and whole-pixel shifts; p follows sign(D(real)) toward the target."""

import math

import pytest
import torch
import torch.nn.functional as F

from baggan.config import from_dict
from baggan.errors import ConfigError

from baggan.stylegan2.augment import BGC, PIPES, SYM6, AugmentConfig, AugmentPipe, _geometric, ada_adjust, scale2d, translate2d


def smooth_images(n: int = 6, c: int = 3, size: int = 32) -> torch.Tensor:
    """Smooth random images in [-1, 1]."""
    return F.interpolate(torch.rand(n, c, 6, 6) * 2 - 1, size=size, mode="bicubic", align_corners=False)


@pytest.mark.parametrize("op", sorted(BGC))
def test_each_op_shape_dtype_identity_at_p0_and_effect_at_p1(op):
    x = smooth_images()
    pipe = AugmentPipe({op: 1.0}, p=0.0)
    assert torch.equal(pipe(x), x)
    pipe.p.fill_(1.0)
    torch.manual_seed(1)
    y = pipe(x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    assert not torch.allclose(y, x, atol=1e-3), f"{op} at p=1 left every image unchanged"


def test_all_ops_greyscale_and_differentiable():
    x = smooth_images(c=1).requires_grad_(True)
    y = AugmentPipe(p=1.0)(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_geometric_path_exact_for_identity_and_whole_pixel_shift():
    x = torch.rand(2, 3, 24, 24)
    taps = torch.tensor(SYM6)
    eye = torch.eye(3).repeat(2, 1, 1)
    assert torch.allclose(_geometric(x, eye, taps), x, atol=1e-5)
    shift = translate2d(torch.tensor([3.0, 3.0]), torch.tensor([0.0, 0.0]))  # out(x, y) = in(x + 3, y)
    assert torch.allclose(_geometric(x, shift, taps)[..., :-3], x[..., 3:], atol=1e-5)


def test_geometric_flip_matches_mirror_on_smooth_images():
    x = smooth_images(n=2)
    flip = scale2d(torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 1.0]))
    y = _geometric(x, flip, torch.tensor(SYM6))
    assert (y - x.flip(3))[..., 4:-4, 4:-4].abs().max() < 0.01


def test_probability_is_multiplier_times_p():
    x = smooth_images(n=800, size=8)
    torch.manual_seed(0)
    y = AugmentPipe({"xflip": 1.0}, p=0.5)(x)
    changed = (y - x).flatten(1).abs().amax(dim=1) > 1e-3
    # a sample is flipped with probability p * 1/2 (the op draws flip/no-flip when it fires)
    assert 0.19 < changed.float().mean() < 0.31


def test_lumaflip_negates_grey_images_and_hue_keeps_luma():
    grey = smooth_images(n=40, c=1).repeat(1, 3, 1, 1)
    torch.manual_seed(0)
    y = AugmentPipe({"lumaflip": 1.0}, p=1.0)(grey)
    per_sample = [torch.allclose(a, grey[i], atol=1e-5) or torch.allclose(a, -grey[i], atol=1e-5) for i, a in enumerate(y)]
    assert all(per_sample)
    x = smooth_images(n=8)
    for op in ("hue", "saturation"):
        y = AugmentPipe({op: 1.0}, p=1.0)(x)
        assert torch.allclose(y.mean(dim=1), x.mean(dim=1), atol=1e-5), op


def test_unknown_op_rejected():
    with pytest.raises(ValueError, match="unknown augmentation ops"):
        AugmentPipe({"cutout": 1.0})


def test_ada_adjust_direction_clamp_and_speed():
    assert ada_adjust(0.2, sign_real=0.9, target=0.6, nimg=64, ada_kimg=500) > 0.2  # over-fitting D: more aug
    assert ada_adjust(0.2, sign_real=0.1, target=0.6, nimg=64, ada_kimg=500) < 0.2
    assert ada_adjust(0.0, sign_real=-1.0, target=0.6, nimg=64, ada_kimg=500) == 0.0
    assert ada_adjust(1.0, sign_real=1.0, target=0.6, nimg=64, ada_kimg=500) == 1.0
    p, batch, interval = 0.0, 32, 4
    for _ in range(math.ceil(500_000 / (batch * interval))):
        p = ada_adjust(p, 1.0, 0.6, batch * interval, 500)
    assert p == 1.0  # 0 → 1 in 500 kimg


def test_xray_pipe_never_inverts_luma_and_config_accepts_every_pipe():
    torch.manual_seed(0)
    dets = {name: torch.linalg.det(AugmentPipe(PIPES[name], p=1.0).color_matrix(256, 3, torch.device("cpu"))[:, :3, :3])
            for name in ("bgc", "bgc-x")}
    assert (dets["bgc"] < 0).any()  # lumaflip is a reflection: determinant -1 times positive scales
    assert (dets["bgc-x"] > 0).all()
    assert set(PIPES["bgc-x"]) == set(BGC) - {"lumaflip", "hue"} and PIPES["bgc"] == BGC
    for name in (*PIPES, "none"):
        assert from_dict(AugmentConfig, {"pipe": name}).pipe == name
    with pytest.raises(ConfigError, match="pipe"):
        from_dict(AugmentConfig, {"pipe": "bgcfnc"})
