"""`baggan synthesize`: annotated scans in bulk, sharded and resumable (also under torchrun, one rank per GPU)."""

from __future__ import annotations

from pathlib import Path

import click

from baggan.cli.params import FINITE, Finite, device_option


@click.command("synthesize")
@click.option("--network", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Generator file (ours, official pickle or rosinality).")
@click.option("--hfc", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="HFC encoder file (not needed for a baseline segmenter).")
@click.option("--segmenter", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="One-shot segmenter file.")
@click.option("--n", "-n", "n", required=True, type=click.IntRange(min=1),
              help="Images in the data set (under torchrun write -n: torchrun reads --n as one of its options).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; run again with the same options to resume.")
@click.option("--threat", help="Keep only scans holding this category (e.g. Hammer).")
@click.option("--min-area", type=click.IntRange(min=0), default=0, show_default=True,
              help="Smallest instance in pixels; with --threat, the smallest threat region that counts.")
@click.option("--fill-holes", is_flag=True, help="Fill holes inside instances.")
@click.option("--shard-size", type=click.IntRange(min=1), default=1000, show_default=True, help="Images per shard.")
@click.option("--psi", type=FINITE, default=0.7, show_default=True, help="Truncation psi.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Run seed: the same seed gives the same data set.")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Scans per forward pass (does not change the output).")
@device_option
@click.option("--drop-uncertain", type=Finite(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Per shard, generate extra scans and drop this fraction of least confident ones.")
@click.option("--steer", type=FINITE, default=0.0, show_default=True,
              help="With --threat: steer latents toward the threat, w' = w + STEER * d (0 = rejection sampling only).")
@click.option("--calibration", type=click.IntRange(min=2), default=256, show_default=True, help="Scans the steering direction is fitted on.")
@click.option("--max-tries", type=click.IntRange(min=1), default=100, show_default=True,
              help="With --threat: give up a shard after MAX_TRIES x its size candidates.")
@click.option("--polygons", is_flag=True, help="Write segmentations as polygons instead of RLE.")
@click.option("--writer", type=click.Choice(["thread", "process"]), default="thread", show_default=True,
              help="Where the writing runs beside annotation: a thread, or a forked process that shares no "
                   "interpreter lock with it (docs/synthesis.md).")
@click.option("--class-from", type=click.Choice(["segmenter", "condition"]), default="segmenter", show_default=True,  # CLASS_FROM
              help="A threat pixel's category: the segmenter's class, or (a conditional generator) the label the scan "
                   "was drawn with; the segmenter then only says where the threat is (docs/synthesis.md).")
@click.option("--threat-threshold", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=None,
              help="With --class-from condition: a pixel is threat where 1 - p(background) exceeds this "
                   "[baggan.oneshot.THREAT_THRESHOLD] (docs/synthesis.md).")
@click.option("--label-set", help="Label set of the segmenter's classes, if its file does not say [pidray].")
@click.option("--classes", help="Comma-separated category names of classes 1..K-1, if the segmenter file does not say.")
def synthesize_cmd(network: Path, hfc: Path | None, segmenter: Path, n: int, outdir: Path, threat: str | None,
                   min_area: int, fill_holes: bool, shard_size: int, psi: float, seed: int, batch: int, device: str,
                   drop_uncertain: float, steer: float, calibration: int, max_tries: int, polygons: bool,
                   writer: str, class_from: str, threat_threshold: float | None, label_set: str | None,
                   classes: str | None) -> None:
    """Synthesise N annotated scans into sharded COCO data sets under OUTDIR (see docs/synthesis.md)."""
    from baggan.device import resolve_device
    from baggan.errors import UserError
    from baggan.synth import SynthSettings, rank_world, synthesize
    from baggan.synth.build import load_annotator

    rank, world = rank_world()
    dev = resolve_device(device)
    wiring = load_annotator(network, hfc, segmenter, dev, label_set,
                            [c.strip() for c in classes.split(",")] if classes else None)
    threat_id = wiring.label_set.id_of(threat) if threat else None
    if threat_id is not None and threat_id not in wiring.class_to_category:
        raise UserError(f"--threat {threat}: the segmenter does not predict it (it predicts "
                        f"{', '.join(wiring.label_set.names[c - 1] for c in wiring.class_to_category[1:])})")
    try:
        settings = SynthSettings(n=n, shard_size=shard_size, seed=seed, psi=psi, batch=batch, threat=threat_id,
                                 min_area=min_area, fill_holes=fill_holes, drop_uncertain=drop_uncertain, steer=steer,
                                 calibration=calibration, max_tries=max_tries, polygons=polygons,
                                 writer=writer, class_from=class_from,
                                 **({"threat_threshold": threat_threshold} if threat_threshold is not None else {}))
    except ValueError as e:
        raise UserError(f"bad option: {e}") from None
    summary = synthesize(wiring.annotate, wiring.gen.sample_ws, wiring.label_set.coco_categories(),
                         wiring.class_to_category, outdir, settings, rank, world, dev, wiring.provenance,
                         inputs=wiring.inputs, conditions=wiring.conditions)
    for line in summary.lines():
        click.echo(line)


COMMANDS = (synthesize_cmd,)  # what `baggan` gets from this module
