"""How much the quick-start's held-out score owes to its example choice and test size (issue 20):
docs/benchmarks/quickstart-robust.json + .png.

Reads a finished quick-start folder's HFC encoder, projects (once, cached in --cache) the first --tries candidate
windows of each category and --test held-out threat windows (+ --clean threat-free ones), then fits the quick-start's
one-shot segmenter on many choices of ONE example per category:

* the quick-start's rule at tries 1 (the first candidate), 3 (shipped until session 22) and --tries (5, shipped
  since): the best projected;
* --random random choices of one candidate per category: the spread the example choice alone makes;

for each segmenter of --segmenters (fcn3: the quick-start's; mlp1: the protocol's Ours / MLP), fitted as the
quick-start fits (fit: of the config). Each fit is scored, each threat pixel's category from the window's label (the
quick-start's `synth.class_from: condition`), on a small held-out set (--small: the first THREAT threat and CLEAN
clean windows of the larger set; 12,4 = the quick-start's held-out set until session 22) and on the whole larger set.

    python scripts/bench_quickstart_robust.py --run runs/quickstart [--config configs/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "benchmarks"


def main() -> None:
    """Project, fit per example choice and segmenter, score; write the JSON and the plot."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a `baggan quickstart` folder with its HFC encoder")
    p.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    p.add_argument("--network", type=Path, default=None, help="generator (default: the config's)")
    p.add_argument("--tries", type=int, default=5, help="candidate windows per category")
    p.add_argument("--test", type=int, default=48, help="held-out threat windows of the larger set")
    p.add_argument("--clean", type=int, default=8, help="held-out threat-free windows of the larger set")
    p.add_argument("--small", default="12,4", help="THREAT,CLEAN: the small held-out set (the first of the larger)")
    p.add_argument("--random", type=int, default=16, help="random example choices")
    p.add_argument("--segmenters", default="fcn3,mlp1")
    p.add_argument("--cache", type=Path, default=ROOT / "runs" / "projections")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT / "quickstart-robust.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from tqdm.auto import tqdm

    from baggan.denormals import flush_denormals

    flush_denormals()  # as the `baggan` command: a saturated fit otherwise crawls through denormal floats

    from baggan.evaluate.oneshot_data import ProjectionCache
    from baggan.io import file_sha256, write_json_atomic
    from baggan.oneshot import AnnotatedSample, categories_from, fit_samples, predict_probs, rgb
    from baggan.quickstart import Quickstart, load_quickstart_config, main_category, score_predictions
    from baggan.stylegan2.projector import ProjectorConfig
    from hfc.checkpoint import load_module
    from hfc.config import OneShotConfig
    from hfc.features import PixelEncoder

    t0 = time.time()
    cfg = load_quickstart_config(args.config)
    q = Quickstart(cfg, args.run, torch.device("cpu"), network=args.network, progress=False)
    encoder = load_module(args.run / "hfc" / "encoder.pt", q.device, expect=PixelEncoder)
    cache = ProjectionCache(args.cache, q.gen.G, file_sha256(q.network), ProjectorConfig(steps=cfg.projector_steps,
                                                                                       seed=0))

    def sample(scan) -> AnnotatedSample:
        """The scan's projection (cached) as an annotated sample with the scan's label as its mask."""
        proj = cache.get(scan)
        return AnnotatedSample(f"{scan.kind} {scan.seed}", proj.ws, cache.features(proj, image=bool(cfg.fit.image)),
                               rgb(proj.image), scan.label, "", proj)

    q.cfg = dataclasses.replace(cfg, example=dataclasses.replace(cfg.example, tries=args.tries))
    groups = q.candidate_groups()  # per category its first --tries candidate windows, as the quick-start groups them
    tests = q.scans.test_scans(args.test, args.clean)
    todo = sum(map(len, groups)) + len(tests)
    with tqdm(total=todo, desc="projecting (cached)") as bar:
        cands = []
        for g in groups:
            cands.append([])
            for scan in g:
                cands[-1].append((scan, sample(scan)))
                bar.update()
        table_all = sorted({int(c) for g in groups for s in g for c in np.unique(s.label) if c > 0})
        test_samples = []
        for scan in tests:
            scan.label = np.where(np.isin(scan.label, [0, *table_all]), scan.label, 0)
            test_samples.append(sample(scan))
            bar.update()
    print(f"projected {todo} windows ({time.time() - t0:.0f} s with the cache)")
    n_threat, n_clean = map(int, args.small.split(","))
    own = list(range(n_threat)) + [args.test + i for i in range(n_clean)]  # the small set

    choices: dict[str, list[int]] = {}
    for t in sorted({1, 3, args.tries}):  # the quick-start's rule: per category the best projected of its first t
        choices[f"best of {t}"] = [max(range(min(t, len(c))), key=lambda i: c[i][1].projection.psnr) for c in cands]
    rng = np.random.default_rng(0)
    for r in range(args.random):
        choices[f"random {r}"] = [int(rng.integers(len(c))) for c in cands]

    rows, inputs = [], []
    for seg in args.segmenters.split(","):
        f = cfg.fit
        ocfg = OneShotConfig(segmenter=seg, hidden=f.hidden, epochs=f.epochs, lr=f.lr, seed=0, image=f.image,
                             standardize=f.standardize)
        fitted: dict[tuple[int, ...], dict] = {}
        for name, pick in tqdm(choices.items(), desc=f"fitting {seg}"):
            key = tuple(pick)
            if key not in fitted:
                examples = [c[i][1] for c, i in zip(cands, pick)]
                model, table, _ = fit_samples("swav", q.seg_gen, encoder, examples, ocfg, progress=False)
                if not inputs:  # the frozen part (codes and image) of every test window, once for all fits
                    inputs.extend(model.prepare(s.features, q.size) for s in test_samples)
                with torch.no_grad():
                    probs = [model.classify(x).softmax(1) for x in inputs]
                preds = [categories_from(pr, table, scan.present) for pr, scan in zip(probs, tests)]
                fit_preds = [categories_from(predict_probs(model, s, q.size), table) for s in examples]
                fitted[key] = {
                    "large": score_predictions(test_samples, preds, table)["miou"],
                    "quickstart": score_predictions([test_samples[i] for i in own], [preds[i] for i in own],
                                                    table)["miou"],
                    "own_fit": score_predictions(examples, fit_preds, table)["miou"],
                    "examples": [c[i][0].seed for c, i in zip(cands, pick)],
                    "example_psnr": [round(c[i][1].projection.psnr, 2) for c, i in zip(cands, pick)]}
            rows.append({"segmenter": seg, "choice": name, "pick": pick, **fitted[key]})
            print(f"{seg} {name:>10} {pick}: quick-start set {rows[-1]['quickstart']:.3f}, "
                  f"{args.test}+{args.clean} set {rows[-1]['large']:.3f}, own fit {rows[-1]['own_fit']:.3f}")

    summary = {}
    for seg in args.segmenters.split(","):
        rnd = [r for r in rows if r["segmenter"] == seg and r["choice"].startswith("random")]
        summary[seg] = {k: {"mean": float(np.mean([r[k] for r in rnd])), "std": float(np.std([r[k] for r in rnd])),
                            "min": float(np.min([r[k] for r in rnd])), "max": float(np.max([r[k] for r in rnd]))}
                        for k in ("quickstart", "large", "own_fit")}
    result = {"run": str(args.run), "config": str(args.config), "network": str(q.network),
              "network_sha256": file_sha256(q.network), "tries": args.tries, "test": [args.test, args.clean],
              "quickstart_test": [n_threat, n_clean],
              "candidate_psnr": [[round(s.projection.psnr, 2) for _, s in c] for c in cands],
              "categories": [q.label_set.names[main_category(c[0][0].label) - 1] for c in cands],
              "test_psnr": float(np.mean([s.projection.psnr for s in test_samples])),
              "rows": rows, "random_summary": summary,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
              "seconds": round(time.time() - t0, 1)}
    write_json_atomic(args.out, result, indent=1)
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")


