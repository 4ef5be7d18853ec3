"""FID, KID, precision/recall (and the threat judge) of every snapshot of a training run, after the fact.

For runs trained with `fid_ticks: 0` (to keep the CPU for training), this measures what the loop would
have logged: G_ema at psi 1, const noise, the probe's fixed latents (`metrics.seed` of the run's
config.yaml unless --seed is given), against the same training images.

    .venv/bin/python scripts/fid_snapshots.py --run runs/xraysim-64 --data data/xraysim-64 \
        --samples 500 --out docs/benchmarks/train-xraysim64-s6/fid.json

With `--judge FILE` each snapshot is also judged (baggan.evaluate.threats): per category the share of
the same number of samples (psi 1) in which the judge is confident, and its ratio to the share on fresh
simulator windows (the threat recall ratio) — the judge curve over kimg. `--sim-config` draws those
reference windows from the run's own simulator config instead of the judge's.

Writes the JSON (one row per snapshot: kimg, fid, kid, precision, recall, judge shares, seconds) and a PNG
of the curves against kimg beside it; a row already in the JSON for the same snapshot file and settings is reused, and rows of
snapshots no longer in the folder are kept (so a pruned run, or a run folder holding only the final
checkpoint, adds to the curve instead of replacing it).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.config import load_config  # noqa: E402
from baggan.errors import UserError  # noqa: E402
from baggan.evaluate.report import environment, save_figure  # noqa: E402
from baggan.io import read_json, write_json_atomic  # noqa: E402
from baggan.stylegan2.checkpoint import load_network  # noqa: E402
from baggan.stylegan2.dataset import TrainingImages  # noqa: E402
from baggan.stylegan2.distributed import Processes  # noqa: E402
from baggan.stylegan2.metrics import RealismProbe, inception_extractor  # noqa: E402
from baggan.stylegan2.training_config import TrainConfig  # noqa: E402

SNAPSHOT = re.compile(r"snapshot-(\d+)\.pt$")


def snapshots(run: Path, every_kimg: float) -> list[tuple[float, Path]]:
    """(kimg, path) of the run's snapshots, sorted, thinned to one per `every_kimg`."""
    found = sorted((int(m.group(1)) / 1000, p) for p in run.glob("snapshot-*.pt") if (m := SNAPSHOT.search(p.name)))
    if not found:
        raise UserError(f"{run}: no snapshot-*.pt files")
    kept, last = [], None
    for kimg, path in found:
        if last is None or kimg - last >= every_kimg - 1e-6:
            kept.append((kimg, path))
            last = kimg
    return kept


