"""Network files: our round trip, official NVlabs pickles (built here with the record structure their
persistence module writes), refusal of foreign globals, rosinality key mapping."""

import io
import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from baggan.errors import UserError
from baggan.stylegan2 import NetworkConfig, build_discriminator, build_generator, load_network, save_network
from baggan.stylegan2.checkpoint import load_network_file


def tiny(**kw) -> NetworkConfig:
    return NetworkConfig(cfg="auto", resolution=16, z_dim=32, w_dim=32, channel_max=32, **kw)


def randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Perturb every parameter and w_avg so that loading errors cannot hide behind zeros/ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in module.named_buffers():
            if name.endswith("w_avg"):
                b.copy_(torch.randn(b.shape, generator=g))
    return module.eval()


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module, c_dim: int = 0) -> None:
    """Same mapping (with truncation), synthesis (const noise) and discriminator outputs."""
    z = torch.randn(2, 32, generator=torch.Generator().manual_seed(1))
    c = torch.eye(c_dim)[:2] if c_dim else None
    with torch.no_grad():
        if hasattr(a, "mapping") and hasattr(a, "synthesis"):
            wa, wb = a.mapping(z, c, truncation_psi=0.7), b.mapping(z, c, truncation_psi=0.7)
            assert torch.equal(wa, wb)
            assert torch.equal(a.synthesis(wa, noise_mode="const"), b.synthesis(wa, noise_mode="const"))
        else:
            img = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
            assert torch.equal(a(img, c), b(img, c))


# ----------------------------------------------------------------------------------------------------
# Our own format.


def test_round_trip_weights_only(tmp_path):
    cfg = tiny(c_dim=3)
    nets = {"G": randomized(build_generator(cfg), 1), "D": randomized(build_discriminator(cfg), 2),
            "G_ema": randomized(build_generator(cfg), 3)}
    path = tmp_path / "net.pt"
    save_network(path, nets, cfg, extra={"kimg": 12.5})
    payload = torch.load(path, weights_only=True)  # plain tensors, dicts, strings, numbers only
    assert payload["config"]["cfg"] == "auto" and payload["extra"] == {"kimg": 12.5}
    nf = load_network_file(path)
    assert nf.cfg == cfg and nf.source == "baggan" and set(nf.nets) == {"G", "D", "G_ema"}
    for name in nets:
        outputs_equal(nets[name], nf.nets[name], c_dim=3)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_our_file_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_network(tmp_path / "missing.pt")
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(UserError, match="junk.pt"):
        load_network(bad)
    cfg = tiny()
    path = tmp_path / "wrong.pt"
    save_network(path, {"G": build_generator(cfg)}, tiny(mapping_layers=3))  # config says 3 mapping layers
    with pytest.raises(UserError, match="G does not fit"):
        load_network(path)


# ----------------------------------------------------------------------------------------------------
# Official NVlabs pickles, written here with the structure of torch_utils.persistence (format facts:
# shared/design/FORMATS.md): every network is `_reconstruct_persistent_obj(meta)` with meta = {type,
# version, module_src, class_name, state=__dict__}; constructor kwargs are dnnlib EasyDicts.


@pytest.fixture
def fake_official_modules(monkeypatch):
    """Placeholder modules so that pickle names the official globals (`dnnlib.util.EasyDict`,
    `torch_utils.persistence._reconstruct_persistent_obj`); their bodies must never run on load."""
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - must never be called by our loader
        raise AssertionError("the loader ran the original reconstruct function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    for name, mod in [("dnnlib", types.ModuleType("dnnlib")), ("dnnlib.util", util),
                      ("torch_utils", types.ModuleType("torch_utils")), ("torch_utils.persistence", persistence)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return EasyDict, _reconstruct_persistent_obj


class _Persistent:
    """Pickles as `_reconstruct_persistent_obj(meta)` exactly like an official persistent-class instance."""

    def __init__(self, reconstruct, class_name: str, state: dict):
        self.reconstruct, self.class_name, self.state = reconstruct, class_name, state

    def __reduce__(self):
        meta = dict(type="class", version=6, class_name=self.class_name, state=self.state,
                    module_src="raise SystemExit('module_src must never be executed')\n")
        return self.reconstruct, (meta,)


def as_record(module: torch.nn.Module, reconstruct, init_args=(), init_kwargs=None):
    """The persistent-object record of `module`: its __dict__ with child modules as records, the init
    args/kwargs added as the persistence decorator does, and float attributes as numpy scalars (official
    modules keep np.float64 gains)."""
    state = dict(module.__dict__)
    state["_modules"] = {k: as_record(m, reconstruct) for k, m in module._modules.items()}
    state["_init_args"], state["_init_kwargs"] = tuple(init_args), init_kwargs or {}
    for k, v in list(state.items()):
        if isinstance(v, float):
            state[k] = np.float64(v)
    return _Persistent(reconstruct, type(module).__name__, state)


def write_official_pickle(path, EasyDict, reconstruct, nets: dict, cfg: NetworkConfig, protocol: int = 4) -> None:
    """A snapshot like training_loop.py writes: dict of G, D, G_ema records, augment_pipe, training_set_kwargs."""
    r = cfg.resolved()
    g_kwargs = EasyDict(z_dim=r.z_dim, w_dim=r.w_dim,
                        mapping_kwargs=EasyDict(num_layers=r.mapping_layers),
                        synthesis_kwargs=EasyDict(channel_base=r.channel_base, channel_max=r.channel_max,
                                                  num_fp16_res=r.num_fp16_res, conv_clamp=int(r.conv_clamp)),
                        c_dim=r.c_dim, img_resolution=r.resolution, img_channels=r.img_channels)
    d_kwargs = EasyDict(block_kwargs=EasyDict(), mapping_kwargs=EasyDict(),
                        epilogue_kwargs=EasyDict(mbstd_group_size=r.mbstd_group_size),
                        channel_base=r.channel_base, channel_max=r.channel_max, num_fp16_res=r.num_fp16_res,
                        conv_clamp=int(r.conv_clamp), c_dim=r.c_dim, img_resolution=r.resolution,
                        img_channels=r.img_channels)
    data = {"training_set_kwargs": EasyDict(path="data.zip", resolution=r.resolution), "augment_pipe": None}
    for name, m in nets.items():
        data[name] = as_record(m, reconstruct, init_kwargs=d_kwargs if name == "D" else g_kwargs)
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)


