"""The one-shot protocol's report: scores per unit, mean ± std over repetitions, the paper's numbers beside ours,
findings stated with their figures, and the plots (baggan.evaluate.report helpers).

Conventions (also written into every report):
  * per-threat IoU: per test scan whose ground truth holds the threat, then the mean over those scans;
    mIoU = mean over the threats of that IoU;
  * wIoU (the paper's Σ_{c≠0} |gt=c|/(H·W) · IoU_c) and FG-IoU: means over the threat-carrying test scans; wIoU is at
    most the threats' share of the pixels, stated as its ceiling;
  * precision at IoU 0.5 per threat: over all test scans, threat-free ones included (hfc.metrics.precision_at_iou);
  * IoU-vs-PD: per test scan the mean IoU of the threats in its ground truth or prediction; scans with neither
    are left out; the curve pools the scans of every repetition;
  * mean ± sample std over repetitions; IoUs and precisions in %.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from baggan.config import to_dict
from baggan.data.labelsets import PIDRAY
from baggan.evaluate import report as rp
from baggan.evaluate.oneshot_config import METHODS, ORACLE, OneShotEvalConfig, Unit
from baggan.evaluate.oneshot_data import EvalScan, Projection
from hfc.metrics import (foreground_iou, iou_from_confusion, mean_iou, mean_std, pd_curve, pd_thresholds,
                         plot_pd_curves, precision_at_iou, weighted_iou)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# The paper's numbers. Table 6 is BagGAN on PIDRay; Tables 2, 5, 7-10 are FF-HQ faces (Face column).
PAPER_TABLE6 = {  # method: {threat: (Prec., IoU)}
    "DatasetGAN": {"Hammer": (44.44, 51.43), "HandCuffs": (27.58, 43.72), "Pliers": (27.58, 48.62),
                   "Powerbank": (37.50, 52.37), "Wrench": (44.82, 51.42)},
    "RepurposeGAN": {"Hammer": (54.16, 60.56), "HandCuffs": (37.93, 51.02), "Pliers": (33.33, 55.29),
                     "Powerbank": (53.33, 57.49), "Wrench": (48.14, 61.58)},
    "HFC+KMeans": {"Hammer": (36.11, 50.82), "HandCuffs": (64.28, 51.13), "Pliers": (52.50, 51.71),
                   "Powerbank": (48.27, 55.06), "Wrench": (58.82, 52.49)},
    "HFC+SimCLR": {"Hammer": (48.00, 60.58), "HandCuffs": (95.67, 50.12), "Pliers": (16.67, 49.88),
                   "Powerbank": (55.17, 59.66), "Wrench": (63.64, 58.48)},
    "Ours": {"Hammer": (70.58, 60.21), "HandCuffs": (81.81, 52.65), "Pliers": (56.25, 53.11),
             "Powerbank": (56.01, 60.51), "Wrench": (68.42, 61.78)},
}
# Our method → the paper's single-row name in Tables 6 and 10 (its 1-shot values match Table 2's rows of these).
PAPER_ROW = {"ours-fcn": "Ours", "repurpose-fcn": "RepurposeGAN", "simclr-mlp": "HFC+SimCLR", "kmeans": "HFC+KMeans",
             "datasetgan": "DatasetGAN"}
PAPER_TABLE2_FACE = {"DatasetGAN": (49.48, 91.68), "RepurposeGAN / MLP": (51.43, 91.88),
                     "RepurposeGAN / FCN": (51.46, 91.92), "HFC+KMeans": (48.92, 92.83),
                     "HFC+SimCLR / MLP": (50.36, 92.09), "HFC+SimCLR / FCN": (50.32, 92.28),
                     "Ours / MLP": (52.83, 94.03), "Ours / FCN": (53.61, 94.14)}  # (wIoU, FG-IoU)
PAPER_TABLE5_FACE = {"DatasetGAN": 0.85, "RepurposeGAN / MLP": 0.50, "RepurposeGAN / FCN": 0.59, "HFC+KMeans": 1.19,
                     "HFC+SimCLR / MLP": 1.78, "HFC+SimCLR / FCN": 1.24, "Ours / MLP": 2.27, "Ours / FCN": 1.23}
PAPER_TABLE7 = {"interpolate": ([52.6, 52.9, 53.1, 52.0, 49.6, 48.9, 44.6], 53.6),
                "noise": ([52.03, 51.50, 50.75, 50.04, 49.75, 46.09, 40.21], 52.17)}  # (layer 0..6, all layers)
PAPER_TABLE8_FACE = {"with": 53.61, "without": 53.33}
PAPER_TABLE9 = {"mlp1": (53.6, 94.7), "mlp3": (53.1, 94.1), "fcn3": (52.9, 94.4), "fcn5": (52.7, 93.9),
                "fcn7": (52.2, 93.1), "fcn9": (52.1, 92.9)}
PAPER_TABLE10 = {"DatasetGAN": [49.48, 52.16, 55.86], "RepurposeGAN": [51.46, 60.86, 63.71],
                 "HFC+KMeans": [48.92, 52.89, 56.01], "HFC+SimCLR": [50.36, 57.56, 61.11],
                 "Ours": [53.61, 61.11, 62.98]}  # 1-, 5-, 10-shot wIoU; supervised 68.71
PAPER_SHOTS = (1, 5, 10)
FACE_CAVEAT = ("the paper's figures here are FF-HQ faces (wIoU ≈ 50 % because face parts cover most of the "
               "image); on X-ray scans wIoU is capped by the threats' small share of the pixels, so compare "
               "rankings and ratios, not values")
BY_LABEL_NOTE = ("\"class from label\": a pixel is threat where the segmenter's 1 - p(background) > {threshold} "
                 "(`fit.threat_threshold`) and takes the "
                 "most probable of the classes in the test scan's own label (none on a threat-free scan) — what "
                 "synthesis with a conditional generator writes (`synth.class_from: condition`), where the class was "
                 "asked for. The plain columns take the segmenter's own most probable class")


# ---------------------------------------------------------------------------------------------------- scoring

def show_indices(test: Sequence[tuple[EvalScan, Projection]], n: int) -> list[int]:
    """Which test scans the predictions figure shows: the first n - 1 threat scans and one threat-free scan."""
    threat = [i for i, (s, _) in enumerate(test) if s.kind == "threat"]
    clean = [i for i, (s, _) in enumerate(test) if s.kind == "clean"]
    if n <= 0:
        return []
    return threat[: n - 1] + clean[:1] if clean else threat[:n]



def _nanmean(values: Any) -> float:
    a = np.asarray(values, np.float64)
    return float(np.nanmean(a)) if a.size and not np.isnan(a).all() else math.nan


def per_class_scores(cms: np.ndarray, table: Sequence[int], categories: Sequence[str]) -> dict[str, dict]:
    """Per threat category: IoU (mean over the test scans that hold it) and precision at IoU 0.5, as fractions."""
    image_iou = iou_from_confusion(cms)  # [N, K], NaN where a class is in neither gt nor prediction
    in_gt = cms.sum(-1) > 0
    prec = precision_at_iou(cms, 0.5)
    per = {}
    for name in categories:
        c = PIDRAY.id_of(name)
        if c not in table:
            per[name] = {"iou": math.nan, "precision": math.nan, "tp": 0, "fp": 0}
            continue
        k = list(table).index(c)
        per[name] = {"iou": _nanmean(image_iou[in_gt[:, k], k]) if in_gt[:, k].any() else math.nan,
                     "precision": float(prec.precision[k]), "tp": int(prec.tp[k]), "fp": int(prec.fp[k])}
    return per


def unit_scores(result: dict, categories: Sequence[str]) -> dict:
    """Scores of one unit (IoUs and precisions as fractions) from its per-test-scan confusion matrices; "…_condition"
    scores where each threat pixel took its class from the scan's label (conditional generators; NaN otherwise)."""
    cms, table = np.asarray(result["cms"]), list(result["classes"])
    threat = np.asarray(result["test_kinds"]) == "threat"
    per = per_class_scores(cms, table, categories)
    by_label = (per_class_scores(np.asarray(result["cms_condition"]), table, categories)
                if "cms_condition" in result else {})
    tc, clean = cms[threat], cms[~threat]
    return {"miou": _nanmean([v["iou"] for v in per.values()]), "wiou": float(weighted_iou(tc).mean()),
            "fg_iou": _nanmean(foreground_iou(tc)), "precision": _nanmean([v["precision"] for v in per.values()]),
            "wiou_ceiling": float((tc[:, 1:, :].sum((1, 2)) / tc.sum((1, 2))).mean()),
            "clean_fp": float((clean[:, :, 1:].sum((1, 2)) > 0).mean()) if len(clean) else math.nan,
            "train_miou": result["train_miou"], "fit_seconds": result["fit_seconds"],
            "miou_condition": _nanmean([v["iou"] for v in by_label.values()]),
            "precision_condition": _nanmean([v["precision"] for v in by_label.values()]),
            "image_miou": mean_iou(iou_from_confusion(cms)), "per_class": per,
            "per_class_condition": by_label or {n: {"iou": math.nan, "precision": math.nan} for n in categories}}


