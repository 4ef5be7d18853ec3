"""What a generator's per-pixel noise inputs draw: the same latents and labels with noise_mode const, random, none.

One row per noise mode (8 samples each, labels of the first training images), written as a PNG, and the
learnt noise strength |s| of every synthesis layer beside it as JSON (printed too):

    .venv/bin/python scripts/noise_inputs.py --network runs/xraysim-threats-64-clean/snapshot-0000080032.pt \
        --data data/threat-windows-64-clean --out docs/benchmarks/train-xraysim-threats64-clean/noise_inputs_80kimg.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.evaluate.report import image_grid, save_figure  # noqa: E402
from baggan.io import quantize, write_json_atomic  # noqa: E402
from baggan.stylegan2 import load_network  # noqa: E402
from baggan.stylegan2.dataset import TrainingImages  # noqa: E402

MODES = ("const", "random", "none")


def main() -> None:
    """Draw the rows and save the picture."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="training data (labels of a conditional generator)")
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    G = load_network(args.network)["G_ema"].eval()
    z = torch.randn([args.n, G.z_dim], generator=torch.Generator().manual_seed(args.seed))
    c = None
    if G.c_dim:
        images = TrainingImages(args.data, G.img_resolution, G.img_channels, labels=True, progress=False)
        c = images.batch(np.arange(args.n) % len(images))[1].float()
    rows = []
    with torch.no_grad():
        ws = G.mapping(z, c)
        for mode in MODES:
            rows.append(list(quantize(G.synthesis(ws, noise_mode=mode)).permute(0, 2, 3, 1).numpy()))
    save_figure(image_grid(rows, [f"noise_mode {m}" for m in MODES],
                           title=f"{args.network.name}: same latents, noise inputs const / random / none"), args.out)
    strengths = {name.removeprefix("synthesis.").removesuffix(".noise_strength"): abs(float(p.detach()))
                 for name, p in G.named_parameters() if name.endswith("noise_strength")}
    write_json_atomic(args.out.with_suffix(".json"), {"network": str(args.network), "noise_strength_abs": strengths},
                      indent=2)
    print(" ".join(f"{k} {v:.3f}" for k, v in strengths.items()))
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