@pytest.mark.parametrize("protocol", [3, 4])
def test_official_pickle_loads_without_running_anything(tmp_path, fake_official_modules, protocol):
    EasyDict, reconstruct = fake_official_modules
    cfg = tiny()
    nets = {"G": randomized(build_generator(cfg), 1), "D": randomized(build_discriminator(cfg), 2),
            "G_ema": randomized(build_generator(cfg), 3)}
    path = tmp_path / "network-snapshot-000000.pkl"
    write_official_pickle(path, EasyDict, reconstruct, nets, cfg, protocol=protocol)
    raw = path.read_bytes()
    assert b"_reconstruct_persistent_obj" in raw and b"module_src" in raw and b"_load_from_bytes" in raw

    nf = load_network_file(path)
    assert nf.source == "nvlabs" and set(nf.nets) == {"G", "D", "G_ema"}
    assert nf.cfg.cfg == "custom" and nf.cfg.channel_base == cfg.resolved().channel_base
    assert nf.extra["training_set_kwargs"]["resolution"] == 16
    for name in nets:
        outputs_equal(nets[name], nf.nets[name])


def test_official_pickle_with_unsupported_kwarg_is_refused(tmp_path, fake_official_modules):
    EasyDict, reconstruct = fake_official_modules
    cfg = tiny()
    G = build_generator(cfg)
    path = tmp_path / "odd.pkl"
    kwargs = EasyDict(z_dim=32, w_dim=32, c_dim=0, img_resolution=16, img_channels=3,
                      mapping_kwargs=EasyDict(num_layers=2, embed_features=7), synthesis_kwargs=EasyDict())
    with open(path, "wb") as f:
        pickle.dump({"G_ema": as_record(G, reconstruct, init_kwargs=kwargs)}, f)
    with pytest.raises(UserError, match=r"G\.mapping_kwargs\.embed_features=7 is not supported"):
        load_network(path)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_foreign_global_is_refused_with_one_line(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(marker)}))
    with pytest.raises(UserError) as err:
        load_network(path)
    msg = str(err.value)
    assert f"'{os.system.__module__}.system'" in msg and "\n" not in msg and str(path) in msg
    assert not marker.exists()


def test_hostile_nested_storage_payload_is_refused(tmp_path):
    """torch.storage._load_from_bytes payloads are read with weights_only=True: code in them never runs."""
    marker = tmp_path / "pwned"
    inner = io.BytesIO()
    torch.save(_Evil(marker), inner, _use_new_zipfile_serialization=False)

    class Payload:
        def __reduce__(self):
            return torch.storage._load_from_bytes, (inner.getvalue(),)

    path = tmp_path / "nested.pkl"
    path.write_bytes(pickle.dumps({"G_ema": Payload()}))
    with pytest.raises(UserError, match="nested.pkl"):
        load_network(path)
    assert not marker.exists()


def test_cli_error_is_one_line(tmp_path):
    from click.testing import CliRunner

    from baggan.cli import cli

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(tmp_path / "x")}))
    result = CliRunner().invoke(cli, ["info", str(path)])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "refused" in result.output


# ----------------------------------------------------------------------------------------------------
# rosinality checkpoints: a state dict with rosinality's key names and tensor shapes, built here.


