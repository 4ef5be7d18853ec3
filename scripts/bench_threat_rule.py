"""Choose the class-from-label threat rule on validation windows, then score it on the protocol's test windows.

With the class from a window's label (a conditional generator), the segmenter only says where a threat is
(baggan.oneshot.condition_classes): the protocol's rule calls a pixel threat where 1 - p(background) > 0.5. This
bench refits the protocol's methods (with the config's fit, or views of --views; from its cached projections and encoders: nothing is
projected or trained again) and scores every rule of --rules twice: on the protocol's oracle windows (their own seed
stream, exact masks: the validation set; they must have been projected, i.e. the run had oracle rows) and on its test
windows, and on each fit's own annotated windows (the own fit with the class from the label). Each method's rule is
the one best on the validation windows; its test figure is the one to quote. Writes
OUT.json and OUT.png (mIoU against the threshold, validation dashed, test solid):

    .venv/bin/python scripts/bench_threat_rule.py --config configs/eval/oneshot-windows-views-cpu.yaml \
        --outdir runs/oneshot-views-560 --out docs/benchmarks/oneshot-rule/rule-560.json

A rule is tX (1 - p(background) > X) or aX (the label's classes' share of them and background > X).
With --hfc-set KEY=VALUE (repeatable) the methods read the codes of an encoder trained with that HFC setting over
the config's hfc_overrides (into the run folder's hfc/), e.g. --hfc-set dim=8: an encoder setting chosen on the
validation windows the same way (scripts/summarise_hfc_sweep.py tabulates a folder of such runs).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.evaluate.oneshot import run_unit  # noqa: E402
from baggan.evaluate.oneshot_report import unit_scores  # noqa: E402
from baggan.evaluate.report import save_figure  # noqa: E402
from baggan.io import write_json_atomic  # noqa: E402
from bench_fit_views import fit_with, ms, open_run, run_parser, threat_recall_precision  # noqa: E402

DEFAULT_RULES = "t0.3,t0.4,t0.5,t0.6,t0.7,t0.8,t0.9,a0.3,a0.4,a0.5,a0.6,a0.7,a0.8"
PER_SCAN = ("cms", "cms_condition", "test_kinds")


def parse_rule(name: str) -> tuple[float, bool]:
    """condition_classes' (threshold, among_allowed) of a rule name tX / aX."""
    try:
        value = float(name[1:])
    except ValueError:
        value = float("nan")
    if name[:1] not in ("t", "a") or not 0.0 < value < 1.0:
        raise SystemExit(f"--rules: {name!r} is not tX or aX with 0 < X < 1 (e.g. t0.5, a0.6)")
    return value, name[0] == "a"


def split(res: dict, sizes: list[int]) -> list[dict]:
    """A unit result scored on consecutive scan sets of `sizes` → one result per set."""
    parts, ends = [], np.cumsum([0, *sizes])
    for sl in (slice(a, b) for a, b in zip(ends[:-1], ends[1:])):
        part = {**res, **{k: res[k][sl] for k in PER_SCAN}}
        part["cms_rules"] = {r: cms[sl] for r, cms in res["cms_rules"].items()}
        parts.append(part)
    return parts


def rule_scores(res: dict, categories) -> dict[str, tuple[float, float, float]]:
    """Per rule: (threat mIoU %, class from label; pooled threat recall %; precision %)."""
    return {r: (100 * unit_scores({**res, "cms_condition": cms}, categories)["miou_condition"],
                *threat_recall_precision(cms)) for r, cms in res["cms_rules"].items()}


def curves(summary: dict, rules: list[str]):
    """mIoU against the threshold per method: one panel per rule family, validation dashed, test solid."""
    import matplotlib.pyplot as plt

    families = [(f, t) for f, t in [("t", "1 - p(background) > X"), ("a", "label's class vs background > X")]
                if any(r[0] == f for r in rules)]
    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 3.8), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, (family, title) in zip(axes, families):
        names = [r for r in rules if r[0] == family]
        xs = [float(r[1:]) for r in names]
        for i, (row, v) in enumerate(summary.items()):
            colour = f"C{i}"
            ax.plot(xs, [v["validation"][r]["mean"] for r in names], "--", color=colour, alpha=0.7)
            ax.errorbar(xs, [v["test"][r]["mean"] for r in names], [v["test"][r]["std"] for r in names], color=colour,
                        marker="o", ms=3, capsize=2, label=row)
        ax.axvline(0.5, color="grey", lw=0.5)
        ax.set(title=title, xlabel="X")
    axes[0].set_ylabel("threat mIoU %, class from label")
    axes[0].legend(fontsize=7)
    fig.suptitle("threat rule: test windows (solid, ± std over repetitions),\nvalidation windows (dashed)", fontsize=9)
    fig.tight_layout()
    return fig


