"""`baggan coco merge|split|stats|view|check`: tools over data sets in our COCO format (single or sharded)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from baggan.cli.params import Finite

_DATASET = click.Path(exists=True, file_okay=False, path_type=Path)


@click.group("coco")
def coco() -> None:
    """Merge, split, count, look at and validate COCO data sets (a folder, or a sharded synthesis output)."""


@coco.command("merge")
@click.argument("inputs", nargs=-1, required=True, type=_DATASET)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="New data set folder (must not exist).")
@click.option("--link", is_flag=True, help="Hard-link image files instead of copying them.")
def merge_cmd(inputs: tuple[Path, ...], out: Path, link: bool) -> None:
    """Merge data sets with the same categories into one; images and annotations get new ids."""
    from baggan.data.coco_tools import merge

    merge(inputs, out, link)
    doc = json.loads((out / "annotations.json").read_text())
    click.echo(f"merged {len(inputs)} input(s): {len(doc['images'])} images, {len(doc['annotations'])} instances "
               f"→ {out}")


@coco.command("split")
@click.argument("src", type=_DATASET)
@click.option("--ratio", type=Finite(0.0, 1.0, min_open=True, max_open=True), default=0.8, show_default=True,
              help="Fraction of images in the train split.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random assignment.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Writes OUT/train and OUT/val.")
@click.option("--link", is_flag=True, help="Hard-link image files instead of copying them.")
def split_cmd(src: Path, ratio: float, seed: int, out: Path, link: bool) -> None:
    """Split a data set at random into train and val."""
    from baggan.data.coco_tools import split

    for part in split(src, ratio, seed, out, link):
        n = len(json.loads((part / "annotations.json").read_text())["images"])
        click.echo(f"{part.name}: {n} images → {part}")


@coco.command("stats")
@click.argument("src", type=_DATASET)
@click.option("--out", type=click.Path(path_type=Path), help="Output folder [default: SRC/stats].")
def stats_cmd(src: Path, out: Path | None) -> None:
    """Instances per category and area histograms (stats.json, area_hist.png)."""
    from baggan.data.coco_tools import stats

    out = out or src / "stats"
    result = stats(src, out)
    click.echo(f"{result['images']} images, {result['instances']} instances "
               f"({result['instances_per_image']:.2f} per image)")
    for name, c in result["categories"].items():
        if c["instances"]:
            click.echo(f"  {name:<10} {c['instances']:>7} instances in {c['images']:>6} images, "
                       f"median area {c['area_median']:.0f} px")
    click.echo(f"wrote {out / 'stats.json'} and {out / 'area_hist.png'}")


@coco.command("view")
@click.argument("src", type=_DATASET)
@click.option("--n", type=click.IntRange(min=1), default=16, show_default=True, help="Images on the sheet.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="PNG file to write.")
@click.option("--seed", type=int, default=None, help="Pick a random n by this seed [default: the first n].")
def view_cmd(src: Path, n: int, out: Path, seed: int | None) -> None:
    """Contact sheet: images with mask overlays, outlines and category names."""
    from baggan.data.coco_tools import contact_sheet

    click.echo(f"wrote {contact_sheet(src, n, out, seed)}")


@coco.command("check")
@click.argument("src", type=_DATASET)
@click.pass_context
def check_cmd(ctx: click.Context, src: Path) -> None:
    """Check what a detector will read: unique ids, every image and label map decodes at its recorded size, label
    maps single-channel with known ids, masks and boxes that score AP 1.0 against themselves in pycocotools."""
    from baggan.data.coco_tools import check

    report = check(src)
    problems = [p for r in report.values() for p in r["problems"]]
    if problems:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        ctx.exit(2)
    for path, r in report.items():
        ap = ", ".join(f"AP {k} {v:.3f}" for k, v in r["ap"].items()) if r["ap"] else "no instances"
        click.echo(f"{path}: {r['images']} images, {r['annotations']} instances, {ap}, label maps = instances in "
                   f"{r['label_maps_matching_instances']}/{r['images']}")


COMMANDS = (coco,)  # what `baggan` gets from this module
