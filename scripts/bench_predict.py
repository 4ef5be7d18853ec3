"""Where the annotation's extra time goes, and what the exact alternatives cost → docs/benchmarks/predict.json.

The synthesis engine's target (issue 6) is annotated ÷ generation-only throughput ≤ 1.25. Annotation is
synthesis with features + `HFCSegmenter.predict` (encoder, MLP segmenter, softmax, labels). This script
times, on one batch of real networks and one torch thread (best of --repeats, CPU milliseconds per image):

  stages        generation alone, synthesis with features, predict, and predict's operators (torch profiler)
  upsampling    the sum of the coarse layers' upsampled projections for one image, three exact ways:
                the sparse CSR product `FusedLinear.tiles` uses, bilinear F.interpolate per resolution
                (channels-last) and separable dense products (columns, then rows)
  batching      predict as the engine runs it (image by image) against one pass over the whole batch
                in blocks of pixels (the encoder's products on [N, T, C] instead of [T, C])

    python scripts/bench_predict.py --network checkpoints/xraysim-64.pt --hfc runs/quickstart/hfc/encoder.pt \\
        --segmenter runs/mlp1/segmenter.pt --out docs/benchmarks/predict_xraysim64.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F

from bench_synth import _code_version  # scripts/ is on the path when this file runs

from baggan.allocator import keep_freed_memory
from baggan.denormals import flush_denormals
from baggan.io import write_json_atomic
from baggan.synth.build import load_annotator
from hfc.features import bilinear_taps, upsampling_matrix
from hfc.oneshot import TILE_VALUES, HFCSegmenter


def per_image_ms(fn: Callable[[], object], images: int, reps: int, repeats: int) -> float:
    """Best over `repeats` of the mean CPU milliseconds per image of fn() (which handles `images` images)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(reps):
            fn()
        best = min(best, (time.process_time() - t) / reps / images * 1e3)
    return round(best, 4)


