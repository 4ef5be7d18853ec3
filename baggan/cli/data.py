"""`baggan simulate` (the built-in X-ray simulator) and `baggan prepare pidray|celebamask|pascal-part`."""

from __future__ import annotations

import click

from baggan.cli.params import Finite


@click.command()
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of scans.")
@click.option("--size", type=click.IntRange(64, 1024), default=256, show_default=True, help="Image size (square).")
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Output folder (created).")
@click.option("--threat-rate", type=Finite(0.0, 1.0), default=None,
              help="Probability that a bag carries at least one threat (default 0.3, or the config's).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Run seed; scan i uses a seed derived from (seed, i).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML file with SimConfig fields (docs/datasets.md lists them).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def simulate(n: int, size: int, outdir: str, threat_rate: float | None, seed: int, workers: int,
             config_path: str | None, overwrite: bool) -> None:
    """Write N simulated dual-energy X-ray baggage scans with exact threat masks as a COCO data set."""
    import dataclasses

    from baggan.config import load_config
    from baggan.data.xraysim import SimConfig, simulate_dataset

    config = load_config(config_path, SimConfig) if config_path else SimConfig()
    if threat_rate is not None:
        config = dataclasses.replace(config, threat_rate=threat_rate)
    out = simulate_dataset(outdir, n, size, config, seed, workers, overwrite=overwrite)
    click.echo(f"wrote {n} scans ({size}x{size}) to {out} (annotations.json, images/, labels/, materials/)")


@click.group()
def prepare() -> None:
    """Convert a public data set (PIDRay, CelebAMask-HQ, PASCAL-Part) into the toolkit's format."""


@prepare.command("pidray")
@click.option("--root", type=click.Path(file_okay=False), required=True,
              help="PIDRay folder holding annotations/ and train/ easy/ hard/ hidden/.")
@click.option("--split", type=click.Choice(["train", "easy", "hard", "hidden"]), required=True)
@click.option("--size", type=click.IntRange(16, 4096), default=512, show_default=True, help="Output size (square).")
@click.option("--outdir", type=click.Path(file_okay=False), required=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def prepare_pidray_cmd(root: str, split: str, size: int, outdir: str, limit: int | None, overwrite: bool) -> None:
    """PIDRay split -> square crops (the paper's 448 crop, resized to --size) with aligned instance masks."""
    from baggan.data.pidray import prepare_pidray

    n = prepare_pidray(root, split, outdir, size=size, limit=limit, overwrite=overwrite)
    click.echo(f"wrote {n} PIDRay {split} images ({size}x{size}) to {outdir}")


@prepare.command("celebamask")
@click.option("--root", type=click.Path(file_okay=False), required=True,
              help="Folder holding CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/.")
@click.option("--outdir", type=click.Path(file_okay=False), required=True)
@click.option("--size", type=click.IntRange(16, 4096), default=512, show_default=True, help="Output size (square).")
@click.option("--label-set", type=click.Choice(["face", "face8"]), default="face", show_default=True,
              help="face: the paper's 8 labels plus eye_g/teeth/cloth; face8: the paper's 8 labels only.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N images.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def prepare_celebamask_cmd(root: str, outdir: str, size: int, label_set: str, limit: int | None,
                           overwrite: bool) -> None:
    """CelebAMask-HQ per-part masks -> the paper's Face label set."""
    from baggan.data.celebamask import prepare_celebamask

    n = prepare_celebamask(root, outdir, size=size, label_set=label_set, limit=limit, overwrite=overwrite)
    click.echo(f"wrote {n} CelebAMask-HQ images ({size}x{size}, label set {label_set}) to {outdir}")


@prepare.command("pascal-part")
@click.option("--annotations", type=click.Path(file_okay=False), required=True,
              help="PASCAL-Part Annotations_Part/ folder (.mat files).")
@click.option("--images", type=click.Path(file_okay=False), required=True, help="VOC JPEGImages/ folder.")
@click.option("--category", type=click.Choice(["car", "cat", "horse"]), required=True)
@click.option("--outdir", type=click.Path(file_okay=False), required=True)
@click.option("--size", type=click.IntRange(16, 4096), default=None,
              help="Square output of this size (box made square, padded); default: the box crop as is.")
@click.option("--margin", type=click.FloatRange(0.0, 1.0), default=0.1, show_default=True,
              help="Margin around the object's box, as a fraction of its size.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N objects.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def prepare_pascal_part_cmd(annotations: str, images: str, category: str, outdir: str, size: int | None,
                            margin: float, limit: int | None, overwrite: bool) -> None:
    """PASCAL-Part objects of one category -> crops with the paper's part labels (Table A1)."""
    from baggan.data.pascal_part import prepare_pascal_part

    n = prepare_pascal_part(annotations, images, category, outdir, size=size, margin=margin, limit=limit,
                            overwrite=overwrite)
    click.echo(f"wrote {n} PASCAL-Part {category} objects to {outdir}")


def register(cli: click.Group) -> None:
    """Add the data commands to the `baggan` group."""
    cli.add_command(simulate)
    cli.add_command(prepare)
