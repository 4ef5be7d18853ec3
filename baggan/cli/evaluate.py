"""`baggan evaluate …`: one subcommand per evaluation protocol, each writing a report folder and printing its path.

To add a protocol, define a function below decorated with `@evaluate.command("<name>")` (click options as
usual), import its heavy module inside the function, and end with `click.echo(f"report: {path}")`.
"""

from __future__ import annotations

from pathlib import Path

import click


class VariadicOptionCommand(click.Command):
    """A command whose options listed in `variadic` take several values: `--sets A B C` = `--sets A --sets B …`.

    Values run until the next token that starts with '-'. The options must be declared with multiple=True.
    """

    variadic: tuple[str, ...] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out, current = [], None
        for token in args:
            if token in self.variadic:
                current = token
                continue
            if current is not None and not token.startswith("-"):
                out += [current, token]
                continue
            current = None
            out.append(token)
        return super().parse_args(ctx, out)


class _RealismCommand(VariadicOptionCommand):
    variadic = ("--sets", "--names")


@click.group("evaluate")
def evaluate() -> None:
    """Evaluation protocols of the paper: each writes Markdown + JSON + PNG into --outdir."""


@evaluate.command("downstream")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="YAML settings, e.g. configs/eval/downstream-cpu.yaml.")
@click.option("--real", required=True, type=click.Path(path_type=Path), help="Real annotated scans (our COCO format).")
@click.option("--synthetic", required=True, type=click.Path(path_type=Path),
              help="Synthetic annotated scans (our COCO format).")
@click.option("--test", required=True, type=click.Path(path_type=Path), help="Held-out real scans (our COCO format).")
@click.option("--outdir", required=True, type=click.Path(path_type=Path), help="Report folder.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, …")
def downstream(config_path: Path, real: Path, synthetic: Path, test: Path, outdir: Path, device: str) -> None:
    """Segmenters trained on R real + A synthetic scans (R:A sweep), tested on real scans (Table 3)."""
    from baggan.config import load_config
    from baggan.evaluate import resolve_device
    from baggan.evaluate.downstream import DownstreamConfig, run_downstream

    cfg = load_config(config_path, DownstreamConfig)
    path = run_downstream(cfg, real, synthetic, test, outdir, resolve_device(device))
    click.echo(f"report: {path}")


@evaluate.command("realism", cls=_RealismCommand)
@click.option("--sets", "sets", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Two or more sets: folders of PNG/JPG scans or data sets in our COCO format (first = reference).")
@click.option("--names", "names", multiple=True, help="One display name per set (default: folder names).")
@click.option("--outdir", required=True, type=click.Path(path_type=Path), help="Report folder.")
@click.option("--max-images", type=click.IntRange(min=2), default=1000, show_default=True,
              help="Scans per set (a seeded random subset when a set is larger).")
@click.option("--resolution", type=click.IntRange(min=16), default=256, show_default=True,
              help="Scans are centre-cropped to a square and resized to this size.")
@click.option("--pairs", type=click.Choice(["all", "reference"]), default="all", show_default=True,
              help="FID/KID between every pair of sets, or each set against the first.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subsets and of KID.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, …")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (default: torch's choice; 1 is fastest on a busy shared CPU).")
def realism(sets: tuple[Path, ...], names: tuple[str, ...], outdir: Path, max_images: int, resolution: int,
            pairs: str, seed: int, device: str, threads: int | None) -> None:
    """FID/KID, intensity histograms, material classes and a collage across sets of scans (Fig. C4)."""
    import torch

    from baggan.evaluate import resolve_device
    from baggan.evaluate.realism import RealismOptions, run_realism

    if threads:
        torch.set_num_threads(threads)

    opts = RealismOptions(max_images=max_images, resolution=resolution, pairs=pairs, seed=seed)
    path = run_realism(list(sets), list(names) or None, outdir, opts, resolve_device(device))
    click.echo(f"report: {path}")


@evaluate.command("oneshot")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="YAML settings, e.g. configs/eval/oneshot-cpu.yaml.")
@click.option("--outdir", required=True, type=click.Path(path_type=Path),
              help="Run folder: report, cached units and HFC encoders (a rerun resumes from it).")
@click.option("--network", type=click.Path(path_type=Path), default=None,
              help="Generator file (overrides the config's network:).")
@click.option("--parts", default=None,
              help="Comma-separated parts to run: main, shots, depth, layer, tau, dk, patch (default: the config's).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, …")
def oneshot(config_path: Path, outdir: Path, network: Path | None, parts: str | None, device: str) -> None:
    """One-shot segmenters against the baselines on projected simulator scans (Tables 2, 4-10, Fig. 14)."""
    from baggan.evaluate import resolve_device
    from baggan.evaluate.oneshot import load_oneshot_config, parse_parts, run_oneshot

    cfg = load_oneshot_config(config_path)
    path = run_oneshot(cfg, outdir, network, resolve_device(device), parse_parts(parts) if parts else None)
    click.echo(f"report: {path}")


def register(cli: click.Group) -> None:
    """Attach the `evaluate` group to the top-level command."""
    cli.add_command(evaluate)
