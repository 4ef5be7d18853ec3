"""The threat judge: a small multi-label classifier that says which threat categories a scan shows.

It is trained on simulator scans only (threat windows by default), never on generator output, so it can
judge a generator without a person. Label of a scan for category k: 1 when an instance of k is *present
and visible* — it covers at least `min_area` of the image, its own attenuation is at least
`min_visibility` of the total along its pixels (`Scan.visibility`), and at least `min_inside` of its area
in the bag lies inside the image (`Scan.inside`: a stub of a tool cut off by the window is not the tool)
— else 0.

A classifier trained on windows alone learns colour statistics as much as shapes: on samples of a
generator that draws only blobs it still "finds" threats, and on an untrained generator's colour fields
it is sure of hammers. So each training batch also holds *look-alikes* labelled "no threat", four kinds
in equal parts: windows blurred beyond recognition (Gaussian, sigma `blur` pixels at 64²); windows whose
tiles (`tile` pixels) are shuffled, turned and mirrored — the same colours and strokes, no outline;
smooth random colour fields (random colours on a 2-8 cell grid, cubic upsampling); and dark blobs
(blurred ellipses in a window's darkest colour) on a blurred window — the stages a generator passes
through before it draws outlines. `lookalike_any_p50` measures how often the judge is fooled by them.

*Hard negatives* (session 14): the generator's failure modes are not shape-less — forks, plates, partial
strokes — and a judge trained on threat-centred windows took them for tools. So a share `clutter_windows`
of the training windows is centred on a clutter item of a threat-free bag (frames, zips, cables, plates,
keys: "no threat"), and a share `cut_windows` is placed at a random offset around a threat, from wholly
inside to a sliver, labelled by the rule above (baggan.data.xray.window). The
`hard_*_any_p50` metrics measure how often the judge calls a threat in such windows that hold none.

*Softened windows* (session 21): a judge trained on the simulator's crisp, grainy windows alone keys on the
grain: blurred by a Gaussian of sigma 0.75 px at 64² — every tool still plain to see — its hits fall from 92-100 %
to 0-60 %, and to 0-4 % at sigma 1 (docs/benchmarks.md, "The judge keys on grain"), so it calls any smooth
drawing "no threat", a generator's included. A share `soften` of the training windows (threat or not, labels
kept) is blurred with sigma ~ U(`soften_blur`) pixels, well below the look-alikes' `blur`: sharpness then carries
no label, and the outline has to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from baggan.config import check, from_dict, to_dict
from baggan.data.labelsets import PAPER_THREATS, PIDRAY
from baggan.data.xray.window import WindowConfig
from baggan.data.xraysim import Scan, SimConfig, render_scans, scan_seed
from baggan.errors import DataError, TrainingDiverged, UserError

# run seeds of the simulator draws: training, validation, and the fresh windows `baggan evaluate threats` uses;
# the hard-negative windows of validation and of fresh measurements (clutter windows; cut windows at seed + 100)
TRAIN_SEED, VAL_SEED, EVAL_SEED = 101, 102, 103
HARD_VAL_SEED, HARD_EVAL_SEED = 104, 105


def _default_sim() -> SimConfig:
    """The simulator setting of the threat-window generator (configs/sim/threat-windows-64.yaml)."""
    return SimConfig(threat_classes=PAPER_THREATS, max_threats=2, clutter_min=0, clutter_max=4, small_parts_max=0,
                     window=WindowConfig())


@dataclass(frozen=True)
class JudgeConfig:
    """What the judge is trained on and how (configs/judge/threats-64.yaml)."""

    classes: tuple[str, ...] = PAPER_THREATS    # the categories it judges (PIDRay names)
    size: int = 64                              # input size; other sizes are resized (area) first
    sim: SimConfig = field(default_factory=_default_sim)
    train_scans: int = 12000
    val_scans: int = 2000
    min_area: float = 0.02                      # visible: instance covers >= this share of the image ...
    min_visibility: float = 0.3                 # ... and holds >= this share of the attenuation on its pixels
    min_inside: float = 0.0                     # ... and >= this share of its area lies inside the image
    clutter_windows: float = 0.0                # share of training windows centred on a clutter item
    cut_windows: float = 0.0                    # share of training windows that may cut a threat off
    lookalikes: float = 0.3                     # share of each batch made look-alikes (label: no threat)
    blur: tuple[float, float] = (4.0, 8.0)      # sigma range (pixels at 64²) of blurred look-alikes
    soften: float = 0.0                         # share of training windows blurred mildly, labels kept
    soften_blur: tuple[float, float] = (0.25, 1.5)  # sigma range (pixels at 64²) of those; below `blur`
    tile: int = 8                               # tile side (pixels at 64²) of shuffled look-alikes
    width: int = 16                             # channels of the first stage (doubled per stage, 4 stages)
    epochs: int = 8
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    workers: int = 2

    def __post_init__(self):
        check(len(self.classes) > 0, "classes", "must name at least one category")
        for name in self.classes:
            check(name in PIDRAY.names, "classes", f"unknown category {name!r} (known: {', '.join(PIDRAY.names)})")
        check(16 <= self.size <= 1024, "size", f"must be in [16, 1024], got {self.size}")
        check(self.train_scans >= 1 and self.val_scans >= 1, "train_scans", "need >= 1 training and validation scan")
        check(0.0 <= self.min_area < 1.0 and 0.0 <= self.min_visibility <= 1.0, "min_area",
              "need 0 <= min_area < 1 and 0 <= min_visibility <= 1")
        check(0.0 <= self.min_inside <= 1.0, "min_inside", f"must be in [0, 1], got {self.min_inside}")
        check(0.0 <= self.lookalikes < 1.0, "lookalikes", "must be in [0, 1)")
        for key in ("clutter_windows", "cut_windows"):
            value = getattr(self, key)
            check(0.0 <= value <= 1.0, key, f"must be in [0, 1], got {value}")
            check(value == 0 or self.sim.window is not None, key, "needs threat windows (a `window:` block in sim)")
        if self.sim.window is not None:
            check(self.sim.window.negatives + self.clutter_windows + self.cut_windows <= 1.0, "clutter_windows",
                  "sim.window.negatives + clutter_windows + cut_windows must be <= 1")
        check(0.0 < self.blur[0] <= self.blur[1], "blur", "need 0 < lo <= hi")
        check(0.0 <= self.soften <= 1.0, "soften", f"must be in [0, 1], got {self.soften}")
        check(0.0 < self.soften_blur[0] <= self.soften_blur[1] < self.blur[0], "soften_blur",
              "need 0 < lo <= hi < blur's lo (a softened window must stay recognisable)")
        check(2 <= self.tile <= self.size // 2, "tile", f"must be in [2, size / 2], got {self.tile}")
        for key in ("width", "epochs", "batch", "workers"):
            check(getattr(self, key) >= 1, key, "must be >= 1")
        check(self.lr > 0 and self.weight_decay >= 0, "lr", "need lr > 0 and weight_decay >= 0")


class ConvStage(nn.Sequential):
    """Two 3x3 convolutions with batch norm and ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class JudgeNet(nn.Module):
    """Four conv stages (width, 2w, 4w, 8w channels; 2x2 max-pool between), global average pool, linear:
    float NCHW in [-1, 1] at size² → one logit per class."""

    def __init__(self, num_classes: int, width: int = 16, size: int = 64):
        super().__init__()
        self.size = size
        w = [width, 2 * width, 4 * width, 8 * width]
        self.stages = nn.ModuleList([ConvStage(3, w[0])] + [ConvStage(a, b) for a, b in zip(w, w[1:])])
        self.head = nn.Linear(w[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, num_classes]."""
        assert x.ndim == 4 and x.shape[1:] == (3, self.size, self.size), f"expected [N, 3, {self.size}, {self.size}]"
        for i, stage in enumerate(self.stages):
            x = stage(F.max_pool2d(x, 2) if i else x)
        return self.head(x.mean((2, 3)))


def visible_labels(scan: Scan, classes: tuple[str, ...], min_area: float, min_visibility: float,
                   min_inside: float = 0.0) -> np.ndarray:
    """Multi-hot [len(classes)] float32: which categories have a present and visible instance in the scan."""
    out = np.zeros(len(classes), np.float32)
    index = {PIDRAY.id_of(name): k for k, name in enumerate(classes)}
    pixels = scan.label.size
    for inst, vis, inside in zip(scan.instances, scan.visibility, scan.inside):
        k = index.get(inst.category_id)
        if k is not None and inst.mask.sum() >= min_area * pixels and vis >= min_visibility and inside >= min_inside:
            out[k] = 1.0
    return out


def hard_sim(config: JudgeConfig, clutter: float | None = None, cut: float | None = None) -> SimConfig:
    """The judge's simulator setting with its hard-negative windows (default: the config's shares; a share
    given here replaces it, e.g. clutter=1 for clutter windows only)."""
    if config.sim.window is None:
        return config.sim
    clutter = config.clutter_windows if clutter is None else clutter
    cut = config.cut_windows if cut is None else cut
    negatives = config.sim.window.negatives if clutter + cut < 1 else 0.0
    return replace(config.sim, window=replace(config.sim.window, negatives=negatives, clutter=clutter, cut=cut))


def to_size(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] resized to [N, size, size, 3] (area interpolation down, bilinear up)."""
    if images.ndim != 4 or images.shape[3] != 3 or images.shape[1] != images.shape[2]:
        raise DataError(f"the judge takes square RGB images [N, S, S, 3], got {list(images.shape)}")
    if images.shape[1] == size:
        return images
    mode = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (size, size), interpolation=mode) for im in images])


