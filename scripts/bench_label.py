"""The annotator in a real browser on a real generator: seconds from a click on Fit to the previews on screen, and the
screenshots of docs/oneshot.md.

    python scripts/bench_label.py --network checkpoints/xraysim-64.pt --hfc runs/quickstart/hfc/encoder.pt

Starts `baggan label`'s app on a fresh work folder, drives it in headless Chromium (baggan.label.browser): loads a
seed, paints the given polygons (scan pixels), saves, screenshots the painting, then clicks Fit --repeats times,
each time measuring from the click until every preview image is loaded; screenshots the previews and a Fix.
Before the first click the session is warmed up as `baggan label` does while the user paints. Writes JSON (and
the screenshots) → docs/benchmarks/label_fit.json, docs/img/label-*.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bench_synth import _code_version  # scripts/ is on the path when this file runs

from baggan.io import write_json_atomic
from baggan.label.app import create_app
from baggan.label.browser import missing, session_page
from baggan.label.session import LabelSession, LabelSettings
from baggan.io import file_sha256


def polygon(text: str) -> list[tuple[int, int]]:
    """'x,y x,y x,y ...' → [(x, y), ...]."""
    return [tuple(int(v) for v in p.split(",")) for p in text.split()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", default="checkpoints/xraysim-64.pt")
    ap.add_argument("--hfc", required=True, help="HFC encoder of the network")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--psi", type=float, default=0.7)
    ap.add_argument("--category", default="3", help="shortcut key of the category painted (3: Hammer)")
    ap.add_argument("--polygon", type=polygon, action="append", default=None,
                    help="'x,y x,y ...' in scan pixels; repeatable [a box in the scan's middle]")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=LabelSettings.epochs)
    ap.add_argument("--hidden", type=int, default=LabelSettings.hidden)
    ap.add_argument("--img", default="docs/img", help="folder of the screenshots")
    ap.add_argument("--out", default="docs/benchmarks/label_fit.json")
    args = ap.parse_args()
    if missing():
        raise SystemExit(missing())
    torch.set_num_threads(args.threads)
    settings = LabelSettings(epochs=args.epochs, hidden=args.hidden, device="cpu")
    img = Path(args.img)
    with tempfile.TemporaryDirectory() as tmp:
        session = LabelSession(args.network, args.hfc, Path(tmp) / "work", settings)
        t0 = time.perf_counter()
        session.warm_up()
        warm = time.perf_counter() - t0
        pages = session_page(create_app(session))
        page = next(pages)
        try:
            page.load_seed(args.seed, args.psi)
            r = session.resolution
            shapes = args.polygon or [[(r // 3, r // 3), (2 * r // 3, r // 3), (2 * r // 3, 2 * r // 3), (r // 3, 2 * r // 3)]]
            page.keys("p", args.category)
            for shape in shapes:
                page.clicks(shape)
                page.keys("\ue007")  # Enter closes the polygon
            page.save()
            page.screenshot(img / "label-paint.png")
            clicks, jobs = [], []
            for _ in range(args.repeats):
                clicks.append(page.fit())
                job = page.js("return baggan.lastFit")
                jobs.append({k: job[k] for k in ("fit_seconds", "seconds", "training_iou")})
            page.screenshot(img / "label-previews.png")
            page.fix(0)
            page.screenshot(img / "label-fix.png")
        finally:
            pages.close()
    result = {
        "what": "seconds from a click on Fit to all previews loaded in the page (headless Chromium), the "
                "server's job seconds (fit, fit + previews) beside them",
        "command": "python scripts/bench_label.py " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in
                                                             (("network", args.network), ("hfc", args.hfc),
                                                              ("seed", args.seed), ("category", args.category),
                                                              ("hidden", args.hidden), ("repeats", args.repeats),
                                                              ("threads", args.threads)))
                   + "".join(f" --polygon '{' '.join(f'{x},{y}' for x, y in p)}'" for p in args.polygon or []),
        "code": _code_version(),
        "machine": {"platform": platform.platform(), "torch": torch.__version__, "threads": args.threads,
                    "load_average": [round(v, 2) for v in os.getloadavg()]},
        "network": args.network, "network_sha256": file_sha256(args.network), "hfc": args.hfc,
        "settings": dataclasses.asdict(settings), "seed": args.seed, "psi": args.psi, "shapes": shapes,
        "warm_up_s": round(warm, 3), "click_to_previews_s": [round(v, 3) for v in clicks], "jobs": jobs,
        "median_click_to_previews_s": round(statistics.median(clicks), 3), "target_s": 30,
        "screenshots": [str(img / f"label-{k}.png") for k in ("paint", "previews", "fix")],
    }
    write_json_atomic(args.out, result, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
