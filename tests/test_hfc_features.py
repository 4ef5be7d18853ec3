"""Eq. 8 and the exact fused projection: fused == naive (whole image, sampled pixels, masked layers)."""

import pytest
import torch
from toygen import ToyGenerator, single_thread  # noqa: F401

from hfc.features import (
    FusedLinear,
    gather_pixels,
    layer_slices,
    sample_at,
    sample_features_at,
    upsample,
    upsample_concat,
    upsampling_matrix,
)
from hfc.generator import layer_channels


@pytest.fixture(scope="module")
def feats():
    gen = ToyGenerator()
    with torch.no_grad():
        _, features = gen.synthesize(gen.sample_ws(2, seed=3))
    return gen, features


def test_layer_slices_cover_the_concatenation(feats):
    gen, features = feats
    slices = layer_slices(layer_channels(gen))
    h = upsample_concat(features, 32)
    assert h.shape == (2, 144, 32, 32) and slices[-1].stop == 144
    assert [sl.stop - sl.start for sl in slices] == [f.shape[1] for f in features]
    assert torch.allclose(h[:, slices[-1]], features[-1])  # the 32x32 layer is not resampled


@pytest.mark.parametrize("size", [32, 64])
def test_fused_equals_naive_whole_image(feats, size):
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 24)
    fused, naive = proj(features, size), proj.naive(features, size)
    assert fused.shape == naive.shape == (2, 24, size, size)
    assert (fused - naive).abs().max() < 1e-5


def test_fused_gradients_equal_naive(feats):
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 8)
    target = torch.randn(2, 8, 32, 32)
    grads = []
    for path in (proj.forward, proj.naive):
        proj.zero_grad()
        ((path(features, 32) - target) ** 2).mean().backward()
        grads.append((proj.weight.grad.clone(), proj.bias.grad.clone()))
    assert (grads[0][0] - grads[1][0]).abs().max() < 1e-6
    assert (grads[0][1] - grads[1][1]).abs().max() < 1e-6


# (32, 5): every layer interpolated raw; (64, 100): low-res layers projected, then interpolated;
# (32, 600): dense, the whole-image fused projection read at the pixels
@pytest.mark.parametrize("size,pixels", [(32, 5), (64, 100), (32, 600)])
def test_fused_at_sampled_pixels_equals_naive(feats, size, pixels):
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 24)
    coords = torch.randint(0, size, (2, pixels, 2), generator=torch.Generator().manual_seed(1))
    at = proj.at(features, coords, size)
    ref = gather_pixels(proj.naive(features, size), coords)
    assert at.shape == (2, pixels, 24)
    assert (at - ref).abs().max() < 1e-5
    shared = proj.at(features, coords[0], size)  # [P, 2] coordinates shared by the batch
    assert (shared - gather_pixels(proj.naive(features, size), coords[0])).abs().max() < 1e-5


def test_sampled_raw_features_equal_eq8(feats):
    _, features = feats
    coords = torch.randint(0, 48, (2, 100, 2), generator=torch.Generator().manual_seed(2))
    ref = gather_pixels(upsample_concat(features, 48), coords)
    assert (sample_features_at(features, coords, 48) - ref).abs().max() < 1e-6
    assert (sample_at(features[0], coords, 48) - ref[..., :32]).abs().max() < 1e-6


@pytest.mark.parametrize("first", [0, 1, 3, 5, 7])
def test_dropping_layers_equals_masking_their_channels(feats, first):
    """Eq. 11: M_{1,s-1} o H zeroes the channels of layers before s == leaving them out of the fused sum."""
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 16)
    masked = [torch.zeros_like(h) if i < first else h for i, h in enumerate(features)]
    kept = range(first, len(features))
    assert (proj(features, 32, layers=kept) - proj.naive(masked, 32)).abs().max() < 1e-5
    coords = torch.randint(0, 32, (2, 50, 2), generator=torch.Generator().manual_seed(4))
    ref = gather_pixels(proj.naive(masked, 32), coords)
    assert (proj.at(features, coords, 32, layers=kept) - ref).abs().max() < 1e-5


@pytest.mark.parametrize("pixels", [3, 1000])  # sparse: grid_sample; dense: upsample once, then gather
def test_sample_at_paths_agree_with_upsampling(feats, pixels):
    _, features = feats
    coords = torch.randint(0, 32, (2, pixels, 2), generator=torch.Generator().manual_seed(5))
    for h in features:
        ref = gather_pixels(torch.nn.functional.interpolate(h, size=(32, 32), mode="bilinear"), coords)
        assert (sample_at(h, coords, 32) - ref).abs().max() < 1e-6


@pytest.mark.parametrize("size,first,bias", [(32, 0, True), (64, 0, True), (32, 3, False), (32, 8, True), (32, 9, True)])
def test_sparse_inference_path_equals_naive(feats, size, first, bias):
    """Without gradient on the CPU, forward sums the upsampled groups in one sparse product: same values;
    size 64 has no native-resolution group, first=9 selects no layer at all (bias only)."""
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 24)
    masked = [torch.zeros_like(h) if i < first else h for i, h in enumerate(features)]
    with torch.no_grad():
        fast = proj(features, size, layers=range(first, len(features)), bias=bias)
        ref = proj.naive(masked, size)
        if not bias:
            ref -= proj.bias.view(1, -1, 1, 1)
    assert fast.shape == (2, 24, size, size)
    assert (fast - ref).abs().max() < 1e-5


def test_sparse_path_with_gaps_in_the_selected_layers(feats):
    """Layers picked with gaps (their weight columns are not one block): still the masked naive values."""
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 24)
    keep = [1, 3, 4, len(features) - 1]
    masked = [h if i in keep else torch.zeros_like(h) for i, h in enumerate(features)]
    with torch.no_grad():
        assert (proj(features, 32, layers=keep) - proj.naive(masked, 32)).abs().max() < 1e-5


@pytest.mark.parametrize("size,tile,first", [(32, 1024, 0), (32, 100, 0), (64, 1000, 0), (32, 77, 8)])
def test_tiles_cover_forward(feats, size, tile, first):
    """FusedLinear.tiles: blocks of row-major pixels (uneven last block, no native group at 64, only the native
    group from layer 8) that together are forward's map."""
    gen, features = feats
    proj = FusedLinear(layer_channels(gen), 24)
    layers = range(first, len(features))
    with torch.no_grad():
        full = proj(features, size, layers=layers).flatten(2).transpose(1, 2)  # [N, size², D]
        blocks = list(proj.tiles(features, size, tile, layers=layers))
    assert [r.start for r, _ in blocks] == list(range(0, size * size, tile)) and blocks[-1][0].stop == size * size
    assert (torch.cat([y for _, y in blocks], 1) - full).abs().max() < 1e-5


def test_upsampling_matrix_rows_are_bilinear_weights():
    k = upsampling_matrix((2, 4), 8).to_dense()
    assert k.shape == (64, 4 + 16)
    assert torch.allclose(k.sum(1), torch.full((64,), 2.0))  # each block's weights sum to one per pixel
    x = torch.randn(1, 1, 4, 4)
    assert torch.allclose((k[:, 4:] @ x.flatten()).view(8, 8), upsample(x, 8)[0, 0], atol=1e-6)
