"""Generator / discriminator behaviour: shapes for every cfg, hidden features, equalised lr, demodulation,
noise modes, truncation, conditioning, determinism."""

import math

import pytest
import torch

from baggan.errors import ConfigError
from baggan.stylegan2 import NetworkConfig, StyleGANFeatureGenerator, build_discriminator, build_generator
from baggan.stylegan2.networks import FullyConnectedLayer, SynthesisLayer
from hfc.generator import FeatureGenerator, check_features, hidden_width

CFGS = ["auto", "stylegan2", "paper256", "paper512", "paper1024", "cifar"]


def tiny(cfg: str = "auto", resolution: int = 16, **kw) -> NetworkConfig:
    """A small config: narrow channels so every test stays fast."""
    return NetworkConfig(cfg=cfg, resolution=resolution, z_dim=32, w_dim=32, channel_max=32, **kw)


@pytest.mark.parametrize("cfg", CFGS)
def test_shapes_for_every_cfg(cfg):
    c = tiny(cfg, resolution=32)
    G, D = build_generator(c), build_discriminator(c)
    z = torch.randn(4, 32)
    img = G(z, None)
    assert img.shape == (4, 3, 32, 32) and img.dtype == torch.float32
    assert G.num_ws == 2 * int(math.log2(32)) - 2  # 2 per block, minus b4's missing conv0, plus last ToRGB
    assert G.mapping(z, None).shape == (4, G.num_ws, 32)
    assert D(img, None).shape == (4, 1)
    r = c.resolved()
    assert G.mapping.num_layers == {"auto": 2, "cifar": 2}.get(cfg, 8)
    assert (D.b32.__class__.__name__, r.d_architecture) == ("DiscriminatorBlock", "orig" if cfg == "cifar" else "resnet")


def test_official_channel_counts():
    """cfg_specs of the official train.py: channel_base = fmaps x 32768, capped at channel_max 512."""
    assert NetworkConfig(cfg="stylegan2", resolution=1024).channels(1024) == 32
    assert NetworkConfig(cfg="paper256", resolution=256).channels(256) == 64
    assert NetworkConfig(cfg="auto", resolution=256).resolved().channel_base == 16384
    assert NetworkConfig(cfg="auto", resolution=512).resolved().channel_base == 32768
    assert NetworkConfig(cfg="auto", resolution=256).resolved().mbstd_group_size == 4
    assert NetworkConfig(cfg="paper512", resolution=512).resolved().mbstd_group_size == 8
    assert NetworkConfig(cfg="cifar", resolution=32).resolved().mbstd_group_size == 32
    assert NetworkConfig(cfg="stylegan2", channel_base=8192).resolved().channel_base == 8192  # explicit wins


def test_config_validation_names_key():
    with pytest.raises(ValueError, match="resolution"):
        NetworkConfig(resolution=48)
    with pytest.raises(ValueError, match="channel_base"):
        NetworkConfig(cfg="custom", mapping_layers=2, d_architecture="resnet", mbstd_group_size=4)


def test_network_block_loads_from_yaml(tmp_path):
    from baggan.config import load_config

    p = tmp_path / "net.yaml"
    p.write_text("cfg: paper256\nresolution: 64\nc_dim: 3\nconv_clamp: null\n")
    c = load_config(p, NetworkConfig)
    assert c.c_dim == 3 and c.conv_clamp is None and c.resolved().channel_base == 16384
    p.write_text("cfg: paper256\nresolutoin: 64\n")
    with pytest.raises(ConfigError, match="resolutoin"):
        load_config(p, NetworkConfig)


@pytest.mark.parametrize("cfg,width", [("stylegan2", 5376), ("paper256", 4480)])
def test_ffhq256_hidden_width(cfg, width):
    """The paper's C_hidden for the FF-HQ-256 config-f generator (and the paper256 config)."""
    fg = StyleGANFeatureGenerator(build_generator(NetworkConfig(cfg=cfg, resolution=256)))
    assert hidden_width(fg) == width
    assert [layer.name for layer in fg.feature_layers][:3] == ["b4.conv1", "b8.conv0", "b8.conv1"]
    assert len(fg.feature_layers) == 13 and fg.num_ws == 14


def test_feature_generator_protocol_and_features():
    G = build_generator(tiny(resolution=16)).eval()
    fg = StyleGANFeatureGenerator(G)
    assert isinstance(fg, FeatureGenerator)
    ws = fg.sample_ws(3, psi=0.7, seed=5)
    assert ws.shape == (3, G.num_ws, 32)
    torch.testing.assert_close(ws, fg.sample_ws(3, psi=0.7, seed=5))
    img, feats = fg.synthesize(ws)
    check_features(fg, feats)
    assert img.shape == (3, 3, 16, 16)
    assert [layer.w_index for layer in fg.feature_layers] == [0, 1, 2, 3, 4]
    # the last feature is the last conv's output: ToRGB of it plus the up-sampled skip image gives img
    assert fg.synthesize(ws, return_features=False)[1] == []
    torch.testing.assert_close(fg.synthesize(ws, return_features=False)[0], img)


def test_equalised_lr_scaling():
    """Weights are stored as N(0, 1)/lr and used x lr/sqrt(fan_in) (He scaling at run time); biases x lr."""
    fc = FullyConnectedLayer(400, 300, lr_multiplier=0.01, bias_init=0.5)
    assert fc.weight_gain == pytest.approx(0.01 / 20) and fc.bias_gain == 0.01
    assert fc.weight.std().item() == pytest.approx(100, rel=0.05)
    x = torch.randn(8, 400)
    ref = x @ (fc.weight * 0.01 / 20).t() + 0.5 * 0.01
    torch.testing.assert_close(fc(x), ref, atol=1e-5, rtol=1e-5)
    effective = (fc.weight * fc.weight_gain).std().item()
    assert effective == pytest.approx(1 / math.sqrt(400), rel=0.05)  # He-style 1/sqrt(fan_in)


