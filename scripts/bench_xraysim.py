"""Speed of the X-ray simulator: scans per second at 64, 128, 256 and 512 pixels, one process, one thread.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_xraysim.py [--n 20] [--repeats 3] [--out docs/benchmarks]

Writes xraysim.json and xraysim.png. Each size renders scans 0..n-1 (default SimConfig) `repeats` times;
"per core" rates use the process CPU time (what one core delivers even when other jobs share the machine):
the median over all scans and the best batch of n; "wall" is the elapsed time of a batch (median). The
breakdown (means per scan, so the parts add up) separates scene sampling, rasterisation and the rest
(detector physics, colour, masks). The load average at the start and end is recorded because the CPU may be shared with other jobs,
which inflates every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from baggan.data.xray.raster import Canvas
from baggan.data.xraysim import SimConfig, XRaySimulator
from baggan.io import write_json_atomic

SIZES = (64, 128, 256, 512)


def bench_size(sim: XRaySimulator, size: int, n: int, repeats: int) -> dict:
    """Timings of one size: per scan, the full render and, separately, its scene sampling and rasterisation."""
    sim.render(0, size)  # warm-up: caches, colour table
    total, scene_t, raster_t, batch_cpu, batch_wall = [], [], [], [], []
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for seed in range(n):
            t = time.process_time()
            sim.render(seed, size)
            total.append(time.process_time() - t)
        batch_cpu.append(time.process_time() - c0)
        batch_wall.append(time.perf_counter() - w0)
        for seed in range(n):
            t = time.process_time()
            scene = sim.scene(seed)
            t1 = time.process_time()
            canvas = Canvas(size, sim.to_pixels(scene, size))
            for part, _ in scene.parts:
                canvas.draw(part)
            scene_t.append(t1 - t)
            raster_t.append(time.process_time() - t1)
    mean = {k: 1e3 * statistics.fmean(v) for k, v in (("total", total), ("scene", scene_t), ("raster", raster_t))}
    return {
        "size": size, "scans": n, "repeats": repeats,
        "scans_per_s_per_core_median": round(1 / statistics.median(total), 2),
        "scans_per_s_per_core_best_batch": round(n / min(batch_cpu), 2),
        "scans_per_s_wall_median_batch": round(n / statistics.median(batch_wall), 2),
        "cpu_ms_per_scan_mean": {"total": round(mean["total"], 2), "scene": round(mean["scene"], 2),
                                 "raster": round(mean["raster"], 2),
                                 "detector_colour_other": round(mean["total"] - mean["scene"] - mean["raster"], 2)},
    }


def main() -> None:
    """Run the benchmark and write JSON and a plot."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--out", default="docs/benchmarks")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    sim = XRaySimulator(SimConfig())
    load0 = os.getloadavg()
    results = [bench_size(sim, s, args.n, args.repeats) for s in args.sizes]
    load1 = os.getloadavg()
    doc = {"command": f"OMP_NUM_THREADS=1 .venv/bin/python scripts/bench_xraysim.py --n {args.n} "
                      f"--repeats {args.repeats}",
           "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                       "python": platform.python_version(), "numpy": np.__version__, "opencv": cv2.__version__,
                       "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                       "load_average_start": [round(v, 2) for v in load0],
                       "load_average_end": [round(v, 2) for v in load1]},
           "config": "SimConfig() defaults", "target": ">= 20 scans/s at 256 per core", "results": results}
    out = Path(args.out)
    write_json_atomic(out / "xraysim.json", doc, indent=2)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    sizes = [r["size"] for r in results]
    ax.plot(sizes, [r["scans_per_s_per_core_median"] for r in results], "o-", label="per core (CPU time), median")
    ax.plot(sizes, [r["scans_per_s_wall_median_batch"] for r in results], "s--", label="wall clock (shared CPU)")
    ax.axhline(20, color="grey", lw=0.8, ls=":", label="target at 256")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.set_xlabel("scan size (pixels, square)")
    ax.set_ylabel("scans / s, one process")
    ax.set_title(f"X-ray simulator speed (load avg {load0[0]:.1f}-{load1[0]:.1f})", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "xraysim.png", dpi=120)
    for r in results:
        print(f"{r['size']:4d}: {r['scans_per_s_per_core_median']:6.1f} scans/s per core (median), "
              f"{r['scans_per_s_per_core_best_batch']:6.1f} (best batch), {r['scans_per_s_wall_median_batch']:6.1f} "
              f"wall; ms/scan {r['cpu_ms_per_scan_mean']}")
    print(f"wrote {out / 'xraysim.json'} and {out / 'xraysim.png'}")


if __name__ == "__main__":
    main()