SCALARS = ("miou", "wiou", "fg_iou", "precision", "wiou_ceiling", "clean_fp", "train_miou", "fit_seconds",
           "miou_condition", "precision_condition")


def aggregate(scores: Sequence[dict], categories: Sequence[str]) -> dict:
    """Mean ± std over repetitions of every scalar and per-class score; pooled per-scan mIoUs for PD curves."""
    out: dict[str, Any] = {k: mean_std([s[k] for s in scores]) for k in SCALARS}
    for key in ("per_class", "per_class_condition"):
        out[key] = {n: {m: mean_std([s[key][n][m] for s in scores]) for m in ("iou", "precision")}
                    for n in categories}
    out["image_miou"] = np.concatenate([s["image_miou"] for s in scores])
    out["repetitions"] = len(scores)
    return out


def summarize(units_results: Sequence[tuple[Unit, dict]], categories: Sequence[str]) -> dict[str, dict]:
    """{part: {(group, row): aggregate}} in plan order."""
    grouped: dict[str, dict[tuple[str, str], list[dict]]] = {}
    for unit, result in units_results:
        grouped.setdefault(unit.part, {}).setdefault((unit.group, unit.row), []).append(
            unit_scores(result, categories))
    return {part: {gr: aggregate(s, categories) for gr, s in rows.items()} for part, rows in grouped.items()}


