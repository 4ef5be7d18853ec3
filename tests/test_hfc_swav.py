"""W+ views, f_theta, the global + local SwAV loss (Eq. 2-3, 10-11), LARS; the loss falls on a toy generator."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from toygen import ToyGenerator, single_thread  # noqa: F401

from hfc.augment import ViewSampler, add_noise_ws, interpolate_ws, style_blocks
from hfc.config import AugmentConfig, HFCConfig, OptimConfig, SamplingConfig, SwAVConfig
from hfc.errors import HFCError
from hfc.features import gather_pixels
from hfc.generator import FeatureLayer, layer_channels
from hfc.lars import LARS
from hfc.swav import HFCLoss, ProjectionHead, SwAVLoss, encode_pair_at, swapped_prediction
from hfc.train import build_objective, hfc_step


@pytest.fixture(scope="module")
def gen():
    return ToyGenerator()


def test_style_blocks_of_the_toy_generator(gen):
    blocks = style_blocks(gen)
    assert [(b.resolution, b.layers, b.ws) for b in blocks] == [
        (4, (0,), (0,)), (8, (1, 2), (1, 2)), (16, (3, 4), (3, 4)), (32, (5, 6), (5, 6, 7))]  # fmt: skip
    assert [b.first_layer for b in blocks] == [0, 1, 3, 5]


def test_style_blocks_of_an_nvlabs_256_layout():
    """b4.conv1 → ws[0]; b{r}.conv0/conv1 → ws[2k-1], ws[2k]; num_ws = 14 (the ToRGB entries go with a block)."""
    layers = [FeatureLayer("b4.conv1", 512, 4, 0)]
    for k, r in enumerate([8, 16, 32, 64, 128, 256], start=1):
        layers += [FeatureLayer(f"b{r}.conv0", 512, r, 2 * k - 1), FeatureLayer(f"b{r}.conv1", 512, r, 2 * k)]
    blocks = style_blocks(SimpleNamespace(feature_layers=layers, num_ws=14))
    assert len(blocks) == 7  # Table 7's "Layer 0..6"
    assert blocks[0].ws == (0,) and blocks[1].ws == (1, 2) and blocks[6].ws == (11, 12, 13)
    assert blocks[6].first_layer == 11


def test_interpolation_and_noise_touch_only_the_block(gen):
    ws, partner = gen.sample_ws(3, seed=1), gen.sample_ws(3, seed=2)
    out = interpolate_ws(ws, partner, (1, 2), 0.9)  # Eq. 7
    assert torch.allclose(out[:, 1:3], 0.9 * ws[:, 1:3] + 0.1 * partner[:, 1:3], atol=1e-6)
    assert torch.equal(out[:, [0, 3, 4, 5, 6, 7]], ws[:, [0, 3, 4, 5, 6, 7]])
    noisy = add_noise_ws(ws, (3, 4), 0.5, torch.Generator().manual_seed(0))  # Eq. 6
    delta = noisy - ws
    assert torch.equal(delta[:, [0, 1, 2, 5, 6, 7]], torch.zeros(3, 6, gen.w_dim))
    assert torch.equal(delta[:, 3], delta[:, 4]) and 0.3 < float(delta[:, 3].std()) < 0.7


@pytest.mark.parametrize("method", ["interpolate", "noise"])
def test_views_are_pixel_aligned_and_share_the_layers_before_the_block(gen, method):
    sampler = ViewSampler(gen, AugmentConfig(method=method, block=2))
    views = sampler(gen.sample_ws(2, seed=5), torch.Generator().manual_seed(0))
    assert views.block.index == 2 and views.block.first_layer == 3
    with torch.no_grad():
        _, fs = gen.synthesize(views.ws_s)
        _, ft = gen.synthesize(views.ws_t)
    for layer in range(7):
        same = torch.equal(fs[layer], ft[layer])
        assert same == (layer < 3), f"layer {layer}"


def test_fixed_block_out_of_range_is_a_clear_error(gen):
    with pytest.raises(HFCError, match="augment.block: 4 is out of range; this generator has 4 style blocks"):
        ViewSampler(gen, AugmentConfig(block=4))


def test_swapped_prediction_hand_case():
    scores_s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    scores_t = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    q_s = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    q_t = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]])
    tau = 0.5
    ls, lt = F.log_softmax(scores_s / tau, -1), F.log_softmax(scores_t / tau, -1)
    expected = -(ls[0, 0, 1] + ls[0, 1, 0]) / 2 - (lt[0, 0, 0] + lt[0, 1, 1]) / 2
    assert torch.allclose(swapped_prediction(scores_s, scores_t, q_s, q_t, tau), expected)


def test_local_term_masks_exactly_the_layers_before_the_block(gen):
    head = ProjectionHead(layer_channels(gen), 16)
    with torch.no_grad():
        _, feats = gen.synthesize(gen.sample_ws(2, seed=7))
    feats = [h.clone().requires_grad_(True) for h in feats]
    coords = torch.randint(0, 32, (2, 40, 2), generator=torch.Generator().manual_seed(0))
    z_global, z_local = encode_pair_at(head, feats, coords, 32, first_layer=3, want_global=True, want_local=True)
    masked = [torch.zeros_like(h) if i < 3 else h for i, h in enumerate(feats)]
    ref_local = head.activate(gather_pixels(head.proj.naive(masked, 32), coords), dim=-1)
    ref_global = head.activate(gather_pixels(head.proj.naive(feats, 32), coords), dim=-1)
    assert (z_local - ref_local).abs().max() < 1e-5 and (z_global - ref_global).abs().max() < 1e-5
    with torch.no_grad():  # the no-gradient path (in-place activations) gives the same codes
        for first in (0, 3):
            zg, zl = encode_pair_at(head, feats, coords, 32, first_layer=first, want_global=True, want_local=True)
            assert (zg - ref_global).abs().max() < 1e-5
            assert (zl - (ref_global if first == 0 else ref_local)).abs().max() < 1e-5
    z_local.sum().backward()
    assert all(feats[i].grad is None or not feats[i].grad.any() for i in range(3))
    assert all(feats[i].grad.abs().sum() > 0 for i in range(3, 7))


@pytest.mark.parametrize("use_global,use_local", [(True, True), (True, False), (False, True)])
def test_hfc_loss_terms_are_switchable(gen, use_global, use_local):
    head = ProjectionHead(layer_channels(gen), 16)
    loss_fn = HFCLoss(SwAVLoss(16, 20, temperature=0.1, epsilon=0.05), use_global, use_local)
    with torch.no_grad():
        _, feats = gen.synthesize(gen.sample_ws(2, seed=8))
    coords = torch.randint(0, 32, (1, 2 * 30, 2), generator=torch.Generator().manual_seed(0))
    loss, parts = loss_fn(head, [h[:1] for h in feats], [h[1:] for h in feats], coords, 32, 3, patches=2)
    assert set(parts) == {k for k, on in (("global", use_global), ("local", use_local)) if on}
    assert torch.isfinite(loss) and abs(float(loss.detach()) - sum(parts.values())) < 1e-4


def test_lars_trust_ratio_hand_case():
    w = torch.nn.Parameter(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    b = torch.nn.Parameter(torch.tensor([1.0]))
    opt = LARS([w, b], lr=0.1, momentum=0.9, trust_coefficient=0.01, exclude_bias_and_norm=True)
    w.grad, b.grad = torch.tensor([[0.6, 0.8]]), torch.tensor([0.5])  # |g| = 1 → trust 0.01 * 5 / 1 = 0.05
    opt.step()
    assert torch.allclose(w.data, torch.tensor([[3.0 - 0.1 * 0.05 * 0.6, 4.0 - 0.1 * 0.05 * 0.8]]))
    assert torch.allclose(b.data, torch.tensor([1.0 - 0.1 * 0.5]))  # excluded: plain SGD
    w_before = w.data.clone()
    opt.step()  # same gradient: momentum buffer 0.9 * d + d with the new trust ratio
    trust = 0.01 * float(w_before.norm()) / 1.0
    expected = w_before - 0.1 * (0.9 * 0.05 + trust) * torch.tensor([[0.6, 0.8]])
    assert torch.allclose(w.data, expected, atol=1e-7)
    ratio = LARS.trust_ratio(torch.tensor([3.0, 4.0]), torch.tensor([0.6, 0.8]), 0.01, weight_decay=1.0, eps=0.0)
    assert torch.isclose(ratio, torch.tensor(0.01 * 5 / (1 + 5)))


def test_lars_adapts_biases_by_default():
    b = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = LARS([b], lr=1.0, momentum=0.0, trust_coefficient=0.01)
    b.grad = torch.tensor([6.0, 8.0])  # |b| = 5, |g| = 10 → trust 0.005
    opt.step()
    assert torch.allclose(b.data, torch.tensor([3.0 - 0.03, 4.0 - 0.04]))


def test_swav_loss_falls_on_the_toy_generator(gen):
    cfg = HFCConfig(
        dim=32, sampling=SamplingConfig(mode="patches", num_patches=2, patch_size=16),
        swav=SwAVConfig(prototypes=64, temperature=0.1, epsilon=0.05), optim=OptimConfig(),
    )  # fmt: skip
    head, objective = build_objective(cfg, layer_channels(gen))
    opt = LARS(list(head.parameters()) + list(objective.parameters()), lr=0.01, trust_coefficient=0.01)
    sampler, rng = ViewSampler(gen, cfg.augment), torch.Generator().manual_seed(0)
    losses = []
    for _ in range(80):
        loss, _, _ = hfc_step(gen, head, objective, sampler, cfg, 2, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        objective.after_step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < first - 0.5, (first, last)
    norms = objective.pair_loss.prototypes.weight.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # prototypes stay on the sphere
