"""Audit the threat judge on a generator's samples by eye: what it is sure of, and what it rejects.

Draws samples of a conditional generator asked for one class (latent seeds 0, 1, …, as `evaluate threats` does),
judges them, and writes two labelled grids (OUT-sure.png, OUT-unsure.png): the first `--show` samples the judge is sure (p ≥ 0.9)
show that class, and the first `--show` it is not sure of (with the judge's best guess). A person counting the
real tools in the first grid measures the judge's precision on generated images, which the simulator's AP cannot:

    .venv/bin/python scripts/judge_audit.py --network checkpoints/xraysim-threats-64-stage6.pt --class Hammer \
        --out docs/benchmarks/judge-audit/hammer-s6-520.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.data.labelsets import PIDRAY  # noqa: E402
from baggan.evaluate.judge import load_judge, predict  # noqa: E402
from baggan.evaluate.report import save_figure  # noqa: E402
from baggan.evaluate.threats import CONFIDENT, generate, labelled_grid, verdict  # noqa: E402
from baggan.io import write_json_atomic  # noqa: E402
from baggan.stylegan2 import load_network  # noqa: E402


def main() -> None:
    """Draw, judge, save."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", type=Path, required=True)
    ap.add_argument("--judge", type=Path, default=ROOT / "checkpoints/judge-threats-64-robust.pt")
    ap.add_argument("--class", dest="name", required=True, help="a PIDRay category the judge knows")
    ap.add_argument("--n", type=int, default=200, help="samples drawn")
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--show", type=int, default=32, help="samples per grid")
    ap.add_argument("--out", type=Path, required=True, help="OUT.json; the grids go beside it")
    args = ap.parse_args()
    model, config, _ = load_judge(args.judge)
    if args.name not in config.classes:
        sys.exit(f"--class {args.name!r}: the judge knows {', '.join(config.classes)}")
    G = load_network(args.network)["G_ema"].eval()
    if not G.c_dim:
        sys.exit(f"{args.network}: not a conditional generator")
    labels = np.zeros((args.n, G.c_dim), np.float32)
    labels[:, PIDRAY.id_of(args.name) - 1] = 1.0
    images = generate(G, args.n, args.psi, 0, labels, 50, torch.device("cpu"))
    probs = predict(model, images)
    sure = probs[:, config.classes.index(args.name)] >= CONFIDENT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for tag, pick in (("sure", sure), ("unsure", ~sure)):
        idx = np.flatnonzero(pick)[:args.show]
        if len(idx):
            fig = labelled_grid(images[idx], [verdict(probs[i], config.classes) for i in idx],
                                f"{args.network.name}, asked for {args.name}, ψ {args.psi:g}: judge {tag} "
                                f"({int(pick.sum())} of {args.n}; the first {len(idx)})")
            save_figure(fig, args.out.with_name(f"{args.out.stem}-{tag}.png"))
    write_json_atomic(args.out.with_suffix(".json"), {
        "network": str(args.network), "judge": str(args.judge), "class": args.name, "psi": args.psi, "n": args.n,
        "sure": int(sure.sum()), "sure_seeds": np.flatnonzero(sure).tolist()})
    print(f"{args.name}: judge sure in {int(sure.sum())} of {args.n}; wrote {args.out.parent}")


if __name__ == "__main__":
    main()
