"""`baggan evaluate …`: one subcommand per evaluation protocol, each writing a report folder and printing its path.

To add a protocol, define a function below decorated with `@evaluate.command("<name>")` (click options as
usual), import its heavy module inside the function, and end with `click.echo(f"report: {path}")`.
"""

from __future__ import annotations

from pathlib import Path

import click

from baggan.cli.params import device_option


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
@device_option
def downstream(config_path: Path, real: Path, synthetic: Path, test: Path, outdir: Path, device: str) -> None:
    """Segmenters trained on R real + A synthetic scans (R:A sweep), tested on real scans (Table 3)."""
    from baggan.config import load_config
    from baggan.device import resolve_device
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
@device_option
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads (default: torch's choice; 1 is fastest on a busy shared CPU).")
def realism(sets: tuple[Path, ...], names: tuple[str, ...], outdir: Path, max_images: int, resolution: int,
            pairs: str, seed: int, device: str, threads: int | None) -> None:
    """FID/KID, intensity histograms, material classes and a collage across sets of scans (Fig. C4)."""
    import torch

    from baggan.device import resolve_device
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
@device_option
def oneshot(config_path: Path, outdir: Path, network: Path | None, parts: str | None, device: str) -> None:
    """One-shot segmenters against the baselines on projected simulator scans (Tables 2, 4-10, Fig. 14)."""
    from baggan.device import resolve_device
    from baggan.evaluate.oneshot import run_oneshot
    from baggan.evaluate.oneshot_config import load_oneshot_config, parse_parts

    cfg = load_oneshot_config(config_path)
    path = run_oneshot(cfg, outdir, network, resolve_device(device), parse_parts(parts) if parts else None)
    click.echo(f"report: {path}")


class _ThreatsCommand(VariadicOptionCommand):
    variadic = ("--network", "--psi")


@evaluate.command("train-judge")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML JudgeConfig, e.g. configs/judge/threats-64.yaml (default: its values).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Judge file to write (.pt; its config and metrics also go to the same name with .json).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads (default: torch's).")
def train_judge_cmd(config_path: Path | None, out: Path, threads: int | None) -> None:
    """Train the threat judge on simulator scans (never on generator output) and measure it."""
    import torch

    from baggan.config import load_config, to_dict
    from baggan.evaluate.judge import JudgeConfig, save_judge, train_judge
    from baggan.evaluate.report import to_jsonable
    from baggan.io import write_json_atomic

    if threads:
        torch.set_num_threads(threads)
    cfg = load_config(config_path, JudgeConfig) if config_path else JudgeConfig()
    model, metrics = train_judge(cfg)
    save_judge(out, model, cfg, metrics)
    write_json_atomic(out.with_suffix(".json"), to_jsonable({"config": to_dict(cfg), "metrics": metrics}), indent=2)
    aps = ", ".join(f"{c} {v:.3f}" for c, v in metrics["ap"].items())
    click.echo(f"judge: {out} (AP {aps}; called a threat at p>=0.5: look-alikes "
               f"{100 * metrics['lookalike_any_p50']:.1f} %, clutter windows {100 * metrics['hard_clutter_any_p50']:.1f} %, "
               f"cut-off threats {100 * metrics['hard_cut_any_p50']:.1f} %)")


@evaluate.command("threats", cls=_ThreatsCommand)
@click.option("--judge", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("checkpoints/judge-threats-64-robust.pt"), show_default=True, help="Judge file.")
@click.option("--network", "networks", multiple=True, metavar="[NAME=]FILE",
              help="Generator file(s) to judge, optionally named (NAME=FILE); none: the simulator alone.")
@click.option("--psi", "psis", multiple=True, type=float, help="Truncation psi values (default 1 and 0.7).")
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Samples per generator and psi, and simulator scans.")
@click.option("--reference", type=click.Choice(["windows", "scans"]), default="windows", show_default=True,
              help="Simulator side: the judge's threat windows, or whole bags (for a whole-bag generator).")
@click.option("--sim-config", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Simulator config (YAML) for the simulator side instead, e.g. the generator's training windows.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sample i uses latent seed SEED + i.")
@click.option("--save-samples", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write each generator's samples as PNG folders here (for `evaluate realism --sets`).")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
@device_option
def threats(judge: Path, networks: tuple[str, ...], psis: tuple[float, ...], n: int, reference: str,
            sim_config: str | None, seed: int, save_samples: Path | None, outdir: Path, device: str) -> None:
    """Share of samples in which the judge is sure of each threat, against the simulator (threat recall ratio)."""
    import math

    from baggan.device import resolve_device
    from baggan.errors import UserError
    from baggan.evaluate.threats import ThreatOptions, run_threats

    named = []
    for spec in networks:
        name, sep, path = spec.partition("=")
        name, path = (name, path) if sep else (Path(spec).stem, spec)
        if not Path(path).is_file():
            raise UserError(f"--network {path}: file not found")
        named.append((name, path))
    if any(not math.isfinite(p) or p < 0 for p in psis):
        raise UserError(f"--psi: values must be finite and >= 0, got {list(psis)}")
    opts = ThreatOptions(n=n, psis=tuple(psis) or ThreatOptions.psis, reference=reference,
                         sim_config=sim_config, seed=seed)
    path = run_threats(judge, named, opts, outdir, resolve_device(device), save_samples)
    click.echo(f"report: {path}")


COMMANDS = (evaluate,)  # what `baggan` gets from this module
