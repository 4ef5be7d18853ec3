"""`baggan train`: StyleGAN2-ADA training (single process, or every rank under torchrun)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from baggan.cli.params import Finite, device_option


def resolve_resume(outdir: Path, resume: str | None) -> Path | None:
    """The snapshot to resume from: None (fresh run), the latest in outdir ('auto'), or the given file."""
    from baggan.errors import UserError
    from baggan.stylegan2.training_state import latest_snapshot

    latest = latest_snapshot(outdir) if outdir.is_dir() else None
    if resume is None:
        if latest is not None:
            raise UserError(f"{outdir}: already holds snapshots ({latest.name}); continue it with --resume auto "
                            f"or choose a new --outdir")
        return None
    if resume == "auto":
        return latest
    path = Path(resume)
    if not path.is_file():
        raise UserError(f"--resume {resume}: file not found (use 'auto' or a snapshot-*.pt path)")
    return path


@click.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Training config YAML (configs/*.yaml). Default when resuming: OUTDIR/config.yaml.")
@click.option("--data", required=True, type=click.Path(file_okay=False),
              help="Data set folder in the toolkit's format (what `baggan simulate` / `baggan prepare` write).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False), help="Run folder (created).")
@click.option("--resume", default=None, metavar="auto|PATH",
              help="Continue from the latest snapshot in OUTDIR (auto; a fresh start if there is none) or a file.")
@click.option("--init", "init", default=None, type=click.Path(dir_okay=False), metavar="NETWORK",
              help="New run starting from this network file's weights (ours, NVlabs .pkl, rosinality .pt), "
                   "with fresh optimisers and counters: fine-tuning, or going on from a network-final.pt.")
@device_option
@click.option("--total-kimg", type=Finite(min=0.0, min_open=True), default=None,
              help="Override schedule.total_kimg.")
def train(config_path: str | None, data: str, outdir: str, resume: str | None, init: str | None, device: str,
          total_kimg: float | None) -> None:
    """Train a StyleGAN2-ADA generator on the scans in DATA; snapshots, samples and logs go to OUTDIR.

    Several processes: torchrun --nproc_per_node N -m baggan train ...
    """
    from baggan.config import load_config
    from baggan.errors import UserError
    from baggan.stylegan2 import distributed
    from baggan.stylegan2.training_config import TrainConfig
    from baggan.stylegan2.training_loop import Trainer

    out = Path(outdir)
    if init is not None and resume is not None:
        raise UserError("--init starts a new run and --resume continues one: give one of them")
    if init is not None and not Path(init).is_file():
        raise UserError(f"--init {init}: network file not found")
    snapshot = resolve_resume(out, resume)
    if config_path is None:
        if snapshot is None and not (resume == "auto" and (out / "config.yaml").is_file()):
            raise UserError("--config is required for a new run")
        config_path = str(out / "config.yaml")  # the run's own (written before its first snapshot)
    cfg = load_config(config_path, TrainConfig)
    if total_kimg is not None:
        cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, total_kimg=total_kimg))
    procs = distributed.setup(device)
    try:
        trainer = Trainer(cfg, data, out, procs, resume=snapshot, init=init)  # refuses bad input first
        if procs.is_main:
            what = f"resuming from {snapshot}" if snapshot else f"new run from {init}" if init else "new run"
            click.echo(f"training on {procs.device} x{procs.world} ({what}); writing to {out}")
        last = trainer.train()
    finally:
        distributed.teardown()
    if procs.is_main:
        click.echo(f"wrote {out}/stats.jsonl, curves.png, fakes-*.png; last snapshot: {last}")


COMMANDS = (train,)  # what `baggan` gets from this module
