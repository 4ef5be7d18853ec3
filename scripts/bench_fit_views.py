"""Sweep the one-shot fit's W+ views (hfc OneShotConfig.views) over the protocol's MLP-1 methods.

Reads a finished one-shot protocol run folder (its cached projections and HFC encoders: nothing is projected or
trained again), refits the methods named with each views setting on every repetition's annotated windows, and scores
them on the run's test windows with the class from the label. Writes OUT.json (per setting and method: mean ± std
over repetitions, each repetition's figure, the mean ± std of its fits' mIoU on their own annotated windows, and the
held-out threat recall and precision) and
OUT.png (bars). The fit's other settings (epochs, L-BFGS, ...) are the config's:

    .venv/bin/python scripts/bench_fit_views.py --config configs/eval/oneshot-windows-image-p200-full-cpu.yaml \
        --outdir runs/oneshot-p200-full --network g420.pt --out docs/benchmarks/oneshot-views/sweep-420.json

A setting is PER_SAMPLE:TAU_P:MIN_RESOLUTION ("0" for no views), e.g. 8:0.5:16; each is run with every class-weight
power of --balance (hfc OneShotConfig.class_balance; 0: plain cross-entropy).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.config import merged  # noqa: E402
from baggan.denormals import flush_denormals  # noqa: E402
from baggan.errors import ConfigError  # noqa: E402
from baggan.evaluate.oneshot import Workspace, hfc_variants, protocol_scans, run_unit  # noqa: E402
from baggan.evaluate.oneshot_config import METHODS, OneShotEvalConfig, Unit, load_oneshot_config  # noqa: E402
from baggan.evaluate.oneshot_report import unit_scores  # noqa: E402
from baggan.evaluate.report import grouped_bars, save_figure  # noqa: E402
from baggan.io import write_json_atomic  # noqa: E402
from hfc.augment import style_blocks  # noqa: E402
from hfc.metrics import mean_std  # noqa: E402

DEFAULT_SETTINGS = ["0", "8:0.5:16", "8:0.7:16", "8:0.3:16", "8:0.5:8", "8:0.5:32"]


def fit_with(fit, setting: str, balance: float, segmenters: list[str]):
    """The protocol's FitConfig with the views of `setting` for `segmenters` (none for "0") and class weights of
    power `balance` (none for 0)."""
    fit = dataclasses.replace(fit, balance=segmenters if balance else [], balance_power=balance or 1.0)
    if setting == "0":
        return dataclasses.replace(fit, views=[])
    n, tau, res = setting.split(":")
    return dataclasses.replace(fit, views=segmenters, views_per_sample=int(n), views_tau_p=float(tau),
                               views_min_resolution=int(res))


def threat_recall_precision(cms) -> tuple[float, float]:
    """Pooled threat-vs-background recall and precision % of confusion matrices [N, K, K] (gt rows, class 0 background)."""
    cm = cms.sum(axis=0)
    hit = cm[1:, 1:].sum()
    return 100 * hit / max(cm[1:].sum(), 1), 100 * hit / max(cm[:, 1:].sum(), 1)


class Refit(NamedTuple):
    """A finished protocol run opened for refitting: its config (methods replaced), workspace, HFC configs,
    non-oracle units, test scans, annotated sets and projections, and the segmenters of the methods."""

    cfg: OneShotEvalConfig
    ws: Workspace
    hfc_cfgs: dict
    units: list[Unit]
    test: list
    train: dict
    proj: dict
    segmenters: list[str]


def run_parser(description: str) -> argparse.ArgumentParser:
    """The arguments of every bench that refits a finished protocol run (config, run folder, generator, methods)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--config", type=Path, required=True, help="the protocol config the run folder was made with")
    ap.add_argument("--outdir", type=Path, required=True, help="the finished protocol run folder")
    ap.add_argument("--network", type=Path, default=None, help="default: the config's network")
    ap.add_argument("--methods", default="ours-mlp,kmeans,simclr-mlp")
    ap.add_argument("--hfc-set", action="append", default=[], metavar="KEY=VALUE",
                    help="an HFC setting over the config's hfc_overrides, dotted key and YAML value (e.g. "
                         "swav.temperature=0.1; repeatable): its encoders are trained into the run folder's hfc/")
    return ap


def hfc_settings(pairs: list[str]) -> dict:
    """--hfc-set KEY=VALUE pairs → a nested overrides mapping; SystemExit naming a malformed pair."""
    import yaml

    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or any(not k for k in key.split(".")):
            raise SystemExit(f"--hfc-set: {pair!r} is not KEY=VALUE (e.g. swav.temperature=0.1)")
        *path, last = key.split(".")
        node = out
        for k in path:
            node = node.setdefault(k, {})
        node[last] = yaml.safe_load(value)
    return out


