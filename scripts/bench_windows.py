"""Threat windows: how visible and how recognisable is the threat under each clutter level and window scale?

For each simulator setting (clutter items, loose small parts, threat share of the window side) it renders N
fresh 64² threat windows (no negatives) and measures: the central threat's visibility (its own share of the
attenuation along its pixels, `Scan.visibility`), the share of windows where it counts as visible for the
judge, render time, and — with a judge file — the judge's mean AP and its confident (p >= 0.9) hit rate on
visible threats. Writes JSON and a PNG with one row of samples per setting.

    .venv/bin/python scripts/bench_windows.py --n 300 --judge checkpoints/judge-threats-64.pt \
        --out docs/benchmarks/windows.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.data.labelsets import PAPER_THREATS  # noqa: E402
from baggan.data.xray.window import WindowConfig  # noqa: E402
from baggan.data.xraysim import SimConfig, render_scans, scan_seed  # noqa: E402
from baggan.evaluate.judge import JudgeConfig, average_precision, load_judge, predict, visible_labels  # noqa: E402
from baggan.evaluate.report import environment, image_grid, save_figure  # noqa: E402
from baggan.io import write_json_atomic  # noqa: E402

# (name, clutter_min, clutter_max, small_parts_max, share, max_threats)
SETTINGS = [
    ("no clutter", 0, 0, 0, (0.5, 0.8), 2),
    ("light (threat-windows-64)", 0, 4, 0, (0.5, 0.8), 2),
    ("light + small parts", 0, 4, 4, (0.5, 0.8), 2),
    ("medium", 3, 12, 4, (0.5, 0.8), 2),
    ("default bag", 5, 30, 15, (0.5, 0.8), 2),
    ("light, small threat", 0, 4, 0, (0.25, 0.5), 2),
    ("light, large threat", 0, 4, 0, (0.8, 1.0), 2),
    ("clean (threat-windows-64-clean)", 0, 1, 0, (0.6, 0.9), 1),
]


def measure(setting: tuple, n: int, judge, jcfg: JudgeConfig) -> tuple[dict, np.ndarray]:
    """Figures of one setting, and its first 8 windows."""
    name, cmin, cmax, parts, share, threats = setting
    sim = SimConfig(threat_classes=PAPER_THREATS, max_threats=threats, clutter_min=cmin, clutter_max=cmax,
                    small_parts_max=parts, window=WindowConfig(share=share, negatives=0.0))
    t0 = time.time()
    scans = list(render_scans(sim, [(scan_seed(77, i), 64) for i in range(n)], workers=1))
    seconds = time.time() - t0
    vis = np.array([s.visibility[0] for s in scans])
    labels = np.stack([visible_labels(s, jcfg.classes, jcfg.min_area, jcfg.min_visibility) for s in scans])
    images = np.stack([s.image for s in scans])
    row = {"setting": name, "clutter": [cmin, cmax], "small_parts_max": parts, "share": list(share),
           "max_threats": threats,
           "visibility_mean": float(vis.mean()), "visibility_p10": float(np.percentile(vis, 10)),
           "visible_share": float(labels.any(1).mean()), "ms_per_window": 1000 * seconds / n}
    if judge is not None:
        p = predict(judge, images)
        aps = [average_precision(p[:, k], labels[:, k]) for k in range(len(jcfg.classes))]
        row["judge_map"] = float(np.nanmean(aps))
        row["judge_hit_rate"] = float((p >= 0.9)[labels > 0].mean())
    return row, images[:8]


def main() -> None:
    """Measure every setting and write the JSON and the picture."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--judge", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs/benchmarks/windows.json")
    args = ap.parse_args()
    judge, jcfg = (load_judge(args.judge)[:2] if args.judge else (None, JudgeConfig()))
    rows, samples = [], []
    for setting in SETTINGS:
        row, imgs = measure(setting, args.n, judge, jcfg)
        print(row, flush=True)
        rows.append(row)
        samples.append(list(imgs))
    write_json_atomic(args.out, {"command": " ".join(sys.argv), "n": args.n, "judge": str(args.judge),
                                 "environment": environment("cpu"), "rows": rows}, indent=2)
    save_figure(image_grid(samples, [r["setting"] for r in rows], title="Threat windows per setting (64²)"),
                args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