# ----------------------------------------------------------------------------------------------------- figures

def _pct(ms: tuple[float, float]) -> str:
    return rp.fmt_mean_std(*ms)


def line_figure(x: Sequence[float], series: dict[str, tuple[Sequence[float], Sequence[float]]], xlabel: str,
                ylabel: str, title: str, logx: bool = False, scale: float = 100.0) -> Figure:
    """A Figure of lines with error bars, one per series (values × scale)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 3.8), dpi=120)
    ax = fig.add_subplot()
    for name, (means, stds) in series.items():
        ax.errorbar(x, scale * np.asarray(means, float), yerr=scale * np.nan_to_num(np.asarray(stds, float)),
                    marker="o", capsize=3, label=name)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bars(rows: dict, metrics: dict[str, str], groups: Sequence[str]) -> Figure:
    """Bars of `metrics` ({key: panel title}) over `groups` (row labels), one series: mean ± std over repetitions."""
    panels = {title: {"mean ± std over repetitions": ([rows[g][k][0] for g in groups], [rows[g][k][1] for g in groups])}
              for k, title in metrics.items()}
    fig = rp.grouped_bars(panels, [g.replace(" / ", "\n") for g in groups], ylabel="%")
    for ax in fig.axes:
        ax.tick_params(axis="x", labelsize=7)
    return fig


def predictions_figure(test_pairs: Sequence[tuple[EvalScan, Projection]], main_results: dict[str, dict],
                       show: Sequence[int], categories: Sequence[str]) -> Figure:
    """Shown test scans: scan | projection | ground truth | each main method's prediction (repetition 0)."""
    k = PIDRAY.num_classes
    cols = ["scan", "projection", "ground truth", *main_results]
    rows, labels = [], []
    for j, i in enumerate(show):
        scan, proj = test_pairs[i]
        row = [scan.image, proj.image if proj.image.shape[-1] == 3 else np.repeat(proj.image, 3, -1),
               rp.overlay_labels(scan.image, scan.label, k)]
        row += [rp.overlay_labels(scan.image, r["shown"][j], k) for r in main_results.values()]
        rows.append(row)
        labels.append(f"{scan.kind} {scan.seed}\nPSNR {proj.psnr:.1f}")
    colours = rp.label_colours(k)
    legend = {name: colours[PIDRAY.id_of(name)] for name in categories}
    return rp.image_grid(rows, labels, [c.replace(" / ", "\n") for c in cols],
                         title="One-shot predictions on test scans (repetition 0)", legend=legend)


# ------------------------------------------------------------------------------------------------------ markdown

def _rank_sentence(rows: dict, key: str, ours: Sequence[str], what: str) -> str:
    """'Ours / FCN ranks 2 of 10 by mIoU (…); above it: …' for each of ours present (ties share a rank)."""
    value = {r: float(np.nan_to_num(rows[r][key][0], nan=-1)) for r in rows}
    order = sorted(rows, key=lambda r: -value[r])
    out = []
    for o in ours:
        if o not in rows:
            continue
        shown = f"{rp.fmt(rows[o][key][0], scale=100)} %"
        above = [r for r in order if value[r] > value[o]]
        tied = [r for r in order if r != o and value[r] == value[o]]
        if len(tied) == len(order) - 1:
            out.append(f"{o}: every method has the same {what} ({shown}), no ranking.")
            continue
        listed = ", ".join(f"{r} ({rp.fmt(rows[r][key][0], scale=100)})" for r in above)
        out.append(f"{o} ranks {len(above) + 1} of {len(order)} by {what} ({shown})"
                   + (f", tied with {len(tied)} other(s)" if tied else "")
                   + (f"; above it: {listed}." if above else " — the best."))
    return " ".join(out)


