"""Synthesis benchmark → docs/benchmarks/synth.json: annotated images/s against generation-only images/s.

For each resolution, in the same process and interleaved (best of --repeats, the CPU is shared):
  generation  latents (the engine's sampler) → gen.synthesize(ws, return_features=False)
  annotation  latents → Annotator (synthesis with features + HFC encoder + segmenter) → host arrays
  engine      the whole `synthesize` engine into a temporary folder: annotation + instances + PNGs + COCO
              (writer thread; again with --writer process as engine_writer_process)
Both wall-clock images/s and CPU seconds per image (process time over all threads, plus the finished writer
process's) are recorded; on a
shared CPU the CPU-time ratio (engine ÷ generation, target ≤ 1.25 with the MLP segmenter) is the robust
one, the wall-clock ratio (generation images/s ÷ engine images/s) the one a user sees on an idle
machine. Also a per-stage breakdown of one batch's annotation. With --steer, also threat-conditioned synthesis: rejection sampling against the
steered sampler (acceptance rate, and diversity of the accepted scans).

Without --network/--hfc/--segmenter the networks are a timing proxy: a randomly initialised generator
(NetworkConfig(resolution=R), cfg 'auto'), HFC encoder (D = --dim) and segmenter.

    python scripts/bench_synth.py --resolutions 64 256 --n 16 8 --steer
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from baggan.allocator import keep_freed_memory
from baggan.denormals import flush_denormals
from baggan.data.coco import CocoDataset
from baggan.data.labelsets import PIDRAY
from baggan.io import write_json_atomic
from baggan.stylegan2 import NetworkConfig
from baggan.synth import LatentSampler, SynthSettings, annotate_batch, candidate_seed, synthesize
from baggan.synth.build import load_annotator, write_random_pieces
from baggan.synth.engine import STEER_FILE, category_table
from hfc.oneshot import PixelClassifier


def _cpu() -> float:
    """CPU seconds of this process (all threads) and of its finished children (the engine's writer process)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def _measure(n: int, fn) -> tuple[float, float]:
    """(wall-clock images/s, CPU seconds per image over all threads and writer processes) of fn() producing n images."""
    t, c = time.perf_counter(), _cpu()
    fn()
    return n / (time.perf_counter() - t), (_cpu() - c) / n


def _batches(seeds: list[int], batch: int):
    return [seeds[i:i + batch] for i in range(0, len(seeds), batch)]


def breakdown(w, ws: torch.Tensor) -> dict:
    """CPU seconds per image of each annotation stage on one batch (the stages on the whole batch at once), and of
    `predict`, which runs encoder, segmenter, softmax and labels the way the engine does."""
    model, size, n = w.annotate.model, w.gen.img_resolution, ws.shape[0]
    out = {}
    t = time.process_time()
    _, feats = w.gen.synthesize(ws, return_features=True)
    out["synthesis_with_features"] = time.process_time() - t
    t = time.process_time()
    x = model.prepare(feats, size)
    out["hfc_encoder"] = time.process_time() - t
    t = time.process_time()
    probs = model.classify(x).softmax(1)
    out["segmenter_softmax"] = time.process_time() - t
    t = time.process_time()
    probs.max(1).indices  # as PixelClassifier.predict
    out["argmax"] = time.process_time() - t
    t = time.process_time()
    model.predict(feats, size)  # what the engine runs: the stages above image by image (MLPs: in pixel blocks)
    out["predict"] = time.process_time() - t
    if getattr(getattr(model, "segmenter", None), "per_pixel", False):  # the same without the pixel blocks
        t = time.process_time()
        PixelClassifier.predict(model, feats, size)
        out["predict_whole_images"] = time.process_time() - t
    return {k: round(v / n, 4) for k, v in out.items()}


def bench_resolution(pieces, n: int, batch: int, repeats: int, seed: int) -> dict:
    """Generation, annotation and engine throughput at one resolution."""
    w = load_annotator(*pieces, torch.device("cpu"))
    sampler = LatentSampler(w.gen.sample_ws, 0.7)
    seeds = [candidate_seed(seed, 0, j) for j in range(n)]
    table = category_table(w.class_to_category)
    cats = PIDRAY.coco_categories()
    runs = {"generation": [], "annotation": [], "engine": [], "engine_writer_process": []}

    def engine(tmp, writer="thread"):
        synthesize(w.annotate, w.gen.sample_ws, cats, w.class_to_category, tmp,
                   SynthSettings(n=n, shard_size=n, seed=seed, batch=batch, writer=writer), progress=False)

    with torch.no_grad():
        w.annotate(sampler(seeds[:1]))  # warm-up
        for rep in range(repeats):
            runs["generation"].append(_measure(n, lambda: [w.gen.synthesize(sampler(s), return_features=False)
                                                           for s in _batches(seeds, batch)]))
            runs["annotation"].append(_measure(n, lambda: [annotate_batch(w.annotate, sampler(s), table)
                                                           for s in _batches(seeds, batch)]))
            with tempfile.TemporaryDirectory() as tmp:
                runs["engine"].append(_measure(n, lambda: engine(tmp)))
            with tempfile.TemporaryDirectory() as tmp:
                runs["engine_writer_process"].append(_measure(n, lambda: engine(tmp, "process")))
        stages = breakdown(w, sampler(seeds[:batch]))
    wall = {k: max(r[0] for r in v) for k, v in runs.items()}
    cpu = {k: min(r[1] for r in v) for k, v in runs.items()}
    return {"resolution": w.gen.img_resolution, "n": n, "batch": batch, "repeats": repeats,
            "wall_images_per_s_best": {k: round(v, 4) for k, v in wall.items()},
            "cpu_seconds_per_image_best": {k: round(v, 4) for k, v in cpu.items()},
            "all_runs_wall_ips_and_cpu_s": {k: [[round(a, 4), round(b, 4)] for a, b in v] for k, v in runs.items()},
            "ratio_wall": round(wall["generation"] / wall["engine"], 3),
            "ratio_cpu": round(cpu["engine"] / cpu["generation"], 3),
            "ratio_wall_writer_process": round(wall["generation"] / wall["engine_writer_process"], 3),
            "ratio_cpu_writer_process": round(cpu["engine_writer_process"] / cpu["generation"], 3),
            "ratio_cpu_annotation_only": round(cpu["annotation"] / cpu["generation"], 3),
            "seconds_per_image_breakdown": stages}


def _largest_area(label: np.ndarray, cid: int) -> int:
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats((label == cid).astype(np.uint8), connectivity=8)
    return int(stats[1:, cv2.CC_STAT_AREA].max()) if count > 1 else 0


def bench_steering(pieces, n: int, batch: int, alphas: list[float], calibration: int, seed: int) -> dict:
    """Rejection vs steered sampling for the segmenter's first class: acceptance rates and diversity."""
    w = load_annotator(*pieces, torch.device("cpu"))
    threat = w.class_to_category[1]
    sampler = LatentSampler(w.gen.sample_ws, 0.7)
    probe = [candidate_seed(seed + 1, 0, j) for j in range(32)]
    table = category_table(w.class_to_category)
    with torch.no_grad():
        areas = [_largest_area(lab, threat) for s in _batches(probe, batch)
                 for lab in annotate_batch(w.annotate, sampler(s), table).labels]
    min_area = max(1, int(np.percentile(areas, 80)))  # about 1 scan in 5 passes: a rare threat
    out = {"threat": PIDRAY.names[threat - 1], "min_area": min_area, "n": n, "calibration": calibration, "runs": []}
    cats = PIDRAY.coco_categories()
    with tempfile.TemporaryDirectory() as tmp:
        for alpha in [0.0] + alphas:
            d = Path(tmp) / f"a{alpha}"
            if alpha and alpha != alphas[0]:  # the direction does not depend on alpha: calibrate once
                d.mkdir()
                shutil.copy(Path(tmp) / f"a{alphas[0]}" / STEER_FILE, d / STEER_FILE)
            s = synthesize(w.annotate, w.gen.sample_ws, cats, w.class_to_category, d,
                           SynthSettings(n=n, shard_size=n, seed=seed, batch=batch, threat=threat, min_area=min_area,
                                         steer=alpha, calibration=calibration), progress=False)
            ds = CocoDataset(d / "shard-00000")
            imgs = np.stack([ds.read_image(i).astype(np.float32).ravel() / 255 for i in range(len(ds))])
            lat = np.load(d / "shard-00000" / "latents.npy").reshape(len(ds), -1)
            pair = lambda x: float(np.mean([np.linalg.norm(x[i] - x[j]) for i in range(len(x))
                                            for j in range(i + 1, len(x))]))  # noqa: E731
            out["runs"].append({"alpha": alpha, "acceptance_rate": round(s.index["totals"]["acceptance_rate"], 4),
                                "candidates": s.index["totals"]["candidates"], "seconds": round(s.seconds, 1),
                                "mean_pairwise_image_rms": round(pair(imgs) / np.sqrt(imgs.shape[1]), 4),
                                "mean_pairwise_w_distance": round(pair(lat), 3)})
    return out


def plot(result: dict, path: str | Path) -> None:
    """Bar chart: CPU seconds per image of generation, annotation and the whole engine at each resolution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = result["resolutions"]
    fig, axes = plt.subplots(1, len(res), figsize=(4 * len(res), 3.2), squeeze=False)
    for ax, r in zip(axes[0], res):
        cpu = r["cpu_seconds_per_image_best"]
        ax.bar(list(cpu), list(cpu.values()), color=["tab:gray", "tab:blue", "tab:orange", "tab:olive"])
        ax.axhline(1.25 * cpu["generation"], color="tab:red", ls="--", lw=1, label="1.25 x generation")
        ax.set_title(f"{r['resolution']}²: engine / generation = {r['ratio_cpu']:.2f}", fontsize=9)
        ax.set_ylabel("CPU seconds per image")
        ax.legend(fontsize=7)
    fig.suptitle(result["networks"], fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _code_version() -> str:
    """HEAD commit, marked '+dirty' when hfc/ or baggan/ have uncommitted changes (what produced the figures)."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "hfc", "baggan") else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--n", type=int, nargs="+", default=[16, 8], help="images per timing run, per resolution")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dim", type=int, default=512, help="HFC code width D of the proxy encoder")
    ap.add_argument("--segmenter-kind", default="mlp1", help="proxy segmenter: mlp1 or mlp3")
    ap.add_argument("--network", help="real generator (with --hfc, --segmenter) instead of the proxy; one resolution")
    ap.add_argument("--hfc")
    ap.add_argument("--segmenter")
    ap.add_argument("--steer", action="store_true", help="also measure threat rejection vs steered sampling")
    ap.add_argument("--steer-n", type=int, default=12)
    ap.add_argument("--alphas", type=float, nargs="+", default=[1.0, 2.0])
    ap.add_argument("--calibration", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs/benchmarks/synth.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    malloc = "kept (as the baggan command)" if keep_freed_memory() else "system"
    denormals = "flushed (as the baggan command)" if flush_denormals() else "kept"
    result = {"command": "python scripts/bench_synth.py " + " ".join(__import__("sys").argv[1:]),
              "machine": {"cpu_threads": args.threads, "platform": platform.platform(), "torch": torch.__version__,
                          "freed_memory": malloc, "denormals": denormals,
                          "note": "shared CPU: other jobs may inflate timings"},
              "code": _code_version(),
              "networks": "real" if args.network else (f"proxy: randomly initialised NetworkConfig(resolution=R) "
                                                       f"generator, HFC encoder D={args.dim}, {args.segmenter_kind}"),
              "resolutions": [], "steering": None}
    with tempfile.TemporaryDirectory() as tmp:
        for res, n in zip(args.resolutions, args.n):
            pieces = (args.network, args.hfc, args.segmenter) if args.network else write_random_pieces(
                Path(tmp) / str(res), NetworkConfig(resolution=res), args.dim, args.segmenter_kind, seed=args.seed)
            r = bench_resolution(pieces, n, args.batch, args.repeats, args.seed)
            print(json.dumps(r))
            result["resolutions"].append(r)
            if args.steer and res == args.resolutions[0]:
                result["steering"] = bench_steering(pieces, args.steer_n, args.batch, args.alphas, args.calibration,
                                                    args.seed)
                print(json.dumps(result["steering"]))
    write_json_atomic(args.out, result, indent=2)
    plot(result, Path(args.out).with_suffix(".png"))
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.png')}")


if __name__ == "__main__":
    main()
