"""Does a conditional generator use its latent? Per-class diversity of samples against the training windows.

For each category, N samples drawn with that category's one-hot label (ψ 1, different latents) and N training
windows whose label holds that category: the spread of each set — the training log's `diversity` statistic
(`sample_diversity`: the std across images, mean over pixels; pixels in [0, 1]). A generator that ignores z
within a class (per-class mode collapse) has a spread far below its training windows'; the ratio is the
*diversity ratio*. Writes JSON and a picture (one
row of samples per category, training windows beside):

    .venv/bin/python scripts/class_diversity.py --network checkpoints/xraysim-threats-64-clean.pt \
        --data data/threat-windows-64-clean --out docs/benchmarks/class-diversity/stage2-40kimg.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.data.labelsets import PAPER_THREATS, PIDRAY  # noqa: E402
from baggan.evaluate.report import image_grid, save_figure  # noqa: E402
from baggan.io import quantize, write_json_atomic  # noqa: E402
from baggan.stylegan2 import load_network  # noqa: E402
from baggan.stylegan2.dataset import TrainingImages  # noqa: E402
from baggan.stylegan2.latents import ws_from_seed  # noqa: E402
from baggan.stylegan2.training_report import sample_diversity  # noqa: E402


def spread(images: torch.Tensor) -> float:
    """sample_diversity of uint8 images [N, 3, H, W], pixels scaled to [0, 1]."""
    return sample_diversity(images.float() / 255.0)


def main() -> None:
    """Measure, print and save."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="the generator's training windows (labels)")
    ap.add_argument("--n", type=int, default=64, help="samples and training windows per category")
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--show", type=int, default=8, help="images per category in the picture")
    ap.add_argument("--out", type=Path, required=True, help="PNG; the JSON goes beside it")
    args = ap.parse_args()
    G = load_network(args.network)["G_ema"].eval()
    if not G.c_dim:
        sys.exit(f"{args.network}: not a conditional generator")
    data = TrainingImages(args.data, G.img_resolution, G.img_channels, labels=True, progress=False)
    labels = np.stack([data.label(i) for i in range(len(data))])
    rows, names, result = [], [], {}
    for name in PAPER_THREATS:
        k = PIDRAY.names.index(name)
        with torch.no_grad():
            fake = quantize(G.synthesis(ws_from_seed(G, list(range(args.n)), args.psi, class_idx=k), noise_mode="const"))
        idx = np.flatnonzero(labels[:, k] > 0)[:args.n]
        real = data.batch(idx)[0]
        d_fake, d_real = spread(fake), spread(real)
        fake, real = fake.permute(0, 2, 3, 1).numpy(), real.permute(0, 2, 3, 1).numpy()
        result[name] = {"samples": d_fake, "training": d_real, "ratio": d_fake / d_real}
        print(f"{name:10s} samples {d_fake:.4f}  training {d_real:.4f}  ratio {d_fake / d_real:.2f}")
        rows.append(list(fake[:args.show]) + list(real[:args.show]))
        names.append(f"{name}: {d_fake / d_real:.2f}x")
    save_figure(image_grid(rows, names, title=f"{args.network.name} (psi {args.psi}): {args.show} samples per "
                           f"one-hot class | {args.show} training windows of the class"), args.out)
    write_json_atomic(args.out.with_suffix(".json"), {"network": str(args.network), "psi": args.psi, "n": args.n,
                                                      "spread": result}, indent=2)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