def _verdict(with_: tuple[float, float], without: tuple[float, float], n: int) -> str:
    """Whether the local loss helps: only a gap beyond two standard errors of the difference of means counts."""
    gap, se = with_[0] - without[0], float(np.sqrt((with_[1] ** 2 + without[1] ** 2) / max(n, 1)))
    if not abs(gap) > 2 * se:
        return f"no clear difference (gap {rp.fmt(gap, scale=100)}, two standard errors {rp.fmt(2 * se, scale=100)})."
    return "it helps, as in the paper." if gap > 0 else "it does not help here (the paper finds it helps)."


def main_section(cfg: OneShotEvalConfig, rows: dict, fps: dict | None) -> list[str]:
    """Tables 2, 4/6, 5, 8 and the findings for the main part."""
    cats = cfg.scans.categories
    key_of = {v.label: k for k, v in METHODS.items()}
    md = ["## One-shot segmentation of threats (Tables 2, 4/6, 8)\n",
          f"{cfg.scans.repetitions} repetitions; in each, every method is fitted on the same annotated scans "
          f"and tested on the same {cfg.scans.test_threat} threat-carrying + {cfg.scans.test_clean} threat-free "
          "test scans. IoU and precision in %, mean ± std over repetitions."
          + (f" Rows \"{ORACLE}…\": the method fitted on {cfg.oracle.train} projected threat scans with their exact "
             "masks (one repetition), the ceiling of the generator and the projection." if cfg.oracle.train else "")
          + "\n"]
    by_label = any(not np.isnan(s["miou_condition"][0]) for s in rows.values())
    header = ["method", "mIoU (threats)", "wIoU", "wIoU ceiling", "FG-IoU", "Prec.@0.5 (mean)",
              "threat-free scans with a false positive", "mIoU on its annotated scans", "fit s"]
    header += ["mIoU, class from label", "Prec.@0.5, class from label"] if by_label else []
    md.append(rp.markdown_table(header, [[r, _pct(s["miou"]), _pct(s["wiou"]), _pct(s["wiou_ceiling"]),
                                          _pct(s["fg_iou"]), _pct(s["precision"]), _pct(s["clean_fp"]),
                                          _pct(s["train_miou"]), rp.fmt(s["fit_seconds"][0], 1)]
                                         + ([_pct(s["miou_condition"]), _pct(s["precision_condition"])]
                                            if by_label else [])
                                         for (_, r), s in rows.items()]))
    if by_label:
        md.append(f"\n{BY_LABEL_NOTE.format(threshold=cfg.fit.threat_threshold)}\n")
    md.append("\n### Table 6 layout: precision at IoU 0.5 and IoU per threat\n")
    md.append("Rows marked *paper* are the paper's Table 6 (BagGAN on real PIDRay scans, 448² crops) for the "
              f"method it names; the mapping is {', '.join(f'{k} → {v}' for k, v in PAPER_ROW.items())}.\n")
    header = ["method"] + [f"{c} {m}" for c in cats for m in ("Prec.", "IoU")]
    table = []
    for (_, r), s in rows.items():
        table.append([r] + [_pct(s["per_class"][c][m]) for c in cats for m in ("precision", "iou")])
        if by_label:
            table.append(["↳ class from label"] + [_pct(s["per_class_condition"][c][m]) for c in cats
                                                   for m in ("precision", "iou")])
        paper = PAPER_TABLE6.get(PAPER_ROW.get(key_of.get(r, ""), ""), {})
        if paper:
            table.append([f"↳ *paper: {PAPER_ROW[key_of[r]]}*"] +
                         [rp.fmt(paper[c][i], 2) if c in paper else "–" for c in cats for i in (0, 1)])
    md.append(rp.markdown_table(header, table))
    md.append("\n### Table 2 (wIoU, FG-IoU) beside the paper's Face column\n")
    md.append(f"Caveat: {FACE_CAVEAT}.\n")
    md.append(rp.markdown_table(["method", "wIoU (ours, X-ray)", "FG-IoU (ours)", "paper Face wIoU", "paper Face FG-IoU"],
                                [[r, _pct(s["wiou"]), _pct(s["fg_iou"])] +
                                 [rp.fmt(v, 2) for v in PAPER_TABLE2_FACE.get(r, (math.nan, math.nan))]
                                 for (_, r), s in rows.items()]))
    labels = [r for _, r in rows]
    ranked = {r: s for (_, r), s in rows.items() if not r.startswith(ORACLE)}
    findings = [_rank_sentence(ranked, "miou", ["Ours / FCN", "Ours / MLP"], "mIoU over the threats"),
                _rank_sentence(ranked, "precision", ["Ours / FCN", "Ours / MLP"],
                               "mean precision at IoU 0.5 (the paper's Table 4/6 claim: best precision)")]
    if by_label:
        findings.append(_rank_sentence(ranked, "miou_condition", ["Ours / FCN", "Ours / MLP"],
                                       "mIoU over the threats with each threat pixel's class from the label"))
    for r in labels:
        if r.startswith(ORACLE) and r[len(ORACLE):] in ranked:
            o, m = rows[("", r)], ranked[r[len(ORACLE):]]
            findings.append(f"{r} (fitted on {cfg.oracle.train} projected scans with exact masks): mIoU "
                            f"{rp.fmt(o['miou'][0], scale=100)} % against {rp.fmt(m['miou'][0], scale=100)} % "
                            "one-shot — the ceiling that the generator's features and the projection allow.")
    local = [(w, wo) for w, wo in (("Ours / MLP", "Ours w/o local loss / MLP"), ("Ours / FCN", "Ours w/o local loss / FCN"))
             if w in labels and wo in labels]
    if local:
        md.append("\n### Table 8: with and without the local SwAV loss\n")
        md.append(f"Paper (Face): with {PAPER_TABLE8_FACE['with']}, without {PAPER_TABLE8_FACE['without']} wIoU.\n")
        rws = []
        for w, wo in local:
            a, b = rows[("", w)], rows[("", wo)]
            rws.append([w.split(" / ")[1], _pct(a["miou"]), _pct(b["miou"]), _pct(a["wiou"]), _pct(b["wiou"]),
                        rp.fmt(a["miou"][0] - b["miou"][0], scale=100)])
            findings.append(f"Local loss ({w.split(' / ')[1]}): mIoU {rp.fmt(a['miou'][0], scale=100)} with vs "
                            f"{rp.fmt(b['miou'][0], scale=100)} without — "
                            + _verdict(a["miou"], b["miou"], cfg.scans.repetitions))
        md.append(rp.markdown_table(["segmenter", "mIoU with", "mIoU without", "wIoU with", "wIoU without",
                                     "Δ mIoU (pp)"], rws))
    if fps:
        md += fps_section(fps, cfg)
        base = [m for m in ("DatasetGAN", "RepurposeGAN / MLP", "RepurposeGAN / FCN") if m in fps]
        for o in ("Ours / MLP", "Ours / FCN"):
            if o in fps and base:
                ratio = ", ".join(f"{fps[o]['fps_batch1'] / fps[b]['fps_batch1']:.2f}× {b}" for b in base)
                findings.append(f"Speed (batch 1): {o} runs at {ratio} (the paper reports about 4× for the "
                                "self-supervised segmenters).")
    md.append("\n### Findings\n")
    md += [f"- {f}" for f in findings if f]
    md.append("")
    return md


