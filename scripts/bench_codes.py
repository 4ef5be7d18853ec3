"""What the HFC codes hold about the threats of ONE annotated scan (issue 20): docs/benchmarks/codes.json + .png.

The quick-start's chain on the shipped generator: the HFC encoder trained as `baggan quickstart` trains it
(configs/hfc/xray.yaml, the quick-start's epochs), its one annotated simulator scan (the candidate showing the
most threat categories, projected into W+) and held-out simulator scans projected the same way. On those:

* the codes z of the annotated scan: effective rank (exp of the entropy of the normalised singular values of the
  centred pixels x channels matrix), mean cosine between pixel codes, channel std, prototype usage (how many of
  the K prototypes are the best match of at least one pixel) and the entropy of the assignment
  softmax(C^T z / tau), in nats (log K = uniform);
* a threat-vs-background linear probe on the annotated scan, fitted on its own pixels, for the codes, the raw
  hidden features (Eq. 8, C_hidden wide), a random linear projection of the raw features to D channels and an
  untrained f_theta (the same random projection, then LeakyReLU and L2 normalisation, as f_theta): trained as
  the one-shot fit trains (Adam, lr 0.01, 100 epochs) on the inputs as they are and standardised per channel,
  and to convergence (L-BFGS): the IoU on the scan itself, on the held-out scans, and an "oracle" fitted on half
  of the held-out scans and tested on the other half (what annotated projections can teach at all);
* the library's one-shot fit (hfc.oneshot.fit) of MLP-1 and FCN-3 on the codes, with the segmenter's input
  standardisation off (the code before issue 20) and on: mIoU over the threat categories on the annotated scan
  and on the held-out scans (the quick-start's score), and MLP-1's own-scan mIoU against the epochs.

Work (encoder, projections) is cached in --workdir, so a rerun only refits.

    python scripts/bench_codes.py --workdir runs/bench-codes
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "benchmarks"
CURVE_EPOCHS = (25, 50, 100, 200, 500, 1000)


def effective_rank(x: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of the centred rows x [P, C] (Roy & Vetterli's erank)."""
    s = torch.linalg.svdvals((x - x.mean(0)).double())
    p = s / s.sum()
    return float(torch.exp(-(p * p.clamp_min(1e-300).log()).sum()))


def code_stats(x: torch.Tensor) -> dict:
    """Effective rank, mean pairwise cosine, mean channel std and mean norm of pixel vectors x [P, C]."""
    xn = F.normalize(x, dim=1)
    return {"effective_rank": effective_rank(x), "width": x.shape[1], "mean_cosine": float((xn.mean(0) ** 2).sum()),
            "channel_std": float(x.std(0).mean()), "mean_norm": float(x.norm(dim=1).mean())}


def prototype_stats(z: torch.Tensor, prototypes: torch.Tensor, temperature: float) -> dict:
    """How the pixels z [P, D] fall on the K prototypes: used count, top share, assignment entropy (nats)."""
    scores = z @ prototypes.t()
    counts = torch.bincount(scores.argmax(1), minlength=prototypes.shape[0])
    p = (scores / temperature).softmax(1)
    return {"prototypes": prototypes.shape[0], "used": int((counts > 0).sum()),
            "largest_share": float(counts.max() / counts.sum()),
            "assignment_entropy": float(-(p * p.clamp_min(1e-30).log()).sum(1).mean()),
            "uniform_entropy": float(np.log(prototypes.shape[0]))}


def binary_iou(pred: torch.Tensor, y: torch.Tensor) -> float:
    """IoU of class 1."""
    return float(((pred == 1) & (y == 1)).sum()) / max(float(((pred == 1) | (y == 1)).sum()), 1.0)


def probe(xs: list[torch.Tensor], ys: list[torch.Tensor], how: str, classes: int = 2) -> torch.nn.Module:
    """A linear classifier (default threat vs background) on pixel rows xs [P, C] (labels ys [P]) trained `how`:
    adam (the one-shot fit: lr 0.01, betas (0.9, 0.99), 100 steps), adam-std (the same on standardised
    inputs) or lbfgs (standardised, to convergence)."""
    x, y = torch.cat(xs), torch.cat(ys)
    mean, scale = x.mean(0), x.var(0, unbiased=False).add(1e-2 * x.var(0).mean()).rsqrt()
    std = how != "adam"
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], classes)
    net = torch.nn.Sequential(lin) if not std else torch.nn.Sequential(_Affine(mean, scale), lin)
    if how == "lbfgs":
        opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=500, history_size=20, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-9, tolerance_change=1e-12)

        def closure():
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            return loss

        opt.step(closure)
    else:
        opt = torch.optim.Adam(lin.parameters(), lr=0.01, betas=(0.9, 0.99))
        for _ in range(100):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
    return net.eval()


class _Affine(torch.nn.Module):
    def __init__(self, mean: torch.Tensor, scale: torch.Tensor):
        super().__init__()
        self.mean, self.scale = mean, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.scale


