"""Benchmark the one-shot protocol: run each part of a config on a generator, timed, and keep its report.

    .venv/bin/python scripts/bench_oneshot.py --network checkpoints/xraysim-64.pt [--config configs/eval/oneshot-cpu.yaml]
        [--parts main,shots,depth,layer,tau,dk,patch] [--name cpu] [--workdir runs/bench-oneshot-cpu]
    .venv/bin/python scripts/bench_oneshot.py --random-network configs/xraysim-64.yaml --name cpu-random   # timing proxy

Runs the parts one after the other in one run folder (each reuses what the earlier ones cached: projections, HFC
encoders, units), timing each (wall and process CPU seconds), then writes the combined report there and copies it to
docs/benchmarks/oneshot-<name>.json (+ .md) and docs/benchmarks/oneshot-<name>_*.png, with the timings, the machine and
the generator. `--random-network YAML` builds a randomly initialised generator from that training config's
`network:` block: the timings hold for the trained generator of the same architecture, the scores mean nothing, so
then only the timings and the work done (scans, units, encoders) are written, to docs/benchmarks/oneshot-<name>.json.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def random_network(config_yaml: Path, out: Path) -> Path:
    """Save a randomly initialised generator (seed 0) of the YAML's `network:` block to `out`."""
    import torch
    import yaml

    from baggan.config import from_dict
    from baggan.stylegan2 import NetworkConfig, build_generator, save_network

    cfg = from_dict(NetworkConfig, yaml.safe_load(config_yaml.read_text(encoding="utf-8"))["network"])
    torch.manual_seed(0)
    save_network(out, {"G_ema": build_generator(cfg).eval()}, cfg, {"note": f"random weights of {config_yaml}"})
    return out


def main() -> None:
    """Parse the arguments, run and time each part, copy the report into docs/benchmarks/."""
    import os

    import torch

    from baggan.device import resolve_device
    from baggan.evaluate.oneshot import run_oneshot
    from baggan.evaluate.oneshot_config import load_oneshot_config, parse_parts
    from baggan.evaluate.report import environment, to_jsonable
    from baggan.io import read_json, write_bytes_atomic, write_json_atomic, write_text_atomic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs/eval/oneshot-cpu.yaml"))
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--network", help="generator file (default: the config's network:)")
    source.add_argument("--random-network", type=Path, help="training config whose network: block is built at random")
    ap.add_argument("--parts", default=None, help="comma-separated parts (default: the config's)")
    ap.add_argument("--name", default="cpu", help="suffix of the output names")
    ap.add_argument("--workdir", type=Path, default=None, help="run folder (default runs/bench-oneshot-<name>)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep-timings", action="store_true",
                    help="rewrite the report from the work folder's cache, keeping the timings of the JSON in docs/")
    args = ap.parse_args()

    cfg = load_oneshot_config(args.config)
    parts = parse_parts(args.parts) if args.parts else list(cfg.parts)
    workdir = args.workdir or ROOT / "runs" / f"bench-oneshot-{args.name}"
    workdir.mkdir(parents=True, exist_ok=True)
    network = args.network or cfg.network
    if args.random_network:
        network = random_network(args.random_network, workdir / "random-generator.pt")
    device = resolve_device(args.device)
    stem = f"oneshot-{args.name}"
    bench = ROOT / "docs" / "benchmarks"
    timings = read_json(bench / f"{stem}.json")["timings"] if args.keep_timings else {}
    for part in [] if args.keep_timings else parts:
        load0, t0, c0 = os.getloadavg(), time.time(), time.process_time()
        run_oneshot(cfg, workdir, network, device, [part])
        timings[part] = {"seconds": time.time() - t0, "cpu_seconds": time.process_time() - c0,
                         "load_average_before": load0, "load_average_after": os.getloadavg()}
        print(f"{part}: {timings[part]['seconds'] / 60:.1f} min wall, {timings[part]['cpu_seconds'] / 60:.1f} min CPU")
    md = run_oneshot(cfg, workdir, network, device, parts, progress=False)  # everything is cached: the report only
    report = read_json(md.with_suffix(".json"))
    work = {"scans_projected": len(report["info"]["projection"]), "hfc_encoders": report["info"]["hfc"],
            "units": {part: sum(r["repetitions"] for r in rows) for part, rows in report["summary"].items()}}
    summary = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "config": args.config,
               "network": str(network), "random_network": bool(args.random_network),
               "machine": environment(str(device)), "torch_threads": torch.get_num_threads(), "timings": timings,
               "work": work, "report": None if args.random_network else report}
    figures = [] if args.random_network else sorted(md.parent.glob("oneshot_*.png"))
    if not args.random_network:
        text = md.read_text(encoding="utf-8")
        # the report-only call above took no time: state what each part took when it ran
        timed = ", ".join(f"{p} {t['seconds'] / 60:.1f} min wall / {t['cpu_seconds'] / 60:.1f} min CPU"
                          for p, t in timings.items())
        text = re.sub(r"this call [0-9.]+ min wall, [0-9.]+ min CPU\.", f"timed here: {timed}.", text, count=1)
        for fig in figures:
            write_bytes_atomic(bench / f"{stem}_{fig.name[len('oneshot_'):]}", fig.read_bytes())
            text = text.replace(f"({fig.name})", f"({stem}_{fig.name[len('oneshot_'):]})")
        write_text_atomic(bench / f"{stem}.md", text)
    write_json_atomic(bench / f"{stem}.json", to_jsonable(summary), indent=1)
    total = sum(t["seconds"] for t in timings.values())
    print(f"{len(parts)} part(s) in {total / 60:.1f} min wall; report {md}; wrote {bench / stem}.json"
          + ("" if args.random_network else f", .md and {len(figures)} PNGs"))


if __name__ == "__main__":
    main()
