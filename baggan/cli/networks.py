"""`baggan generate` (images from any supported network file) and `baggan info` (what a network file holds)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import click

from baggan.cli.params import FINITE, device_option
from baggan.errors import UserError

NOISE_MODES = ["const", "random", "none"]


def parse_seeds(text: str) -> list[int]:
    """'0-15' or '1,5,7-9' → list of seeds (ranges inclusive); UserError on anything else."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise UserError(f"--seeds: cannot read {part.strip()!r} (use e.g. 0-15 or 1,5,7-9)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UserError(f"--seeds: range {lo}-{hi} is backwards")
        seeds.extend(range(lo, hi + 1))
    return seeds


def image_grid(images: list, cols: int | None = None):
    """Tile equally sized HxW(xC) uint8 arrays into one grid image (row-major, black padding)."""
    import numpy as np

    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h, w = images[0].shape[:2]
    grid = np.zeros((rows * h, cols * w) + images[0].shape[2:], dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * h : (r + 1) * h, c * w : (c + 1) * w] = im
    return grid


def _pick(nets: dict, path: Path, key: str | None):
    """The generator to use: `key`, else G_ema, else G."""
    for name in ([key] if key else ["G_ema", "G"]):
        if name in nets and name != "D":
            return nets[name]
    raise UserError(f"{path}: no generator {key or 'G_ema/G'} in the file (it holds: {', '.join(sorted(nets))})")


@click.command("generate")
@click.option("--network", "network", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Network file: baggan .pt, official NVlabs .pkl or rosinality .pt.")
@click.option("--seeds", default="0-7", show_default=True, help="Seeds, e.g. 0-15 or 1,5,7-9.")
@click.option("--trunc", "psi", type=FINITE, default=1.0, show_default=True, help="Truncation psi.")
@click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True)
@click.option("--class-idx", type=int, default=None, help="Class label (conditional networks only).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created when complete).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
@click.option("--net", "net_key", default=None, help="Network in the file [default: G_ema, else G].")
@device_option
def generate(network: Path, seeds: str, psi: float, noise_mode: str, class_idx: int | None, outdir: Path,
             overwrite: bool, net_key: str | None, device: str) -> None:
    """Render one PNG per seed (z from numpy RandomState(seed), as the official generate.py) and a grid."""
    import torch
    from tqdm import tqdm

    from baggan.data.datasets import check_outdir, staged_output
    from baggan.device import resolve_device
    from baggan.io import encode_image, write_plain
    from baggan.stylegan2 import load_network
    from baggan.stylegan2.latents import ws_from_seed
    from baggan.stylegan2.projector import to_uint8

    seed_list = parse_seeds(seeds)
    check_outdir(outdir, overwrite)
    device = str(resolve_device(device))
    G = _pick(load_network(network, device), network, net_key)
    if G.c_dim == 0 and class_idx is not None:
        click.echo("warning: --class-idx ignored: the network is unconditional", err=True)

    images = []
    with torch.no_grad(), staged_output(outdir, overwrite) as tmp:
        for seed in tqdm(seed_list, desc="generate", unit="img"):
            arr = to_uint8(G.synthesis(ws_from_seed(G, [seed], psi, class_idx), noise_mode=noise_mode))[0]
            arr = arr[..., 0] if arr.shape[2] == 1 else arr
            write_plain(tmp / f"seed{seed:04d}.png", encode_image(".png", arr))
            images.append(arr)
        write_plain(tmp / "grid.png", encode_image(".png", image_grid(images)))
    click.echo(f"wrote {len(images)} images and grid.png to {outdir}")


@click.command("info")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def info(path: Path) -> None:
    """Print what a network file holds: format, sizes, num_ws, per-layer channels, hidden-feature width."""
    from baggan.stylegan2 import StyleGANFeatureGenerator, load_network_file

    nf = load_network_file(path)
    click.echo(f"file:        {path} ({nf.source} format)")
    click.echo(f"networks:    {', '.join(f'{k} ({sum(p.numel() for p in m.parameters()) / 1e6:.2f} M params)' for k, m in nf.nets.items())}")
    gens = [m for k, m in nf.nets.items() if k != "D"]
    if not gens:
        click.echo(f"resolution:  {nf.cfg.resolution}  (discriminator only)")
        return
    G = gens[0]
    fg = StyleGANFeatureGenerator(G)
    click.echo(f"resolution:  {G.img_resolution} x {G.img_resolution} x {G.img_channels}")
    click.echo(f"z_dim {G.z_dim}, w_dim {G.w_dim}, c_dim {G.c_dim}, mapping layers {G.mapping.num_layers}, "
               f"num_ws {G.num_ws}")
    click.echo("feature layers (synthesis convolutions):")
    click.echo(f"  {'name':<10} {'res':>5} {'channels':>9} {'w index':>8}")
    for layer in fg.feature_layers:
        click.echo(f"  {layer.name:<10} {layer.resolution:>5} {layer.channels:>9} {layer.w_index:>8}")
    click.echo(f"hidden-feature width C_hidden: {sum(layer.channels for layer in fg.feature_layers)}")


COMMANDS = (generate, info)  # what `baggan` gets from this module
