"""Summarise scripts/bench_threat_rule.py runs of one folder (e.g. an --hfc-set sweep): one markdown row per method and
run (the rule chosen on the validation windows, its validation and test mIoU, the own fit), and OUT.png, held-out mIoU
against the code width D for the runs that set only `dim` (plus the run without --hfc-set as the config's D):

    .venv/bin/python scripts/summarise_hfc_sweep.py docs/benchmarks/oneshot-hfc --out docs/benchmarks/oneshot-hfc/dim.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baggan.evaluate.oneshot_config import METHODS  # noqa: E402
from baggan.evaluate.report import save_figure  # noqa: E402

VARIANT = {m.label: m.hfc for m in METHODS.values()}  # row label → the HFC variant whose codes it reads (None: none)


def rows_of(folder: Path) -> list[dict]:
    """Every (run, method) of the folder's JSON files, with its settings and chosen-rule figures."""
    out = []
    for path in sorted(folder.glob("*.json")):
        d = json.loads(path.read_text())
        for method, s in d["results"].items():
            c = s["chosen"]
            out.append({"run": path.stem, "config": d["config"], "hfc_set": d.get("hfc_set", []), "method": method,
                        "dim": d["hfc"][VARIANT[method]]["dim"] if VARIANT.get(method) else None, "rule": c,
                        "validation": s["validation"][c]["mean"], "test": s["chosen_test"]["mean"],
                        "test_std": s["chosen_test"]["std"], "own": s["chosen_own"]["mean"]})
    return out


def dim_figure(rows: list[dict]):
    """Held-out mIoU (± std over repetitions) against D, one line per method; flat lines for runs without codes."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    only_dim = [r for r in rows if all(s.startswith("dim=") for s in r["hfc_set"]) and r["dim"] is not None]
    for i, method in enumerate(sorted({r["method"] for r in only_dim})):
        pts = sorted((r["dim"], r["test"], r["test_std"]) for r in only_dim if r["method"] == method)
        ax.errorbar([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts], marker="o", ms=3, capsize=2,
                    color=f"C{i}", label=method)
    for r in rows:
        if r["dim"] is None:  # reads no codes: a horizontal reference
            ax.axhline(r["test"], color="grey", ls="--", lw=1, label=f"{r['method']} ({r['rule']})")
    ax.set(xscale="log", xlabel="code width D", ylabel="threat mIoU % held out, class from label",
           title="one-shot; each at its threshold chosen on validation")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main() -> None:
    """Print the markdown table; write the D figure."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="OUT.png")
    args = ap.parse_args()
    rows = rows_of(args.folder)
    if not rows:
        raise SystemExit(f"{args.folder}: no bench_threat_rule JSON files")
    print("| run | method | config | --hfc-set | rule | validation | held out | own fit |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['run']} | {r['method']} | {Path(r['config']).name} | {' '.join(r['hfc_set']) or '–'} | {r['rule']} "
              f"| {r['validation']:.2f} | {r['test']:.2f} ± {r['test_std']:.2f} | {r['own']:.2f} |")
    save_figure(dim_figure(rows), args.out)


if __name__ == "__main__":
    main()
