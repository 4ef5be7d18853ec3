"""Picture the W+ views the one-shot fit adds to each annotated window (hfc OneShotConfig.views, Eq. 7 at fit time).

One row per annotated window of a protocol repetition: the simulator window, its projection, then the views
(`fit.views_per_sample` of them, `fit.views_tau_p`, blocks of >= `fit.views_min_resolution` px), each titled with
the style block it moved; the window's exact mask outlined in red on every tile — where a view moved the tool off its
outline, the fit learns from a misplaced label. Projections come from the run folder's cache (made if missing):

    .venv/bin/python scripts/show_fit_views.py --config configs/eval/oneshot-windows-views-cpu.yaml \
        --outdir runs/oneshot-views --rep 0 --out docs/benchmarks/oneshot-views/views-rep0.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.denormals import flush_denormals  # noqa: E402
from baggan.evaluate.oneshot import Workspace  # noqa: E402
from baggan.evaluate.oneshot_config import load_oneshot_config  # noqa: E402
from baggan.evaluate.report import save_figure  # noqa: E402
from hfc.augment import fit_view_seed, fit_views, style_blocks  # noqa: E402


def moved_block(gen, ws: torch.Tensor, view: torch.Tensor) -> int:
    """Resolution of the style block whose ws entries differ between ws [num_ws, w_dim] and view."""
    changed = {i for i in range(ws.shape[0]) if not torch.equal(ws[i], view[i])}
    return next((b.resolution for b in style_blocks(gen) if changed and changed <= set(b.ws)), 0)


def main() -> None:
    """Project (or read) the repetition's annotated windows, draw their views, save the grid."""
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True, help="a one-shot protocol config with fit.views")
    ap.add_argument("--outdir", type=Path, required=True, help="the protocol's run folder (its projection cache)")
    ap.add_argument("--network", type=Path, default=None, help="default: the config's network")
    ap.add_argument("--rep", type=int, default=0, help="repetition whose annotated windows are shown")
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args()
    flush_denormals()
    cfg = load_oneshot_config(args.config)
    f = cfg.fit
    network = args.network or Path(cfg.network)
    ws = Workspace(cfg, args.outdir, network, torch.device("cpu"), progress=True)
    train = ws.scans.annotated_sets(args.rep, [1], cfg.scans.annotation, cfg.scans.candidates)[1]
    projections = ws.project_all(train)
    n = f.views_per_sample
    fig, axes = plt.subplots(len(train), n + 2, figsize=(1.3 * (n + 2), 1.45 * len(train)), squeeze=False)
    for i, (row, scan) in enumerate(zip(axes, train)):
        proj = projections[(scan.kind, scan.seed)]
        gen = ws.cache.generator(proj)
        seed = fit_view_seed(f.seed + args.rep, i)  # the views the protocol's fit draws for annotated window i
        views = fit_views(gen, proj.ws, n, f.views_tau_p, f.views_min_resolution, seed)
        with torch.no_grad():
            images = gen.synthesize(torch.cat([proj.ws, views]), return_features=False)[0]
        tiles = [scan.image] + list(((images.permute(0, 2, 3, 1).clamp(-1, 1) + 1) * 127.5).byte().numpy())
        titles = ["window", f"projection\n{proj.psnr:.1f} dB"]
        titles += [f"view {k + 1}\nblock {moved_block(gen, proj.ws[0], v)} px" for k, v in enumerate(views)]
        edge = find_boundaries(scan.label > 0, mode="inner")
        for ax, tile, title in zip(row, tiles, titles):
            tile = tile.copy()
            tile[edge] = (255, 0, 0)
            ax.imshow(tile)
            ax.set_title(title, fontsize=6)
            ax.axis("off")
    fig.suptitle(f"fit views: {n} per window, tau_p {f.views_tau_p:g}, blocks >= {f.views_min_resolution} px "
                 f"(repetition {args.rep}; red: the window's exact mask)", fontsize=8)
    fig.tight_layout()
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()
