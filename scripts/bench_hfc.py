"""Benchmark hfc on this machine: naive vs fused hidden features, and HFC training time per iteration.

Features (docs/benchmarks/hfc_features.json + .png): Linear(C_hidden → D) on Eq. 8's features of one
image, computed naively (upsample every H_l, concatenate, project: FusedLinear.naive) and fused
(project each layer at its resolution, upsample the D-channel result, sum: FusedLinear.forward), for
random H_l of config-f StyleGAN2 widths (channel_base 32768, channel_max 512: C_hidden 5376 / 5504 /
5568 at 256² / 512² / 1024²), D = 512 (f_theta) and D = 1280 (DatasetGAN's 10 x 128 first layers).
Also "at pixels": the training path, the projection at 5 x 20000 sampled pixels (FusedLinear.at) vs
the naive features gathered at those pixels. Each case runs in its own subprocess; peak memory is
ru_maxrss after the case minus the resident size before it (inputs already allocated).

The naive path at 1024² would hold 5568 x 1024² floats = 23.4 GB (more than this machine's free
memory): its memory is given analytically (C_hidden·S²·4 B + D·S²·4 B), and its time is measured on
one band of 128 rows (1/8 of the image; the band's Eq. 8 features materialised exactly through
hfc.features.sample_features_at) and multiplied by 8.

Training (docs/benchmarks/hfc_train_{threads}t.json): seconds per HFC iteration with configs/hfc/xray.yaml on a
randomly initialised BagGAN generator of the X-ray preset's width (configs/xraysim-64.yaml if present,
else NetworkConfig(cfg='auto', resolution=64)); falls back to tests/toygen.py if baggan's networks
cannot be imported, and says which generator was used.

LARS (docs/benchmarks/hfc_lars.json): 200 SwAV iterations on tests/toygen.py with every parameter
adapted (the default, as apex LARC) and with biases excluded (exclude_bias_and_norm): the mean cosine
between pixel codes, the norm of f_theta's bias, and the training-sample IoU of an FCN-3 fitted after.

    python scripts/bench_hfc.py --part all
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "benchmarks"
SIZES = (256, 512, 1024)


def config_f_layers(size: int) -> list[tuple[int, int]]:
    """(channels, resolution) of every synthesis conv of a config-f generator at `size`."""
    res = [2**k for k in range(2, size.bit_length())]
    ch = {r: min(32768 // r, 512) for r in res}
    return [(ch[4], 4)] + [(ch[r], r) for r in res[1:] for _ in range(2)]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_case(size: int, path: str, dim: int, threads: int) -> dict:
    """One measurement (in this process): time and peak memory of one projection path."""
    import torch

    from hfc.features import FusedLinear, gather_pixels, sample_features_at

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    layers = config_f_layers(size)
    feats = [torch.randn(1, c, r, r, generator=g) for c, r in layers]
    proj = FusedLinear([c for c, _ in layers], dim)
    coords = torch.randint(0, size, (1, 100_000, 2), generator=g)
    band = 128
    band_coords = torch.stack(torch.meshgrid(torch.arange(band), torch.arange(size), indexing="ij"), -1).reshape(1, -1, 2)
    before = _rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        if path == "fused":
            out = proj(feats, size)
        elif path == "naive":
            out = proj.naive(feats, size)
        elif path == "naive_band":  # 1/8 of the image: the Eq. 8 features of a 128-row band, then the Linear
            out = sample_features_at(feats, band_coords, size) @ proj.weight.t() + proj.bias
        elif path == "fused_at":
            out = proj.at(feats, coords, size)
        elif path == "naive_at":
            out = gather_pixels(proj.naive(feats, size), coords)
        else:
            raise ValueError(path)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"size": size, "path": path, "dim": dim, "c_hidden": sum(c for c, _ in layers), "seconds": seconds,
            "cpu_seconds": cpu_seconds, "peak_bytes": max(peak - before, 0), "out_shape": list(out.shape), "threads": threads}  # fmt: skip


def measure(size: int, path: str, dim: int, threads: int) -> dict:
    """run_case in a fresh subprocess (clean ru_maxrss)."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'scripts')!r}); " \
           f"import json, bench_hfc; print(json.dumps(bench_hfc.run_case({size}, {path!r}, {dim}, {threads})))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    """What ran the benchmark."""
    import torch

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpus": os.cpu_count(), "mem_gib": round(mem / 2**30, 1), "torch": torch.__version__,
            "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]}  # fmt: skip


def bench_features(threads: int) -> dict:
    """Every naive/fused case; writes hfc_features.json and .png."""
    cases = []
    for size in SIZES:
        for path in ("fused", "fused_at", "naive_band" if size == 1024 else "naive") + (("naive_at",) if size == 256 else ()):
            r = measure(size, path, 512, threads)
            if path == "naive_band":
                c = r["c_hidden"]
                r.update(path="naive", seconds=r["seconds"] * 8, cpu_seconds=r["cpu_seconds"] * 8,
                         peak_bytes=(c + 512) * size * size * 4,
                         how="time: one 128-row band x 8; memory: analytic (C_hidden + D) x S^2 x 4 B")  # fmt: skip
            print(f"{size}² {r['path']:9s} D=512: {r['seconds']:8.2f} s ({r['cpu_seconds']:.1f} s CPU) "
                  f"{r['peak_bytes'] / 2**30:7.2f} GiB", flush=True)
            cases.append(r)
    for size in (256, 512):  # DatasetGAN's first layers: 10 members x 128 = 1280 outputs
        for path in ("fused", "naive"):
            r = measure(size, path, 1280, threads)
            print(f"{size}² {path:9s} D=1280: {r['seconds']:8.2f} s  {r['peak_bytes'] / 2**30:7.2f} GiB", flush=True)
            cases.append(r)
    result = {"machine": machine(), "cases": cases}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hfc_features.json").write_text(json.dumps(result, indent=1))
    plot_features(result, OUT / "hfc_features.png")
    return result


def plot_features(result: dict, png: Path) -> None:
    """Bars: seconds and peak GiB per size, naive vs fused (D = 512)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, scale, label in ((axes[0], "seconds", 1, "seconds"), (axes[1], "peak_bytes", 2**30, "peak memory (GiB)")):
        for j, path in enumerate(("naive", "fused")):
            vals = [next((c[key] / scale for c in result["cases"] if c["size"] == s and c["path"] == path and c["dim"] == 512), 0)
                    for s in SIZES]  # fmt: skip
            bars = ax.bar([i + 0.4 * j for i in range(len(SIZES))], vals, 0.4, label=path)
            ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks([i + 0.2 for i in range(len(SIZES))], [f"{s}²" for s in SIZES])
        ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.legend()
    axes[0].set_title("Linear(C_hidden → 512) on Eq. 8 features, 1 image")
    axes[1].set_title("1024² naive: analytic memory, time from 1/8 band")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def bench_train(threads: int, iters: int) -> dict:
    """Seconds per HFC iteration with configs/hfc/xray.yaml; writes hfc_train.json."""
    import torch

    from hfc.augment import ViewSampler
    from hfc.config import HFCConfig
    from hfc.generator import layer_channels
    from hfc.lars import LARS
    from hfc.train import build_objective, hfc_step

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from baggan.config import load_config

    try:
        from baggan.stylegan2 import NetworkConfig, StyleGANFeatureGenerator, build_generator

        preset = ROOT / "configs" / "xraysim-64.yaml"
        if preset.is_file():
            from baggan.stylegan2.training_config import TrainConfig

            net_cfg, which = load_config(preset, TrainConfig).network, "configs/xraysim-64.yaml network, random weights"
        else:
            net_cfg, which = NetworkConfig(cfg="auto", resolution=64), "NetworkConfig(cfg='auto', resolution=64), random weights"
        gen = StyleGANFeatureGenerator(build_generator(net_cfg).eval())
    except ImportError as e:
        sys.path.insert(0, str(ROOT / "tests"))
        from toygen import ToyGenerator

        gen, which = ToyGenerator(), f"tests/toygen.py (baggan networks unavailable: {e})"
    cfg = load_config(ROOT / "configs" / "hfc" / "xray.yaml", HFCConfig)
    head, objective = build_objective(cfg, layer_channels(gen))
    opt = LARS(list(head.parameters()) + list(objective.parameters()), lr=cfg.optim.lr,
               trust_coefficient=cfg.optim.trust_coefficient)  # fmt: skip
    sampler, rng = ViewSampler(gen, cfg.augment), torch.Generator().manual_seed(0)
    times = []
    for i in range(iters + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        loss, _, _ = hfc_step(gen, head, objective, sampler, cfg, cfg.batch_size, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        objective.after_step()
        if i > 0:  # the first iteration is a warm-up
            times.append((time.perf_counter() - t0, time.process_time() - c0))
    wall = sorted(t for t, _ in times)[len(times) // 2]
    cpu = sorted(c for _, c in times)[len(times) // 2]
    result = {"machine": machine(), "generator": which, "img_resolution": gen.img_resolution,
              "c_hidden": sum(layer_channels(gen)), "config": "configs/hfc/xray.yaml", "batch_size": cfg.batch_size,
              "pixels_per_iteration": cfg.batch_size * cfg.sampling.num_patches * min(cfg.sampling.num_pixels, gen.img_resolution**2),
              "iters_measured": iters, "threads": threads, "median_wall_s_per_iter": wall, "median_cpu_s_per_iter": cpu,
              "est_full_run_hours": wall * cfg.epochs * cfg.iters_per_epoch / 3600}  # fmt: skip
    print(json.dumps(result, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"hfc_train_{threads}t.json").write_text(json.dumps(result, indent=1))
    return result


def bench_lars(threads: int, iters: int = 200) -> dict:
    """Why LARS adapts biases too: SwAV on tests/toygen.py with and without excluding 1-D params."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from toygen import ToyGenerator, iou, toy_label

    from hfc.augment import ViewSampler
    from hfc.config import HFCConfig, OneShotConfig, SamplingConfig, SwAVConfig
    from hfc.generator import layer_channels
    from hfc.lars import LARS
    from hfc.methods import fit_segmenter
    from hfc.oneshot import Annotation
    from hfc.train import build_objective, hfc_step

    torch.set_num_threads(threads)
    gen = ToyGenerator()
    ws = gen.sample_ws(1, seed=5)
    with torch.no_grad():
        image, feats = gen.synthesize(ws)
    ann = Annotation(ws[0], toy_label(image[0]))
    cfg = HFCConfig(dim=32, sampling=SamplingConfig(mode="patches", num_patches=2, patch_size=16),
                    swav=SwAVConfig(prototypes=64, temperature=0.1, epsilon=0.05))  # fmt: skip
    runs = {}
    for exclude in (False, True):
        head, objective = build_objective(cfg, layer_channels(gen))
        opt = LARS(list(head.parameters()) + list(objective.parameters()), lr=0.01, trust_coefficient=0.01,
                   exclude_bias_and_norm=exclude)  # fmt: skip
        sampler, rng, trace = ViewSampler(gen, cfg.augment), torch.Generator().manual_seed(0), []
        for i in range(iters + 1):
            if i % 50 == 0:
                with torch.no_grad():
                    z = head(feats, 32)[0].flatten(1)
                trace.append({"iter": i, "mean_pixel_cosine": float((z.t() @ z).mean()),
                              "bias_norm": float(head.proj.bias.norm())})  # fmt: skip
            if i == iters:
                break
            loss, _, _ = hfc_step(gen, head, objective, sampler, cfg, 2, rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            objective.after_step()
        seg = fit_segmenter(gen, head, [ann], OneShotConfig(segmenter="fcn3", hidden=32, epochs=100))
        runs["exclude_bias_and_norm" if exclude else "adapt_all"] = {
            "trace": trace, "fcn3_train_iou": iou(seg.predict(feats, 32)[0][0], ann.label)}
        print(json.dumps(runs, indent=1), flush=True)
    result = {"machine": machine(), "generator": "tests/toygen.py", "lr": 0.01, "trust_coefficient": 0.01,
              "iters": iters, "runs": runs}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hfc_lars.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> None:
    """CLI entry."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["features", "train", "lars", "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5, help="measured training iterations (after one warm-up)")
    args = ap.parse_args()
    if args.part in ("features", "all"):
        bench_features(args.threads)
    if args.part in ("train", "all"):
        bench_train(args.threads, args.iters)
    if args.part in ("lars", "all"):
        bench_lars(args.threads)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