def test_demodulated_weights_have_unit_norm():
    """Eq. 3: after modulation and demodulation each output channel's kernel has L2 norm 1 for every sample."""
    layer = SynthesisLayer(8, 6, w_dim=16, resolution=8, use_noise=False)
    w = torch.randn(5, 16)
    styles = layer.affine(w)
    wk = layer.weight[None] * styles[:, None, :, None, None]
    wk = wk * (wk.square().sum(dim=[2, 3, 4], keepdim=True) + 1e-8).rsqrt()
    torch.testing.assert_close(wk.square().sum(dim=[2, 3, 4]), torch.ones(5, 6))
    # and the layer computes exactly that convolution (before bias/activation) on a delta input
    x = torch.zeros(5, 8, 8, 8)
    x[:, :, 4, 4] = 1
    out = layer(x, w, noise_mode="none")
    pre = torch.nn.functional.leaky_relu(torch.stack([torch.nn.functional.conv2d(x[i:i + 1], wk[i], padding=1)[0]
                                                      for i in range(5)]) + layer.bias[None, :, None, None], 0.2)
    torch.testing.assert_close(out, pre * math.sqrt(2), atol=1e-5, rtol=1e-5)


def test_noise_modes():
    G = build_generator(tiny(resolution=16)).eval()
    with torch.no_grad():
        for layer in G.synthesis.modules():
            if isinstance(layer, SynthesisLayer):
                layer.noise_strength.fill_(0.5)
        ws = G.mapping(torch.randn(2, 32), None)
        const_a, const_b = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
        rand_a, rand_b = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
        none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(const_a, const_b)
    assert not torch.allclose(rand_a, rand_b)
    assert not torch.allclose(const_a, none)
    with pytest.raises(AssertionError):
        G.synthesis(ws, noise_mode="bogus")


def test_truncation_and_w_avg_tracking():
    G = build_generator(tiny(resolution=8))
    z = torch.randn(6, 32)
    with torch.no_grad():
        G.mapping.w_avg.copy_(torch.randn(32))
        w = G.mapping(z, None)
        w_avg = G.mapping.w_avg
        torch.testing.assert_close(G.mapping(z, None, truncation_psi=0), w_avg.expand_as(w))
        torch.testing.assert_close(G.mapping(z, None, truncation_psi=0.5), w_avg + 0.5 * (w - w_avg))
        cut = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
        torch.testing.assert_close(cut[:, 2:], w[:, 2:])
        torch.testing.assert_close(cut[:, :2], (w_avg + 0.5 * (w - w_avg))[:, :2])
        before = G.mapping.w_avg.clone()
        G.train()(z, None)  # no update without update_emas, even in training mode
        assert torch.equal(G.mapping.w_avg, before)
        G.mapping(z, None, update_emas=True)
        torch.testing.assert_close(G.mapping.w_avg, w[:, 0].mean(0).lerp(before, 0.995))


def test_class_conditioning():
    c_dim = 4
    cfg = tiny(resolution=16, c_dim=c_dim)
    G, D = build_generator(cfg).eval(), build_discriminator(cfg)
    z = torch.randn(4, 32)
    c = torch.eye(c_dim)
    img = G(z, c)
    assert img.shape == (4, 3, 16, 16) and D(img, c).shape == (4, 1)
    other = G(z, c.roll(1, dims=0))
    assert not torch.allclose(img, other)  # the label changes the image
    with pytest.raises(AssertionError, match="c"):
        G(z, None)
    fg = StyleGANFeatureGenerator(G, class_idx=2)
    assert fg.sample_ws(2, seed=0).shape == (2, G.num_ws, 32)


def test_fixed_seeds_give_identical_images():
    cfg = tiny(resolution=16)
    torch.manual_seed(3)
    G1 = build_generator(cfg).eval()
    torch.manual_seed(3)
    G2 = build_generator(cfg).eval()
    f1, f2 = StyleGANFeatureGenerator(G1), StyleGANFeatureGenerator(G2)
    a, fa = f1.synthesize(f1.sample_ws(2, seed=11))
    b, fb = f2.synthesize(f2.sample_ws(2, seed=11))
    assert torch.equal(a, b) and all(torch.equal(x, y) for x, y in zip(fa, fb))
    c, _ = f1.synthesize(f1.sample_ws(2, seed=12))
    assert not torch.equal(a, c)


@pytest.mark.parametrize("arch", ["orig", "skip", "resnet"])
def test_architectures_train_step(arch):
    """Every G/D architecture runs forward + backward (non-fused training path) with finite gradients."""
    cfg = tiny(resolution=16, architecture=arch, d_architecture=arch, mbstd_group_size=2)
    G, D = build_generator(cfg).train(), build_discriminator(cfg).train()
    img = G(torch.randn(4, 32), None)
    loss = torch.nn.functional.softplus(-D(img, None)).mean()
    loss.backward()
    grads = [p.grad for p in G.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert G.synthesis.b16.conv1.weight.grad.abs().sum() > 0


def test_fp32_on_cpu_even_with_fp16_blocks():
    cfg = tiny(resolution=16, num_fp16_res=4)
    G = build_generator(cfg).eval()
    assert G.synthesis.b16.use_fp16
    img, feats = G.synthesis(G.mapping(torch.randn(1, 32), None), return_features=True)
    assert img.dtype == torch.float32 and all(f.dtype == torch.float32 for f in feats)
