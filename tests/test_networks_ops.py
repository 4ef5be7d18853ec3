"""baggan.stylegan2.ops against independent references (scipy's upfirdn, direct sums) and the CUDA kernels."""

import math

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F

from baggan.stylegan2 import ops


def _scipy_upfirdn2d(x: np.ndarray, taps: np.ndarray, up: int) -> np.ndarray:
    """Separable 2-D zero-insertion + full FIR convolution, from scipy's 1-D upfirdn along both axes."""
    y = scipy.signal.upfirdn(taps, x, up=up, axis=2)
    return scipy.signal.upfirdn(taps, y, up=up, axis=3)


@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2)])
def test_upfirdn2d_matches_direct_definition(up, down):
    """Zero-insert, pad, true convolution, decimate — computed by a direct numpy loop."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    f = rng.standard_normal((3, 4)).astype(np.float32)
    pad = (2, 1, 1, 3)  # x0, x1, y0, y1
    out = ops.upfirdn2d(torch.from_numpy(x), torch.from_numpy(f), up=up, down=down, padding=list(pad)).numpy()

    u = np.zeros((1, 2, 5 * up, 6 * up), np.float32)
    u[:, :, ::up, ::up] = x
    p = np.pad(u, [(0, 0), (0, 0), (pad[2], pad[3]), (pad[0], pad[1])])
    fh, fw = f.shape
    full = np.zeros((1, 2, p.shape[2] - fh + 1, p.shape[3] - fw + 1), np.float32)
    for i in range(full.shape[2]):
        for j in range(full.shape[3]):
            full[:, :, i, j] = (p[:, :, i : i + fh, j : j + fw] * f[::-1, ::-1]).sum(axis=(2, 3))
    np.testing.assert_allclose(out, full[:, :, ::down, ::down], atol=1e-5)


def test_upsample2d_equals_scipy_upfirdn():
    """2x FIR up-sampling with [1,3,3,1] equals scipy.signal.upfirdn (separable) after the centring crop."""
    x = np.random.default_rng(1).standard_normal((1, 1, 6, 6))
    taps = np.array([1, 3, 3, 1], np.float64)
    f = ops.setup_filter(taps.tolist())  # normalised 2-D outer product
    out = ops.upsample2d(torch.from_numpy(x), f).numpy()
    ref = _scipy_upfirdn2d(x, taps / taps.sum() * 2, up=2)  # gain up^2 over two axes = 2 per axis
    # scipy's full output has 5*2 + 4 = 14 samples per axis; ours is the centred 12 (offset (4 + 2 - 1)//2 - 1 = 1)
    np.testing.assert_allclose(out, ref[:, :, 1:13, 1:13], atol=1e-5)
    assert out.shape[-1] == 12


def test_setup_filter_normalised_and_separable_choice():
    f = ops.setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and torch.isclose(f.sum(), torch.tensor(1.0))
    assert ops.setup_filter([1.0] * 8).ndim == 1  # long filters stay separable


def test_separable_filter_equals_2d():
    x = torch.randn(2, 3, 9, 9)
    taps = torch.arange(1.0, 9.0)
    sep = ops.setup_filter(taps, separable=True)
    full = ops.setup_filter(taps, separable=False)
    for up, down in [(1, 1), (2, 1), (1, 2)]:
        a = ops.upfirdn2d(x, sep, up=up, down=down, padding=3, gain=2.0)
        b = ops.upfirdn2d(x, full, up=up, down=down, padding=3, gain=2.0)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_bias_act_definition():
    x = torch.randn(2, 4, 3, 3)
    b = torch.randn(4)
    y = ops.bias_act(x, b, act="lrelu", clamp=0.5)
    ref = (F.leaky_relu(x + b[None, :, None, None], 0.2) * math.sqrt(2)).clamp(-0.5, 0.5)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(ops.bias_act(x, None, act="linear"), x)


@pytest.mark.parametrize("up,down,k", [(1, 1, 3), (2, 1, 3), (1, 2, 3), (2, 1, 1), (1, 2, 1)])
def test_conv2d_resample_equals_separate_steps(up, down, k):
    """Fused paths (transposed / strided conv) equal the plain recipe: pad once, FIR-filter (with zero
    insertion when up-sampling), valid convolution, decimate."""
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    w = torch.randn(5, 3, k, k, dtype=torch.float64)
    f = ops.setup_filter([1, 3, 3, 1])
    p = k // 2
    out = ops.conv2d_resample(x, w, f, up=up, down=down, padding=p, flip_weight=(up == 1))
    if up > 1:  # true convolution (flip_weight=False) on the zero-inserted, filtered image
        ref = F.conv2d(ops.upfirdn2d(x, f, up=2, padding=[p + 2, p + 1, p + 2, p + 1], gain=4), w.flip([2, 3]))
    elif down > 1:
        ref = F.conv2d(ops.upfirdn2d(x, f, padding=p + 1), w)[:, :, ::2, ::2]
    else:
        ref = F.conv2d(x, w, padding=p)
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)


def test_modulated_conv_fused_equals_unfused_and_demodulates():
    """Eq. 1-3: per-sample weights have unit L2 norm per output channel; fused and unfused agree."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, 8, 8)
    weight = torch.randn(6, 4, 3, 3)
    styles = torch.randn(3, 4)
    a = ops.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=True)
    b = ops.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=False)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # the effective per-sample kernel: run on one-hot inputs at the centre
    w = weight[None] * styles[:, None, :, None, None]
    w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    norms = w.square().sum(dim=[2, 3, 4]).sqrt()
    torch.testing.assert_close(norms, torch.ones_like(norms))
    ref = torch.stack([F.conv2d(x[i : i + 1], w[i], padding=1)[0] for i in range(3)])
    torch.testing.assert_close(a, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (compares the compiled kernels with the reference)")
def test_cuda_kernels_match_reference():
    from baggan.stylegan2 import cuda as kernels

    assert kernels.available(), "CUDA present but the kernels did not build"
    x = torch.randn(4, 8, 17, 19, device="cuda")
    b = torch.randn(8, device="cuda")
    with torch.no_grad():
        for act in kernels.ACT_CODES:
            ref = ops.bias_act_ref(x, b, 1, act, 0.2, 1.7, 0.9)
            torch.testing.assert_close(kernels.bias_act(x, b, 1, act, 0.2, 1.7, 0.9), ref, atol=1e-5, rtol=1e-5)
        f = ops.setup_filter([1, 3, 3, 1]).cuda()
        for up, down, pad in [(1, 1, (1, 2, 2, 1)), (2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (2, 2, (-1, 2, 0, 1))]:
            ref = ops.upfirdn2d_ref(x, f, up, down, pad, False, 4.0)
            got = kernels.upfirdn2d(x, f, up, down, pad, False, 4.0)
            torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
        half = x.half()
        torch.testing.assert_close(kernels.upfirdn2d(half, f, 2, 1, (2, 1, 2, 1), False, 4.0).float(),
                                   ops.upfirdn2d_ref(half.float(), f, 2, 1, (2, 1, 2, 1), False, 4.0), atol=1e-2, rtol=1e-2)