def fps_section(fps: dict, cfg: OneShotEvalConfig) -> list[str]:
    """Table 5: images per second, batch 1 and batch N, with the paper's Face column."""
    md = ["\n### Table 5: inference speed\n",
          f"Generator + hidden features + segmenter per image at the generator's resolution, {cfg.fps.images} "
          f"images after {cfg.fps.warmup} warm-up batches, batch 1 and batch {cfg.fps.batch}, in one process one "
          "after the other (same machine state). CPU s/img = process CPU time per image. The paper's column is "
          "FF-HQ at 1024² on a V100.\n"]
    md.append(rp.markdown_table(
        ["method", "img/s batch 1", f"img/s batch {cfg.fps.batch}", "CPU s/img batch 1",
         f"CPU s/img batch {cfg.fps.batch}", "paper Face fps (V100)"],
        [[m, rp.fmt(v["fps_batch1"], 2), rp.fmt(v["fps_batchN"], 2), rp.fmt(v["cpu_s_per_image_batch1"], 3),
          rp.fmt(v["cpu_s_per_image_batchN"], 3), rp.fmt(PAPER_TABLE5_FACE.get(m, math.nan), 2)]
         for m, v in fps.items()]))
    return md


def shots_section(cfg: OneShotEvalConfig, rows: dict) -> tuple[list[str], Figure]:
    """Table 10 and its figure."""
    groups = [f"{k}-shot" for k in cfg.shots.shots]
    methods = list(dict.fromkeys(r for _, r in rows))
    key_of = {v.label: k for k, v in METHODS.items()}
    md = ["## Few-shot (Table 10)\n",
          f"k-shot = {'k annotated examples of each threat' if cfg.scans.annotation == 'per_category' else 'k annotated scans'}"
          f"; mIoU over the threats (wIoU in brackets), %. Paper: wIoU on FF-HQ ({FACE_CAVEAT}).\n"]
    table, findings = [], []
    for m in methods:
        table.append([m] + [f"{_pct(rows[(g, m)]['miou'])} ({rp.fmt(rows[(g, m)]['wiou'][0], scale=100)})"
                            if (g, m) in rows else "–" for g in groups])
        paper = PAPER_TABLE10.get(PAPER_ROW.get(key_of.get(m, ""), ""))
        if paper:
            table.append([f"↳ *paper: {PAPER_ROW[key_of[m]]}*"] +
                         [rp.fmt(paper[PAPER_SHOTS.index(k)], 2) if k in PAPER_SHOTS else "–" for k in cfg.shots.shots])
        vals = [rows[(g, m)]["miou"][0] for g in groups if (g, m) in rows]
        if len(vals) > 1:
            monotone = all(b >= a for a, b in zip(vals, vals[1:]))
            findings.append(f"{m}: mIoU {' → '.join(rp.fmt(v, scale=100) for v in vals)} — "
                            + ("rises" if vals[-1] > vals[0] else "does not rise (the paper's methods all do)")
                            + ("." if monotone else ", not monotonically."))
    md.append(rp.markdown_table(["method", *groups], table))
    md.append("\nPaper's supervised reference (Table 10, Face): 68.71.\n")
    md += [f"- {f}" for f in findings] + [""]
    series = {m: ([rows[(g, m)]["miou"][0] if (g, m) in rows else math.nan for g in groups],
                  [rows[(g, m)]["miou"][1] if (g, m) in rows else math.nan for g in groups]) for m in methods}
    fig = line_figure(cfg.shots.shots, series, "annotated examples (k-shot)", "mIoU over threats (%)",
                      "Few-shot (Table 10)")
    return md, fig


