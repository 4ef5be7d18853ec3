"""HFC training loop: determinism, checkpoints and resume, divergence, every method, the YAML presets."""

import dataclasses
from pathlib import Path

import pytest
import torch
from toygen import ToyGenerator, single_thread  # noqa: F401

import hfc.train
from hfc.checkpoint import load_module, load_weights
from hfc.clusterers import KMeansEncoder
from hfc.config import HFCConfig, SamplingConfig, SwAVConfig
from hfc.errors import Diverged, HFCError
from hfc.swav import ProjectionHead
from hfc.train import read_log, train_hfc

ROOT = Path(__file__).resolve().parents[1]
TINY = HFCConfig(
    dim=16, epochs=4, images_per_epoch=3, batch_size=2, checkpoint_every=2,
    sampling=SamplingConfig(mode="pixels", num_patches=2, num_pixels=96),
    swav=SwAVConfig(prototypes=24, temperature=0.1, epsilon=0.05),
)  # fmt: skip


@pytest.fixture(scope="module")
def gen():
    return ToyGenerator()


def _records(outdir):
    return [{k: v for k, v in r.items() if k != "time"} for r in read_log(Path(outdir) / "log.jsonl")]


def test_training_writes_its_outputs_and_is_deterministic(gen, tmp_path):
    enc_a = train_hfc(gen, TINY, tmp_path / "a", progress=False)
    enc_b = train_hfc(gen, TINY, tmp_path / "b", progress=False)
    for name in ("checkpoint.pt", "encoder.pt", "log.jsonl", "loss.png"):
        assert (tmp_path / "a" / name).is_file(), name
    records = _records(tmp_path / "a")
    assert len(records) == 4 * 2 and records == _records(tmp_path / "b")  # 3 images in batches of 2: 2 its/epoch
    assert {"loss", "global", "local", "block", "epoch", "iter"} <= set(records[0])
    for (k, a), b in zip(enc_a.state_dict().items(), enc_b.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoint_round_trip_and_resume(gen, tmp_path):
    full = train_hfc(gen, TINY, tmp_path / "full", progress=False)
    half = dataclasses.replace(TINY, epochs=2)
    train_hfc(gen, half, tmp_path / "resumed", progress=False)
    resumed = train_hfc(gen, TINY, tmp_path / "resumed", progress=False)  # continues from epoch 2
    assert _records(tmp_path / "resumed") == _records(tmp_path / "full")
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    loaded = load_module(tmp_path / "full" / "encoder.pt", expect=ProjectionHead)
    from_ckpt = load_module(tmp_path / "full" / "checkpoint.pt")
    for module in (loaded, from_ckpt):
        for (k, a), b in zip(full.state_dict().items(), module.state_dict().values()):
            assert torch.equal(a, b), k
    ckpt = load_weights(tmp_path / "full" / "checkpoint.pt")  # weights_only=True
    assert ckpt["epoch"] == 4 and HFCConfig.from_dict(ckpt["config"]) == TINY
    assert loaded.meta["layer_names"][0] == "b4.conv1"


def test_resume_with_another_config_is_refused(gen, tmp_path):
    train_hfc(gen, dataclasses.replace(TINY, epochs=1), tmp_path, progress=False)
    with pytest.raises(HFCError, match="different config"):
        train_hfc(gen, dataclasses.replace(TINY, dim=8), tmp_path, progress=False)


def test_nan_loss_names_the_iteration(gen, tmp_path, monkeypatch):
    real_step = hfc.train.hfc_step
    calls = []

    def step(*args, **kwargs):
        loss, parts, block = real_step(*args, **kwargs)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), parts, block

    monkeypatch.setattr(hfc.train, "hfc_step", step)
    with pytest.raises(Diverged, match=r"loss became nan at iteration 3 \(epoch 2"):
        train_hfc(gen, TINY, tmp_path, progress=False)


def test_simclr_and_kmeans_methods_produce_encoders(gen, tmp_path):
    simclr = train_hfc(gen, dataclasses.replace(TINY, method="simclr", epochs=1), tmp_path / "s", progress=False)
    assert isinstance(load_module(tmp_path / "s" / "encoder.pt"), ProjectionHead)
    assert all(r["loss"] > 0 for r in read_log(tmp_path / "s" / "log.jsonl"))
    km_cfg = dataclasses.replace(TINY, method="kmeans", kmeans=dataclasses.replace(TINY.kmeans, images=3, pixels_per_image=20))
    km = train_hfc(gen, km_cfg, tmp_path / "k", progress=False)
    assert isinstance(km, KMeansEncoder) and isinstance(load_module(tmp_path / "k" / "encoder.pt"), KMeansEncoder)
    assert simclr.out_dim == km.out_dim == 16


PRESETS = {  # Table A1: K, temperature, LARS coefficient, epsilon, epochs, patches
    "face": (5000, 0.01, 0.01, 0.005, 100, 5),
    "car": (4000, 0.01, 0.02, 0.01, 100, 5),
    "cat": (5000, 0.02, 0.01, 0.01, 100, 5),
    "horse": (4000, 0.02, 0.01, 0.003, 50, 10),
}


@pytest.mark.parametrize("name", sorted(PRESETS) + ["xray", "tiny"])
def test_presets_load_through_baggan_config(name):
    from baggan.config import load_config

    cfg = load_config(ROOT / "configs" / "hfc" / f"{name}.yaml", HFCConfig)
    if name in PRESETS:
        k, temp, trust, eps, epochs, patches = PRESETS[name]
        assert (cfg.swav.prototypes, cfg.swav.temperature, cfg.optim.trust_coefficient, cfg.swav.eps) == (k, temp, trust, eps)
        assert (cfg.epochs, cfg.sampling.num_patches, cfg.sampling.num_pixels, cfg.dim) == (epochs, patches, 20000, 512)
        assert (cfg.optim.lr, cfg.optim.momentum, cfg.augment.tau_p, cfg.swav.sinkhorn_iters) == (0.01, 0.9, 0.9, 10)


def test_config_errors_name_the_key(tmp_path):
    from baggan.config import load_config
    from baggan.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("swav:\n  protoypes: 10\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: swav.protoypes: unknown key"):
        load_config(bad, HFCConfig)
    bad.write_text("augment:\n  tau_p: 1.5\n")
    with pytest.raises(ConfigError, match=r"augment.tau_p: must be in \[0, 1\]"):
        load_config(bad, HFCConfig)
    bad.write_text("global_loss: false\nlocal_loss: false\n")
    with pytest.raises(ConfigError, match="global_loss"):
        load_config(bad, HFCConfig)
