"""`baggan evaluate threats`: does a generator draw threat items a judge recognises, as often as the simulator?

For N samples of each generator (per truncation ψ) and N fresh simulator scans (threat windows, or whole
bags for a whole-bag generator), the judge (baggan.evaluate.judge) gives per category the share of images
it is confident of (p ≥ 0.9). The *threat recall ratio* of a category is the generator's share over the
simulator's; "any" is the share of images with some confident threat. A conditional generator draws
sample i with the category set of reference scan i (so both sides ask for the same categories).
A category whose ratio exceeds `OVER` is *flagged* (⚑ in the report, `flagged` in the JSON rows): the
generator shows it more often than the simulator does, so either the judge is fooled by something the
generator draws, or the generator over-draws that category.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch

from baggan.data.labelsets import PIDRAY
from baggan.data.xraysim import SimConfig
from baggan.errors import UserError
from baggan.evaluate import report as rp
from baggan.evaluate.judge import EVAL_SEED, load_judge, predict, render_set

CONFIDENT = 0.9
OVER = 1.5  # a ratio above this flags the category
FLAG_LEGEND = (f"⚑ more often than in simulator windows (ratio > {OVER:g}): the judge is likely fooled or the "
               "generator over-draws it.")


@dataclass(frozen=True)
class ThreatOptions:
    """Settings of `baggan evaluate threats`."""

    n: int = 1000                         # samples per generator and ψ, and simulator scans
    psis: tuple[float, ...] = (1.0, 0.7)
    reference: Literal["windows", "scans"] = "windows"  # the judge's simulator setting, or whole bags
    sim_config: str | None = None         # a simulator config (YAML) for the reference side instead
    seed: int = 0                         # sample i uses latent seed `seed + i`
    batch: int = 50
    grid: int = 64                        # samples shown in the labelled grid


def whole_bags() -> SimConfig:
    """Whole simulator bags as the whole-bag preset was trained on (configs/xraysim-64.yaml's data: threat rate
    0.8, every category), without windows."""
    return SimConfig(threat_rate=0.8)


def reference_sim(judge_sim: SimConfig, opts: ThreatOptions) -> SimConfig:
    """The simulator setting of the reference side: a config file, the judge's windows, or whole bags."""
    if opts.sim_config is not None:
        from baggan.config import load_config

        return load_config(opts.sim_config, SimConfig)
    return judge_sim if opts.reference == "windows" else whole_bags()