def depth_section(rows: dict) -> list[str]:
    """Table 9 with the paper's values."""
    md = ["## Segmenter depth (Table 9)\n", f"Ours (SwAV codes) with each segmenter. Paper: FF-HQ ({FACE_CAVEAT}).\n"]
    by_label = any(not math.isnan(s["miou_condition"][0]) for s in rows.values())
    md.append(rp.markdown_table(
        ["segmenter", "mIoU"] + (["mIoU, class from label"] if by_label else []) +
        ["wIoU", "FG-IoU", "own fit (mIoU on its annotated scans)", "paper wIoU", "paper FG-IoU"],
        [[r, _pct(s["miou"])] + ([_pct(s["miou_condition"])] if by_label else []) +
         [_pct(s["wiou"]), _pct(s["fg_iou"]), _pct(s["train_miou"])] +
         [rp.fmt(v, 1) for v in PAPER_TABLE9.get(r, (math.nan, math.nan))] for (_, r), s in rows.items()]))
    key = "miou_condition" if by_label else "miou"
    best = max(rows, key=lambda gr: np.nan_to_num(rows[gr][key][0], nan=-1))[1]
    md.append(f"\n- Best by mIoU{', class from label' if by_label else ''}: {best} (paper: the lightest, MLP-1, is "
              "best and deeper FCNs lose wIoU).\n")
    return md


def layer_section(rows: dict) -> list[str]:
    """Table 7: fixed perturbed block vs random, per perturbation method, with IoU / IoU_r."""
    md = ["## Perturbed style block (Table 7)\n",
          "Each row trains its own HFC encoder with the perturbation fixed to one style block (0 = 4×4) or drawn "
          f"at random (IoU_r). Paper: FF-HQ, 7 layers ({FACE_CAVEAT}).\n"]
    findings = []
    for pert in dict.fromkeys(g for g, _ in rows):
        ref = rows[(pert, "all (random)")]
        table = []
        for (g, r), s in rows.items():
            if g != pert:
                continue
            paper_vals, paper_ref = PAPER_TABLE7[pert]
            b = None if r == "all (random)" else int(r.split()[1])
            p = paper_ref if b is None else (paper_vals[b] if b < len(paper_vals) else math.nan)
            table.append([r, _pct(s["wiou"]), rp.fmt(s["wiou"][0] / ref["wiou"][0] if ref["wiou"][0] else math.nan, 3),
                          _pct(s["miou"]), rp.fmt(s["miou"][0] / ref["miou"][0] if ref["miou"][0] else math.nan, 3),
                          rp.fmt(p, 2), rp.fmt(p / paper_ref, 3)])
        md.append(f"\n### {pert}-based views\n")
        md.append(rp.markdown_table(["perturbed", "wIoU", "wIoU/wIoU_r", "mIoU", "mIoU/mIoU_r", "paper IoU",
                                     "paper IoU/IoU_r"], table))
        fixed = {r: s for (g, r), s in rows.items() if g == pert and r != "all (random)"}
        beaten = [r for r, s in fixed.items() if s["miou"][0] > ref["miou"][0]]
        findings.append(f"{pert}: random block mIoU {rp.fmt(ref['miou'][0], scale=100)}; "
                        + (f"beaten by {', '.join(beaten)} (the paper finds random best)." if beaten else
                           "no fixed block beats it, as in the paper."))
    md += ["", *(f"- {f}" for f in findings), ""]
    return md


