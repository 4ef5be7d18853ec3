"""Denormal benchmark → docs/benchmarks/denormals.json: `baggan` commands with denormals flushed (the default)
and kept (BAGGAN_DENORMALS=keep), interleaved, wall and CPU seconds of each whole command.

Rows: the quick-start's one-shot fit (projection + FCN-3 or MLP-1 on ONE example), a short HFC training,
and 1 kimg of StyleGAN2 training from the committed generator's weights (--init) on simulator scans; the
quick-start's folder provides the encoder and the example.

    python scripts/bench_denormals.py --quickstart runs/quickstart --data data/xraysim-64 --repeats 1
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baggan.io import write_json_atomic

BAGGAN = [sys.executable, "-m", "baggan"]


def commands(qs: Path, data: Path | None, out: Path) -> dict[str, list[str]]:
    """Name → argv of each timed command, writing under `out` (a fresh folder per run)."""
    fit = ["oneshot", "fit", "--network", "checkpoints/xraysim-64.pt", "--hfc", str(qs / "hfc" / "encoder.pt"),
           "--image", str(qs / "example" / "scan.png"), "--mask", str(qs / "example" / "mask.png"), "--steps", "200"]
    rows = {f"oneshot_fit_{s}": fit + ["--segmenter", s, "--out", str(out / f"{s}.pt")] for s in ("fcn3", "mlp1")}
    rows["hfc_train_2_epochs"] = ["hfc", "train", "--network", "checkpoints/xraysim-64.pt", "--config",
                                  "configs/hfc/xray.yaml", "--epochs", "2", "--no-resume", "--outdir", str(out / "hfc")]
    if data is not None:
        rows["stylegan2_train_1_kimg"] = ["train", "--config", "configs/xraysim-64.yaml", "--data", str(data),
                                          "--init", "checkpoints/xraysim-64.pt", "--total-kimg", "1", "--outdir", str(out / "gan")]
    return rows


def timed(argv: list[str], keep: bool) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one command; exits with its error output if it fails."""
    env = dict(os.environ, BAGGAN_DENORMALS="keep" if keep else "")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(BAGGAN + argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        sys.exit(f"failed: baggan {' '.join(argv)}\n{done.stderr[-2000:]}")
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    """Time every row both ways, best of --repeats, and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quickstart", type=Path, default=Path("runs/quickstart"), help="a finished quick-start folder")
    ap.add_argument("--data", type=Path, default=None, help="simulator scans for the StyleGAN2 row (none: row skipped)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("docs/benchmarks/denormals.json"))
    args = ap.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "OUT"
        for name, argv in commands(args.quickstart, args.data, out).items():
            runs = {"flushed": [], "kept": []}
            for i in range(args.repeats):
                for mode in ("kept", "flushed"):
                    run = commands(args.quickstart, args.data, Path(tmp) / f"{mode}-{i}")[name]
                    runs[mode].append(timed(run, keep=mode == "kept"))
                    print(name, mode, "wall %.1f s, CPU %.1f s" % runs[mode][-1], flush=True)
            best = {m: min(r) for m, r in runs.items()}
            rows[name] = {"command": "baggan " + " ".join(argv).replace(str(out), "OUT"), "runs_wall_cpu_s": runs,
                          "best_wall_s": {m: round(b[0], 2) for m, b in best.items()},
                          "speedup_wall": round(best["kept"][0] / best["flushed"][0], 2)}
    result = {"command": "python scripts/bench_denormals.py " + " ".join(sys.argv[1:]),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "rows": rows}
    write_json_atomic(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