def confident_shares(probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Share of images in which the judge is confident (p ≥ 0.9) of each class, and of any class."""
    sure = probs >= CONFIDENT
    out = {c: float(sure[:, k].mean()) for k, c in enumerate(classes)}
    out["any"] = float(sure.any(1).mean())
    return out


def recall_ratios(generated: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
    """The threat recall ratio per key: generated share / reference share (NaN where the reference has none)."""
    return {k: generated[k] / reference[k] if reference[k] > 0 else float("nan") for k in reference}


def asked_shares(probs: np.ndarray, asked: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per class c, over the images asked for c alone (`asked` [N, classes] multi-hot: the label a conditional
    generator drew each with, or a simulator window's threats): n, the share confident of c ("hit"), of some other
    class but not c ("other"), and of none ("none"). Classes never asked for alone are left out."""
    sure = probs >= CONFIDENT
    out = {}
    for k, c in enumerate(classes):
        rows = (asked[:, k] > 0) & (asked.sum(1) == 1)
        if rows.any():
            hit, any_ = sure[rows, k], sure[rows].any(1)
            out[c] = {"n": int(rows.sum()), "hit": float(hit.mean()), "other": float((any_ & ~hit).mean()),
                      "none": float((~any_).mean())}
    return out


def flagged(ratios: dict[str, float], over: float = OVER) -> list[str]:
    """The categories (not "any") whose threat recall ratio exceeds `over`."""
    return [k for k, v in ratios.items() if k != "any" and v > over]


def generate(G: torch.nn.Module, n: int, psi: float, seed: int, labels: np.ndarray | None, batch: int,
             device: torch.device) -> np.ndarray:
    """n samples (uint8 [n, R, R, 3]) with z from numpy RandomState(seed + i) and, when G is conditional,
    c = labels[i] (multi-hot over PIDRay's categories)."""
    from tqdm import tqdm

    from baggan.stylegan2.latents import ws_from_seed
    from baggan.stylegan2.projector import to_uint8

    if G.c_dim and (labels is None or labels.shape[1] != G.c_dim):
        raise UserError(f"the generator is conditional on {G.c_dim} labels; the reference gives "
                        f"{None if labels is None else labels.shape[1]}")
    out = []
    with torch.no_grad():
        for start in tqdm(range(0, n, batch), desc=f"generate psi={psi}", unit="batch", leave=False, disable=None):
            seeds = range(seed + start, seed + min(start + batch, n))
            c = torch.from_numpy(labels[start:start + len(seeds)]) if G.c_dim else None
            out.append(to_uint8(G.synthesis(ws_from_seed(G, seeds, psi, labels=c), noise_mode="const")))
    return np.concatenate(out)


def verdict(p: np.ndarray, classes: Sequence[str]) -> str:
    """The judge's verdict on one image: confident classes (p ≥ 0.9), else the best guess in brackets."""
    sure = [c for c, v in zip(classes, p) if v >= CONFIDENT]
    if sure:
        return ", ".join(sure)
    k = int(np.argmax(p))
    return f"({classes[k]} {p[k]:.2f})" if p[k] >= 0.5 else "–"


def labelled_grid(images: np.ndarray, captions: Sequence[str], title: str, ncols: int = 8):
    """A Figure: images in rows of `ncols`, each with its caption under it."""
    from matplotlib.figure import Figure

    nrows = -(-len(images) // ncols)
    fig = Figure(figsize=(1.45 * ncols, 1.62 * nrows + 0.4), dpi=110)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k], interpolation="nearest")
            ax.set_title(captions[k], fontsize=6.5, y=-0.17)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def run_threats(judge: str | Path, networks: Sequence[tuple[str, str | Path]], opts: ThreatOptions,
                outdir: str | Path, device: torch.device, samples_dir: str | Path | None = None) -> Path:
    """Judge the simulator and every (name, network file); write threats.md/.json and grids; return the .md."""
    from baggan.stylegan2 import load_network

    t0 = time.time()
    model, config, judge_info = load_judge(judge)
    nets = [(name, load_network(path, device)) for name, path in networks]  # every file checked before slow work
    sim = reference_sim(config.sim, opts)
    ref_images, ref_visible, ref_cats = render_set(config, sim, EVAL_SEED, opts.n, "render simulator scans")
    ref_probs = predict(model, ref_images)
    ref = confident_shares(ref_probs, config.classes)
    ref_name = f"simulator {opts.reference}" + (f" ({Path(opts.sim_config).stem})" if opts.sim_config else "")
    asked = ref_cats[:, [PIDRAY.id_of(c) - 1 for c in config.classes]]  # what each image is asked to show
    ref_asked = asked_shares(ref_probs, asked, config.classes)
    rows = [{"name": ref_name, "psi": None, "shares": ref, "ratios": None, "flagged": [],
             "present": {c: float(ref_visible[:, k].mean()) for k, c in enumerate(config.classes)},
             "asked": ref_asked}]
    figures = {"grid_simulator.png": labelled_grid(ref_images[:opts.grid], [verdict(p, config.classes)
                                                                              for p in ref_probs[:opts.grid]],
                                                   f"{ref_name} (judge's labels)")}
    for name, net in nets:
        G = net.get("G_ema", net.get("G"))
        if G is None:
            raise UserError(f"{name}: the network file holds no generator")
        for psi in opts.psis:
            images = generate(G.eval(), opts.n, psi, opts.seed, ref_cats.astype(np.float32), opts.batch, device)
            if images.shape[1] != images.shape[2] or images.shape[3] != 3:
                raise UserError(f"{name}: the judge needs square RGB images, the generator makes {images.shape[1:]}")
            probs = predict(model, images)
            shares = confident_shares(probs, config.classes)
            ratios = recall_ratios(shares, ref)
            row = {"name": name, "psi": psi, "shares": shares, "ratios": ratios, "flagged": flagged(ratios)}
            if G.c_dim:  # conditional: did it draw what it was asked for?
                row["asked"] = asked_shares(probs, asked, config.classes)
            rows.append(row)
            tag = f"{_slug(name)}_psi{psi:g}"
            figures[f"grid_{tag}.png"] = labelled_grid(images[:opts.grid], [verdict(p, config.classes)
                                                                            for p in probs[:opts.grid]],
                                                       f"{name}, psi {psi:g} (judge's labels)")
            if samples_dir is not None:
                _save_samples(Path(samples_dir) / tag, images)
    data = {"protocol": "threats", "options": rp.to_jsonable(opts), "judge": str(judge),
            "judge_metrics": {k: judge_info.get(k) for k in ("ap", "lookalike_any_p50", "lookalike_any_p90",
                                                             "hard_clutter_any_p50", "hard_cut_any_p50")},
            "classes": list(config.classes), "environment": rp.environment(str(device)),
            "seconds": time.time() - t0, "rows": rows}
    return rp.write_report(outdir, "threats", data, _markdown(data, list(figures)), figures)


