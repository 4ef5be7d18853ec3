"""`baggan generate` and `baggan info` through click's CliRunner."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from baggan.cli import cli
from baggan.cli.networks import parse_seeds
from baggan.errors import UserError
from baggan.io import read_image_rgb
from baggan.stylegan2 import NetworkConfig, build_generator, save_network


@pytest.fixture
def network_file(tmp_path):
    cfg = NetworkConfig(cfg="auto", resolution=16, z_dim=32, w_dim=32, channel_max=32, c_dim=0)
    torch.manual_seed(0)
    path = tmp_path / "net.pt"
    save_network(path, {"G_ema": build_generator(cfg)}, cfg)
    return path


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5,7-9") == [1, 5, 7, 8, 9]
    for bad in ("a", "3-1", "1,,2"):
        with pytest.raises(UserError, match="--seeds"):
            parse_seeds(bad)


def test_generate_writes_pngs_and_grid(network_file, tmp_path):
    out = tmp_path / "out"
    args = ["generate", "--network", str(network_file), "--seeds", "0-2,7", "--trunc", "0.7", "--outdir", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png", "seed0000.png", "seed0001.png", "seed0002.png", "seed0007.png"]
    assert read_image_rgb(out / "seed0000.png").shape == (16, 16, 3)
    assert read_image_rgb(out / "grid.png").shape == (32, 32, 3)  # 4 images → 2 x 2
    assert str(out) in result.output
    first = read_image_rgb(out / "seed0001.png")
    assert CliRunner().invoke(cli, args).exit_code == 2  # a full folder is replaced only with --overwrite
    assert CliRunner().invoke(cli, args + ["--overwrite"]).exit_code == 0  # same seeds, same pictures (const noise)
    assert np.array_equal(first, read_image_rgb(out / "seed0001.png"))
    assert not np.array_equal(first, read_image_rgb(out / "seed0002.png"))


def test_generate_conditional_needs_class(tmp_path):
    cfg = NetworkConfig(cfg="auto", resolution=8, z_dim=16, w_dim=16, channel_max=16, c_dim=3)
    path = tmp_path / "cond.pt"
    save_network(path, {"G": build_generator(cfg)}, cfg)
    runner = CliRunner()
    bad = runner.invoke(cli, ["generate", "--network", str(path), "--seeds", "0", "--outdir", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "--class-idx" in bad.output
    ok = runner.invoke(cli, ["generate", "--network", str(path), "--seeds", "0", "--class-idx", "2",
                             "--noise-mode", "random", "--outdir", str(tmp_path / "o")])
    assert ok.exit_code == 0, ok.output


def test_info_prints_layers_and_width(network_file):
    result = CliRunner().invoke(cli, ["info", str(network_file)])
    assert result.exit_code == 0, result.output
    assert "16 x 16 x 3" in result.output and "num_ws 6" in result.output
    assert "b16.conv1" in result.output and "C_hidden: 160" in result.output  # 5 layers x 32 channels


def test_missing_file_is_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["info", str(tmp_path / "nope.pkl")])
    assert result.exit_code == 2 and "not found" in result.output


def test_conditional_truncation_pulls_toward_the_label_centre():
    """ψ 0 gives every seed of one label that label's centre (mean w over fixed latents), different labels
    different centres; ψ 1 is the plain mapping; an unconditional G keeps the official global-w_avg rule."""
    from baggan.stylegan2.latents import label_centres, ws_from_seed

    torch.manual_seed(0)
    G = build_generator(NetworkConfig(cfg="auto", resolution=8, z_dim=16, w_dim=16, channel_max=16, c_dim=3)).eval()
    a, b = ws_from_seed(G, [0, 1], 0.0, class_idx=1), ws_from_seed(G, [0], 0.0, class_idx=2)
    centre = label_centres(G, torch.eye(3)[[1]])
    assert torch.allclose(a[0], a[1]) and torch.allclose(a[0, 0], centre[0], atol=1e-6)
    assert not torch.allclose(a[0], b[0], atol=1e-3)
    z = torch.from_numpy(np.random.RandomState(0).randn(1, 16)).float()
    assert torch.equal(ws_from_seed(G, [0], 1.0, class_idx=1), G.mapping(z, torch.eye(3)[[1]]))
    half = ws_from_seed(G, [0], 0.5, class_idx=1)
    assert torch.allclose(half, centre[:, None].lerp(G.mapping(z, torch.eye(3)[[1]]), 0.5), atol=1e-6)
    torch.manual_seed(0)
    U = build_generator(NetworkConfig(cfg="auto", resolution=8, z_dim=16, w_dim=16, channel_max=16, c_dim=0)).eval()
    with torch.no_grad():
        U.mapping.w_avg.normal_()
    assert torch.equal(ws_from_seed(U, [0], 0.5), U.mapping(z, None, truncation_psi=0.5))
