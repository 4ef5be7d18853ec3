"""Benchmark StyleGAN2-ADA training speed on this machine: sec/kimg at 64², 128², 256².

Each phase of the loop (G main, G reg, D main, D reg) is timed on its own, after a warm-up, with
augmentation at p = 0.5; a step costs G_main + D_main + G_reg / pl_interval + D_reg / r1_interval, so

    sec/kimg = (t_G_main + t_D_main + t_G_reg / pl_interval + t_D_reg / r1_interval) × 1000 / batch.

Both wall-clock and process CPU seconds are recorded: on a shared machine the wall time is inflated by
other processes (the load average is recorded too), the CPU time much less so.

Configs: "preset" = configs/xraysim-64.yaml at 64² (batch 32), and the same design at 128² and 256²
with channel_base scaled by resolution / 64 (the output block keeps 16 channels and each halving of
the resolution doubles them, up to channel_max 128); "auto" = the official single-GPU 'auto' widths
(channel_base 16384, channel_max 512: 512 channels up to 32², then halving), batch 4.

With --levers it times the preset at 64² once per way of running the same training on this CPU (the
cost-per-kimg levers of issue 19): "eager" (as `baggan train` runs it), "channels_last" (networks and images
in channels-last memory format), "batch_gpu32" (the whole batch of 32 in one chunk instead of two of 16), and
"compile" (torch.compile on D's and G's synthesis forward in the main phases; the regularisation phases stay
eager because compiled graphs do not support their double backward).

With --fid-samples N it also times the FID/KID probe of the loop (Inception features, one process):
CPU seconds per training image (computed once per run) and per generated image (every evaluation).

    python scripts/bench_train.py --threads 1 --reps 1 --warmup 1 --out docs/benchmarks/train.json
    python scripts/bench_train.py --threads 1 --rows "" --fid-samples 50 --out docs/benchmarks/train_fid.json
    python scripts/bench_train.py --threads 1 --reps 3 --warmup 2 --rows "" --levers \
        --config configs/xraysim-threats-64-clean.yaml --out docs/benchmarks/train_levers.json
    python scripts/bench_train.py --threads 1 --reps 1 --rows preset:64,preset:64:2048:128,preset:64:4096:128,\
        preset:64:8192:256 --out docs/benchmarks/train_widths.json
"""

from __future__ import annotations

import argparse
import shlex
import dataclasses
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.allocator import keep_freed_memory  # noqa: E402
from baggan.denormals import flush_denormals  # noqa: E402
from baggan.config import load_config  # noqa: E402
from baggan.data.coco import CocoWriter  # noqa: E402
from baggan.stylegan2.distributed import Processes  # noqa: E402
from baggan.stylegan2.training_config import TrainConfig  # noqa: E402
from baggan.stylegan2.training_loop import PHASES, Trainer  # noqa: E402


def random_data(root: Path, resolution: int, n: int = 16, categories: int = 1) -> Path:
    """n random scans (content does not change the speed), with `categories` categories (a conditional net's c_dim)."""
    rng = np.random.default_rng(0)
    writer = CocoWriter(root, [{"id": i + 1, "name": f"item{i}"} for i in range(categories)])
    for _ in range(n):
        writer.add(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8),
                   np.zeros((resolution, resolution), np.int64))
    writer.close()
    return root