def pooled_iou(net: torch.nn.Module, xs: list[torch.Tensor], ys: list[torch.Tensor]) -> float:
    """Binary IoU over all pixels of the scans."""
    with torch.no_grad():
        return binary_iou(torch.cat([net(x).argmax(1) for x in xs]), torch.cat(ys))


def threat_miou(labels: list[np.ndarray], preds: list[np.ndarray], k: int) -> float:
    """mIoU over the threat classes 1..k-1 from the pooled confusion matrix (the quick-start's score)."""
    from hfc.metrics import confusion_matrices, iou_from_confusion, mean_iou

    return float(mean_iou(iou_from_confusion(confusion_matrices(labels, preds, k).sum(0))))


def prepare(args) -> dict:
    """Encoder, the annotated scan and the held-out scans (projected), as the quick-start makes them; cached."""
    from baggan.evaluate.oneshot_data import SimScans
    from baggan.oneshot import projected_sample
    from baggan.quickstart import Quickstart, load_quickstart_config
    from baggan.stylegan2.projector import ProjectorConfig
    from hfc.checkpoint import load_module, load_weights
    from hfc.features import PixelEncoder
    from hfc.train import CHECKPOINT, ENCODER, train_hfc

    work = Path(args.workdir)
    qcfg = load_quickstart_config(args.config)
    q = Quickstart(qcfg, work / "quickstart", torch.device("cpu"), network=args.network, progress=False, echo=lambda s: None)
    hcfg, hdir = q.hfc_cfg, work / "hfc"
    if not (hdir / ENCODER).is_file():
        train_hfc(q.gen, hcfg, hdir, progress=True)
    encoder = load_module(hdir / ENCODER, expect=PixelEncoder)
    prototypes = load_weights(hdir / CHECKPOINT)["objective"]["pair_loss.prototypes.weight"]
    pcfg = ProjectorConfig(steps=qcfg.projector_steps, seed=0)
    cache = work / f"scans-{qcfg.projector_steps}-{args.heldout}.pt"
    if cache.is_file():
        scans = torch.load(cache, weights_only=False)
    else:
        from baggan.quickstart import choose_example

        ex = choose_example(q.scans, qcfg)
        table = [0] + ex.categories()
        names = [q.label_set.names[c - 1] for c in table[1:]]
        test = SimScans(names, q.size, qcfg.example.max_threats, qcfg.example.min_pixels,
                        qcfg.example.seed).test_scans(args.heldout, 0)
        scans = []
        for i, s in enumerate([ex, *test]):
            label = np.where(np.isin(s.label, table), s.label, 0)
            p = projected_sample(q.gen, s.image, label, f"{s.kind} {s.seed}", "simulator", pcfg, progress=False)
            scans.append({"features": p.features, "mask": label, "psnr": p.projection.psnr, "seed": s.seed})
            print(f"projected {i + 1}/{len(test) + 1}: PSNR {p.projection.psnr:.2f} dB", flush=True)
        torch.save(scans, cache)
    return {"gen": q.gen, "encoder": encoder, "prototypes": prototypes, "hfc": hcfg, "scans": scans,
            "network": str(q.network)}