def plot(result: dict, path: Path) -> None:
    """Per segmenter: the random choices' held-out mIoU on both test sets (dots) and the quick-start's rules."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    segs = list(result["random_summary"])
    sets = (("quickstart", "{}+{} windows (the quick-start's until session 22)".format(*result["quickstart_test"])),
            ("large", "{}+{} windows".format(*result["test"])))
    fig, axes = plt.subplots(1, len(sets), figsize=(5 * len(sets), 3.2), sharey=True)
    for ax, (key, title) in zip(np.atleast_1d(axes), sets):
        for x, seg in enumerate(segs):
            rows = [r for r in result["rows"] if r["segmenter"] == seg]
            rnd = [r[key] for r in rows if r["choice"].startswith("random")]
            ax.scatter(np.full(len(rnd), x) + np.linspace(-0.15, 0.15, len(rnd)), rnd, s=12, c="grey",
                       label="random example per class" if x == 0 else None)
            for k, r in enumerate(r for r in rows if r["choice"].startswith("best")):
                ax.scatter([x + 0.3], [r[key]], marker="ovs^"[k], s=40, color=f"C{k}",
                           label=f"{r['choice']} (projection PSNR)" if x == 0 else None)
        ax.axhline(0.45, color="k", ls="--", lw=0.8)
        ax.set_xticks(range(len(segs)), segs)
        ax.set_xlim(-0.5, len(segs) - 0.3)
        ax.set_title(f"held-out mIoU on {title}", fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("threat mIoU (category from the label)")
    fig.legend(*np.atleast_1d(axes)[0].get_legend_handles_labels(), fontsize=7, loc="lower center", ncol=4)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