def plot(path: Path, rows: list[dict]) -> None:
    """FID, KID, precision/recall and (when measured) the judge's threat recall ratios against kimg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judged = [r for r in rows if r.get("judge_ratio")]
    fig, axes = plt.subplots(1, 4 if judged else 3, figsize=(16 if judged else 12, 3.2))
    k = [r["kimg"] for r in rows]
    axes[0].plot(k, [r["fid"] for r in rows], "o-")
    axes[0].set(xlabel="kimg", ylabel="FID", title="FID (G_ema, psi 1)")
    axes[1].plot(k, [r["kid"] for r in rows], "o-", color="tab:orange")
    axes[1].set(xlabel="kimg", ylabel="KID", title="KID")
    for key in ("precision", "recall"):
        pts = [(r["kimg"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            axes[2].plot(*zip(*pts), "o-", label=key)
    axes[2].set(xlabel="kimg", title="precision / recall (k = 3)", ylim=(0, 1))
    axes[2].legend(fontsize=8)
    if judged:
        for key in judged[-1]["judge_ratio"]:
            axes[3].plot([r["kimg"] for r in judged], [r["judge_ratio"][key] for r in judged], "o-", label=key,
                         linewidth=2.5 if key == "any" else 1)
        axes[3].axhline(0.7, color="gray", linestyle="--", linewidth=1)
        axes[3].set(xlabel="kimg", title="judge: threat recall ratio (p >= 0.9)")
        axes[3].legend(fontsize=7)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


class SnapshotJudge:
    """The threat judge's confident shares for a snapshot's samples, against fresh simulator windows."""

    def __init__(self, path: Path, n: int, seed: int, sim_config: Path | None = None):
        from baggan.evaluate.judge import EVAL_SEED, load_judge, predict, render_set
        from baggan.evaluate.threats import ThreatOptions, confident_shares, reference_sim

        self.model, self.cfg, _ = load_judge(path)
        self.n, self.seed = n, seed
        sim = reference_sim(self.cfg.sim, ThreatOptions(sim_config=str(sim_config) if sim_config else None))
        images, _, self.labels = render_set(self.cfg, sim, EVAL_SEED, n, "render simulator windows")
        self.reference = confident_shares(predict(self.model, images), self.cfg.classes)

    def __call__(self, G: torch.nn.Module) -> dict:
        """{'judge': shares, 'judge_ratio': ratios} of G's samples at psi 1."""
        from baggan.evaluate.judge import predict
        from baggan.evaluate.threats import confident_shares, generate, recall_ratios

        images = generate(G, self.n, 1.0, self.seed, self.labels, 50, torch.device("cpu"))
        shares = confident_shares(predict(self.model, images), self.cfg.classes)
        return {"judge": shares, "judge_ratio": recall_ratios(shares, self.reference)}


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, probe each snapshot, write JSON + PNG."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="training run folder with snapshot-*.pt")
    ap.add_argument("--data", type=Path, required=True, help="the run's training data folder")
    ap.add_argument("--samples", type=int, default=500, help="generated and real images per probe")
    ap.add_argument("--every-kimg", type=float, default=0.0, help="skip snapshots closer than this to the last kept")
    ap.add_argument("--seed", type=int, default=None, help="probe latents; default: the run's metrics.seed")
    ap.add_argument("--judge", type=Path, default=None, help="also judge each snapshot's samples with this judge")
    ap.add_argument("--sim-config", type=Path, default=None,
                    help="simulator config of the judge's reference windows (default: the judge's own)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        todo = snapshots(args.run, args.every_kimg)
        cfg = load_config(args.run / "config.yaml", TrainConfig) if (args.run / "config.yaml").is_file() else TrainConfig()
        if args.seed is None:
            args.seed = cfg.metrics.seed
        first = load_network(todo[0][1])["G_ema"]
        images = TrainingImages(args.data, first.img_resolution, first.img_channels, xflip=cfg.data.xflip,
                                labels=bool(first.c_dim))
        probe = RealismProbe(inception_extractor(torch.device("cpu")), images, args.samples, args.seed,
                             Processes(rank=0, world=1, device=torch.device("cpu")))
        judge = SnapshotJudge(args.judge, args.samples, args.seed, args.sim_config) if args.judge else None
        done = {r["file"]: r for r in (read_json(args.out).get("rows", []) if args.out.is_file() else [])
                if r.get("samples") == args.samples and r.get("seed") == args.seed
                and ("judge" in r or judge is None)}
        names = {path.name for _, path in todo}
        rows = [r for name, r in done.items() if name not in names]

        def save() -> None:  # after every probe, so that a killed run keeps what it measured
            rows.sort(key=lambda r: r["kimg"])
            args.out.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(args.out, {"run": str(args.run), "data": str(args.data), "rows": rows,
                                         "judge_reference": judge.reference if judge else None,
                                         "environment": environment("cpu")})

        for kimg, path in todo:
            if path.name in done:
                rows.append(done[path.name])
                continue
            t0 = time.time()
            G = load_network(path)["G_ema"]
            scores = {**probe(G), **(judge(G) if judge else {})}
            rows.append({"file": path.name, "kimg": kimg, "samples": args.samples, "seed": args.seed, **scores,
                         "seconds": round(time.time() - t0, 1)})
            print(f"{kimg:8.3f} kimg  FID {scores['fid']:7.2f}  KID {scores['kid']:.4f}  precision "
                  f"{scores['precision']:.3f}  recall {scores['recall']:.3f}"
                  + (f"  judge any-ratio {scores['judge_ratio']['any']:.2f}" if judge else ""), flush=True)
            save()
        save()
        plot(args.out.with_suffix(".png"), rows)
    except UserError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