def one_shot_fits(gen, encoder, scans: list[dict]) -> dict:
    """hfc.oneshot.fit of MLP-1 and FCN-3 with the segmenter's standardisation off / on: own and held-out mIoU."""
    from baggan.oneshot import class_table, to_classes
    from hfc.config import OneShotConfig
    from hfc.oneshot import Annotation, HFCSegmenter, fit
    from hfc.rng import seeded
    from hfc.segmenters import make_segmenter

    table = class_table([scans[0]["mask"]])
    k = len(table)
    ys = [to_classes(s["mask"], table, outside=0) for s in scans]
    ann = Annotation(torch.zeros(gen.num_ws, gen.w_dim), ys[0], tuple(scans[0]["features"]))
    out: dict = {"classes": table, "fits": [], "mlp1_curve": {}}
    for seg, epochs in (("mlp1", 100), ("mlp1", 200), ("fcn3", 200)):
        for std in (False, True):
            with seeded(0):
                model = HFCSegmenter(encoder, make_segmenter(seg, encoder.out_dim, k, 64, standardize=std))
            t0 = time.process_time()
            fit(model, gen, [ann], OneShotConfig(segmenter=seg, hidden=64, epochs=epochs))
            cpu = time.process_time() - t0
            preds = [model.predict(s["features"], gen.img_resolution)[0][0].numpy() for s in scans]
            row = {"segmenter": seg, "epochs": epochs, "standardize": std, "fit_cpu_s": cpu,
                   "own_miou": threat_miou([ys[0].numpy()], preds[:1], k),
                   "heldout_miou": threat_miou([y.numpy() for y in ys[1:]], preds[1:], k)}
            out["fits"].append(row)
            print(row, flush=True)
    for std in (False, True):
        curve = []
        for epochs in CURVE_EPOCHS:
            with seeded(0):
                model = HFCSegmenter(encoder, make_segmenter("mlp1", encoder.out_dim, k, 64, standardize=std))
            fit(model, gen, [ann], OneShotConfig(segmenter="mlp1", epochs=epochs))
            pred = model.predict(scans[0]["features"], gen.img_resolution)[0][0].numpy()
            curve.append(threat_miou([ys[0].numpy()], [pred], k))
        out["mlp1_curve"]["standardized" if std else "plain"] = dict(zip(CURVE_EPOCHS, curve))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--network", default=None, help="generator (default: the quick-start config's)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "quickstart-bags.yaml"),
                    help="whole-bag quick-start config (default configs/quickstart-bags.yaml)")
    ap.add_argument("--heldout", type=int, default=12, help="held-out threat scans")
    ap.add_argument("--workdir", default="runs/bench-codes")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT / "codes.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from baggan.evaluate.report import environment
    from baggan.io import write_json_atomic
    from hfc.features import upsample_concat
    from hfc.rng import seeded
    from hfc.swav import ProjectionHead

    t0 = time.time()
    d = prepare(args)
    gen, encoder, scans = d["gen"], d["encoder"], d["scans"]
    size, dim = gen.img_resolution, encoder.out_dim
    channels = encoder.layer_channels
    with seeded(1):
        untrained = ProjectionHead(channels, dim, d["hfc"].negative_slope)
    rand = untrained.proj.weight.detach().t()  # [C_hidden, D]: the random projection of the control

    def rows(x: torch.Tensor) -> torch.Tensor:
        return x[0].flatten(1).t().contiguous()

    reps: dict[str, list[torch.Tensor]] = {"codes": [], "raw": [], "random projection": [], "untrained f_theta": []}
    with torch.no_grad():
        for s in scans:
            raw = rows(upsample_concat(s["features"], size))
            reps["codes"].append(rows(encoder(s["features"], size)))
            reps["raw"].append(raw)
            reps["random projection"].append(raw @ rand)
            reps["untrained f_theta"].append(rows(untrained(s["features"], size)))
    ys = [torch.from_numpy((s["mask"] > 0).astype(np.int64)).flatten() for s in scans]
    half = 1 + (len(scans) - 1) // 2
    result: dict = {"threat_fraction_annotated": float(ys[0].float().mean()),
                    "projection_psnr": {"annotated": scans[0]["psnr"],
                                        "heldout_mean": float(np.mean([s["psnr"] for s in scans[1:]]))},
                    "representations": {}}
    for name, xs in reps.items():
        entry = {"stats": code_stats(xs[0]), "probe": {}}
        for how in ("adam", "adam-std", "lbfgs"):
            net = probe(xs[:1], ys[:1], how)
            oracle = probe(xs[1:half], ys[1:half], how)
            entry["probe"][how] = {"own": pooled_iou(net, xs[:1], ys[:1]),
                                   "heldout": pooled_iou(net, xs[1:], ys[1:]),
                                   "oracle_heldout_half": pooled_iou(oracle, xs[half:], ys[half:])}
        result["representations"][name] = entry
        print(name, json.dumps(entry), flush=True)
    result["prototypes"] = prototype_stats(reps["codes"][0], d["prototypes"], d["hfc"].swav.temperature)
    result["one_shot"] = one_shot_fits(gen, encoder, scans)
    result.update(network=d["network"], hfc={"epochs": d["hfc"].epochs, "dim": dim,
                  "prototypes": d["hfc"].swav.prototypes}, heldout_scans=len(scans) - 1,
                  seconds=time.time() - t0, environment=environment("cpu"))
    write_json_atomic(args.out, result, indent=1)
    plot(result, Path(args.out).with_suffix(".png"))
    print(f"→ {args.out}")


def plot(r: dict, path: Path) -> None:
    """Left: probe IoU per representation (own / held-out / oracle). Right: MLP-1 own mIoU against epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from baggan.evaluate.report import save_figure

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    names = list(r["representations"])
    cases = [("adam", "own"), ("adam-std", "own"), ("lbfgs", "own"), ("lbfgs", "heldout"), ("lbfgs", "oracle_heldout_half")]
    width = 0.8 / len(cases)
    for i, (how, where) in enumerate(cases):
        vals = [r["representations"][n]["probe"][how][where] for n in names]
        a.bar(np.arange(len(names)) + (i - len(cases) / 2 + 0.5) * width, vals, width, label=f"{how}: {where}")
    a.set_xticks(range(len(names)), [f"{n}\n({r['representations'][n]['stats']['width']} ch)" for n in names], fontsize=8)
    a.set_ylabel("threat-vs-background IoU")
    a.set_title("linear probe on the annotated scan's pixels", fontsize=9)
    a.legend(fontsize=7)
    for key, style in (("plain", "o--"), ("standardized", "o-")):
        c = r["one_shot"]["mlp1_curve"][key]
        b.plot([int(e) for e in c], list(c.values()), style, label=f"codes {key}")
    b.set_xscale("log")
    b.set_xlabel("Adam epochs (lr 0.01)")
    b.set_ylabel("threat mIoU on its own annotated scan")
    b.set_title("MLP-1 one-shot fit (hfc.oneshot.fit)", fontsize=9)
    b.axhline(0.9, color="0.6", lw=0.8)
    b.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


if __name__ == "__main__":
    main()
