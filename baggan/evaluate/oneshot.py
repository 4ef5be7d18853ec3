"""One-shot protocol (paper Tables 2, 4–10, Fig. 14) on the X-ray generator: `baggan evaluate oneshot`.

Per repetition r, every method is fitted on the SAME annotated scans (simulator scans projected into W+, with the
simulator's exact masks) and tested on the same test scans (threat-carrying and threat-free simulator scans,
projected likewise). The parts of a run:

    main    every method in `methods` at 1-shot: Tables 2, 4/6 (precision and IoU per threat), 5 (fps), 8, PD curves
    shots   k-shot for k in shots.shots (Table 10)
    depth   ours with each segmenter MLP-1/3, FCN-3/5/7/9 (Table 9)
    layer   fixed perturbed style block vs a random one, interpolation and noise views (Table 7)
    tau     perturbation factor tau_p (Fig. 14a)
    dk      code width D x number of prototypes K (Fig. 14b)
    patch   patch size x equipartition / pixel-distribution constraint (Fig. 14c)

Work is cached so that a killed run resumes: projections per scan (oneshot_data.ProjectionCache), HFC encoders per
config hash (`<outdir>/hfc/<hash>/`, trained with hfc.train.train_hfc, itself resumable), and every fitted-and-tested
unit as `<outdir>/units/<hash>.json`, keyed by everything that determines it (so parts and configs share units).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch

from baggan.config import from_dict, merged, read_yaml, to_dict
from baggan.errors import ConfigError, UserError, about
from baggan.evaluate.oneshot_config import (HFC_VARIANTS, METHODS, ORACLE, FitConfig, FpsConfig, Model,
                                            OneShotEvalConfig, Unit)
from baggan.evaluate.oneshot_data import EvalScan, Projection, ProjectionCache, SimScans, stable_hash
from baggan.evaluate.oneshot_report import show_indices, write_oneshot_report
from baggan.io import read_json, write_json_atomic

if TYPE_CHECKING:
    from baggan.data.xraysim import SimConfig
    from hfc.config import HFCConfig, OneShotConfig
    from hfc.features import PixelEncoder
    from hfc.oneshot import PixelClassifier

FIT_VERSION = 2  # part of every unit's cache key; 2: segmenters on HFC codes standardise them (issue 20)


def load_windows(path: str | Path, key: str = "scans.sim") -> SimConfig:
    """The simulator config of `scans.sim` (or the config key `key`); ConfigError naming the key if it is missing,
    invalid or has no `window:` block."""
    from baggan.config import load_config
    from baggan.data.xraysim import SimConfig

    if not Path(path).is_file():
        raise ConfigError(f"{key}: {path}: simulator config not found")
    try:
        sim = load_config(path, SimConfig)
    except ConfigError as e:
        raise ConfigError(f"{key}: {e}") from None
    if sim.window is None:
        raise ConfigError(f"{key}: {path} has no window: block (threat windows are drawn from it; null for whole "
                          "bags)")
    return sim


def hfc_variants(cfg: OneShotEvalConfig, parts: Sequence[str], num_blocks: int,
                 resolution: int) -> tuple[dict[str, HFCConfig], list[Unit]]:
    """(HFC configs by variant name, units) of the requested parts; ConfigError naming a bad key."""
    from hfc.config import HFCConfig

    path = Path(cfg.hfc)
    if not path.is_file():
        raise ConfigError(f"hfc: {path}: HFC config not found")
    base = merged(read_yaml(path), cfg.hfc_overrides)
    extra: dict[str, dict[str, Any]] = dict(HFC_VARIANTS)
    units: list[Unit] = []
    reps = cfg.scans.repetitions
    a = cfg.ablation

    def add(part: str, group: str, row: str, model: Model, n_reps: int | None, shots: int = 1) -> None:
        units.extend(Unit(part, group, row, model, shots, r) for r in range(n_reps or reps))

    def method_model(key: str) -> Model:
        m = METHODS[key]
        return Model(m.hfc, m.segmenter, m.raw)

    if "main" in parts:
        for key in cfg.methods:
            add("main", "", METHODS[key].label, method_model(key), reps)
        if cfg.oracle.train:
            units.extend(Unit("main", "", ORACLE + METHODS[key].label, method_model(key), cfg.oracle.train, 0,
                              oracle=True) for key in cfg.oracle.methods)
    if "shots" in parts:
        for k in cfg.shots.shots:
            for key in cfg.shots.methods:
                add("shots", f"{k}-shot", METHODS[key].label, method_model(key), cfg.shots.repetitions, k)
    if "depth" in parts:
        for seg in cfg.depth.segmenters:
            add("depth", "", seg, Model("swav", seg), cfg.depth.repetitions)
    if "layer" in parts:
        blocks = a.blocks if a.blocks is not None else list(range(num_blocks))
        bad = [b for b in blocks if b >= num_blocks]
        if bad:
            raise ConfigError(f"ablation.blocks: block {bad[0]} does not exist (the generator has {num_blocks} "
                              f"style blocks, 0..{num_blocks - 1})")
        for pert in a.perturbations:
            for b in [None, *blocks]:
                name = f"layer-{pert}-{'random' if b is None else b}"
                extra[name] = {"method": "swav", "augment": {"method": pert, "block": b}}
                add("layer", pert, "all (random)" if b is None else f"block {b}", Model(name, a.segmenter),
                    a.repetitions)
    if "tau" in parts:
        for t in a.tau_p:
            extra[f"tau-{t:g}"] = {"method": "swav", "augment": {"method": "interpolate", "tau_p": t}}
            add("tau", "", f"{t:g}", Model(f"tau-{t:g}", a.segmenter), a.repetitions)
    if "dk" in parts:
        for d in a.dims:
            for k in a.prototypes:
                extra[f"dk-{d}-{k}"] = {"method": "swav", "dim": d, "swav": {"prototypes": k}}
                add("dk", f"D = {d}", f"{k}", Model(f"dk-{d}-{k}", a.segmenter), a.repetitions)
    if "patch" in parts:
        big = [p for p in a.patch_sizes if p > resolution]
        if big:
            raise ConfigError(f"ablation.patch_sizes: {big[0]} is larger than the {resolution}px scans")
        for c in a.constraints:
            for p in a.patch_sizes:
                name = f"patch-{c}-{p}"
                extra[name] = {"method": "swav", "sampling": {"mode": "patches", "patch_size": p},
                               "swav": {"constraint": c}}
                add("patch", c, f"{p}", Model(name, a.segmenter), a.repetitions)
    used = {u.model.hfc for u in units if u.model.hfc}
    configs = {}
    for name in sorted(used):
        try:
            configs[name] = from_dict(HFCConfig, merged(base, extra[name]))
        except ConfigError as e:
            raise ConfigError(f"{path} + hfc_overrides ({name}): {e}") from None
    return configs, units


# --------------------------------------------------------------------------------------------------- the work

class Workspace:
    """The generator, the scans and their projections, and the HFC encoders of one run."""

    def __init__(self, cfg: OneShotEvalConfig, outdir: Path, network: Path, device: torch.device, progress: bool):
        from baggan.io import file_sha256
        from baggan.stylegan2 import StyleGANFeatureGenerator, load_network

        self.cfg, self.outdir, self.device, self.progress = cfg, outdir, device, progress
        nets = load_network(network, device)
        G = nets.get("G_ema", nets.get("G"))
        if G is None:
            raise UserError(f"{network}: no generator (G_ema or G) in the file")
        self.G, self.network, self.generator_sha256 = G.eval().requires_grad_(False), network, file_sha256(network)
        self.gen = StyleGANFeatureGenerator(self.G)
        self.size = G.img_resolution
        s = cfg.scans
        self.scans = SimScans(s.categories, self.size, s.max_threats, s.min_pixels, s.seed,
                              load_windows(s.sim) if s.sim else None)
        self.cache = ProjectionCache(Path(cfg.cache_dir) if cfg.cache_dir else outdir / "projections", self.G,
                                     self.generator_sha256, cfg.projector)
        self._encoders: dict[str, PixelEncoder] = {}

    def project_all(self, scans: Sequence[EvalScan]) -> dict[tuple[str, int], Projection]:
        """Projections of every scan (cached ones read, the others computed with a progress bar)."""
        from tqdm.auto import tqdm

        from baggan.stylegan2.project_pool import project_many

        todo = [s for s in scans if not self.cache.has(s)]
        if todo:
            with tqdm(total=len(todo), desc=f"project scans ({self.cfg.projector.steps} steps)", unit="scan",
                      disable=not self.progress) as bar:
                def keep(i: int, r) -> None:  # each projection cached as it arrives: a killed run loses none
                    self.cache.put(todo[i], r)
                    bar.update()

                project_many(self.network, self.G, [s.image for s in todo], self.cfg.projector,
                             [self.cache.label(s) for s in todo], self.cfg.workers, on_done=keep)
        return {(s.kind, s.seed): self.cache.get(s) for s in scans}

    def encoder_folder(self, hcfg: HFCConfig) -> Path:
        """Where the encoder of HFC config `hcfg` is trained: <outdir>/hfc/<hash of config and generator>."""
        return self.outdir / "hfc" / stable_hash({"hfc": hcfg.to_dict(), "generator": self.generator_sha256})

    def encoder(self, name: str, hcfg: HFCConfig) -> PixelEncoder:
        """The HFC encoder of variant `name`: trained once into <outdir>/hfc/<hash>/, then read from there."""
        from hfc.checkpoint import load_module
        from hfc.features import PixelEncoder
        from hfc.train import ENCODER, train_hfc

        if name not in self._encoders:
            folder = self.encoder_folder(hcfg)
            done = folder / "done.json"
            if not done.is_file():
                t0, c0 = time.time(), time.process_time()
                train_hfc(self.gen, hcfg, folder, resume=True, progress=self.progress)
                write_json_atomic(done, {"variant": name, "config": hcfg.to_dict(), "seconds": time.time() - t0,
                                         "cpu_seconds": time.process_time() - c0})
            self._encoders[name] = load_module(folder / ENCODER, self.device, expect=PixelEncoder)
        return self._encoders[name]


def build_model(ws: Workspace, model: Model, encoder: PixelEncoder | None, num_classes: int, fit: FitConfig,
                seed: int) -> PixelClassifier:
    """The PixelClassifier of `model` with `num_classes` outputs, initialised from `seed`."""
    from hfc.generator import layer_channels
    from hfc.methods import make_classifier

    return make_classifier(model.raw, layer_channels(ws.gen), encoder, num_classes, _oneshot_config(model, fit, seed),
                           fit.datasetgan_members, image_channels=ws.gen.img_channels).to(ws.device)


def _oneshot_config(model: Model, fit: FitConfig, seed: int, oracle: bool = False) -> OneShotConfig:
    """The hfc fit settings of `model` (FitConfig's values, initialisation `seed`); an oracle fit has no W+ views
    (they augment one example; 9x the oracle's 200 windows would hold 2 GB of codes, 18 GB of raw features)."""
    from hfc.config import OneShotConfig

    segmenter = model.segmenter or "fcn3"
    on_codes = model.raw is None
    name = segmenter if on_codes else model.raw
    return OneShotConfig(segmenter=segmenter, hidden=fit.hidden, epochs=fit.epochs, lr=fit.lr, seed=seed,
                         standardize=on_codes and segmenter in fit.standardize,
                         optimizer="lbfgs" if on_codes and segmenter in fit.lbfgs else "adam",
                         image=name in fit.image, views=fit.views_per_sample if name in fit.views and not oracle else 0,
                         views_tau_p=fit.views_tau_p, views_min_resolution=fit.views_min_resolution,
                         class_balance=fit.balance_power if name in fit.balance else 0.0)


def to_classes(label: np.ndarray, table: Sequence[int]) -> np.ndarray:
    """Category-id map → class-index map; categories outside the table are background."""
    from baggan.oneshot import to_classes as classes_of

    return classes_of(label, table, outside=0).numpy()


def run_unit(ws: Workspace, unit: Unit, encoder: PixelEncoder | None, train: Sequence[tuple[EvalScan, Projection]],
             test: Sequence[tuple[EvalScan, Projection]], rules: dict[str, tuple[float, bool]] | None = None) -> dict:
    """Fit the unit's model on its annotated scans and test it: confusion matrices per test scan, and timings.
    `rules` (name → condition_classes' threshold, among_allowed) adds the class-from-label confusion matrices of
    each of those threat rules ("cms_rules")."""
    from baggan.oneshot import categories_from, class_table
    from hfc.metrics import confusion_matrix, iou_from_confusion, mean_iou
    from hfc.oneshot import Annotation, fit

    cfg = ws.cfg
    table = class_table([s.label for s, _ in train], ws.scans.category_ids)
    k = len(table)
    net = build_model(ws, unit.model, encoder, k, cfg.fit, cfg.fit.seed + unit.rep)
    image = net.image_channels > 0
    feats = [ws.cache.features(p, image) for _, p in train]
    ocfg = _oneshot_config(unit.model, cfg.fit, cfg.fit.seed + unit.rep, unit.oracle)
    samples = [Annotation(p.ws[0], torch.from_numpy(to_classes(s.label, table)), tuple(f),
                          ws.cache.generator(p) if ocfg.views else None) for (s, p), f in zip(train, feats)]
    t0, c0 = time.time(), time.process_time()
    with about(f"{unit.part} / {unit.row} / repetition {unit.rep}:"):
        history = fit(net, ws.gen, samples, ocfg)
    t1, c1 = time.time(), time.process_time()
    train_cm = sum(confusion_matrix(to_classes(s.label, table), net.predict(f, ws.size)[0][0].cpu().numpy(), k)
                   for (s, _), f in zip(train, feats))
    cms, by_label, shown, show = [], [], [], show_indices(test, cfg.show)
    by_rule: dict[str, list[np.ndarray]] = {name: [] for name in rules or {}}
    for i, (scan, proj) in enumerate(test):
        labels, probs = net.predict(ws.cache.features(proj, image), ws.size)
        pred, gt = labels[0].cpu().numpy(), to_classes(scan.label, table)
        cms.append(confusion_matrix(gt, pred, k))
        if ws.G.c_dim:  # a threat pixel's class from the scan's own label, as synthesis with class_from: condition
            by_label.append(confusion_matrix(gt, to_classes(categories_from(probs, table, scan.present,
                                                                            cfg.fit.threat_threshold), table), k))
            for name, rule in (rules or {}).items():
                by_rule[name].append(confusion_matrix(gt, to_classes(categories_from(probs, table, scan.present, *rule),
                                                                     table), k))
        if i in show:
            shown.append(np.asarray(table)[pred])
    extra = {"cms_condition": np.stack(by_label)} if by_label else {}
    if rules and by_label:
        extra["cms_rules"] = {name: np.stack(v) for name, v in by_rule.items()}
    return {"classes": table, "cms": np.stack(cms), **extra, "test_kinds": [s.kind for s, _ in test],
            "train_seeds": [s.seed for s, _ in train], "final_loss": history[-1],
            "train_miou": float(mean_iou(iou_from_confusion(train_cm))), "fit_seconds": t1 - t0,
            "fit_cpu_seconds": c1 - c0, "eval_seconds": time.time() - t1, "shown": np.stack(shown) if shown else []}


@torch.no_grad()
def measure_fps(ws: Workspace, models: dict[str, PixelClassifier], fcfg: FpsConfig) -> dict[str, dict[str, float]]:
    """Images per second (wall) and CPU seconds per image of generation + features + segmenter, batch 1 and N.

    Row "generation only": the synthesis pass without features, the floor every method pays.
    """
    from hfc.oneshot import Annotator

    latents = ws.gen.sample_ws(fcfg.images, seed=12345)
    sync = torch.cuda.synchronize if ws.device.type == "cuda" else (lambda: None)

    def run(fn, batch: int) -> tuple[float, float]:
        for i in range(fcfg.warmup):
            fn(latents[:batch])
        sync()
        t0, c0 = time.perf_counter(), time.process_time()
        for start in range(0, fcfg.images, batch):
            fn(latents[start:start + batch])
        sync()
        return fcfg.images / (time.perf_counter() - t0), (time.process_time() - c0) / fcfg.images

    fns = {"generation only": lambda w: ws.gen.synthesize(w, return_features=False)}
    fns.update({label: Annotator(ws.gen, None, net) for label, net in models.items()})
    out = {}
    for label, fn in fns.items():
        fps1, cpu1 = run(fn, 1)
        fpsn, cpun = run(fn, fcfg.batch)
        out[label] = {"fps_batch1": fps1, "cpu_s_per_image_batch1": cpu1, "fps_batchN": fpsn,
                      "cpu_s_per_image_batchN": cpun}
    return out


# ------------------------------------------------------------------------------------------------------- driver

def _unit_key(ws: Workspace, unit: Unit, hfc_cfg: HFCConfig | None, train: Sequence[EvalScan], test: Sequence[EvalScan]) -> dict:
    """Everything that determines a unit's result (its cache key)."""
    cfg = ws.cfg
    fit = to_dict(cfg.fit) if unit.model.raw == "datasetgan" else {**to_dict(cfg.fit), "datasetgan_members": None}
    for k in ("standardize", "lbfgs", "image", "views", "views_per_sample", "views_tau_p", "views_min_resolution",
              "balance", "balance_power", "threat_threshold"):
        del fit[k]  # in the key only where they apply: older results stay valid
    ocfg = _oneshot_config(unit.model, cfg.fit, 0, unit.oracle)
    if ocfg.views:
        fit["views"] = {"per_sample": ocfg.views, "tau_p": ocfg.views_tau_p,
                        "min_resolution": ocfg.views_min_resolution}
    if ocfg.standardize:
        fit["standardize"] = True
    if ocfg.image:
        fit["image"] = True
    if ocfg.optimizer != "adam":
        fit["optimizer"] = ocfg.optimizer
    if ocfg.class_balance:
        fit["class_balance"] = ocfg.class_balance
    # the class-from-label scores exist for a conditional G only; 0.5 is the rule before the setting existed
    if ws.G.c_dim and cfg.fit.threat_threshold != 0.5:
        fit["threat_threshold"] = cfg.fit.threat_threshold
    return {"model": dataclasses.asdict(unit.model), "hfc": hfc_cfg.to_dict() if hfc_cfg else None, "fit": fit,
            "shots": unit.shots, "rep": unit.rep, "train": [(s.kind, s.sim_key, s.seed) for s in train],
            "test": [(s.kind, s.sim_key, s.seed) for s in test], "projector": to_dict(cfg.projector),
            "generator": ws.generator_sha256, "categories": list(cfg.scans.categories),
            "min_pixels": cfg.scans.min_pixels, "size": ws.size, "fit_version": FIT_VERSION}


def _load_unit(path: Path, by_label: bool) -> dict | None:
    """A cached unit result, or None if missing, unreadable, or (`by_label`) cached before the class-from-label
    scores."""
    if not path.is_file():
        return None
    try:
        doc = read_json(path)
        if by_label and "cms_condition" not in doc["result"]:
            return None
        for key in ("cms", "cms_condition"):
            if key in doc["result"]:
                doc["result"][key] = np.asarray(doc["result"][key], np.int64)
        shown = path.with_suffix(".npz")
        doc["result"]["shown"] = np.load(shown)["shown"] if shown.is_file() else []
        return doc
    except Exception:  # noqa: BLE001 - a damaged unit is recomputed
        return None


def _save_unit(path: Path, key: dict, unit: Unit, result: dict) -> None:
    """Write a unit's result: predictions shown in the figure as .npz, then the JSON (the JSON marks it done)."""
    from baggan.evaluate.report import to_jsonable
    from baggan.io import atomic_path

    if len(result["shown"]):
        with atomic_path(path.with_suffix(".npz")) as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, shown=result["shown"].astype(np.uint8))
    body = {k: v for k, v in result.items() if k != "shown"}
    write_json_atomic(path, to_jsonable({"key": key, "unit": dataclasses.asdict(unit), "result": body}))


def protocol_scans(ws: Workspace, units: Sequence[Unit]) -> tuple[list[EvalScan], dict[int, dict[int, list[EvalScan]]],
                                                                    list[EvalScan], dict[tuple[str, int], Projection]]:
    """(test scans, annotated sets {repetition: {shots: scans}}, oracle scans, projections of them all by (kind,
    seed)) that `units` need; the projections cached or made."""
    cfg = ws.cfg
    test = ws.scans.test_scans(cfg.scans.test_threat, cfg.scans.test_clean)
    need: dict[int, set[int]] = {}
    for u in units:
        if not u.oracle:
            need.setdefault(u.rep, set()).add(u.shots)
    train_sets = {r: ws.scans.annotated_sets(r, sorted(k), cfg.scans.annotation, cfg.scans.candidates)
                  for r, k in sorted(need.items())}
    oracle = ws.scans.oracle_scans(cfg.oracle.train) if any(u.oracle for u in units) else []
    every = {(s.kind, s.seed): s for s in test}
    every.update({(s.kind, s.seed): s for sets in train_sets.values() for ss in sets.values() for s in ss})
    every.update({(s.kind, s.seed): s for s in oracle})
    return test, train_sets, oracle, ws.project_all(list(every.values()))


def run_oneshot(cfg: OneShotEvalConfig, outdir: str | Path, network: str | Path | None, device: torch.device,
                parts: Sequence[str] | None = None, progress: bool = True) -> Path:
    """Run the requested parts (default: cfg.parts), resuming from what `outdir` holds; returns the report path."""
    from tqdm.auto import tqdm

    from hfc.augment import style_blocks

    outdir = Path(outdir)
    network = network or cfg.network
    if not network:
        raise UserError("no generator: pass --network or set network: in the config")
    if not Path(network).is_file():
        raise UserError(f"{network}: generator file not found (--network / network:)")
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    parts = list(parts or cfg.parts)
    t_start, c_start = time.time(), time.process_time()
    ws = Workspace(cfg, outdir, Path(network), device, progress)
    hfc_cfgs, units = hfc_variants(cfg, parts, len(style_blocks(ws.gen)), ws.size)

    test, train_sets, oracle, projections = protocol_scans(ws, units)
    test_pairs = [(s, projections[(s.kind, s.seed)]) for s in test]

    results: dict[int, dict] = {}
    order = sorted(range(len(units)), key=lambda i: (units[i].model.hfc or "", i))  # each encoder loaded once
    bar = tqdm(order, desc="one-shot units", unit="unit", disable=not progress)
    for i in bar:
        unit = units[i]
        train = oracle if unit.oracle else train_sets[unit.rep][unit.shots]
        hcfg = hfc_cfgs.get(unit.model.hfc) if unit.model.hfc else None
        key = _unit_key(ws, unit, hcfg, train, test)
        path = outdir / "units" / f"{stable_hash(key)}.json"
        doc = _load_unit(path, by_label=bool(ws.G.c_dim))
        if doc is None:
            bar.set_postfix_str(f"{unit.part}: {unit.row} {unit.group} rep {unit.rep}".strip())
            encoder = ws.encoder(unit.model.hfc, hcfg) if hcfg else None
            result = run_unit(ws, unit, encoder, [(s, projections[(s.kind, s.seed)]) for s in train], test_pairs)
            _save_unit(path, key, unit, result)
        else:
            result = doc["result"]
        results[i] = result

    fps = None
    if "main" in parts:
        fps = _cached_fps(ws, hfc_cfgs)
    info = {"network": str(network), "generator_sha256": ws.generator_sha256, "resolution": ws.size,
            "test": [(s.kind, s.seed) for s in test],
            "train": {r: {k: [s.seed for s in ss] for k, ss in sets.items()} for r, sets in train_sets.items()},
            "oracle": [s.seed for s in oracle], "scans": cfg.scans.sim or "whole bags",
            "projection": {f"{k}-{seed}": {"psnr": p.psnr, "ssim": p.ssim} for (k, seed), p in projections.items()},
            "hfc": _hfc_timings(ws, hfc_cfgs), "seconds": time.time() - t_start,
            "cpu_seconds": time.process_time() - c_start, "parts": parts}
    return write_oneshot_report(cfg, outdir, [(u, results[i]) for i, u in enumerate(units)], fps, info, test_pairs)


def _cached_fps(ws: Workspace, hfc_cfgs: dict[str, HFCConfig]) -> dict:
    """Table 5 timings of every main method (one measurement for all, so they share the machine's state)."""
    from baggan.evaluate.report import environment

    cfg = ws.cfg
    key = {"methods": cfg.methods, "fps": to_dict(cfg.fps), "generator": ws.generator_sha256, "device": str(ws.device),
           "hfc": {m: hfc_cfgs[METHODS[m].hfc].to_dict() for m in cfg.methods if METHODS[m].hfc},
           "fit": to_dict(cfg.fit)}
    path = ws.outdir / "timings" / f"fps-{stable_hash(key)}.json"
    if path.is_file():
        return read_json(path)["fps"]
    k = len(cfg.scans.categories) + 1
    models = {}
    for m in cfg.methods:
        meth = METHODS[m]
        enc = ws.encoder(meth.hfc, hfc_cfgs[meth.hfc]) if meth.hfc else None
        models[meth.label] = build_model(ws, Model(meth.hfc, meth.segmenter, meth.raw), enc, k, cfg.fit, 0).eval()
    fps = measure_fps(ws, models, cfg.fps)
    write_json_atomic(path, {"key": key, "fps": fps, "environment": environment(str(ws.device))}, indent=1)
    return fps


def _hfc_timings(ws: Workspace, hfc_cfgs: dict[str, HFCConfig]) -> dict[str, dict]:
    """Training time of each HFC variant's encoder (variants with the same config share one encoder)."""
    out = {}
    for name, hcfg in hfc_cfgs.items():
        done = ws.encoder_folder(hcfg) / "done.json"
        if done.is_file():
            d = read_json(done)
            out[name] = {"seconds": d["seconds"], "cpu_seconds": d["cpu_seconds"], "folder": done.parent.name}
    return out


__all__ = ["load_windows", "hfc_variants", "Workspace", "build_model", "to_classes", "run_unit", "measure_fps",
           "protocol_scans", "run_oneshot"]
