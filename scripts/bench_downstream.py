"""Benchmark the downstream protocol: the full R:A sweep on the given data, timed, next to the paper's figures.

    .venv/bin/python scripts/bench_downstream.py --real DIR --synthetic DIR --test DIR \
        [--config configs/eval/downstream-cpu.yaml] [--name cpu] [--device cpu]

Writes the protocol's report folder docs/benchmarks/downstream-<name>/ (Markdown, JSON, PNGs) and a summary
docs/benchmarks/downstream-<name>.json: the gains over 1:0 of each segmenter beside the paper's SDANet gains
(section 8.2: +1.07, +2.51, +3.11 IoU points at 1:1, 1:5, 1:10), the wall time and the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Paper section 8.2: SDANet on BagGAN-augmented PIDRay, IoU improvement over real-only training (points).
PAPER_SDANET_GAIN = {"1:1": 1.07, "1:5": 2.51, "1:10": 3.11}


def main() -> None:
    """Parse the arguments, run the sweep, write the summary, print the gains."""
    from baggan.config import load_config
    from baggan.device import resolve_device
    from baggan.evaluate.downstream import DownstreamConfig, run_downstream
    from baggan.evaluate.report import environment, to_jsonable
    from baggan.io import read_json, write_json_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--synthetic", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--config", default=str(ROOT / "configs/eval/downstream-cpu.yaml"))
    ap.add_argument("--name", default="cpu", help="suffix of the output names")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-note", default="", help="what the three sets are, recorded in the summary")
    args = ap.parse_args()

    cfg = load_config(args.config, DownstreamConfig)
    outdir = ROOT / "docs/benchmarks" / f"downstream-{args.name}"
    t0 = time.time()
    md = run_downstream(cfg, args.real, args.synthetic, args.test, outdir, resolve_device(args.device))
    seconds = time.time() - t0
    report = read_json(md.with_suffix(".json"))
    gains = {}
    for model, by_ratio in report["summary"].items():
        base = by_ratio[cfg.ratio_names[0]]
        gains[model] = {ratio: {key: 100 * (s[key][0] - base[key][0]) for key in ("miou", "wiou")}
                        for ratio, s in by_ratio.items()}
    summary = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "config": args.config,
               "data_note": args.data_note, "machine": environment(args.device), "seconds": seconds,
               "runs": len(report["runs"]), "report": str(md.relative_to(ROOT)), "data": report["data"],
               "paper_sdanet_iou_gain_pp": PAPER_SDANET_GAIN, "gain_over_1to0_pp": gains,
               "summary": report["summary"]}
    path = ROOT / "docs/benchmarks" / f"downstream-{args.name}.json"
    write_json_atomic(path, to_jsonable(summary), indent=2)
    print(f"{len(report['runs'])} runs in {seconds / 60:.1f} min; report {md}; summary {path}")
    for model, by_ratio in gains.items():
        cells = ", ".join(f"{r}: mIoU {g['miou']:+.2f} / wIoU {g['wiou']:+.2f}" for r, g in by_ratio.items())
        print(f"{model}: {cells}")
    print("paper (SDANet, IoU): " + ", ".join(f"{r}: {g:+.2f}" for r, g in PAPER_SDANET_GAIN.items()))


if __name__ == "__main__":
    main()
