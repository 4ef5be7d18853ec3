"""Benchmark the StyleGAN2 networks on this machine: generator forward (ms/image) and a G+D training step
(forward + backward of G and D on batch 4, no regularisers, no optimiser step) at 64², 256², 512².

    .venv/bin/python scripts/bench_networks.py [--resolutions 64 256 512] [--reps 3] [--threads 2]

Config per resolution: cfg 'auto' (the official single-GPU defaults: channel_base 16384 below 512², 32768 from
512², channel_max 512, 2 mapping layers, z/w 512, conv_clamp 256; fp32 on the CPU). Writes
docs/benchmarks/networks.json (results of resolutions not rerun are kept) and docs/benchmarks/networks.png.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from baggan.io import write_json_atomic  # noqa: E402
from baggan.stylegan2 import NetworkConfig, build_discriminator, build_generator  # noqa: E402

BATCH = 4


def timed(fn, reps: int) -> list[float]:
    """Wall-clock seconds of `reps` calls after one warm-up call."""
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_resolution(res: int, reps: int) -> dict:
    """Forward and training-step timings for cfg 'auto' at `res`."""
    cfg = NetworkConfig(cfg="auto", resolution=res)
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    z = torch.randn(BATCH, G.z_dim)
    real = torch.randn(BATCH, 3, res, res)

    def forward() -> None:
        with torch.no_grad():
            G.eval()(z, None, noise_mode="const")

    def train_step() -> None:
        G.train(), D.train()
        G.zero_grad(set_to_none=True), D.zero_grad(set_to_none=True)
        F.softplus(-D(G(z, None), None)).mean().backward()  # G step: non-saturating loss through D
        fake = G(z, None).detach()
        (F.softplus(D(fake, None)) + F.softplus(-D(real, None))).mean().backward()  # D step

    fwd = timed(forward, reps)
    step = timed(train_step, reps)
    return {
        "resolution": res,
        "config": {"cfg": "auto", **{k: v for k, v in vars(cfg.resolved()).items() if k != "cfg"}},
        "params_G_M": round(sum(p.numel() for p in G.parameters()) / 1e6, 2),
        "params_D_M": round(sum(p.numel() for p in D.parameters()) / 1e6, 2),
        "batch": BATCH,
        "reps": reps,
        "G_forward_ms_per_image": round(statistics.median(fwd) * 1000 / BATCH, 1),
        "G_forward_ms_per_image_all": [round(t * 1000 / BATCH, 1) for t in fwd],
        "GD_train_step_ms": round(statistics.median(step) * 1000, 1),
        "GD_train_step_ms_all": [round(t * 1000, 1) for t in step],
    }


def plot(results: list[dict], path: Path) -> None:
    """Bar chart of both timings per resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['resolution']}²" for r in results]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    axes[0].bar(labels, [r["G_forward_ms_per_image"] for r in results], color="#4c72b0")
    axes[0].set_title("G forward, ms / image (batch 4)")
    axes[1].bar(labels, [r["GD_train_step_ms"] for r in results], color="#dd8452")
    axes[1].set_title("G+D fwd+bwd step, ms (batch 4)")
    for ax in axes:
        ax.set_yscale("log")
    fig.suptitle("baggan StyleGAN2, cfg 'auto', CPU (median)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    """Run the benchmark and write JSON + plot."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = ROOT / "docs" / "benchmarks" / "networks.json"
    # Results of resolutions not measured in this run are kept from the previous file.
    by_res = {r["resolution"]: r for r in (json.loads(out.read_text())["results"] if out.exists() else [])}
    command = "scripts/bench_networks.py " + " ".join(sys.argv[1:])
    for res in tqdm(args.resolutions, desc="bench_networks"):
        by_res[res] = {**bench_resolution(res, args.reps), "command": command}
        results = [by_res[k] for k in sorted(by_res)]
        write_json_atomic(out, {  # after every resolution, so a long run keeps what it measured
            "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                        "torch": torch.__version__, "note": "CPU shared with other jobs during the run"},
            "results": results,
        }, indent=1)
    plot(results, out.with_suffix(".png"))
    for r in results:
        print(f"{r['resolution']:>4}²: G forward {r['G_forward_ms_per_image']:>8.1f} ms/image, "
              f"G+D step {r['GD_train_step_ms']:>9.1f} ms")
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