def blurred(images: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float]) -> np.ndarray:
    """Look-alikes: each image Gaussian-blurred with sigma ~ U(sigma) pixels (scaled to the image size from 64²)."""
    scale = images.shape[1] / 64.0
    return np.stack([cv2.GaussianBlur(im, (0, 0), float(rng.uniform(*sigma)) * scale, borderType=cv2.BORDER_REFLECT)
                     for im in images])


def tile_shuffled(images: np.ndarray, rng: np.random.Generator, tile: int) -> np.ndarray:
    """Look-alikes: each image cut into tile x tile squares, shuffled, each turned by k·90° and maybe mirrored."""
    n, s = images.shape[0], images.shape[1]
    t = max(int(round(tile * s / 64.0)), 1)
    g = s // t
    out = images.copy()
    for i in range(n):
        tiles = [images[i, r * t:(r + 1) * t, c * t:(c + 1) * t] for r in range(g) for c in range(g)]
        order = rng.permutation(len(tiles))
        for j, k in enumerate(order):
            tl = np.rot90(tiles[k], int(rng.integers(4)))
            out[i, (j // g) * t:(j // g + 1) * t, (j % g) * t:(j % g + 1) * t] = tl[:, ::-1] if rng.random() < 0.5 else tl
    return out


def colour_fields(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Look-alikes: smooth random colour fields (uniform random RGB on a g x g grid, g in {2, 4, 8}, cubic upsampling)."""
    out = []
    for _ in range(n):
        g = int(rng.choice([2, 4, 8]))
        cells = rng.integers(0, 256, (g, g, 3)).astype(np.float32)
        out.append(np.clip(cv2.resize(cells, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8))
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def dark_blobs(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Look-alikes: 1-3 soft ellipses in the image's darkest colour on the image blurred beyond recognition."""
    n, s = images.shape[:2]
    scale = s / 64.0
    out = np.empty_like(images)
    for i, im in enumerate(images):
        base = cv2.GaussianBlur(im, (0, 0), 6.0 * scale, borderType=cv2.BORDER_REFLECT).astype(np.float32)
        flat = im.reshape(-1, 3).astype(np.float32)
        dark = flat[np.argsort(flat.sum(1))[:max(len(flat) // 50, 1)]].mean(0)
        alpha = np.zeros((s, s), np.float32)
        for _ in range(int(rng.integers(1, 4))):
            centre = tuple(int(v) for v in rng.uniform(0.2 * s, 0.8 * s, 2))
            axes = tuple(int(v) for v in rng.uniform(3 * scale, 20 * scale, 2))
            cv2.ellipse(alpha, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        alpha = cv2.GaussianBlur(alpha, (0, 0), float(rng.uniform(0.7, 3.0)) * scale)[..., None]
        out[i] = np.clip(base * (1 - alpha) + dark * alpha, 0, 255).astype(np.uint8)
    return out


def softened(images: np.ndarray, rng: np.random.Generator, config: JudgeConfig) -> np.ndarray:
    """A copy of `images` with a random share `config.soften` blurred mildly (sigma ~ U(config.soften_blur))."""
    pick = rng.random(len(images)) < config.soften
    out = images.copy()
    if pick.any():
        out[pick] = blurred(images[pick], rng, config.soften_blur)
    return out


def lookalikes(images: np.ndarray, rng: np.random.Generator, config: JudgeConfig) -> np.ndarray:
    """Look-alikes of `images` in four equal parts (in this order): blurred, tile-shuffled, colour fields, dark
    blobs."""
    parts = np.array_split(np.arange(len(images)), 4)
    return np.concatenate([blurred(images[parts[0]], rng, config.blur), tile_shuffled(images[parts[1]], rng, config.tile),
                           colour_fields(len(parts[2]), images.shape[1], rng), dark_blobs(images[parts[3]], rng)])


def render_set(config: JudgeConfig, sim: SimConfig, run_seed: int, n: int, progress: str | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n simulator scans (run seed `run_seed`) at the judge's size → (uint8 [n, S, S, 3], visible labels
    [n, classes], multi-hot [n, 12] of the PIDRay categories present, as a conditional generator's labels)."""
    from tqdm import tqdm

    jobs = [(scan_seed(run_seed, i), config.size) for i in range(n)]
    images, labels, cats = [], [], np.zeros((n, len(PIDRAY.names)), np.float32)
    for i, scan in enumerate(tqdm(render_scans(sim, jobs, config.workers), total=n, desc=progress or "render",
                                  unit="scan", disable=None if progress else True, leave=False)):
        images.append(scan.image)
        labels.append(visible_labels(scan, config.classes, config.min_area, config.min_visibility, config.min_inside))
        cats[i, [inst.category_id - 1 for inst in scan.instances]] = 1.0
    return to_size(np.stack(images), config.size), np.stack(labels), cats


def _as_input(images: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
    """uint8 NHWC → float NCHW in [-1, 1]; with `rng`, a random flip and quarter turn (labels are invariant)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if rng is not None:
        x = torch.rot90(x, int(rng.integers(4)), (2, 3))
        if rng.random() < 0.5:
            x = x.flip(3)
    return x


@torch.no_grad()
def predict(model: JudgeNet, images: np.ndarray, batch: int = 256) -> np.ndarray:
    """Probabilities [N, classes] for uint8 [N, S, S, 3] images (resized to the judge's size)."""
    model.eval()
    images = to_size(images, model.size)
    out = [torch.sigmoid(model(_as_input(images[i:i + batch]))).numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out) if out else np.zeros((0, model.head.out_features), np.float32)


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve (mean of the precision at each positive, ties broken by order);
    NaN without positives."""
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = labels[order] > 0
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / positives)


def any_rate(probs: np.ndarray, threshold: float) -> float:
    """Share of images with some class at p >= threshold (NaN for no images)."""
    return float((probs.max(1) >= threshold).mean()) if len(probs) else float("nan")


def judge_metrics(probs: np.ndarray, labels: np.ndarray, fooled: np.ndarray, classes: tuple[str, ...]) -> dict:
    """AP per class on clean scans, confident (p >= 0.9) rates, and the look-alikes' false-threat rates."""
    return {"ap": {c: average_precision(probs[:, k], labels[:, k]) for k, c in enumerate(classes)},
            "confident_rate": {c: float((probs[:, k] >= 0.9).mean()) for k, c in enumerate(classes)},
            "present_rate": {c: float(labels[:, k].mean()) for k, c in enumerate(classes)},
            "lookalike_any_p50": any_rate(fooled, 0.5), "lookalike_any_p90": any_rate(fooled, 0.9)}


def hard_negative_rates(model: JudgeNet, config: JudgeConfig, run_seed: int, n: int) -> dict:
    """On n clutter windows (run seed `run_seed`) and n cut windows (`run_seed` + 100), of those without a
    visible threat: the share in which the judge calls some threat at p >= 0.5 / 0.9, and how many there were."""
    out = {}
    for kind, clutter, seed in (("clutter", 1.0, run_seed), ("cut", 0.0, run_seed + 100)):
        images, labels, _ = render_set(config, hard_sim(config, clutter=clutter, cut=1.0 - clutter), seed, n)
        probs = predict(model, images[labels.max(1) == 0])
        out.update({f"hard_{kind}_any_p50": any_rate(probs, 0.5), f"hard_{kind}_any_p90": any_rate(probs, 0.9),
                    f"hard_{kind}_windows": len(probs)})
    return out


def train_judge(config: JudgeConfig, progress: bool = True) -> tuple[JudgeNet, dict]:
    """Render the training and validation scans, train the judge, and measure it → (model, metrics)."""
    from tqdm import tqdm

    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    t0 = time.time()
    show = (lambda s: s) if progress else (lambda s: None)  # noqa: E731
    x_train, y_train, _ = render_set(config, hard_sim(config), TRAIN_SEED, config.train_scans,
                                     show("render training scans"))
    x_val, y_val, _ = render_set(config, config.sim, VAL_SEED, config.val_scans, show("render validation scans"))
    t_render = time.time() - t0
    model = JudgeNet(len(config.classes), config.width, config.size)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(len(x_train) // config.batch, 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config.lr, total_steps=config.epochs * steps_per_epoch)
    n_fake = int(round(config.batch * config.lookalikes))
    bar = tqdm(total=config.epochs * steps_per_epoch, desc="train judge", unit="step", disable=None if progress else True)
    history = []
    for epoch in range(config.epochs):
        model.train()
        order = rng.permutation(len(x_train))
        losses = []
        for step in range(steps_per_epoch):
            idx = order[step * config.batch:(step + 1) * config.batch]
            images, labels = x_train[idx[n_fake:]], y_train[idx[n_fake:]]
            if config.soften:
                images = softened(images, rng, config)
            if n_fake:
                fakes = lookalikes(x_train[idx[:n_fake]], rng, config)
                images = np.concatenate([images, fakes])
                labels = np.concatenate([labels, np.zeros((len(fakes), labels.shape[1]), np.float32)])
            loss = F.binary_cross_entropy_with_logits(model(_as_input(images, rng)), torch.from_numpy(labels))
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"judge: loss is {float(loss)} at epoch {epoch} step {step}; lower lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step(), sched.step(), bar.update()
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses))})
    bar.close()
    probs = predict(model, x_val)
    fooled = predict(model, lookalikes(x_val, np.random.default_rng(config.seed + 1), config))
    hard = hard_negative_rates(model, config, HARD_VAL_SEED, max(config.val_scans // 3, 1))
    metrics = {**judge_metrics(probs, y_val, fooled, config.classes), **hard, "history": history,
               "seconds_render": t_render, "seconds_total": time.time() - t0}
    return model, metrics


def save_judge(path: str | Path, model: JudgeNet, config: JudgeConfig, metrics: dict) -> None:
    """Write the judge (weights, config, measured metrics) atomically; loadable with weights_only=True."""
    from baggan.evaluate.report import to_jsonable
    from baggan.io import save_torch_atomic

    save_torch_atomic(path, {"kind": "baggan-judge", "state": model.state_dict(), "config": to_dict(config),
                             "metrics": to_jsonable(metrics)})


def load_judge(path: str | Path) -> tuple[JudgeNet, JudgeConfig, dict]:
    """Read a judge file → (model in eval mode, its config, the metrics measured when it was trained)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--judge {path}: file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
        raise DataError(f"--judge {path}: not a judge file ({type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("kind") != "baggan-judge":
        raise DataError(f"--judge {path}: not a judge file (made by `baggan evaluate train-judge`)")
    config = from_dict(JudgeConfig, payload["config"])
    model = JudgeNet(len(config.classes), config.width, config.size)
    model.load_state_dict(payload["state"])
    return model.eval(), config, payload.get("metrics", {})


__all__ = ["JudgeConfig", "JudgeNet", "ConvStage", "visible_labels", "to_size", "blurred", "tile_shuffled",
           "colour_fields", "dark_blobs", "softened", "lookalikes", "hard_sim", "render_set", "predict", "average_precision", "any_rate",
           "judge_metrics", "hard_negative_rates", "train_judge", "save_judge", "load_judge", "TRAIN_SEED", "VAL_SEED",
           "EVAL_SEED", "HARD_VAL_SEED", "HARD_EVAL_SEED"]
