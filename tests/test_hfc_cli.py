"""`baggan hfc train` on a tiny randomly initialised BagGAN generator (the real loader, CPU)."""

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from toygen import single_thread  # noqa: F401

from baggan.cli import cli
from baggan.stylegan2 import NetworkConfig, build_generator, save_network
from hfc.checkpoint import load_module
from hfc.swav import ProjectionHead

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    cfg = NetworkConfig(cfg="custom", resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128,
                        channel_max=16, d_architecture="resnet", mbstd_group_size=2)  # fmt: skip
    path = tmp_path_factory.mktemp("net") / "network.pt"
    torch.manual_seed(0)
    save_network(path, {"G_ema": build_generator(cfg)}, cfg)
    return path


def test_hfc_train_command(network, tmp_path):
    out = tmp_path / "run"
    args = ["hfc", "train", "--network", str(network), "--config", str(ROOT / "configs/hfc/tiny.yaml"),
            "--outdir", str(out), "--device", "cpu", "--epochs", "2"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"HFC encoder (swav): {out / 'encoder.pt'}" in result.output
    for name in ("encoder.pt", "checkpoint.pt", "log.jsonl", "loss.png", "config.yaml"):
        assert (out / name).is_file(), name
    encoder = load_module(out / "encoder.pt", expect=ProjectionHead)
    assert encoder.out_dim == 32 and encoder.meta["img_resolution"] == 16
    again = CliRunner().invoke(cli, args[:-2] + ["--epochs", "3"])  # extends the finished run
    assert again.exit_code == 0, again.output
    assert '"epoch": 3' in (out / "log.jsonl").read_text()


def test_hfc_train_errors_are_one_line(network, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("augment:\n  block: 9\n")
    result = CliRunner().invoke(cli, ["hfc", "train", "--network", str(network), "--config", str(bad),
                                      "--outdir", str(tmp_path / "o"), "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 2
    assert "error: augment.block: 9 is out of range; this generator has 3 style blocks" in result.output
