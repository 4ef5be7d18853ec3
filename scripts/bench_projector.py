"""Benchmark the projector (GAN inversion, baggan.stylegan2.projector) on scans the generator itself makes.

Each target is the scan of a seed (z as `baggan generate`, truncation psi), so a perfect inversion exists;
every loss variant projects every target from w_avg. Reported per variant: PSNR and SSIM of the
reconstruction (scikit-image, mean ± std over the targets) and seconds per step; also the PSNR/SSIM of
w_avg's scan, where the optimisation starts. Writes JSON and a PNG (rows: targets; columns: target,
w_avg start, each variant's reconstruction).

    python scripts/bench_projector.py --network NETWORK.pt                  # → docs/benchmarks/projector.{json,png}
    python scripts/bench_projector.py --tiny --steps 100 --threads 1 --out docs/benchmarks/projector_tiny16.json

Without --network it uses a randomly initialised generator of the X-ray preset's width (the network block
of configs/xraysim-64.yaml if present, else NetworkConfig(cfg='auto', resolution=64)): a check that the
script runs, not a result; give --out elsewhere for such runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.io import write_json_atomic  # noqa: E402
from baggan.oneshot import rgb  # noqa: E402
from baggan.stylegan2.latents import ws_from_seed  # noqa: E402
from baggan.stylegan2.networks import Generator  # noqa: E402
from baggan.stylegan2.projector import ProjectorConfig, image_quality, project, to_uint8, w_stats  # noqa: E402


def variants(steps: int, with_d: bool) -> dict[str, ProjectorConfig]:
    """The loss/space variants compared (all with `steps` steps)."""
    base = ProjectorConfig(steps=steps)
    out = {
        "default": base,
        "pixel-only": dataclasses.replace(base, pyramid=0.0, ssim=0.0),
        "no-noise": dataclasses.replace(base, noise=False),
        "w-then-w+": dataclasses.replace(base, w_steps=steps // 4),
        "w-only": dataclasses.replace(base, w_plus=False),
    }
    if with_d:
        out["d-features"] = base  # the default losses + the discriminator-feature loss
    return out


def tiny_generator() -> Generator:
    """The generator of tests/test_projector.py: 16 px, random weights (seed 0), noise strength 0.1 everywhere."""
    from baggan.stylegan2 import NetworkConfig, build_generator

    torch.manual_seed(0)
    G = build_generator(NetworkConfig(cfg="custom", resolution=16, z_dim=32, w_dim=32, mapping_layers=2,
                                      channel_base=256, channel_max=32, num_fp16_res=0, d_architecture="resnet",
                                      mbstd_group_size=2)).eval()
    for _, layer, _ in G.synthesis.conv_layers():
        layer.noise_strength.data.fill_(0.1)
    return G


def load_generator(network: str | None, tiny: bool, device: torch.device):
    """(G, D or None, description): the network file's G_ema/G and D, the tests' tiny generator, or a random
    generator of the X-ray preset's width."""
    from baggan.stylegan2 import NetworkConfig, build_generator, load_network

    if tiny:
        return tiny_generator().to(device), None, "tests/test_projector.py's 16 px generator (random weights, noise strength 0.1)"
    if network:
        nets = load_network(network, device)
        G = nets["G_ema"] if "G_ema" in nets else nets["G"]
        return G, nets.get("D"), f"{network} ({'G_ema' if 'G_ema' in nets else 'G'})"
    preset = ROOT / "configs" / "xraysim-64.yaml"
    if preset.is_file():
        from baggan.config import load_config
        from baggan.stylegan2.training_config import TrainConfig

        cfg, which = load_config(preset, TrainConfig).network, "configs/xraysim-64.yaml network"
    else:
        cfg, which = NetworkConfig(cfg="auto", resolution=64), "NetworkConfig(cfg='auto', resolution=64)"
    torch.manual_seed(0)
    return build_generator(cfg).eval().to(device), None, f"{which}, RANDOM weights (plumbing check, not a result)"