def main() -> None:
    """Refit every (method, repetition), score each rule on validation and test windows; write JSON and curves."""
    ap = run_parser(__doc__.splitlines()[0])  # its run folder must hold the projected oracle windows
    ap.add_argument("--views", default="config", help="views of the fit: the config's, or a bench_fit_views setting "
                                                       "for every method named (0: none)")
    ap.add_argument("--rules", default=DEFAULT_RULES)
    ap.add_argument("--out", type=Path, required=True, help="OUT.json; OUT.png beside it")
    ap.add_argument("--replot", action="store_true", help="only redraw OUT.png from OUT.json")
    args = ap.parse_args()
    if args.replot:
        summary = json.loads(args.out.read_text())["results"]
        save_figure(curves(summary, list(next(iter(summary.values()))["test"])), args.out.with_suffix(".png"))
        return
    rule_names = args.rules.split(",")
    rules = {r: parse_rule(r) for r in rule_names}
    cfg, ws, hfc_cfgs, units, test, train, proj, segmenters = open_run(args)
    if args.views != "config":
        ws.cfg = dataclasses.replace(cfg, fit=fit_with(cfg.fit, args.views, 0.0, segmenters))
    val = ws.scans.oracle_scans(cfg.oracle.train)
    proj.update(ws.project_all(val))
    scans = [(s, proj[(s.kind, s.seed)]) for s in test + val]
    per: dict[str, dict[str, list]] = {}
    for u in units:
        enc = ws.encoder(u.model.hfc, hfc_cfgs[u.model.hfc]) if u.model.hfc else None
        own = [(s, proj[(s.kind, s.seed)]) for s in train[u.rep][u.shots]]
        res = run_unit(ws, u, enc, own, scans + own, rules)
        t, v, o = (rule_scores(part, cfg.scans.categories) for part in split(res, [len(test), len(val), len(own)]))
        for part, x in (("test", t), ("validation", v), ("own", o)):
            per.setdefault(u.row, {}).setdefault(part, []).append(x)
        print(f"{u.row:28s} repetition {u.rep}: " + ", ".join(f"{r} {t[r][0]:.1f}/{v[r][0]:.1f}" for r in rules)
              + " (test/validation)", flush=True)
    summary = {}
    for row, d in per.items():
        out = {part: {r: {**ms([x[r][0] for x in d[part]]), "repetitions": [x[r][0] for x in d[part]],
                          "threat_recall": ms([x[r][1] for x in d[part]])["mean"],
                          "threat_precision": ms([x[r][2] for x in d[part]])["mean"]} for r in rules}
               for part in ("test", "validation", "own")}
        best = max(rule_names, key=lambda r: out["validation"][r]["mean"])
        summary[row] = {**out, "chosen": best, "chosen_test": out["test"][best], "chosen_own": out["own"][best]}
    write_json_atomic(args.out, {"config": str(args.config), "network": str(ws.network),
                                 "generator_sha256": ws.generator_sha256, "views": args.views,
                                 "hfc_set": args.hfc_set, "hfc": {n: c.to_dict() for n, c in hfc_cfgs.items()},
                                 "test_windows": len(test), "validation_windows": len(val),
                                 "metric": "threat mIoU %, class from label, mean ± std over repetitions (own: on the "
                                           "fit's own annotated windows); recall and precision: pooled "
                                           "threat-vs-background %, mean over repetitions",
                                 "rules": "tX: 1 - p(background) > X; aX: the label's classes' share of them and "
                                          "background > X", "results": summary})
    save_figure(curves(summary, rule_names), args.out.with_suffix(".png"))
    for row, s in summary.items():
        c = s["chosen_test"]
        print(f"{row}: t0.5 {s['test'].get('t0.5', {}).get('mean', np.nan):.2f}; chosen on validation {s['chosen']}: "
              f"test {c['mean']:.2f} ± {c['std']:.2f}, own fit {s['chosen_own']['mean']:.2f}")


if __name__ == "__main__":
    main()