def sweep_section(title: str, rows: dict, xlabel: str, claim: str, logx: bool) -> tuple[list[str], Figure]:
    """A 1-D or 2-D ablation sweep (Fig. 14a/b/c): table of mIoU and wIoU and a line figure, mIoU vs x per group."""
    groups = list(dict.fromkeys(g for g, _ in rows))
    xs = list(dict.fromkeys(r for _, r in rows))
    md = [f"## {title}\n", f"The paper gives this as a figure only (no numbers); its finding: {claim}\n"]
    header = [xlabel] + [f"{g or 'mIoU'} mIoU" if g else "mIoU" for g in groups] + [f"{g} wIoU" if g else "wIoU" for g in groups]
    md.append(rp.markdown_table(header, [[x] + [_pct(rows[(g, x)]["miou"]) if (g, x) in rows else "–" for g in groups]
                                         + [_pct(rows[(g, x)]["wiou"]) if (g, x) in rows else "–" for g in groups]
                                         for x in xs]))
    series = {g or "ours": ([rows[(g, x)]["miou"][0] for x in xs], [rows[(g, x)]["miou"][1] for x in xs])
              for g in groups}
    findings = []
    for g, (means, _) in series.items():
        if len(means) > 1 and not np.isnan(means).any():
            r = float(np.corrcoef(np.arange(len(means)), means)[0, 1]) if np.std(means) > 0 else 0.0
            findings.append(f"{g}: mIoU {' → '.join(rp.fmt(m, scale=100) for m in means)} over {xlabel} "
                            f"{', '.join(xs)} (correlation of mIoU with the order of {xlabel}: {r:+.2f}).")
    md += ["", *(f"- {f}" for f in findings), ""]
    fig = line_figure([float(x) for x in xs], series, xlabel, "mIoU over threats (%)", title, logx=logx)
    return md, fig


# ------------------------------------------------------------------------------------------------------ writing