def mean_std(values: list[float]) -> dict[str, float]:
    """{'mean', 'std'} of a list."""
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", help="Generator file (default: random weights of the X-ray preset's width).")
    ap.add_argument("--tiny", action="store_true", help="Use the tiny 16 px generator of tests/test_projector.py.")
    ap.add_argument("--seeds", default="0-3", help="Target seeds, e.g. 0-3 or 1,5.")
    ap.add_argument("--psi", type=float, default=0.7)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--variants", default=None, help="Comma-separated subset of: default, pixel-only, no-noise, "
                    "w-then-w+, w-only, d-features (needs D in the file). Default: all that apply.")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "projector.json"))
    args = ap.parse_args()

    from baggan.cli.networks import parse_seeds

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                          else "cpu")
    G, D, which = load_generator(args.network, args.tiny, device)
    table = variants(args.steps, D is not None)
    names = args.variants.split(",") if args.variants else list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"unknown or inapplicable variant(s) {unknown}; choose from {', '.join(table)}")
    seeds = parse_seeds(args.seeds)

    with torch.no_grad():
        w_avg, _ = w_stats(G, ProjectorConfig().w_avg_samples, 0)
        start = rgb(to_uint8(G.synthesis(w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1), noise_mode="const"))[0])
    targets, rows = {}, {n: [] for n in names}
    starts = []
    for seed in seeds:
        with torch.no_grad():
            targets[seed] = rgb(to_uint8(G.synthesis(ws_from_seed(G, [seed], args.psi), noise_mode="const"))[0])
        starts.append(image_quality(targets[seed], start))
        for name in names:
            t0 = time.perf_counter()
            r = project(G, targets[seed], table[name], D=D if name == "d-features" else None, progress=False)
            seconds = time.perf_counter() - t0
            rows[name].append({"seed": seed, "psnr": r.psnr, "ssim": r.ssim, "seconds_per_step": seconds / args.steps,
                               "final_loss": r.history[-1]["loss"], "image": rgb(r.image)})
            print(f"seed {seed} {name:>10}: PSNR {r.psnr:6.2f} dB  SSIM {r.ssim:.4f}  {seconds / args.steps:.3f} s/step",
                  flush=True)

    machine = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
               "threads": args.threads, "device": str(device), "load_avg_1m": os.getloadavg()[0],
               "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None}  # fmt: skip
    result = {
        "command": " ".join(["python", "scripts/bench_projector.py", *sys.argv[1:]]), "machine": machine,
        "generator": which, "img_resolution": G.img_resolution, "num_ws": G.num_ws, "seeds": seeds, "psi": args.psi,
        "steps": args.steps, "projector_defaults": dataclasses.asdict(ProjectorConfig()),
        "start_w_avg": {"psnr": mean_std([s[0] for s in starts]), "ssim": mean_std([s[1] for s in starts])},
        "variants": {n: {"psnr": mean_std([r["psnr"] for r in rows[n]]), "ssim": mean_std([r["ssim"] for r in rows[n]]),
                         "seconds_per_step": mean_std([r["seconds_per_step"] for r in rows[n]]),
                         "per_seed": [{k: v for k, v in r.items() if k != "image"} for r in rows[n]]}
                     for n in names},
    }  # fmt: skip
    out = Path(args.out)
    write_json_atomic(out, result, indent=2)
    plot(out.with_suffix(".png"), seeds, targets, start, rows, which)
    print(json.dumps({n: {k: v for k, v in result["variants"][n].items() if k != "per_seed"} for n in names}, indent=1))
    print(f"wrote {out} and {out.with_suffix('.png')}")


def plot(path: Path, seeds: list[int], targets: dict, start: np.ndarray, rows: dict, title: str) -> None:
    """Rows: targets; columns: target, w_avg start, each variant's reconstruction (PSNR/SSIM in the titles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baggan.evaluate.report import save_figure

    cols = 2 + len(rows)
    fig, axes = plt.subplots(len(seeds), cols, figsize=(2.2 * cols, 2.4 * len(seeds) + 0.5), squeeze=False)
    for i, seed in enumerate(seeds):
        cells = [(targets[seed], f"target: seed {seed}"), (start, "start: w_avg")]
        cells += [(r[i]["image"], f"{n}\n{r[i]['psnr']:.2f} dB, SSIM {r[i]['ssim']:.3f}") for n, r in rows.items()]
        for ax, (img, caption) in zip(axes[i], cells):
            ax.imshow(img, interpolation="nearest")
            ax.set_title(caption, fontsize=7)
            ax.axis("off")
    fig.suptitle(f"projector: {title}", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


if __name__ == "__main__":
    main()
