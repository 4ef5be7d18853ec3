"""Where the quick-start's held-out threat IoU is lost (issue 20): docs/benchmarks/quickstart-inputs.json + .png.

Reads a finished quick-start folder (its HFC encoder and its annotated examples, example/scan-K.png + mask-K.png),
projects the examples and the held-out windows again with the quick-start's settings, and scores on the held-out
windows, each window's category taken from its label (the quick-start's `synth.class_from: condition` reading):

* no learning: a window's pixels darker than a threshold (min over RGB) are its threat, on the simulator window
  itself and on its projection: what the pictures hold;
* a segmenter fitted on the annotated examples as the quick-start fits its own (FCN-3, hidden 64, standardised
  inputs, Adam lr 0.01, 200 full-batch steps) on three inputs: the HFC codes (the quick-start's segmenter), the
  generated image's RGB, and both; once per category (as the quick-start) and once threat vs background.

    python scripts/bench_quickstart_inputs.py --run runs/quickstart [--config configs/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "benchmarks"
INPUTS = ("codes", "rgb", "codes+rgb")
DARK = (60, 90, 120, 150)


def condition_of(mask: np.ndarray, c_dim: int) -> torch.Tensor:
    """Multi-hot label [c_dim] of the categories in a mask (a conditional generator's label of the window)."""
    c = torch.zeros(c_dim)
    c[[int(i) - 1 for i in np.unique(mask) if i > 0]] = 1.0
    return c


def pixel_inputs(sample, encoder, kind: str) -> torch.Tensor:
    """[1, C, R, R]: the sample's HFC codes, its generated image's RGB in [-1, 1], or both."""
    parts = []
    if kind in ("codes", "codes+rgb"):
        with torch.no_grad():
            parts.append(encoder(list(sample.features), sample.image.shape[0]))
    if kind in ("rgb", "codes+rgb"):
        parts.append(torch.from_numpy(sample.image).permute(2, 0, 1).float()[None] / 127.5 - 1)
    return torch.cat(parts, 1)


def fit_fcn3(xs: list[torch.Tensor], ys: list[torch.Tensor], k: int, epochs: int, lr: float, hidden: int):
    """FCN-3 on standardised inputs, fitted as hfc.oneshot.fit fits (full batch, Adam betas (0.9, 0.99))."""
    from hfc.segmenters import make_segmenter

    torch.manual_seed(0)
    seg = make_segmenter("fcn3", xs[0].shape[1], k, hidden, standardize=True)
    seg.calibrate(xs)
    opt = torch.optim.Adam(seg.parameters(), lr=lr, betas=(0.9, 0.99))
    for _ in range(epochs):
        opt.zero_grad(set_to_none=True)
        sum(F.cross_entropy(seg(x), y, ignore_index=255) / len(xs) for x, y in zip(xs, ys)).backward()
        opt.step()
    return seg.eval()


def by_label(threat: np.ndarray, present: tuple[int, ...]) -> np.ndarray:
    """Category map: threat pixels take the window's (first) label category, the rest background."""
    return np.where(threat, present[0] if present else 0, 0).astype(np.int64)


def main() -> None:
    """Project, fit, score; write the JSON and the plot."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a finished `baggan quickstart` folder")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT / "quickstart-inputs.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from baggan.io import read_image_rgb, write_json_atomic
    from baggan.oneshot import class_table, projected_sample, to_classes
    from baggan.quickstart import Quickstart, load_quickstart_config, score_predictions
    from baggan.stylegan2.projector import ProjectorConfig
    from hfc.checkpoint import load_module
    from hfc.features import PixelEncoder

    t0 = time.time()
    cfg = load_quickstart_config(args.config)
    q = Quickstart(cfg, args.run, torch.device("cpu"), progress=False)
    encoder = load_module(args.run / "hfc" / "encoder.pt", q.device, expect=PixelEncoder)
    pcfg = ProjectorConfig(steps=cfg.projector_steps, seed=0)
    examples = []
    for scan_path in sorted((args.run / "example").glob("scan-*.png")):
        mask = np.asarray(read_image_rgb(scan_path.with_name(scan_path.name.replace("scan", "mask")))[..., 0], np.int64)
        examples.append(projected_sample(q.gen, read_image_rgb(scan_path), mask, scan_path.name, "", pcfg,
                                         progress=False, c=condition_of(mask, q.gen.G.c_dim)))
    table = class_table([s.mask for s in examples])
    t = cfg.test
    scans = q.scans.test_scans(t.threat, t.clean)
    for scan in scans:
        scan.label = np.where(np.isin(scan.label, table), scan.label, 0)
    tests = q.project_scans(scans, [f"{scan.kind} {scan.seed}" for scan in scans], [""] * len(scans), "held-out")
    print(f"projected {len(examples)} examples and {len(tests)} held-out windows in {time.time() - t0:.0f} s")

    rows = []
    for name, images in (("simulator window", [s.image for s in scans]), ("projection", [s.image for s in tests])):
        for thr in DARK:
            preds = [by_label(img.astype(int).min(-1) < thr, s.present) for img, s in zip(images, scans)]
            rows.append({"what": f"dark < {thr} on the {name}", "fit": None,
                         **score_predictions(tests, preds, table)})
    f = cfg.fit
    for kind in INPUTS:
        xs = [pixel_inputs(s, encoder, kind) for s in examples]
        for binary in (False, True):
            ys = [to_classes(s.mask, table)[None] for s in examples]
            ys = [torch.where(y == 255, y, (y > 0).long()) for y in ys] if binary else ys
            seg = fit_fcn3(xs, ys, 2 if binary else len(table), f.epochs, f.lr, f.hidden)
            preds = []
            for s, scan in zip(tests, scans):
                with torch.no_grad():
                    p_bg = seg(pixel_inputs(s, encoder, kind)).softmax(1)[0, 0].numpy()
                preds.append(by_label(p_bg < 0.5, scan.present))
            rows.append({"what": f"FCN-3 on {kind}", "fit": "threat vs background" if binary else "per category",
                         **score_predictions(tests, preds, table)})
            print(f"{rows[-1]['what']:>24} ({rows[-1]['fit']}): mIoU {rows[-1]['miou']:.3f}, "
                  f"threat IoU {rows[-1]['threat_iou']:.3f}")
    result = {"run": str(args.run), "config": str(args.config), "categories": table,
              "projection_psnr": float(np.mean([s.projection.psnr for s in tests])), "rows": rows,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
              "seconds": round(time.time() - t0, 1)}
    write_json_atomic(args.out, result, indent=1)
    plot(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out}")


def plot(result: dict, path: Path) -> None:
    """Bars of held-out mIoU and threat IoU per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    labels = [r["what"] + (f"\n({r['fit']})" if r["fit"] else "") for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.2))
    ax.barh(y - 0.2, [r["miou"] for r in rows], 0.4, label="mIoU (categories from the label)")
    ax.barh(y + 0.2, [r["threat_iou"] for r in rows], 0.4, label="threat-vs-background IoU")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.45, color="k", ls="--", lw=0.8)
    ax.set_xlabel("IoU on the quick-start's held-out windows (dashed: the issue's 0.45)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