def _slug(name: str) -> str:
    """A file-name-safe form of a display name."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)


def _save_samples(folder: Path, images: np.ndarray) -> None:
    """Write samples as PNGs into a folder that appears complete (for `baggan evaluate realism --sets`)."""
    from baggan.io import atomic_dir, encode_image

    with atomic_dir(folder) as tmp:
        for i, im in enumerate(images):
            (tmp / f"{i:06d}.png").write_bytes(encode_image(f"{i}.png", im))


def _markdown(data: dict, figures: Sequence[str]) -> str:
    """The report's Markdown text."""
    classes = data["classes"]
    head = ["set", "ψ", *classes, "any"]
    shares = [[r["name"], rp.fmt(r["psi"], 1), *(rp.fmt(r["shares"][k], 1, 100) for k in [*classes, "any"])]
              for r in data["rows"]]
    ratios = [[r["name"], rp.fmt(r["psi"], 1), *(rp.fmt(r["ratios"][k], 2) + (" ⚑" if k in r["flagged"] else "")
                                                  for k in [*classes, "any"])]
              for r in data["rows"] if r["ratios"] is not None]
    legend = [f"\n{FLAG_LEGEND}\n"] if any(r["flagged"] for r in data["rows"]) else []
    jm = data["judge_metrics"]
    md = ["# Threats: does the generator draw what the judge recognises?\n",
          f"Judge `{data['judge']}` (AP on fresh simulator windows: "
          + ", ".join(f"{c} {rp.fmt(v, 3)}" for c, v in (jm.get("ap") or {}).items())
          + f"; fooled at p ≥ 0.5 by look-alikes: {rp.fmt(jm.get('lookalike_any_p50'), 1, 100)} %, by clutter "
          f"windows: {rp.fmt(jm.get('hard_clutter_any_p50'), 1, 100)} %, by cut-off threats: "
          f"{rp.fmt(jm.get('hard_cut_any_p50'), 1, 100)} %). "
          f"{data['options']['n']} images per row, {data['seconds']:.0f} s.\n",
          "## Share of images with a confident (p ≥ 0.9) threat, %\n", rp.markdown_table(head, shares),
          "\n## Threat recall ratio (generator share ÷ simulator share)\n",
          rp.markdown_table(head, ratios) if ratios else "(no generator given)\n", *legend, *_asked_markdown(data),
          "\n## Grids\n"]
    md += [f"![{f}]({f})\n" for f in figures]
    return "\n".join(md)


def _asked_markdown(data: dict) -> list[str]:
    """The per-asked-class section (conditional generators only): hit / other / none shares, %."""
    rows = [r for r in data["rows"] if "asked" in r]
    if len(rows) < 2:
        return []
    classes = [c for c in data["classes"] if c in rows[0]["asked"]]
    head = ["set", "ψ", *(f"{c}: hit / other / none" for c in classes)]
    body = [[r["name"], rp.fmt(r["psi"], 1), *(" / ".join(rp.fmt(r["asked"][c][k], 1, 100) for k in
                                                           ("hit", "other", "none")) if c in r["asked"] else "–"
                                               for c in classes)] for r in rows]
    return ["\n## Asked for one class: did the judge see that one? (conditional generators)\n",
            "Over the images whose label (the simulator window's threat; the same label given to the generator) "
            "names one class: the share in which the judge is confident of that class (hit), of another class only "
            "(other), or of none, %. The recall ratio above counts a class wherever it is seen, also when another "
            "was asked for; this table does not.\n", rp.markdown_table(head, body)]


__all__ = ["ThreatOptions", "CONFIDENT", "OVER", "FLAG_LEGEND", "whole_bags", "confident_shares", "recall_ratios",
           "asked_shares", "flagged", "generate",
           "verdict", "labelled_grid", "run_threats"]