def predict_whole_batch(model: HFCSegmenter, features: list[torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """predict's values from one pass over all N images, TILE_VALUES code values ([N, T, D]) per block."""
    n, k = features[0].shape[0], model.num_classes
    probs = features[0].new_empty(k, n, size * size)
    for rows, z in model.encoder.encode_tiles(features, size, max(1, TILE_VALUES // (model.encoder.out_dim * n))):
        t = rows.stop - rows.start
        probs[:, :, rows] = model.segmenter.pixelwise(z.reshape(n * t, -1)).softmax(dim=0).view(k, n, t)
    probs = probs.transpose(0, 1).reshape(n, k, size, size)
    return probs.max(dim=1).indices, probs


def axis_weights(r: int, size: int) -> torch.Tensor:
    """1-D bilinear upsampling r → size (align_corners=False) as a dense [size, r] matrix."""
    a = torch.zeros(size, r, dtype=torch.float64)
    for index, weight in bilinear_taps(r, size):
        a.index_put_((torch.arange(size), index), weight, accumulate=True)
    return a.float()


def upsampling_ways(resolutions: list[int], size: int, dim: int, reps: int, repeats: int) -> dict:
    """ms per image of sum_r U(P_r) (P_r: [r, r, D] random) the three exact ways, and their largest disagreement."""
    gen = torch.Generator().manual_seed(0)
    maps = {r: torch.randn(r, r, dim, generator=gen) for r in resolutions}  # row-major [i, j, D]
    stacked = torch.cat([maps[r].reshape(r * r, dim) for r in resolutions])
    k = upsampling_matrix(tuple(resolutions), size)
    # channels-last [1, D, r, r] with the canonical batch stride (a permuted view's would make interpolate
    # fall back to its slow NCHW kernel)
    nchw = {r: torch.empty(1, dim, r, r, memory_format=torch.channels_last).copy_(maps[r].permute(2, 0, 1)[None])
            for r in resolutions}
    cols = {r: axis_weights(r, size) for r in resolutions}
    rows = torch.cat([cols[r] for r in resolutions], 1)  # [size, sum r]

    def sparse() -> torch.Tensor:
        return torch.zeros(size * size, dim).addmm_(k, stacked)

    def interpolate() -> torch.Tensor:
        out = None
        for r in resolutions:
            u = F.interpolate(nchw[r], size=(size, size), mode="bilinear", align_corners=False)
            out = u if out is None else out.add_(u)
        return out.permute(0, 2, 3, 1).reshape(size * size, dim)

    def separable() -> torch.Tensor:
        q = torch.cat([torch.matmul(cols[r], maps[r]) for r in resolutions])  # columns: [sum r, size, D]
        return torch.mm(rows, q.view(q.shape[0], -1)).view(size * size, dim)  # then rows

    ways = {"sparse_csr_product (used)": sparse, "interpolate_per_resolution": interpolate,
            "separable_dense_products": separable}
    ref = sparse()
    return {name: {"ms": per_image_ms(fn, 1, reps, repeats), "max_abs_diff": float((fn() - ref).abs().max())}
            for name, fn in ways.items()}


def operator_profile(fn: Callable[[], object], images: int, top: int = 10) -> dict:
    """Self CPU milliseconds per image of fn's `top` most expensive operators (torch profiler)."""
    from torch.profiler import profile

    with profile() as prof:
        fn()
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {e.key: {"ms_per_image": round(e.self_cpu_time_total / 1e3 / images, 4), "calls": e.count} for e in rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", required=True)
    ap.add_argument("--hfc", required=True)
    ap.add_argument("--segmenter", required=True, help="an MLP segmenter (the engine's per-pixel path)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=20, help="calls per timing")
    ap.add_argument("--repeats", type=int, default=3, help="timings; the best counts")
    ap.add_argument("--out", default="docs/benchmarks/predict.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()
    flush_denormals()
    w = load_annotator(args.network, args.hfc, args.segmenter, torch.device("cpu"))
    model, size, n = w.annotate.model, w.gen.img_resolution, args.batch
    if not (isinstance(model, HFCSegmenter) and model.segmenter.per_pixel):
        raise SystemExit(f"{args.segmenter}: give an MLP segmenter on HFC codes (mlp1 / mlp3)")
    ws = w.gen.sample_ws(n, psi=0.7, seed=0)
    time_ms = lambda fn: per_image_ms(fn, n, args.reps, args.repeats)  # noqa: E731
    with torch.no_grad():
        _, feats = w.gen.synthesize(ws, return_features=True)
        labels, probs = model.predict(feats, size)
        whole = predict_whole_batch(model, feats, size)
        stages = {"generation": time_ms(lambda: w.gen.synthesize(ws, return_features=False)),
                  "synthesis_with_features": time_ms(lambda: w.gen.synthesize(ws, return_features=True)),
                  "predict": time_ms(lambda: model.predict(feats, size))}
        batching = {"image_by_image (used)": stages["predict"],
                    "whole_batch_in_pixel_blocks": time_ms(lambda: predict_whole_batch(model, feats, size)),
                    "same_labels": bool(torch.equal(labels, whole[0])),
                    "max_abs_prob_diff": float((probs - whole[1]).abs().max())}
        profile = operator_profile(lambda: [model.predict(feats, size) for _ in range(args.reps)], n * args.reps)
        coarse = sorted({h.shape[-1] for h in feats if h.shape[-1] < size})
        upsampling = upsampling_ways(coarse, size, model.encoder.out_dim, args.reps * 5, args.repeats)
    result = {"command": "python scripts/bench_predict.py " + " ".join(sys.argv[1:]),
              "machine": {"cpu_threads": 1, "platform": platform.platform(), "torch": torch.__version__,
                          "note": "CPU milliseconds per image, best of the repeats"},
              "code": _code_version(),
              "networks": {"network": args.network, "hfc": args.hfc, "segmenter": args.segmenter,
                           "resolution": size, "dim": model.encoder.out_dim, "coarse_resolutions": coarse},
              "batch": n,
              "stages_ms_per_image": stages,
              "annotation_over_generation": round((stages["synthesis_with_features"] + stages["predict"])
                                                  / stages["generation"], 3),
              "predict_operators_ms_per_image": profile,
              "upsampling_one_image": upsampling,
              "batching": batching}
    write_json_atomic(args.out, result, indent=2)
    print(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
