"""How much does the threat judge key on sharp edges, and how blurred does a generator draw?

The simulator's threat windows (the reference side of `baggan evaluate threats`) are Gaussian-blurred by a fixed σ
(pixels at 64²) and judged: per class, the share of windows asked for that class alone in which the judge is
confident of it ("hits", p ≥ 0.9). Beside it, the windows' sharpness (mean Sobel gradient magnitude of the grey
image, pixels in [0, 1]) per σ, and the same sharpness of each generator's samples (drawn exactly as `evaluate
threats` draws them): the σ at which blurred simulator windows are as sharp as the samples is the generator's
*equivalent blur*. Writes a PNG (hits and sharpness over σ), OUT-rows.png (8 windows at every σ, to see by eye that
the tools stay plain) and a JSON beside it:

    .venv/bin/python scripts/judge_sharpness.py --judge checkpoints/judge-threats-64.pt \
        --network "stage 4, 420 kimg=checkpoints/xraysim-threats-64-clean.pt" \
        --out docs/benchmarks/judge-sharpness/default-judge.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.config import load_config  # noqa: E402
from baggan.data.labelsets import PIDRAY  # noqa: E402
from baggan.data.xraysim import SimConfig  # noqa: E402
from baggan.evaluate.judge import EVAL_SEED, blurred, load_judge, predict, render_set  # noqa: E402
from baggan.evaluate.report import save_figure  # noqa: E402
from baggan.evaluate.threats import asked_shares, generate  # noqa: E402
from baggan.io import write_json_atomic  # noqa: E402
from baggan.stylegan2 import load_network  # noqa: E402


def sharpness(images: np.ndarray) -> float:
    """Mean Sobel gradient magnitude of the grey images (pixels in [0, 1])."""
    out = []
    for im in images:
        g = cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        out.append(np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)).mean())
    return float(np.mean(out))


def equivalent_sigma(value: float, sigmas: list[float], curve: list[float]) -> float | None:
    """The σ at which the (falling) simulator sharpness curve meets `value`; None outside the measured range."""
    if not curve[-1] <= value <= curve[0]:
        return None
    return float(np.interp(value, curve[::-1], sigmas[::-1]))


def hits(probs: np.ndarray, asked: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Per class, the share of images asked for it alone that the judge is confident of it."""
    return {c: v["hit"] for c, v in asked_shares(probs, asked, classes).items()}


def main() -> None:
    """Measure, print and save."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--judge", type=Path, default=ROOT / "checkpoints/judge-threats-64-robust.pt")
    ap.add_argument("--sim-config", type=Path, default=ROOT / "configs/sim/threat-windows-64-clean.yaml")
    ap.add_argument("--network", action="append", default=[], help="NAME=PATH of a conditional generator")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--sigmas", default="0,0.5,0.75,1,1.25,1.5,2")
    ap.add_argument("--out", type=Path, required=True, help="PNG; the JSON goes beside it")
    args = ap.parse_args()
    sigmas = [float(s) for s in args.sigmas.split(",")]
    if sigmas != sorted(sigmas) or sigmas[0] != 0:
        sys.exit("--sigmas: increasing, starting at 0")
    nets = []
    for spec in args.network:
        name, sep, path = spec.partition("=")
        if not sep:
            sys.exit(f"--network {spec!r}: expected NAME=PATH")
        nets.append((name, load_network(path)["G_ema"].eval()))
    model, config, _ = load_judge(args.judge)
    images, _, cats = render_set(config, load_config(args.sim_config, SimConfig), EVAL_SEED, args.n, "render")
    asked = cats[:, [PIDRAY.id_of(c) - 1 for c in config.classes]]
    sim_rows, shown = [], []
    for s in sigmas:
        x = blurred(images, np.random.default_rng(0), (s, s)) if s else images  # the look-alikes' blur, fixed σ
        shown.append(np.concatenate(list(x[:8]), axis=1))
        sim_rows.append({"sigma": s, "sharpness": sharpness(x), "hits": hits(predict(model, x), asked, config.classes)})
        print(f"sigma {s:g}: sharpness {sim_rows[-1]['sharpness']:.4f}, hits "
              + ", ".join(f"{c} {v:.3f}" for c, v in sim_rows[-1]["hits"].items()))
    curve = [r["sharpness"] for r in sim_rows]
    gen_rows = []
    for name, G in nets:
        x = generate(G, args.n, args.psi, 0, cats.astype(np.float32), 50, torch.device("cpu"))
        row = {"name": name, "psi": args.psi, "sharpness": sharpness(x),
               "hits": hits(predict(model, x), asked, config.classes)}
        row["equivalent_sigma"] = equivalent_sigma(row["sharpness"], sigmas, curve)
        gen_rows.append(row)
        print(f"{name}: sharpness {row['sharpness']:.4f} (equivalent blur sigma {row['equivalent_sigma']}), hits "
              + ", ".join(f"{c} {v:.3f}" for c, v in row["hits"].items()))

    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for c in config.classes:
        a.plot(sigmas, [r["hits"][c] for r in sim_rows], marker="o", label=c)
    a.set(xlabel="Gaussian blur of simulator windows σ (px at 64²)", ylabel="judge's hits (asked for the class alone)",
          title="simulator windows: hits vs blur", ylim=(0, 1.02))
    a.legend(fontsize=8)
    b.plot(sigmas, curve, marker="o", color="k", label="simulator windows, blurred")
    for row in gen_rows:
        b.axhline(row["sharpness"], ls="--", label=f"{row['name']} (ψ {row['psi']:g})")
    b.set(xlabel="σ (px)", ylabel="mean Sobel gradient magnitude", title="sharpness")
    b.legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, args.out)
    fig, ax = plt.subplots(figsize=(12, 1.6 * len(sigmas)))
    ax.imshow(np.concatenate(shown), interpolation="nearest")
    size = images.shape[1]
    ax.set_yticks([size * (k + 0.5) for k in range(len(sigmas))], [f"σ {s:g}" for s in sigmas])
    ax.set_xticks([])
    ax.set_title("simulator windows blurred by σ px (rows)")
    save_figure(fig, args.out.with_name(f"{args.out.stem}-rows.png"))
    write_json_atomic(args.out.with_suffix(".json"), {
        "judge": str(args.judge), "sim_config": str(args.sim_config), "n": args.n, "classes": list(config.classes),
        "simulator": sim_rows, "generators": gen_rows})
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
