"""`baggan oneshot fit` (a segmenter from 1..N annotated scans) and `baggan annotate` (a grid of annotated scans)."""

from __future__ import annotations

from pathlib import Path

import click

from baggan.cli.params import FINITE, Finite, device_option
from hfc.names import IMAGE_CONTROL, METHODS, RAW_METHODS, SEGMENTERS

SOURCES = {"seeds": "seed", "ws_files": "ws", "images": "image"}  # parameter name → sample kind


class _PairedCommand(click.Command):
    """A command that records the order of its options, so the k-th --mask pairs with the k-th sample option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        ctx.meta["oneshot.order"] = [p.name for p in order]
        return super().parse_args(ctx, args)


@click.group("oneshot")
def oneshot_group() -> None:
    """One-shot (and few-shot) segmenters from annotated scans (paper section 5; docs/oneshot.md)."""

@oneshot_group.command("fit", cls=_PairedCommand)
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Generator file (ours, an official StyleGAN2-ADA .pkl, or a rosinality .pt).")
@click.option("--hfc", type=click.Path(dir_okay=False, path_type=Path),
              help="HFC encoder (encoder.pt of `baggan hfc train`); not used by the raw-feature baselines.")
@click.option("--seed", "seeds", multiple=True, type=click.IntRange(min=0),
              help="Sample: the scan of this seed (as `baggan generate --seeds N --trunc PSI`). Repeatable.")
@click.option("--ws", "ws_files", multiple=True,
              help="Sample: saved ws, FILE (.npy/.pt, [1, num_ws, w_dim] or [num_ws, w_dim]) or FILE:ROW. Repeatable.")
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Sample: a real scan, projected into W+ (GAN inversion). Repeatable.")
@click.option("--mask", "masks", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Mask: id PNG (0 background, 255 not annotated), palette PNG, LabelMe or COCO/CVAT JSON "
                   "(docs/oneshot.md); the k-th --mask belongs to the k-th --seed/--ws/--image.")
@click.option("--method", type=click.Choice(METHODS),
              help="swav/simclr/kmeans: a segmenter on the codes of --hfc (default: the method --hfc was "
                   "trained with); the others: baselines on the raw hidden features, and image-mlp, a control "
                   "that reads only the generated image (with --with-image).")
@click.option("--segmenter", "seg_name", type=click.Choice(SEGMENTERS),
              default="fcn3", show_default=True, help="Segmenter on the HFC codes.")
@click.option("--hidden", type=click.IntRange(min=1), default=128, show_default=True,
              help="Width of the segmenter's hidden layers.")
@click.option("--epochs", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--lr", type=Finite(min=0.0, min_open=True), default=0.01, show_default=True,
              help="Adam learning rate of the fit.")
@click.option("--label-set", default="pidray", show_default=True, help="Label set of the mask ids.")
@click.option("--psi", type=FINITE, default=1.0, show_default=True, help="Truncation psi of --seed samples.")
@click.option("--class-idx", type=int, default=None, help="Class of --seed samples (conditional networks).")
@click.option("--steps", type=click.IntRange(min=1), default=500, show_default=True,
              help="Projection steps per --image.")
@click.option("--w-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Of those, the first steps optimise in W, then W+.")
@click.option("--project-lr", type=Finite(min=0.0, min_open=True), default=0.1, show_default=True,
              help="Peak learning rate of the projection.")
@click.option("--no-project-noise", is_flag=True, help="Do not optimise the noise maps in the projection.")
@click.option("--use-d-features", is_flag=True,
              help="Add the discriminator-feature loss to the projection (the network file must hold D).")
@click.option("--resize", is_flag=True, help="Resize an --image (and its mask) of another size instead of refusing it.")
@click.option("--init-seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed of the segmenter init and the projection.")
@click.option("--with-image", is_flag=True,
              help="The segmenter also reads the generated image's colours beside the HFC codes, inputs "
                   "standardised per channel (docs/oneshot.md, 'The image beside the codes').")
@click.option("--views", type=click.IntRange(min=0), default=0, show_default=True,
              help="W+ views of each sample fitted beside it under its mask (Eq. 7 at fit time; docs/oneshot.md, "
                   "'Views in the fit').")
@click.option("--out", default="segmenter.pt", show_default=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Fitted segmenter file; a picture of the samples is written beside it (.png).")
@device_option
@click.pass_context
def fit_cmd(ctx: click.Context, network: Path, hfc: Path | None, seeds: tuple[int, ...], ws_files: tuple[str, ...],
            images: tuple[Path, ...], masks: tuple[Path, ...], method: str | None, seg_name: str, hidden: int,
            epochs: int, lr: float, label_set: str, psi: float, class_idx: int | None, steps: int, w_steps: int,
            project_lr: float, no_project_noise: bool, use_d_features: bool, resize: bool, init_seed: int,
            with_image: bool, views: int, out: Path, device: str) -> None:
    """Fit a segmenter from annotated scans: each --seed, --ws or --image with its --mask (one-shot: one pair)."""
    from baggan.data.labelsets import get_label_set
    from baggan.device import resolve_device
    from baggan.errors import UserError
    from baggan.oneshot import annotated_samples, check_encoder, fit_and_save, load_encoder
    from baggan.stylegan2 import StyleGANFeatureGenerator, load_network
    from baggan.stylegan2.projector import ProjectorConfig
    from hfc.config import OneShotConfig
    from hfc.generator import ImageLayer

    order = [SOURCES[name] for name in ctx.meta["oneshot.order"] if name in SOURCES]
    if not order:
        raise UserError("give at least one annotated sample: --seed N, --ws FILE or --image SCAN.png, each with --mask")
    if len(order) != len(masks):
        raise UserError(f"give one --mask per sample: {len(order)} --seed/--ws/--image but {len(masks)} --mask")
    ls = get_label_set(label_set)
    try:
        ocfg = OneShotConfig(segmenter=seg_name, hidden=hidden, epochs=epochs, lr=lr, seed=init_seed,
                             image=with_image, standardize=with_image, views=views)
        pcfg = ProjectorConfig(steps=steps, w_steps=w_steps, lr=project_lr, noise=not no_project_noise,
                               seed=init_seed)
    except ValueError as e:
        raise UserError(f"bad option: {e}") from None
    dev = resolve_device(device)
    if method in RAW_METHODS and with_image and method != IMAGE_CONTROL:
        raise UserError(f"--with-image: the image goes beside HFC codes; --method {method} reads the raw features")
    if method == IMAGE_CONTROL and not with_image:
        raise UserError(f"--method {IMAGE_CONTROL} (the control) reads the generated image alone: add --with-image")
    if method in RAW_METHODS and hfc is not None:
        click.echo(f"warning: --hfc ignored: --method {method} fits on the raw hidden features", err=True)
    method, encoder = load_encoder(hfc, method, dev)
    nets = load_network(network, dev)
    G = nets["G_ema"] if "G_ema" in nets else nets.get("G")
    if G is None:
        raise UserError(f"{network}: no generator (G_ema or G) in the file")
    D = nets.get("D") if use_d_features else None
    if use_d_features and D is None:
        raise UserError(f"--use-d-features: {network} holds no discriminator (it holds {', '.join(sorted(nets))})")
    gen = StyleGANFeatureGenerator(G)
    check_encoder(gen, encoder, hfc)
    if with_image:  # the samples' features end with their image
        gen = ImageLayer(gen)

    values = {"seed": iter(seeds), "ws": iter(ws_files), "image": iter(images)}
    sources = [(kind, next(values[kind])) for kind in order]
    samples = annotated_samples(gen, sources, masks, ls, psi, class_idx, pcfg, D, resize,
                                echo=lambda line: click.echo(line, err=line.startswith("note:")))
    fitted = fit_and_save(out, method, gen, encoder, samples, ocfg, ls, network, hfc, psi)
    click.echo(f"fitted {method} on {len(samples)} sample(s); classes: background, "
               f"{', '.join(fitted.meta['categories'])}; training IoU {', '.join(f'{v:.3f}' for v in fitted.ious)}")
    click.echo(f"segmenter: {out}\npicture: {fitted.sheet}")


@click.command("annotate")
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Generator file.")
@click.option("--hfc", type=click.Path(dir_okay=False, path_type=Path),
              help="HFC encoder the segmenter was fitted with (not needed for a baseline).")
@click.option("--segmenter", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Segmenter file of `baggan oneshot fit`.")
@click.option("--n", "n", type=click.IntRange(min=1), default=16, show_default=True,
              help="Scans: seeds SEED .. SEED+N-1.")
@click.option("--outdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created when complete).")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="First seed (z as `baggan generate`).")
@click.option("--psi", type=FINITE, default=0.7, show_default=True, help="Truncation psi.")
@click.option("--class-idx", type=int, default=None, help="Class (conditional networks).")
@click.option("--label-set", help="Label set of the segmenter's classes, if its file does not say.")
@click.option("--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Scans per forward pass.")
@device_option
def annotate_cmd(network: Path, hfc: Path | None, segmenter: Path, n: int, outdir: Path, overwrite: bool,
                 seed: int, psi: float, class_idx: int | None, label_set: str | None, batch: int,
                 device: str) -> None:
    """Annotate N generated scans with a fitted segmenter: grid.png (scan | mask overlay) and per-scan PNGs."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from baggan.data.datasets import check_outdir, staged_output
    from baggan.device import resolve_device
    from baggan.errors import UserError
    from baggan.io import encode_image, write_plain
    from baggan.oneshot import annotate_grid, rgb
    from baggan.stylegan2.latents import ws_from_seed
    from baggan.stylegan2.projector import to_uint8
    from baggan.synth.build import load_annotator

    check_outdir(outdir, overwrite)
    for what, path in (("--network", network), ("--segmenter", segmenter), ("--hfc", hfc)):
        if path is not None and not Path(path).is_file():
            raise UserError(f"{what} {path}: file not found")
    wiring = load_annotator(network, hfc, segmenter, resolve_device(device), label_set)
    table = np.asarray(wiring.class_to_category, np.int64)
    seeds = list(range(seed, seed + n))
    images, labels = [], []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch), desc="annotate"):
            ws = ws_from_seed(wiring.gen.G, seeds[start : start + batch], psi, class_idx)
            out = wiring.annotate(ws)
            images += [rgb(im) for im in to_uint8(out.images)]
            labels += list(table[out.labels.cpu().numpy()])
    with staged_output(outdir, overwrite) as tmp:
        for s, img, lab in zip(seeds, images, labels):
            write_plain(tmp / f"seed{s:04d}.png", encode_image(".png", img))
            write_plain(tmp / f"seed{s:04d}_mask.png", encode_image(".png", lab.astype(np.uint8)))
        annotate_grid(tmp / "grid.png", images, labels, [f"seed {s}" for s in seeds], wiring.label_set,
                      wiring.class_to_category[1:], f"{segmenter.name}: seeds {seeds[0]}-{seeds[-1]}, psi {psi}")
    click.echo(f"annotated {n} scans: {outdir / 'grid.png'}; scans and category-id masks "
               f"(seedNNNN.png, seedNNNN_mask.png) in {outdir}")


COMMANDS = (oneshot_group, annotate_cmd)  # what `baggan` gets from this module
