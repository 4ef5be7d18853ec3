"""`baggan simulate` (the built-in X-ray simulator) and `baggan prepare pidray|celebamask|pascal-part|debisim`."""

from __future__ import annotations

import click

from baggan.cli.params import Finite


@click.command()
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of scans.")
@click.option("--size", type=click.IntRange(16, 1024), default=256, show_default=True, help="Image size (square).")
@click.option("--outdir", type=click.Path(file_okay=False), required=True, help="Output folder (created).")
@click.option("--threat-rate", type=Finite(0.0, 1.0), default=None,
              help="Probability that a bag carries at least one threat (default 0.3, or the config's).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Run seed; scan i uses a seed derived from (seed, i).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="YAML file with SimConfig fields (docs/datasets.md lists them).")
@click.option("--windows", is_flag=True,
              help="Threat windows: a square view around one threat item per scan instead of the whole bag.")
@click.option("--classes", default=None,
              help="Comma-separated threat categories to draw (PIDRay names; default all 12, or the config's).")
@click.option("--threat-share", type=float, nargs=2, default=None, metavar="LO HI",
              help="Windows: the threat box's longer side as a share of the window side, in (0, 1] (default 0.5 0.8).")
@click.option("--negatives", type=float, default=None,
              help="Windows: share of windows cut from bags without threats, in [0, 1) (default 0.15).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def simulate(n: int, size: int, outdir: str, threat_rate: float | None, seed: int, workers: int,
             config_path: str | None, windows: bool, classes: str | None, threat_share: tuple[float, float] | None,
             negatives: float | None, overwrite: bool) -> None:
    """Write N simulated dual-energy X-ray baggage scans (or threat windows) with exact threat masks as a COCO data set."""
    from baggan.config import load_config
    from baggan.data.xraysim import SimConfig, simulate_dataset

    config = load_config(config_path, SimConfig) if config_path else SimConfig()
    config = sim_overrides(config, threat_rate, windows, classes, threat_share, negatives)
    out = simulate_dataset(outdir, n, size, config, seed, workers, overwrite=overwrite)
    what = "threat windows" if config.window else "scans"
    click.echo(f"wrote {n} {what} ({size}x{size}) to {out} (annotations.json, images/, labels/, materials/)")


def sim_overrides(config, threat_rate: float | None, windows: bool, classes: str | None,
                  threat_share: tuple[float, float] | None, negatives: float | None):
    """The SimConfig with the command line's overrides; UserError (one line) for a bad value."""
    import dataclasses

    from baggan.data.xray.window import WindowConfig
    from baggan.errors import UserError

    changes: dict = {}
    if threat_rate is not None:
        changes["threat_rate"] = threat_rate
    if classes is not None:
        from baggan.data.labelsets import PIDRAY

        names = [c.strip() for c in classes.split(",") if c.strip()]
        changes["threat_classes"] = tuple(PIDRAY.names[PIDRAY.id_of(c) - 1] for c in names)  # case forgiven
    window = config.window or (WindowConfig() if windows or threat_share or negatives is not None else None)
    if (threat_share is not None or negatives is not None) and not (windows or config.window):
        raise UserError("--threat-share and --negatives describe threat windows: add --windows")
    try:
        if window is not None:
            window = dataclasses.replace(window, **({"share": tuple(threat_share)} if threat_share else {}),
                                         **({"negatives": negatives} if negatives is not None else {}))
            changes["window"] = window
        return dataclasses.replace(config, **changes)
    except ValueError as e:
        raise UserError(f"simulate: {e}") from None


@click.group()
def prepare() -> None:
    """Convert a public data set (PIDRay, CelebAMask-HQ, PASCAL-Part) or a DEBISim run into the toolkit's format."""


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


@prepare.command("debisim")
@click.option("--root", type=click.Path(file_okay=False), required=True,
              help="DEBISim run folder holding simulation_001/, simulation_002/, ...")
@click.option("--view", type=click.Choice(["top", "side", "both"]), default=None,
              help="Two-view runs: which view(s) become scans (one scan per bag and view).")
@click.option("--outdir", type=click.Path(file_okay=False), required=True)
@click.option("--size", type=click.IntRange(16, 4096), default=None,
              help="Resample every scan to size x size (default: the detector's grid as it is).")
@click.option("--categories", type=click.Choice(["threats", "materials"]), default="threats", show_default=True,
              help="threats: the target materials only; materials: also every other object, by material.")
@click.option("--geometry", "geometry_path", type=click.Path(dir_okay=False), default=None,
              help="YAML file with the scanner's Geometry fields (default: DEBISim's preset matching the view size).")
@click.option("--spectra", type=click.Path(dir_okay=False), nargs=2, default=None,
              help="The run's two DEBISim spectrum files (default: built-in 160 kV stand-ins, docs/datasets.md).")
@click.option("--skip-bad", is_flag=True, help="Leave out bags that cannot be read (one line each) instead of stopping.")
@click.option("--ct", is_flag=True, help="CT run: axial slices of recon_image_1 with their label slices.")
@click.option("--ct-step", type=click.IntRange(min=1), default=10, show_default=True,
              help="With --ct: every N-th slice (those holding an object).")
@click.option("--polygons", is_flag=True, help="Segmentations as COCO polygons instead of RLE.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def prepare_debisim_cmd(root: str, view: str | None, outdir: str, size: int | None, categories: str,
                        geometry_path: str | None, spectra: tuple[str, str] | None, skip_bad: bool, ct: bool,
                        ct_step: int, polygons: bool, overwrite: bool) -> None:
    """DEBISim run -> scans with per-pixel threat labels projected from its 3-D label volume."""
    from baggan.config import load_config
    from baggan.data.debisim.geometry import Geometry
    from baggan.data.debisim.prepare import prepare_debisim
    from baggan.errors import UserError

    if not ct and view is None:
        raise UserError("--view is required (top, side or both) unless --ct")
    views = ("top", "side") if view == "both" else (view or "top",)
    geometry = load_config(geometry_path, Geometry) if geometry_path else None
    result = prepare_debisim(root, outdir, views, size, geometry, spectra or None, categories, skip_bad, ct, ct_step,
                             overwrite, polygons=polygons, report=lambda line: click.echo(line, err=True))
    click.echo(f"wrote {result.scans} scans from {result.bags} DEBISim bags to {outdir}")
    if result.skipped:
        click.echo(f"skipped {len(result.skipped)} of {result.bags + len(result.skipped)} bags (--skip-bad): "
                   f"{', '.join(result.skipped)}")


COMMANDS = (simulate, prepare)  # what `baggan` gets from this module
