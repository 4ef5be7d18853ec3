"""`baggan quickstart`: the whole chain on the built-in simulator's threat windows (baggan/quickstart.py)."""

from __future__ import annotations

from pathlib import Path

import click

from baggan.cli.params import device_option


@click.command("quickstart")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Run folder (created; a finished stage is skipped when run again).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Quick-start YAML [default: configs/quickstart.yaml].")
@click.option("--network", type=click.Path(dir_okay=False, path_type=Path),
              help="Generator file instead of the config's (the shipped threat-window generator).")
@click.option("--n", "n", type=click.IntRange(min=1), help="Annotated scans to synthesise (overrides synth.n).")
@click.option("--hfc-epochs", type=click.IntRange(min=1), help="HFC training epochs (overrides hfc_epochs).")
@device_option
def quickstart_cmd(outdir: Path, config_path: Path | None, network: Path | None, n: int | None,
                   hfc_epochs: int | None, device: str) -> None:
    """Train HFC on the shipped generator, fit a segmenter from ONE annotated simulator window per threat
    category (or ONE whole-bag scan), score it on held-out windows with exact masks, synthesise an annotated COCO
    data set, and write OUTDIR/report.md."""
    import dataclasses

    from baggan.device import resolve_device
    from baggan.quickstart import Quickstart, load_quickstart_config

    cfg = load_quickstart_config(config_path)
    if n is not None:
        cfg = dataclasses.replace(cfg, synth=dataclasses.replace(cfg.synth, n=n))
    if hfc_epochs is not None:
        cfg = dataclasses.replace(cfg, hfc_epochs=hfc_epochs)
    report = Quickstart(cfg, outdir, resolve_device(device), network, echo=click.echo).run()
    click.echo(f"done: {report}")


COMMANDS = (quickstart_cmd,)  # what `baggan` gets from this module