def open_run(args: argparse.Namespace, repetitions: int | None = None) -> Refit:
    """Open the run of `args` (run_parser's) on one CPU thread, its units those of args.methods (the first
    `repetitions`), every projection read from its cache."""
    flush_denormals()
    torch.set_num_threads(1)
    methods = args.methods.split(",")
    cfg = load_oneshot_config(args.config)
    cfg = dataclasses.replace(cfg, methods=methods,
                              hfc_overrides=merged(cfg.hfc_overrides, hfc_settings(args.hfc_set)))
    ws = Workspace(cfg, args.outdir, args.network or Path(cfg.network), torch.device("cpu"), progress=False)
    try:
        hfc_cfgs, units = hfc_variants(cfg, ["main"], len(style_blocks(ws.gen)), ws.size)
    except ConfigError as e:  # e.g. an --hfc-set key the HFC config does not have
        raise SystemExit(f"error: {e}") from None
    units = [u for u in units if not u.oracle and (repetitions is None or u.rep < repetitions)]
    test, train, _, proj = protocol_scans(ws, units)
    return Refit(cfg, ws, hfc_cfgs, units, test, train, proj,
                 sorted({METHODS[m].segmenter or METHODS[m].raw for m in methods}))


def ms(values: list[float]) -> dict[str, float]:
    """{"mean", "std"} over repetitions (sample std; 0 for one value)."""
    return dict(zip(("mean", "std"), map(float, mean_std(values))))


def main() -> None:
    """Refit and score every (setting, method, repetition); write the JSON and the bars."""
    ap = run_parser(__doc__.splitlines()[0])
    ap.add_argument("--settings", default=",".join(DEFAULT_SETTINGS))
    ap.add_argument("--balance", default="0", help="class-weight powers to cross with the settings (0: none)")
    ap.add_argument("--repetitions", type=int, default=None, help="only the first N repetitions (default: all)")
    ap.add_argument("--out", type=Path, required=True, help="OUT.json; OUT.png beside it")
    args = ap.parse_args()
    cfg, ws, hfc_cfgs, units, test, train, proj, segmenters = open_run(args, args.repetitions)
    test_pairs = [(s, proj[(s.kind, s.seed)]) for s in test]
    results: dict[str, dict[str, list[tuple]]] = {}
    for setting, balance in [(s, float(b)) for s in args.settings.split(",") for b in args.balance.split(",")]:
        ws.cfg = dataclasses.replace(cfg, fit=fit_with(cfg.fit, setting, balance, segmenters))
        name = setting if not balance else f"{setting} b{balance:g}"
        for u in units:
            enc = ws.encoder(u.model.hfc, hfc_cfgs[u.model.hfc]) if u.model.hfc else None
            res = run_unit(ws, u, enc, [(s, proj[(s.kind, s.seed)]) for s in train[u.rep][u.shots]], test_pairs)
            scores = unit_scores(res, cfg.scans.categories)
            score, own = 100 * scores["miou_condition"], 100 * scores["train_miou"]
            recall, precision = threat_recall_precision(res["cms_condition"])
            results.setdefault(name, {}).setdefault(u.row, []).append((score, own, recall, precision))
            print(f"views {name:14s} {u.row:28s} repetition {u.rep}: {score:.2f} (own fit {own:.2f}; threat recall "
                  f"{recall:.1f}, precision {precision:.1f})", flush=True)
    summary = {s: {row: {**ms([t[0] for t in v]), "repetitions": [t[0] for t in v], "own_fit": ms([t[1] for t in v]),
                         "threat_recall": ms([t[2] for t in v]), "threat_precision": ms([t[3] for t in v])}
                   for row, v in rows.items()} for s, rows in results.items()}
    write_json_atomic(args.out, {"config": str(args.config), "network": str(ws.network),
                                 "generator_sha256": ws.generator_sha256,
                                 "metric": "threat mIoU %, class from label (own_fit: mIoU % on the annotated windows; "
                                           "threat_recall / _precision: pooled threat-vs-background % held out)",
                                 "settings": "PER_SAMPLE:TAU_P:MIN_RESOLUTION [bPOWER: class weights]", "results": summary})
    rows = list(next(iter(summary.values())))
    panels = {"threat mIoU, class from label": {s: ([summary[s][r]["mean"] / 100 for r in rows],
                                                    [summary[s][r]["std"] / 100 for r in rows]) for s in summary}}
    save_figure(grouped_bars(panels, rows, ylabel="mIoU %"), args.out.with_suffix(".png"))
    for s, r in summary.items():
        print(s, {k: f"{v['mean']:.2f} ± {v['std']:.2f} (own fit {v['own_fit']['mean']:.2f})" for k, v in r.items()})


if __name__ == "__main__":
    main()
