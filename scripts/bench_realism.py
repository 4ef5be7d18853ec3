"""Benchmark the realism protocol on given sets, plus the cost of its parts (Inception features, FID).

    .venv/bin/python scripts/bench_realism.py --sets A B [C ...] [--names a b ...] \
        [--max-images 100] [--resolution 128] [--name sim] [--device cpu]

Writes the protocol's report folder docs/benchmarks/realism-<name>/ and a summary
docs/benchmarks/realism-<name>.json: FID/KID and histogram distances per pair, material shares per set,
Inception throughput (scans/s at --resolution), FID time at D = 2048 for the set size and for 2,500
vectors per set (the two computation routes of fid_from_features), wall time and machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _timed(fn, *args) -> float:
    """Seconds one call of fn(*args) takes."""
    t0 = time.time()
    fn(*args)
    return time.time() - t0


def main() -> None:
    """Parse the arguments, time the parts, run the protocol, write the summary."""
    from baggan.device import resolve_device
    from baggan.evaluate.realism import RealismOptions, run_realism
    from baggan.evaluate.report import environment, to_jsonable
    from baggan.io import read_json, write_json_atomic
    from baggan.metrics.fid import InceptionFeatures, fid_from_features

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", required=True)
    ap.add_argument("--names", nargs="+")
    ap.add_argument("--max-images", type=int, default=100)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--name", default="sim")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-note", default="", help="what the sets are, recorded in the summary")
    args = ap.parse_args()
    device = resolve_device(args.device)

    rng = np.random.default_rng(0)
    net = InceptionFeatures(device)
    probe = rng.integers(0, 256, (32, args.resolution, args.resolution, 3), dtype=np.uint8)
    net(probe[:4])  # warm-up
    inception_per_s = len(probe) / _timed(net, probe)
    fid_seconds = {n: _timed(fid_from_features, rng.normal(size=(n, 2048)), rng.normal(size=(n, 2048)))
                   for n in (args.max_images, 2500)}

    t0 = time.time()
    opts = RealismOptions(max_images=args.max_images, resolution=args.resolution)
    md = run_realism(args.sets, args.names, ROOT / "docs/benchmarks" / f"realism-{args.name}", opts, device)
    seconds = time.time() - t0
    report = read_json(md.with_suffix(".json"))
    summary = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "data_note": args.data_note,
               "machine": environment(args.device), "seconds": seconds, "report": str(md.relative_to(ROOT)),
               "inception_scans_per_second": inception_per_s, "fid_seconds_at_d2048": fid_seconds,
               "sets": report["sets"], "comparisons": report["comparisons"]}
    path = ROOT / "docs/benchmarks" / f"realism-{args.name}.json"
    write_json_atomic(path, to_jsonable(summary), indent=2)
    print(f"realism in {seconds:.0f} s; Inception {inception_per_s:.2f} scans/s at {args.resolution}²; "
          f"FID at D=2048: " + ", ".join(f"N={n}: {s:.1f} s" for n, s in fid_seconds.items()))
    for c in report["comparisons"]:
        print(f"{c['a']} vs {c['b']}: FID {c['fid']:.2f}, KID×1e3 {1e3 * c['kid']:.2f}")
    print(f"report {md}; summary {path}")


if __name__ == "__main__":
    main()