def write_oneshot_report(cfg: OneShotEvalConfig, outdir: Path, units_results: Sequence[tuple[Unit, dict]],
                         fps: dict | None, info: dict, test_pairs: Sequence[tuple[EvalScan, Projection]]) -> Path:
    """Build the JSON, Markdown and figures of a run and write them into outdir (oneshot.md/.json, oneshot_*.png)."""
    cats = cfg.scans.categories
    summary = summarize(units_results, cats)
    figures: dict[str, Any] = {}
    test_keys = {f"{k}-{s}" for k, s in info["test"]}
    test_q = [v for k, v in info["projection"].items() if k in test_keys]
    train_q = [v for k, v in info["projection"].items() if k not in test_keys]
    md = ["# One-shot segmentation on the X-ray generator (paper Tables 2, 4–10, Fig. 14)\n",
          f"Generator `{info['network']}` (SHA-256 {info['generator_sha256'][:12]}…, {info['resolution']}²) · parts "
          f"{', '.join(info['parts'])} · annotation {cfg.scans.annotation} · threats {', '.join(cats)} · "
          f"projector {cfg.projector.steps} steps · fit {cfg.fit.epochs} epochs · this call "
          f"{info['seconds'] / 60:.1f} min wall, {info['cpu_seconds'] / 60:.1f} min CPU.\n",
          "Scans: the built-in simulator (exact masks), projected into W+ and noise; the segmenters see the hidden "
          "features of the projections, the ground truth is the simulator's mask of the scan. Projection quality: "
          f"test scans PSNR {rp.fmt(np.mean([q['psnr'] for q in test_q]) if test_q else math.nan, 2)} dB, SSIM "
          f"{rp.fmt(np.mean([q['ssim'] for q in test_q]) if test_q else math.nan, 3)}; annotated scans PSNR "
          f"{rp.fmt(np.mean([q['psnr'] for q in train_q]) if train_q else math.nan, 2)} dB, SSIM "
          f"{rp.fmt(np.mean([q['ssim'] for q in train_q]) if train_q else math.nan, 3)} (means). A poor "
          "projection misplaces the features against the mask and caps every method alike.\n"]
    if "main" in summary:
        rows = summary["main"]
        md += main_section(cfg, rows, fps)
        labels = [r for _, r in rows]
        figures["oneshot_bars.png"] = _bars({r: s for (_, r), s in rows.items()},
                                            {"miou": "mIoU over threats", "wiou": "wIoU", "fg_iou": "FG-IoU"}, labels)
        figures["oneshot_pd.png"] = plot_pd_curves(pd_thresholds(), {r: pd_curve(s["image_miou"])
                                                                     for (_, r), s in rows.items()},
                                                   "IoU vs PD (test scans, all repetitions)")
        panels = {title: {r: ([s["per_class"][c][m][0] for c in cats], [s["per_class"][c][m][1] for c in cats])
                          for (_, r), s in rows.items()} for m, title in (("iou", "IoU per threat"),
                                                                         ("precision", "Precision at IoU 0.5"))}
        figures["oneshot_threats.png"] = rp.grouped_bars(panels, cats, ylabel="%")
        if fps:
            figures["oneshot_fps.png"] = rp.grouped_bars(
                {"images / s": {"batch 1": ([v["fps_batch1"] for v in fps.values()], [0] * len(fps)),
                                f"batch {cfg.fps.batch}": ([v["fps_batchN"] for v in fps.values()], [0] * len(fps))}},
                [m.replace(" / ", "\n") for m in fps], scale=1.0)
        shown = {u.row: r for u, r in units_results if u.part == "main" and u.rep == 0 and len(r["shown"])}
        show = show_indices(test_pairs, cfg.show)
        if shown and show:
            figures["oneshot_predictions.png"] = predictions_figure(test_pairs, shown, show, cats)
    if "shots" in summary:
        part_md, figures["oneshot_shots.png"] = shots_section(cfg, summary["shots"])
        md += part_md
    if "depth" in summary:
        md += depth_section(summary["depth"])
        figures["oneshot_depth.png"] = _bars({r: s for (_, r), s in summary["depth"].items()},
                                             {"miou": "mIoU over threats", "wiou": "wIoU", "fg_iou": "FG-IoU"},
                                             [r for _, r in summary["depth"]])
    if "layer" in summary:
        md += layer_section(summary["layer"])
        rows = summary["layer"]
        rws = list(dict.fromkeys(r for _, r in rows))
        figures["oneshot_layer.png"] = rp.grouped_bars(
            {"mIoU over threats": {g: ([rows[(g, r)]["miou"][0] for r in rws], [rows[(g, r)]["miou"][1] for r in rws])
                                   for g in dict.fromkeys(g for g, _ in rows)}}, rws, ylabel="%")
    for part, title, xlabel, claim, logx in (
            ("tau", "Perturbation factor τ_p (Fig. 14a)", "tau_p", "a higher τ_p is generally better.", False),
            ("dk", "Code width D and prototypes K (Fig. 14b)", "K", "little change with K; a small D hurts, "
             "saturating above D = 64.", True),
            ("patch", "Patch size and transport constraint (Fig. 14c)", "patch size",
             "larger patches lower wIoU under the equipartition constraint; with the pixel-distribution "
             "constraint wIoU improves with patch size.", True)):
        if part in summary:
            part_md, figures[f"oneshot_{part}.png"] = sweep_section(title, summary[part], xlabel, claim, logx)
            md += part_md
    md += [f"![{name}]({name})\n" for name in figures]
    md.append("## Conventions\n")
    md.append("\n".join(line.strip() for line in __doc__.split("every report):\n", 1)[1].splitlines()))
    hfc_lines = [f"{name}: {v['seconds'] / 60:.1f} min wall, {v['cpu_seconds'] / 60:.1f} min CPU (folder {v['folder']})"
                 for name, v in info["hfc"].items()]
    if hfc_lines:
        md.append("\nHFC encoders (trained once per config in `hfc/` of the run folder; variants with equal configs "
                  "share one): " + "; ".join(hfc_lines) + ".\n")
    data = {"protocol": "oneshot", "config": to_dict(cfg), "environment": rp.environment(None), "info": info,
            "fps": fps, "summary": {part: [{"group": g, "row": r, **{k: v for k, v in s.items() if k != "image_miou"},
                                            "pd": pd_curve(s["image_miou"]).tolist()}
                                           for (g, r), s in rows.items()] for part, rows in summary.items()},
            "pd_thresholds": pd_thresholds().tolist(),
            "paper": {"table6": PAPER_TABLE6, "table2_face": PAPER_TABLE2_FACE, "table5_face": PAPER_TABLE5_FACE,
                      "table7": PAPER_TABLE7, "table8_face": PAPER_TABLE8_FACE, "table9": PAPER_TABLE9,
                      "table10": PAPER_TABLE10, "row_mapping": PAPER_ROW}}
    return rp.write_report(outdir, "oneshot", data, "\n".join(md), figures)


__all__ = ["unit_scores", "aggregate", "summarize", "line_figure", "predictions_figure", "write_oneshot_report",
           "PAPER_TABLE6", "PAPER_TABLE2_FACE", "PAPER_TABLE5_FACE", "PAPER_TABLE7", "PAPER_TABLE8_FACE",
           "PAPER_TABLE9", "PAPER_TABLE10", "PAPER_ROW"]