def variant(base: TrainConfig, family: str, resolution: int, widths: tuple[int, int] | None = None) -> TrainConfig:
    """The benchmarked config: the preset scaled to `resolution` (optionally with other channel_base and
    channel_max at 64²), or official 'auto' widths at batch 4."""
    net = base.network.resolved()
    if widths is not None:
        net = dataclasses.replace(net, channel_base=widths[0], channel_max=widths[1])
    if family == "preset":
        net = dataclasses.replace(net, resolution=resolution, channel_base=net.channel_base * resolution // 64)
        schedule = base.schedule
    else:
        net = dataclasses.replace(net, resolution=resolution, channel_base=16384, channel_max=512, mbstd_group_size=4)
        schedule = dataclasses.replace(base.schedule, batch=4, batch_gpu=4)
    augment = dataclasses.replace(base.augment, p=0.5, target=None)
    metrics = dataclasses.replace(base.metrics, fid_ticks=0)
    return dataclasses.replace(base, network=net, schedule=schedule, augment=augment, metrics=metrics, grid=2)


LEVERS = ("eager", "channels_last", "batch_gpu32", "compile")


def apply_lever(trainer: Trainer, lever: str) -> list[tuple]:
    """Put the trainer's networks into the lever's form; return the (module, forward) pairs to swap in for the
    main phases (compile) — none for the other levers."""
    if lever == "channels_last":
        for net in (trainer.G, trainer.D, trainer.G_ema):
            net.to(memory_format=torch.channels_last)
    if lever != "compile":
        return []
    return [(m, torch.compile(m.forward)) for m in (trainer.G.synthesis, trainer.D)]


def time_phases(trainer: Trainer, warmup: int, reps: int, lever: str = "eager") -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each phase over `reps` runs after `warmup` runs."""
    b = trainer.cfg.schedule.batch
    reals, labels = trainer.images.batch(np.arange(b) % len(trainer.images))
    reals = reals.float() / 127.5 - 1
    if lever == "channels_last":
        reals = reals.contiguous(memory_format=torch.channels_last)
    swaps = apply_lever(trainer, lever)
    out = {}
    for phase in trainer.phases:
        walls, cpus = [], []
        swapped = swaps if phase.name in ("G_main", "D_main") else []
        for i in range(warmup + reps):
            for module, fwd in swapped:
                module.forward = fwd
            w0, c0 = time.perf_counter(), time.process_time()
            trainer._run_phase(phase, PHASES.index(phase.name), reals, labels)
            for module, _ in swapped:
                del module.forward  # back to the class's (eager) forward
            if i >= warmup:
                walls.append(time.perf_counter() - w0)
                cpus.append(time.process_time() - c0)
        out[phase.name] = {"wall_s": float(np.median(walls)), "cpu_s": float(np.median(cpus)), "interval": phase.interval}
    return out


def per_kimg(phases: dict, batch: int, key: str) -> float:
    """Seconds per thousand images from per-phase seconds."""
    step = sum(p[key] / p["interval"] for p in phases.values())
    return step * 1000 / batch


def bench(family: str, resolution: int, base: TrainConfig, warmup: int, reps: int,
          widths: tuple[int, int] | None = None, lever: str = "eager") -> dict:
    """One row of the benchmark."""
    cfg = variant(base, family, resolution, widths)
    if lever == "batch_gpu32":
        cfg = dataclasses.replace(cfg, schedule=dataclasses.replace(cfg.schedule, batch_gpu=cfg.schedule.batch))
    with tempfile.TemporaryDirectory() as tmp:
        data = random_data(Path(tmp) / "data", resolution, categories=max(cfg.network.c_dim, 1))
        trainer = Trainer(cfg, data, Path(tmp) / "run", Processes(0, 1, torch.device("cpu")), progress=False)
        load_before = os.getloadavg()[0]
        phases = time_phases(trainer, warmup, reps, lever)
        load_after = os.getloadavg()[0]
    net = cfg.network
    row = {
        "family": family, "lever": lever, "resolution": resolution, "batch": cfg.schedule.batch, "batch_gpu": trainer.batch_gpu,
        "widths": {str(r): net.channels(r) for r in [2**i for i in range(2, int(np.log2(resolution)) + 1)]},
        "channel_base": net.channel_base, "channel_max": net.channel_max, "mapping_layers": net.mapping_layers,
        "z_dim": net.z_dim, "w_dim": net.w_dim,
        "params_G": sum(p.numel() for p in trainer.G.parameters()),
        "params_D": sum(p.numel() for p in trainer.D.parameters()),
        "loss": cfg.loss.kind, "phases": phases,
        "sec_per_kimg_wall": per_kimg(phases, cfg.schedule.batch, "wall_s"),
        "sec_per_kimg_cpu": per_kimg(phases, cfg.schedule.batch, "cpu_s"),
        "load_average": [load_before, load_after],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }
    print(f"{family:7s} {lever:13s} {resolution:4d}²  batch {row['batch']:3d}  G {row['params_G'] / 1e6:6.2f}M  "
          f"D {row['params_D'] / 1e6:6.2f}M  {row['sec_per_kimg_wall']:9.1f} s/kimg wall  "
          f"{row['sec_per_kimg_cpu']:9.1f} s/kimg cpu  load {load_before:.1f}→{load_after:.1f}", flush=True)
    return row


def bench_fid(base: TrainConfig, n: int) -> dict:
    """CPU and wall seconds per real and per generated image of the FID/KID probe, preset network at 64²."""
    from baggan.stylegan2.metrics import RealismProbe, inception_extractor

    cpu = torch.device("cpu")
    cfg = variant(base, "preset", 64)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, random_data(Path(tmp) / "data", 64, n), Path(tmp) / "run", Processes(0, 1, cpu),
                          progress=False)
        probe = RealismProbe(inception_extractor(cpu), trainer.images, n, 0, trainer.procs)
        times = {}
        for what, run in (("reals", probe.real_features), ("generated", lambda: probe(trainer.G_ema))):
            w0, c0 = time.perf_counter(), time.process_time()
            run()
            times[what] = {"wall_s_per_image": (time.perf_counter() - w0) / n, "cpu_s_per_image": (time.process_time() - c0) / n}
    row = {"samples": n, **times, "load_average": os.getloadavg()[0]}
    print(f"fid probe: reals {times['reals']['cpu_s_per_image']:.3f} cpu-s/img, generated "
          f"{times['generated']['cpu_s_per_image']:.3f} cpu-s/img (incl. generation and the FID/KID maths)", flush=True)
    return row


def main() -> None:
    """Parse arguments, run the benchmark rows, write JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=str(ROOT / "configs" / "xraysim-64.yaml"))
    ap.add_argument("--rows", default="preset:64,preset:128,preset:256,auto:64,auto:128,auto:256",
                    help="family:resolution[:channel_base:channel_max],... (families: preset, auto; the optional "
                         "widths replace the preset's at 64²)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--levers", action="store_true", help="also time the preset at 64² under each lever (LEVERS)")
    ap.add_argument("--fid-samples", type=int, default=0, help="also time the FID probe on N images (0: no)")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "train.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    malloc = "kept (as the baggan command)" if keep_freed_memory() else "system"
    denormals = "flushed (as the baggan command)" if flush_denormals() else "kept"
    base = load_config(args.config, TrainConfig)
    rows = []
    for item in filter(None, args.rows.split(",")):
        fam, res, *widths = item.split(":")
        rows.append(bench(fam, int(res), base, args.warmup, args.reps,
                          (int(widths[0]), int(widths[1])) if widths else None))
    if args.levers:
        rows += [bench("preset", 64, base, args.warmup, args.reps, None, lever) for lever in LEVERS]
    result = {
        "command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "threads": args.threads, "torch": torch.__version__,
                    "platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "freed_memory": malloc, "denormals": denormals},
        "config": Path(args.config).name, "rows": rows,
    }
    if args.fid_samples:
        result["fid_probe"] = bench_fid(base, args.fid_samples)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