def to_rosinality_g(G) -> dict:
    """Our generator's weights under rosinality's names/shapes (Generator of stylegan2-pytorch model.py)."""
    sd = {k: v.clone() for k, v in G.state_dict().items()}
    out = {}
    for i in range(G.mapping.num_layers):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]

    def styled(src, dst, noise):
        out[f"{src}.conv.weight"] = sd[f"{dst}.weight"][None]
        out[f"{src}.conv.modulation.weight"] = sd[f"{dst}.affine.weight"]
        out[f"{src}.conv.modulation.bias"] = sd[f"{dst}.affine.bias"]
        out[f"{src}.noise.weight"] = sd[f"{dst}.noise_strength"].reshape(1)
        out[f"{src}.activate.bias"] = sd[f"{dst}.bias"]
        out[f"noises.noise_{noise}"] = sd[f"{dst}.noise_const"][None, None]

    def rgb(src, dst):
        out[f"{src}.conv.weight"] = sd[f"{dst}.weight"][None]
        out[f"{src}.conv.modulation.weight"] = sd[f"{dst}.affine.weight"]
        out[f"{src}.conv.modulation.bias"] = sd[f"{dst}.affine.bias"]
        out[f"{src}.bias"] = sd[f"{dst}.bias"].reshape(1, -1, 1, 1)

    styled("conv1", "synthesis.b4.conv1", 0)
    rgb("to_rgb1", "synthesis.b4.torgb")
    for k, res in enumerate(G.synthesis.block_resolutions[1:]):
        styled(f"convs.{2 * k}", f"synthesis.b{res}.conv0", 2 * k + 1)
        styled(f"convs.{2 * k + 1}", f"synthesis.b{res}.conv1", 2 * k + 2)
        rgb(f"to_rgbs.{k}", f"synthesis.b{res}.torgb")
        out[f"convs.{2 * k}.conv.blur.kernel"] = torch.ones(4, 4)  # fixed buffers, ignored by the loader
    return out


def to_rosinality_d(D) -> dict:
    """Our resnet discriminator under rosinality's Discriminator names (convs Sequential of ResBlocks)."""
    sd = {k: v.clone() for k, v in D.state_dict().items()}
    res0 = D.img_resolution
    out = {"convs.0.0.weight": sd[f"b{res0}.fromrgb.weight"], "convs.0.1.bias": sd[f"b{res0}.fromrgb.bias"]}
    for k, res in enumerate(D.block_resolutions):
        out.update({f"convs.{k + 1}.conv1.0.weight": sd[f"b{res}.conv0.weight"],
                    f"convs.{k + 1}.conv1.1.bias": sd[f"b{res}.conv0.bias"],
                    f"convs.{k + 1}.conv2.1.weight": sd[f"b{res}.conv1.weight"],
                    f"convs.{k + 1}.conv2.2.bias": sd[f"b{res}.conv1.bias"],
                    f"convs.{k + 1}.skip.1.weight": sd[f"b{res}.skip.weight"]})
    out.update({"final_conv.0.weight": sd["b4.conv.weight"], "final_conv.1.bias": sd["b4.conv.bias"],
                "final_linear.0.weight": sd["b4.fc.weight"], "final_linear.0.bias": sd["b4.fc.bias"],
                "final_linear.1.weight": sd["b4.out.weight"], "final_linear.1.bias": sd["b4.out.bias"]})
    return out


def rosinality_cfg() -> NetworkConfig:
    """rosinality's architecture: fp32, no clamping, 8 mapping layers, channel_multiplier 2, mbstd 4."""
    return NetworkConfig(cfg="custom", resolution=16, z_dim=32, w_dim=32, mapping_layers=8, channel_base=32768,
                         channel_max=32, num_fp16_res=0, conv_clamp=None, d_architecture="resnet",
                         mbstd_group_size=4)


def test_rosinality_key_mapping(tmp_path):
    cfg = rosinality_cfg()
    G, D = randomized(build_generator(cfg), 4), randomized(build_discriminator(cfg), 5)
    path = tmp_path / "stylegan2-tiny.pt"
    torch.save({"g_ema": to_rosinality_g(G), "d": to_rosinality_d(D), "latent_avg": G.mapping.w_avg.clone(),
                "args": __import__("argparse").Namespace(size=16)}, path)
    nf = load_network_file(path)
    assert nf.source == "rosinality" and set(nf.nets) == {"G_ema", "D"}
    assert nf.cfg.resolution == 16 and nf.cfg.mapping_layers == 8
    outputs_equal(G, nf.nets["G_ema"])
    outputs_equal(D, nf.nets["D"])


def test_rosinality_missing_key_and_no_latent_avg(tmp_path):
    cfg = rosinality_cfg()
    G = randomized(build_generator(cfg), 6)
    sd = to_rosinality_g(G)
    path = tmp_path / "r.pt"
    torch.save({"g_ema": sd}, path)
    w_avg = load_network(path)["G_ema"].mapping.w_avg  # estimated from 4096 latents when absent
    assert w_avg.abs().sum() > 0 and torch.equal(w_avg, load_network(path)["G_ema"].mapping.w_avg)
    del sd["conv1.noise.weight"]
    torch.save({"g_ema": sd}, path)
    with pytest.raises(UserError, match="conv1.noise.weight"):
        load_network(path)
