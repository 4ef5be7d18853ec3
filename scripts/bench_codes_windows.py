"""What the HFC codes hold about the threats of threat WINDOWS, and what loses them (issue 20, point 1):
docs/benchmarks/codes-windows.json + .png.

The one-shot protocol's chain on the threat-window generator (`baggan evaluate oneshot --config
configs/eval/oneshot-windows-cpu.yaml`, whose --outdir this script reads as its workdir: projections and encoders
are cached there and reused): its annotated windows (one per class, repetition 0), its oracle windows and its test
windows, all projected into W+. For each representation of the pixels — the codes of HFC encoders trained for
several lengths (epochs x images per epoch; the protocol's is 10 x 8 = 80 generated images), the raw hidden
features (Eq. 8), a random projection of them to D channels and an untrained f_theta — it measures

* the spread of the codes on the annotated windows (effective rank, mean cosine, channel std) and how they fall on
  the SwAV prototypes (used count, assignment entropy);
* a linear softmax probe (background + the threat classes) fitted on the annotated windows ("one-shot") and on
  the oracle windows ("oracle"), each trained as the one-shot fit trains (Adam, lr 0.01, 100 epochs) on the
  inputs as they are, the same on standardised inputs, and to convergence (L-BFGS, standardised): threat mIoU
  on the windows it was fitted on and on the test windows;
* the library's one-shot fit (hfc.oneshot.fit, MLP-1 = the protocol's "Ours / MLP") on each encoder's codes,
  with the segmenter's standardisation off (the protocol's setting) and on, and for more epochs.

    python scripts/bench_codes_windows.py --workdir runs/oneshot-windows-s15 --network G.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
OUT = ROOT / "docs" / "benchmarks"
PROBES = ("adam", "adam-std", "lbfgs")
FITS = (("mlp1", 100, False), ("mlp1", 100, True), ("mlp1", 1000, True), ("fcn3", 100, False), ("fcn3", 100, True))


def parse_schedule(text: str) -> tuple[int, int]:
    """'EPOCHSxIMAGES' → (epochs, images per epoch)."""
    try:
        e, n = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected EPOCHSxIMAGES, e.g. 10x8") from None
    return e, n


def pooled_miou(preds, ys: list[torch.Tensor], k: int) -> float:
    """mIoU over the threat classes 1..k-1 of predicted label rows (an iterable, one per window), pooled."""
    from hfc.metrics import confusion_matrix, iou_from_confusion, mean_iou

    return float(mean_iou(iou_from_confusion(sum(confusion_matrix(y.numpy(), p.numpy(), k) for p, y in zip(preds, ys)))))


def threat_miou(net: torch.nn.Module, xs: list[torch.Tensor], ys: list[torch.Tensor], k: int) -> float:
    """Pooled threat mIoU of a pixel classifier on rows xs."""
    with torch.no_grad():
        return pooled_miou((net(x).argmax(1) for x in xs), ys, k)


def predicted_miou(model, feats: list, ys: list[torch.Tensor], k: int, size: int) -> float:
    """Pooled threat mIoU of a fitted PixelClassifier's predictions (model.predict) on windows' hidden features."""
    return pooled_miou((model.predict(f, size)[0][0].flatten() for f in feats), ys, k)


def windows(ws, cfg) -> dict[str, list]:
    """The protocol's annotated (repetition 0), oracle and threat test windows with their projections."""
    s = cfg.scans
    sets = {"annotated": ws.scans.annotated_sets(0, [1], s.annotation, s.candidates)[1],
            "oracle": ws.scans.oracle_scans(cfg.oracle.train),
            "test": ws.scans.test_scans(s.test_threat, 0)}
    proj = ws.project_all([w for ss in sets.values() for w in ss])
    return {name: [(w, proj[(w.kind, w.seed)]) for w in ss] for name, ss in sets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs/eval/oneshot-windows-cpu.yaml"))
    ap.add_argument("--network", required=True, help="the threat-window generator the workdir's projections are of")
    ap.add_argument("--workdir", required=True, help="the `evaluate oneshot` outdir (projections, encoders)")
    ap.add_argument("--schedules", nargs="+", type=parse_schedule, default=[(10, 8), (50, 16), (100, 32)],
                    help="encoder training lengths EPOCHSxIMAGES")
    ap.add_argument("--temperatures", nargs="+", type=float, default=None,
                    help="SwAV temperatures tau of the encoders (default: the config's)")
    ap.add_argument("--no-controls", action="store_true", help="codes only: skip raw, random projection, untrained")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT / "codes-windows.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from bench_codes import code_stats, probe, prototype_stats

    from baggan.config import load_config
    from baggan.evaluate.oneshot import Workspace, hfc_variants, to_classes
    from baggan.evaluate.oneshot_config import OneShotEvalConfig
    from baggan.evaluate.report import environment
    from baggan.io import write_json_atomic
    from baggan.oneshot import class_table
    from hfc.augment import style_blocks
    from hfc.checkpoint import load_weights
    from hfc.config import OneShotConfig
    from hfc.features import upsample_concat
    from hfc.oneshot import Annotation, HFCSegmenter, fit
    from hfc.rng import seeded
    from hfc.segmenters import make_segmenter
    from hfc.swav import ProjectionHead
    from hfc.train import CHECKPOINT

    t0 = time.time()
    cfg = load_config(args.config, OneShotEvalConfig)
    ws = Workspace(cfg, Path(args.workdir), Path(args.network), torch.device("cpu"), progress=True)
    base = hfc_variants(cfg, ["main"], len(style_blocks(ws.gen)), ws.size)[0]["swav"]
    sets = windows(ws, cfg)
    table = class_table([w.label for w, _ in sets["annotated"]], ws.scans.category_ids)
    k = len(table)
    feats = {name: [ws.cache.features(p) for _, p in ss] for name, ss in sets.items()}
    ys = {name: [torch.from_numpy(to_classes(w.label, table)).flatten() for w, _ in ss] for name, ss in sets.items()}
    size = ws.size

    def rows(x: torch.Tensor) -> torch.Tensor:
        return x[0].flatten(1).t().contiguous()

    encoders = {}
    for tau in args.temperatures or [base.swav.temperature]:
        for e, n in args.schedules:
            hcfg = dataclasses.replace(base, epochs=e, images_per_epoch=n,
                                       swav=dataclasses.replace(base.swav, temperature=tau))
            name = f"codes, encoder {e}x{n}" + (f", tau {tau:g}" if args.temperatures else "")
            encoders[name] = (ws.encoder(name, hcfg), hcfg, ws.encoder_folder(hcfg))
    with seeded(1):
        untrained = ProjectionHead(next(iter(encoders.values()))[0].layer_channels, base.dim, base.negative_slope)
    rand = untrained.proj.weight.detach().t()  # [C_hidden, D]: the random projection of the control

    def representation(fn) -> dict[str, list[torch.Tensor]]:
        with torch.no_grad():
            return {s: [rows(fn(f)) for f in fs] for s, fs in feats.items()}

    reps = {name: representation(lambda f, enc=enc: enc(f, size)) for name, (enc, _, _) in encoders.items()}
    if not args.no_controls:
        reps["raw"] = representation(lambda f: upsample_concat(f, size))
        reps["random projection"] = {s: [x @ rand for x in xs] for s, xs in reps["raw"].items()}
        reps["untrained f_theta"] = representation(lambda f: untrained(f, size))

    result: dict = {"classes": table, "windows": {s: len(v) for s, v in sets.items()},
                    "threat_fraction_annotated": float(torch.cat([(y > 0).float() for y in ys["annotated"]]).mean()),
                    "projection_psnr": {s: float(np.mean([p.psnr for _, p in ss])) for s, ss in sets.items()},
                    "representations": {}, "one_shot": []}
    for name, xs in reps.items():
        entry: dict = {"stats": code_stats(torch.cat(xs["annotated"])), "probe": {}}
        if name in encoders:
            enc, hcfg, folder = encoders[name]
            protos = load_weights(folder / CHECKPOINT)["objective"]["pair_loss.prototypes.weight"]
            entry["prototypes"] = prototype_stats(torch.cat(xs["annotated"]), protos, hcfg.swav.temperature)
            entry["encoder"] = {"epochs": hcfg.epochs, "images_per_epoch": hcfg.images_per_epoch,
                                "images": hcfg.epochs * hcfg.images_per_epoch,
                                "cpu_seconds": json.loads((folder / "done.json").read_text())["cpu_seconds"]}
        for how in PROBES:
            for fitted_on in ("annotated", "oracle"):
                net = probe(xs[fitted_on], ys[fitted_on], how, k)
                entry["probe"][f"{how}/{fitted_on}"] = {"own": threat_miou(net, xs[fitted_on], ys[fitted_on], k),
                                                        "test": threat_miou(net, xs["test"], ys["test"], k)}
        result["representations"][name] = entry
        print(name, json.dumps(entry), flush=True)
    for name, (enc, _, _) in encoders.items():
        samples = [Annotation(p.ws[0], torch.from_numpy(to_classes(w.label, table)), tuple(f))
                   for (w, p), f in zip(sets["annotated"], feats["annotated"])]
        for seg, epochs, std in FITS:
            with seeded(cfg.fit.seed):
                model = HFCSegmenter(enc, make_segmenter(seg, enc.out_dim, k, cfg.fit.hidden, standardize=std))
            c0 = time.process_time()
            fit(model, ws.gen, samples, OneShotConfig(segmenter=seg, hidden=cfg.fit.hidden, epochs=epochs,
                                                      lr=cfg.fit.lr, seed=cfg.fit.seed, standardize=std))
            cpu = time.process_time() - c0
            row = {"encoder": name, "segmenter": seg, "epochs": epochs, "standardize": std, "fit_cpu_s": cpu,
                   "own_miou": predicted_miou(model, feats["annotated"], ys["annotated"], k, size),
                   "test_miou": predicted_miou(model, feats["test"], ys["test"], k, size)}
            result["one_shot"].append(row)
            print(row, flush=True)
    result.update(network=str(args.network), generator_sha256=ws.generator_sha256, config=args.config,
                  seconds=time.time() - t0, environment=environment("cpu"))
    write_json_atomic(args.out, result, indent=1)
    plot(result, Path(args.out).with_suffix(".png"))
    print(f"→ {args.out}")


def plot(r: dict, path: Path) -> None:
    """Test threat mIoU of the L-BFGS probe (one-shot and oracle) per representation."""
    from matplotlib.figure import Figure

    names = list(r["representations"])
    fig = Figure(figsize=(9, 3.6), dpi=110)
    ax = fig.subplots()
    x = np.arange(len(names))
    for j, fitted_on in enumerate(("annotated", "oracle")):
        v = [100 * r["representations"][n]["probe"][f"lbfgs/{fitted_on}"]["test"] for n in names]
        ax.bar(x + 0.38 * (j - 0.5), v, 0.38, label=f"linear probe (L-BFGS) fitted on the {fitted_on} windows")
    ax.set_xticks(x, names, rotation=15, fontsize=7)
    ax.set_ylabel("threat mIoU on test windows (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
