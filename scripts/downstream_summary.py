"""Summarise the finished runs of a downstream sweep, also one cut off before its report was written.

`baggan evaluate downstream` records every finished training in OUTDIR/downstream-runs.json (that is how an
interrupted sweep resumes) but writes its report only at the end. This prints, from that log, the mIoU / FG-IoU
table per segmenter and ratio (mean ± std over the seeds finished so far) and writes it as JSON beside --out:

    .venv/bin/python scripts/downstream_summary.py runs/downstream-windows-sim/downstream-runs.json \
        --out docs/benchmarks/downstream-windows-sim.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.evaluate import report as rp  # noqa: E402
from baggan.evaluate.downstream import read_runs, summarize  # noqa: E402
from baggan.io import read_json, write_json_atomic  # noqa: E402


def main() -> None:
    """Read the run log, print the table, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", type=Path, help="OUTDIR/downstream-runs.json of a sweep")
    ap.add_argument("--out", type=Path, help="JSON summary to write")
    args = ap.parse_args()
    doc = read_json(args.log)
    runs = read_runs(doc)
    if not runs:
        sys.exit(f"{args.log}: no finished runs")
    models = list(dict.fromkeys(x.model for x in runs))
    summary = {m: {ratio: summarize(runs, m, ratio) for ratio in dict.fromkeys(x.ratio for x in runs if x.model == m)}
               for m in models}
    rows = []
    for m, by_ratio in summary.items():
        base = next(iter(by_ratio.values()))["miou"][0]
        rows += [[m, ratio, s["seeds"], rp.fmt_mean_std(*s["miou"]), rp.fmt(s["miou"][0] - base, scale=100),
                  rp.fmt_mean_std(*s["fg_iou"]), rp.fmt(s["steps"], 0)] for ratio, s in by_ratio.items()]
    print(rp.markdown_table(["segmenter", "R:A", "seeds", "mIoU %", "Δ mIoU (pp)", "FG-IoU %", "steps/run"], rows))
    if args.out:
        write_json_atomic(args.out, rp.to_jsonable({"log": str(args.log), "key": doc["key"], "summary": summary,
                                                    "runs": [dataclasses.asdict(x) for x in runs]}), indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
