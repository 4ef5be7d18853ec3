"""`baggan hfc train`: hidden-feature clustering (SwAV, or the SimCLR / k-means ablations) for a generator."""

from __future__ import annotations

from pathlib import Path

import click

from baggan.cli.params import device_option


@click.group("hfc")
def hfc_group() -> None:
    """Hidden-feature clustering: learn the per-pixel encoder of a generator (paper sections 4, 6.2.3)."""

@hfc_group.command("train")
@click.option("--network", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Generator file (ours, an official StyleGAN2-ADA .pkl, or a rosinality .pt).")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="HFC config YAML (configs/hfc/*.yaml: face, car, cat, horse, xray, tiny).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Run folder (created).")
@device_option
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="Override `epochs` (a finished run can be extended).")
@click.option("--no-resume", is_flag=True, help="Start over even if OUTDIR holds a checkpoint.")
def train(config_path: str, network: str, outdir: str, device: str, epochs: int | None, no_resume: bool) -> None:
    """Train the HFC encoder of NETWORK; writes encoder.pt, checkpoint.pt, log.jsonl, loss.png, config.yaml."""
    from baggan.config import load_config, save_config
    from baggan.device import resolve_device
    from baggan.stylegan2 import load_feature_generator
    from hfc.config import HFCConfig
    from hfc.train import CURVE, ENCODER, train_hfc

    cfg = load_config(config_path, HFCConfig, {"epochs": epochs} if epochs is not None else None)
    dev = resolve_device(device)
    gen = load_feature_generator(network, dev)
    out = Path(outdir)
    save_config(out / "config.yaml", cfg)
    train_hfc(gen, cfg, out, resume=not no_resume)
    click.echo(f"HFC encoder ({cfg.method}): {out / ENCODER}")
    if cfg.method != "kmeans":
        click.echo(f"loss curve: {out / CURVE}; resumable checkpoint and log in {out}")


COMMANDS = (hfc_group,)  # what `baggan` gets from this module
