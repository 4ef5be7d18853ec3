"""Downstream protocol (paper Table 3 and section 8.2): do synthetic annotated scans help a supervised segmenter?

For every segmenter in the config, every R:A ratio and every seed: train on R real scans plus A = a·R
synthetic scans (ratio 1:a), test on held-out real scans, score per-class IoU, mIoU, wIoU and FG-IoU
(hfc.metrics), and report mean ± std over seeds with the gain over 1:0 (real only).

Data: three directories in the toolkit's COCO format. Classes are matched across them by name; the label set
is the test set's categories (or the config's `categories`), renumbered 1..K-1 in that order (0 = background);
other categories become background. Scans are letterboxed to `resolution`² (aspect kept, padded with white,
the X-ray background); metrics are computed at that resolution inside the letterbox (padding excluded),
against the nearest-resized ground truth. The R real scans and the synthetic scans are prefixes of fixed
permutations (seeded by `data_seed`), so every ratio's synthetic set contains the smaller ratios' sets and
seeds only change initialisation, augmentation and batch order.

Training length: by default every run takes the same `steps` optimisation steps, so larger mixes are not trained
for longer. With `validation: V` (> 0), V further real scans (the next V of the real permutation, never trained
on) are scored every `eval_every` steps; a run stops after `patience` scores without a better validation mIoU
(or at `steps`, the cap) and keeps the weights of its best score: each run is trained to convergence on its own
mix. The learning-rate schedule decays over the cap.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from baggan.config import check, to_dict
from baggan.data.coco import CocoDataset
from baggan.errors import DataError, TrainingDiverged, UserError
from baggan.io import read_json, write_json_atomic
from baggan.evaluate import report as rp
from baggan.evaluate.oneshot_data import stable_hash
from baggan.io import file_sha256
from hfc.metrics import confusion_matrix, mean_std, segmentation_scores


# ----------------------------------------------------------------------------------------------- configuration

@dataclass(frozen=True)
class ModelConfig:
    """One downstream segmenter: DeepLabV3 (atrous ResNet + ASPP) or SDANet (ResNet + FPN + dense attention)."""

    name: Literal["deeplabv3", "sdanet"]
    depth: int = 50  # ResNet depth: 18, 34, 50 or 101
    width: int = 64  # ResNet stem width (64 = the original ResNet)
    output_stride: int = 16  # DeepLabV3 only: 8 or 16 (SDANet's FPN uses the plain stride-32 ResNet)
    head_channels: int = 256  # ASPP channels (DeepLabV3) / FPN channels (SDANet)
    backbone_weights: str | None = None  # optional ResNet state dict (e.g. ImageNet) to start from

    def __post_init__(self):
        check(self.depth in (18, 34, 50, 101), "depth", f"must be 18, 34, 50 or 101, got {self.depth}")
        check(self.width >= 4, "width", f"must be ≥ 4, got {self.width}")
        check(self.output_stride in (8, 16), "output_stride", f"must be 8 or 16, got {self.output_stride}")
        check(self.head_channels >= 8, "head_channels", f"must be ≥ 8, got {self.head_channels}")

    @property
    def label(self) -> str:
        """Human-readable name, e.g. 'DeepLabV3 (ResNet-50, width 64, OS 16)'."""
        if self.name == "deeplabv3":
            return f"DeepLabV3 (ResNet-{self.depth}, width {self.width}, OS {self.output_stride})"
        return f"SDANet (ResNet-{self.depth}, width {self.width}, FPN {self.head_channels})"


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (albumentations); masks follow every geometric change."""

    flip: bool = True  # horizontal and vertical flips, p = 0.5 each
    p_affine: float = 0.5  # probability of the shift-scale-rotate below
    scale: float = 0.1  # zoom in [1 - scale, 1 + scale]
    translate: float = 0.05  # shift, fraction of the size
    rotate: float = 15.0  # degrees
    p_color: float = 0.5  # probability of the colour jitter below
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.1
    hue: float = 0.0  # keep 0: in dual-energy pseudo-colour, hue encodes the material
    crop: int | None = None  # train on crop² windows of the resolution² scans (half of them on an object)

    def __post_init__(self):
        for key in ("p_affine", "p_color"):
            check(0 <= getattr(self, key) <= 1, key, f"must be in [0, 1], got {getattr(self, key)}")
        check(0 <= self.hue <= 0.5, "hue", f"must be in [0, 0.5], got {self.hue}")
        check(self.crop is None or (self.crop >= 32 and self.crop % 32 == 0), "crop",
              f"must be a multiple of 32, ≥ 32, got {self.crop}")


@dataclass(frozen=True)
class DownstreamConfig:
    """`baggan evaluate downstream` settings (configs/eval/downstream-*.yaml)."""

    resolution: int  # scans are letterboxed to resolution²; a multiple of 32
    models: list[ModelConfig]
    steps: int  # optimisation steps per run (the same for every ratio); with validation, the cap
    batch_size: int
    lr: float
    ratios: list[int] = field(default_factory=lambda: [0, 1, 2, 5, 10])  # a of R:A = 1:a
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    num_real: int | None = None  # R: real scans used for training (null: all of --real)
    max_test: int | None = None  # test scans used (null: all of --test)
    categories: list[str] | None = None  # class names (null: the test set's categories)
    data_seed: int = 0  # fixes which real/synthetic scans are drawn
    optimizer: Literal["sgd", "adamw"] = "adamw"
    momentum: float = 0.9  # SGD only
    weight_decay: float = 1e-4
    poly_power: float = 0.9  # lr = base · (1 - step/steps)^power
    validation: int = 0  # real scans held out for early stopping (0: every run trains `steps` steps)
    eval_every: int = 50  # steps between two validation scores
    patience: int = 4  # validation scores without a better mIoU before a run stops
    dice_weight: float = 0.0  # loss = cross-entropy + dice_weight · soft Dice of the foreground classes
    augment: AugmentConfig = AugmentConfig()
    num_workers: int = 0
    cache: bool = True  # keep decoded, letterboxed scans in memory (small sets only)
    threads: int | None = None  # torch.set_num_threads on CPU (null: leave as is)
    show: int = 3  # test scans shown in predictions.png

    def __post_init__(self):
        check(self.resolution >= 32 and self.resolution % 32 == 0, "resolution",
              f"must be a multiple of 32, ≥ 32, got {self.resolution}")
        check(len(self.models) > 0, "models", "needs at least one model")
        check(self.augment.crop is None or self.augment.crop <= self.resolution, "augment.crop",
              f"must be ≤ resolution ({self.resolution}), got {self.augment.crop}")
        check(self.steps > 0, "steps", f"must be > 0, got {self.steps}")
        check(self.batch_size >= 2, "batch_size", f"must be ≥ 2 (BatchNorm), got {self.batch_size}")
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        check(self.dice_weight >= 0, "dice_weight", f"must be ≥ 0, got {self.dice_weight}")
        check(self.validation >= 0, "validation", f"must be ≥ 0, got {self.validation}")
        check(self.eval_every >= 1, "eval_every", f"must be ≥ 1, got {self.eval_every}")
        check(self.patience >= 1, "patience", f"must be ≥ 1, got {self.patience}")
        check(len(self.ratios) > 0 and min(self.ratios) >= 0, "ratios", "needs synthetic-per-real counts ≥ 0")
        check(len(set(self.ratios)) == len(self.ratios), "ratios", "has duplicates")
        check(len(self.seeds) > 0 and len(set(self.seeds)) == len(self.seeds), "seeds", "must be distinct, ≥ 1")
        check(self.num_real is None or self.num_real > 0, "num_real", f"must be > 0, got {self.num_real}")
        check(self.max_test is None or self.max_test > 0, "max_test", f"must be > 0, got {self.max_test}")
        check(self.categories is None or len(self.categories) > 0, "categories", "must not be empty")
        check(self.num_workers >= 0, "num_workers", f"must be ≥ 0, got {self.num_workers}")
        check(self.show >= 0, "show", f"must be ≥ 0, got {self.show}")

    @property
    def ratio_names(self) -> list[str]:
        """The ratios as 'R:A' text: '1:0', '1:1', …"""
        return [f"1:{a}" for a in self.ratios]


# ------------------------------------------------------------------------------------------------------- data

def open_dataset(path: str | Path, role: str) -> CocoDataset:
    """A data set in our COCO format; UserError naming `role` (--real/--synthetic/--test) if missing or not ours."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"{role} {path}: directory not found")
    if not (path / "annotations.json").is_file():
        hint = (f"; it is a sharded `baggan synthesize` output: merge its shards first, `baggan coco merge {path} "
                f"--out MERGED`" if (path / "index.json").is_file() else "")
        raise UserError(f"{role} {path}: not a data set in the toolkit's format (no annotations.json){hint}")
    return CocoDataset(path)


def resolve_categories(test: CocoDataset, wanted: Sequence[str] | None) -> list[str]:
    """Class names 1..K-1: `wanted` (each must be a test-set category) or all test-set categories by id."""
    names = [c["name"] for c in sorted(test.categories, key=lambda c: c["id"])]
    if wanted is None:
        if not names:
            raise DataError(f"{test.path}: the test set has no categories")
        return names
    lowered = {n.lower(): n for n in names}
    missing = [w for w in wanted if w.lower() not in lowered]
    if missing:
        raise UserError(f"categories: {missing[0]!r} is not a category of the test set {test.path} "
                        f"(it has: {', '.join(names)})")
    return [lowered[w.lower()] for w in wanted]


def label_lookup(ds: CocoDataset, names: Sequence[str]) -> np.ndarray:
    """Table mapping `ds`'s category ids to class indices 1..K-1 by name (other categories and 0 → 0)."""
    ids = [int(c["id"]) for c in ds.categories]
    lut = np.zeros(max(ids, default=0) + 1, np.int64)
    index = {n.lower(): i + 1 for i, n in enumerate(names)}
    for c in ds.categories:
        lut[int(c["id"])] = index.get(str(c["name"]).lower(), 0)
    return lut


def letterbox(image: np.ndarray, label: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Resize keeping the aspect ratio and pad to size² (white image, background label).

    Returns (image, label, box) with box = (y0, y1, x0, x1), the scan's place inside the padded square.
    """
    h, w = label.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(image, (nw, nh), interpolation=interp)
    lab = cv2.resize(label.astype(np.uint16), (nw, nh), interpolation=cv2.INTER_NEAREST)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out_img = np.full((size, size, 3), 255, np.uint8)
    out_lab = np.zeros((size, size), np.uint8)
    out_img[y0:y0 + nh, x0:x0 + nw] = img
    out_lab[y0:y0 + nh, x0:x0 + nw] = lab
    return out_img, out_lab, (y0, y0 + nh, x0, x0 + nw)


class ScanSource:
    """One data set as letterboxed (image, class-index label, box) triples, optionally cached in memory."""

    def __init__(self, ds: CocoDataset, names: Sequence[str], size: int, cache: bool):
        self.ds, self.size, self.cache = ds, size, cache
        self.lut = label_lookup(ds, names)
        self._memo: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, ...]]] = {}

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, i: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
        """Scan i letterboxed to size², its label map in class indices, and its box."""
        if i in self._memo:
            return self._memo[i]
        raw = self.ds.read_label(i)
        if raw.size and (raw.min() < 0 or raw.max() >= len(self.lut)):
            raise DataError(f"{self.ds.root / 'labels' / self.ds.images[i].get('label_file', '?')}: label id "
                            f"{raw.max()} is not a category of {self.ds.path}")
        item = letterbox(self.ds.read_image(i), self.lut[raw], self.size)
        if self.cache:
            self._memo[i] = item
        return item


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 → 3xHxW float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


def build_augment(aug: AugmentConfig, seed: int):
    """The albumentations pipeline for training: crop, flips, shift-scale-rotate (white fill), colour jitter."""
    import albumentations as A

    steps = []
    if aug.crop:  # half the windows hold an object when the scan has one: threats are rare, small pixels
        steps.append(A.OneOf([A.CropNonEmptyMaskIfExists(aug.crop, aug.crop), A.RandomCrop(aug.crop, aug.crop)],
                             p=1.0))
    if aug.flip:
        steps += [A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]
    steps += [A.Affine(scale=(1 - aug.scale, 1 + aug.scale), translate_percent=(-aug.translate, aug.translate),
                       rotate=(-aug.rotate, aug.rotate), border_mode=cv2.BORDER_CONSTANT, fill=255, fill_mask=0,
                       p=aug.p_affine),
              A.ColorJitter(brightness=aug.brightness, contrast=aug.contrast, saturation=aug.saturation,
                            hue=aug.hue, p=aug.p_color)]
    return seed_augment(A.Compose(steps), seed)


def seed_augment(augment, seed: int):
    """Give an albumentations Compose (and all its transforms) one shared random stream seeded by `seed`.

    Compose(seed=…) seeds every transform with the same seed, so their apply/skip draws move in lockstep;
    one shared stream keeps them independent.
    """
    import random

    augment.set_random_state(np.random.default_rng(seed), random.Random(seed))
    return augment


class TrainingSet(torch.utils.data.Dataset):
    """(source, index) items → augmented (image tensor [3,S,S], label tensor [S,S] int64)."""

    def __init__(self, items: Sequence[tuple[ScanSource, int]], augment):
        self.items, self.augment = list(items), augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        source, i = self.items[k]
        image, label, _ = source.get(i)
        out = self.augment(image=image, mask=label)
        return to_tensor(out["image"]), torch.from_numpy(np.ascontiguousarray(out["mask"])).long()


# ---------------------------------------------------------------------------------------------- models & runs

def build_model(mc: ModelConfig, num_classes: int) -> nn.Module:
    """The configured segmenter with `num_classes` outputs (backbone weights loaded if given)."""
    from baggan.evaluate.deeplab import DeepLabV3
    from baggan.evaluate.resnet import load_backbone_weights
    from baggan.evaluate.sdanet import SDANet

    if mc.name == "deeplabv3":
        model = DeepLabV3(num_classes, mc.depth, mc.width, mc.output_stride, mc.head_channels)
    else:
        model = SDANet(num_classes, mc.depth, mc.width, mc.head_channels, head_channels=max(mc.head_channels // 2, 8))
    if mc.backbone_weights:
        load_backbone_weights(model.backbone, mc.backbone_weights)
    return model


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean over foreground classes of the soft Dice 2|P∩Y| / (|P| + |Y|), pooled over the batch."""
    prob = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(prob.dtype)
    inter, total = (prob * onehot).sum((0, 2, 3)), (prob + onehot).sum((0, 2, 3))
    return 1 - ((2 * inter + 1) / (total + 1)).mean()


def _reseed_worker(worker_id: int, seed: int) -> None:
    """DataLoader workers start with copies of one augmentation RNG: give each its own stream."""
    seed_augment(torch.utils.data.get_worker_info().dataset.augment, seed + 7919 * (worker_id + 1))


@dataclass
class Training:
    """How a run's training went."""

    final_loss: float  # mean loss of the last 10 % of the steps taken (at least one)
    steps: int  # steps taken
    best_step: int  # steps of the kept weights (= steps without validation)
    val_miou: float  # validation mIoU of the kept weights (NaN without validation)
    val_history: list[tuple[int, float]]  # (step, validation mIoU) of every score


def train_segmenter(model: nn.Module, data: TrainingSet, cfg: DownstreamConfig, seed: int, device: torch.device,
                    desc: str, validate: Callable[[nn.Module], float] | None = None) -> Training:
    """Train at most cfg.steps steps (cross-entropy [+ Dice], poly lr decay). With `validate` (model → validation
    mIoU), score every cfg.eval_every steps, stop after cfg.patience scores without improvement and keep the best
    weights."""
    from tqdm import tqdm

    sampler = torch.utils.data.RandomSampler(data, replacement=True, num_samples=cfg.steps * cfg.batch_size,
                                             generator=torch.Generator().manual_seed(seed))
    loader = torch.utils.data.DataLoader(data, cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
                                         drop_last=True, pin_memory=device.type == "cuda",
                                         worker_init_fn=functools.partial(_reseed_worker, seed=seed))
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        opt = torch.optim.AdamW(params, cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / cfg.steps) ** cfg.poly_power)
    model.to(device).train()
    losses, history, best, stale = [], [], (-math.inf, 0, None), 0
    bar = tqdm(loader, total=cfg.steps, desc=desc, unit="step", leave=False)
    for step, (x, y) in enumerate(bar):
        logits, y = model(x.to(device)), y.to(device)
        loss = F.cross_entropy(logits, y)
        if cfg.dice_weight:
            loss = loss + cfg.dice_weight * dice_loss(logits, y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"{desc}: segmentation loss is {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if validate is not None and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            score = validate(model)
            model.train()
            history.append((step + 1, score))
            if score > best[0]:  # NaN (no class anywhere) never counts as better
                best, stale = (score, step + 1, copy.deepcopy(model.state_dict())), 0
            else:
                stale += 1
            if stale >= cfg.patience:
                break
    steps = len(losses)
    if best[2] is not None:
        model.load_state_dict(best[2])
    tail = losses[-max(1, steps // 10):]
    return Training(float(np.mean(tail)), steps, best[1] if best[2] is not None else steps,
                    best[0] if best[2] is not None else float("nan"), history)


@torch.inference_mode()
def predict(model: nn.Module, source: ScanSource, indices: Sequence[int], device: torch.device,
            batch_size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ground truth, prediction) label maps of scans `indices`, cropped to their letterbox boxes."""
    model.to(device).eval()
    out = []
    for start in range(0, len(indices), batch_size):
        items = [source.get(i) for i in indices[start:start + batch_size]]
        x = torch.stack([to_tensor(img) for img, _, _ in items]).to(device)
        pred = model(x).argmax(1).cpu().numpy()
        for (_, lab, (y0, y1, x0, x1)), p in zip(items, pred):
            out.append((lab[y0:y1, x0:x1], p[y0:y1, x0:x1].astype(np.uint8)))
    return out


@dataclass
class RunResult:
    """Scores of one (model, ratio, seed) run; IoUs as fractions."""

    model: str
    ratio: str
    real: int
    synthetic: int
    seed: int
    miou: float
    wiou: float
    fg_iou: float
    class_iou: list[float]
    final_loss: float
    train_seconds: float
    train_cpu_seconds: float  # process CPU time: with one thread ≈ the wall time on an idle core
    eval_seconds: float
    steps: int = 0  # optimisation steps taken
    best_step: int = 0  # steps of the weights tested (early stopping keeps the best validation score's)
    val_miou: float = float("nan")  # their validation mIoU (NaN without validation)


def _subset(n_have: int, n_want: int, seed: int) -> list[int]:
    """The first n_want indices of a seeded permutation of range(n_have)."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n_have)[:n_want]]


def plan_runs(cfg: DownstreamConfig, n_real: int, n_synth: int, synth_dir: Path) -> tuple[int, dict[str, int]]:
    """R and the synthetic count A of each ratio; UserError if the real or synthetic set is too small."""
    r = cfg.num_real or n_real - cfg.validation
    if r + cfg.validation > n_real or r < 1:
        raise UserError(f"num_real + validation: {r} training + {cfg.validation} validation real scans wanted, "
                        f"--real has {n_real}")
    plan = {f"1:{a}": a * r for a in cfg.ratios}
    worst = max(plan, key=plan.get)
    if plan[worst] > n_synth:
        raise UserError(f"ratio {worst} with R = {r} needs {plan[worst]} synthetic scans, --synthetic {synth_dir} "
                        f"has {n_synth} (lower num_real or drop the ratio)")
    return r, plan


def dataset_fingerprint(ds: CocoDataset) -> str:
    """A hash of a data set's annotations file and its images' names and sizes: changes when the set does."""
    images = [(p.name, p.stat().st_size) for p in map(ds.image_path, range(len(ds)))]
    return stable_hash({"annotations": file_sha256(ds.path), "images": images}, n=64)


def read_runs(doc: dict) -> list[RunResult]:
    """The finished runs of a sweep's run log (OUTDIR/downstream-runs.json, already read)."""
    return [RunResult(**{k: _from_json(v) for k, v in r.items()}) for r in doc["runs"]]


def _run_defining(key: dict) -> dict:
    """A sweep key without its ratio and seed lists: a run (model, ratio, seed) depends on neither, since the
    synthetic scans of ratio a are the first a·R of one seeded order whatever the largest ratio."""
    config = {k: v for k, v in key["config"].items() if k not in ("ratios", "seeds")}
    return rp.to_jsonable({**key, "config": config})


def _finished_runs(log: Path, key: dict) -> list[RunResult]:
    """Runs recorded in `log` by an earlier call with the same config and data (else none); an earlier call with
    other ratios or seeds counts: a widened sweep trains only its new runs."""
    if not log.is_file():
        return []
    doc = read_json(log)
    if "config" not in doc.get("key", {}) or _run_defining(key) != _run_defining(doc["key"]):
        return []
    return read_runs(doc)


def _from_json(value):
    """null → NaN, through lists: undoes report.to_jsonable for the numbers of a run record."""
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return float("nan") if value is None else value


def run_downstream(cfg: DownstreamConfig, real_dir: str | Path, synthetic_dir: str | Path, test_dir: str | Path,
                   outdir: str | Path, device: torch.device) -> Path:
    """Run the whole sweep and write the report folder; returns the Markdown path."""
    from tqdm import tqdm

    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    real, synth, test = (open_dataset(real_dir, "--real"), open_dataset(synthetic_dir, "--synthetic"),
                         open_dataset(test_dir, "--test"))
    names = resolve_categories(test, cfg.categories)
    k = len(names) + 1
    src = {role: ScanSource(ds, names, cfg.resolution, cfg.cache) for role, ds in
           (("real", real), ("synthetic", synth), ("test", test))}
    r, plan = plan_runs(cfg, len(real), len(synth), Path(synthetic_dir))
    real_order = _subset(len(real), r + cfg.validation, cfg.data_seed)
    real_idx, val_idx = real_order[:r], real_order[r:]
    synth_order = _subset(len(synth), max(plan.values()), cfg.data_seed + 1)
    test_idx = list(range(len(test)))[:cfg.max_test or len(test)]
    show_idx = test_idx[:cfg.show]
    fg_fraction = float(np.mean([(lab[y0:y1, x0:x1] > 0).mean()  # the ceiling of wIoU
                                 for _, lab, (y0, y1, x0, x1) in map(src["test"].get, test_idx)]))
    log = Path(outdir) / "downstream-runs.json"  # finished runs, so an interrupted sweep resumes
    key = {"config": to_dict(cfg), "data": [str(real_dir), str(synthetic_dir), str(test_dir)],
           "content": [dataset_fingerprint(ds) for ds in (real, synth, test)]}  # a changed set is rerun
    done = {(x.model, x.ratio, x.seed): x for x in _finished_runs(log, key)}
    runs: list[RunResult] = []
    shown: dict[tuple[str, str], list[np.ndarray]] = {}
    t_start = time.time()
    jobs = [(mc, ratio, seed) for mc in cfg.models for ratio in cfg.ratio_names for seed in cfg.seeds]
    for mc, ratio, seed in tqdm(jobs, desc="downstream runs", unit="run"):
        if (mc.label, ratio, seed) in done:
            runs.append(done[(mc.label, ratio, seed)])
            continue
        items = [(src["real"], i) for i in real_idx] + [(src["synthetic"], i) for i in synth_order[:plan[ratio]]]
        torch.manual_seed(seed)
        model = build_model(mc, k)
        t0, c0 = time.time(), time.process_time()
        validate = None
        if val_idx:
            def validate(m: nn.Module) -> float:
                pairs = predict(m, src["real"], val_idx, device, 2 * cfg.batch_size)
                return float(segmentation_scores(np.stack([confusion_matrix(g, p, k) for g, p in pairs])).miou)
        run = train_segmenter(model, TrainingSet(items, build_augment(cfg.augment, seed)), cfg, seed, device,
                              f"{mc.name} {ratio} seed {seed}", validate)
        t1, c1 = time.time(), time.process_time()
        pairs = predict(model, src["test"], test_idx, device, 2 * cfg.batch_size)
        scores = segmentation_scores(np.stack([confusion_matrix(g, p, k) for g, p in pairs]))
        runs.append(RunResult(mc.label, ratio, r, plan[ratio], seed, scores.miou, scores.wiou, scores.fg_iou,
                              scores.class_iou.tolist(), run.final_loss, t1 - t0, c1 - c0, time.time() - t1,
                              run.steps, run.best_step, run.val_miou))
        if seed == cfg.seeds[0] and ratio in (cfg.ratio_names[0], cfg.ratio_names[-1]):
            shown[(mc.label, ratio)] = [p for _, p in pairs[:len(show_idx)]]
        ahead = [x for k, x in done.items() if k not in {(y.model, y.ratio, y.seed) for y in runs}]  # reused later
        write_json_atomic(log, rp.to_jsonable({"key": key, "runs": [dataclasses.asdict(x) for x in runs + ahead]}),
                          indent=1)
    info = {"real": {"dir": str(real_dir), "scans": len(real), "used": r, "validation": len(val_idx)},
            "synthetic": {"dir": str(synthetic_dir), "scans": len(synth), "used_max": max(plan.values())},
            "test": {"dir": str(test_dir), "scans": len(test), "used": len(test_idx)},
            "classes": ["background", *names], "test_foreground_fraction": fg_fraction,
            "seconds": time.time() - t_start}
    figures = {"downstream.png": _bars_figure(cfg, runs)}
    if show_idx:
        figures["predictions.png"] = _predictions_figure(src["test"], show_idx, shown, names)
    data, markdown = downstream_report(cfg, runs, info, device, list(figures))
    return rp.write_report(outdir, "downstream", data, markdown, figures)


# ----------------------------------------------------------------------------------------------------- report

def summarize(runs: Sequence[RunResult], model: str, ratio: str) -> dict:
    """Mean and std over seeds of one (model, ratio): miou, wiou, fg_iou (pairs) and class_iou (lists)."""
    sel = [x for x in runs if x.model == model and x.ratio == ratio]
    out = {key: mean_std([getattr(x, key) for x in sel]) for key in ("miou", "wiou", "fg_iou")}
    m, s = mean_std(np.array([x.class_iou for x in sel]), axis=0)
    out["class_iou"] = (np.atleast_1d(m).tolist(), np.atleast_1d(s).tolist())
    out["seeds"] = len(sel)
    out["train_seconds"] = float(np.mean([x.train_seconds for x in sel]))
    out["train_cpu_seconds"] = float(np.mean([x.train_cpu_seconds for x in sel]))
    out["steps"] = float(np.mean([x.steps for x in sel]))
    out["real"], out["synthetic"] = sel[0].real, sel[0].synthetic
    return out


def _models(runs: Sequence[RunResult]) -> list[str]:
    """Model labels in run order, each once."""
    return list(dict.fromkeys(x.model for x in runs))


def _bars_figure(cfg: DownstreamConfig, runs: Sequence[RunResult]):
    """mIoU and wIoU (mean ± std over seeds) vs R:A, one bar series per model."""
    panels = {}
    for key, title in (("miou", "mIoU (foreground classes)"), ("wiou", "wIoU")):
        panels[title] = {}
        for model in _models(runs):
            stats = [summarize(runs, model, ratio)[key] for ratio in cfg.ratio_names]
            panels[title][model] = ([m for m, _ in stats], [s for _, s in stats])
    return rp.grouped_bars(panels, cfg.ratio_names, ylabel="IoU (%)", xlabel="R:A (real : synthetic)")


def _predictions_figure(test: ScanSource, show_idx: Sequence[int], shown: dict[tuple[str, str], list[np.ndarray]],
                        names: Sequence[str]):
    """Test scans with their ground truth and each model's predictions at the first and last ratio (first seed)."""
    rows, labels = [], []
    cols = ["scan", "ground truth"] + [f"{model.split(' ')[0]} {ratio}" for model, ratio in shown]
    for j, i in enumerate(show_idx):
        image, label, (y0, y1, x0, x1) = test.get(i)
        image = image[y0:y1, x0:x1]
        row = [image, rp.overlay_labels(image, label[y0:y1, x0:x1], len(names) + 1)]
        row += [rp.overlay_labels(image, preds[j], len(names) + 1) for preds in shown.values()]
        rows.append(row)
        labels.append(f"test {i}")
    colours = rp.label_colours(len(names) + 1)
    legend = {name: colours[c] for c, name in enumerate(names, start=1)}
    return rp.image_grid(rows, labels, cols, title="Downstream predictions (first seed)", legend=legend)


def _length(cfg: DownstreamConfig, info: dict) -> str:
    """How long each run trained, in words."""
    if not info["real"].get("validation"):
        return f"{cfg.steps} steps"
    return (f"early stopping on {info['real']['validation']} held-out real scans (validation mIoU every "
            f"{cfg.eval_every} steps, patience {cfg.patience}, at most {cfg.steps} steps; the best weights tested)")


def downstream_report(cfg: DownstreamConfig, runs: Sequence[RunResult], info: dict, device: torch.device,
                      figures: Sequence[str]) -> tuple[dict, str]:
    """The report's JSON data and Markdown text."""
    classes = info["classes"]
    summary = {m: {ratio: summarize(runs, m, ratio) for ratio in cfg.ratio_names} for m in _models(runs)}
    base = cfg.ratio_names[0]
    md = [f"# Downstream segmentation with synthetic scans (paper Table 3, section 8.2)\n",
          f"Real training scans: `{info['real']['dir']}` (R = {info['real']['used']} of {info['real']['scans']}) · "
          f"synthetic: `{info['synthetic']['dir']}` ({info['synthetic']['scans']} scans) · test: "
          f"`{info['test']['dir']}` ({info['test']['used']} scans) · {cfg.resolution}² · seeds "
          f"{', '.join(map(str, cfg.seeds))} · {_length(cfg, info)} × batch {cfg.batch_size} per run · device "
          f"{device} · total {info['seconds'] / 60:.1f} min.\n",
          f"Classes: {', '.join(classes[1:])} (0 = background). Foreground covers "
          f"{100 * info['test_foreground_fraction']:.2f}% of the test scans' pixels: the ceiling of wIoU.\n"]
    for model, by_ratio in summary.items():
        md.append(f"## {model}\n")
        rows = []
        for ratio, s in by_ratio.items():
            d_miou = s["miou"][0] - by_ratio[base]["miou"][0]
            d_wiou = s["wiou"][0] - by_ratio[base]["wiou"][0]
            rows.append([ratio, s["real"], s["synthetic"], rp.fmt_mean_std(*s["miou"]), rp.fmt_mean_std(*s["wiou"]),
                         rp.fmt_mean_std(*s["fg_iou"]), rp.fmt(d_miou, scale=100), rp.fmt(d_wiou, scale=100),
                         rp.fmt(s["steps"], 0), rp.fmt(s["train_seconds"], 1), rp.fmt(s["train_cpu_seconds"], 1)])
        md.append(rp.markdown_table(["R:A", "real", "synthetic", "mIoU %", "wIoU %", "FG-IoU %",
                                     f"ΔmIoU vs {base} (pp)", f"ΔwIoU vs {base} (pp)", "steps/run", "train s/run",
                                     "train CPU s/run"], rows))
        md.append("\nPer-class IoU % (mean ± std over seeds):\n")
        rows = [[ratio] + [rp.fmt_mean_std(m, sd) for m, sd in zip(*s["class_iou"])]
                for ratio, s in by_ratio.items()]
        md.append(rp.markdown_table(["R:A", *classes], rows))
        md.append("")
    md += [f"![{name}]({name})\n" for name in figures]
    md.append("## Conventions\n")
    md.append("- IoU per class from the confusion matrix summed over the test scans; a class in neither the ground "
              "truth nor the predictions of the whole test set has no IoU (NaN, shown '–') and is skipped by "
              "the means (not counted as 0 as the paper's code does).\n"
              "- mIoU: mean of the foreground classes' IoU (background excluded).\n"
              "- wIoU: per scan Σ_{c≠0} (|gt=c| / (H·W)) · IoU_c, not renormalised, mean over test scans.\n"
              "- FG-IoU: IoU of (label > 0) vs (prediction > 0) per scan, mean over scans.\n"
              "- mean ± sample std over seeds; Δ = difference of means in IoU points.\n"
              "- Scans letterboxed to the network size; scores inside the letterbox at that size.\n")
    data = {"protocol": "downstream", "config": to_dict(cfg), "environment": rp.environment(str(device)),
            "data": info, "conventions": {"absent_class": "nan-skip", "miou": "foreground classes, dataset-level",
                                          "iou_scale": "fraction"},
            "summary": summary, "runs": [dataclasses.asdict(x) for x in runs]}
    return data, "\n".join(md)


__all__ = ["ModelConfig", "AugmentConfig", "DownstreamConfig", "open_dataset", "resolve_categories",
           "label_lookup", "letterbox", "ScanSource", "TrainingSet", "build_augment", "seed_augment", "build_model",
           "dice_loss", "Training", "train_segmenter", "predict", "RunResult", "read_runs", "plan_runs", "run_downstream", "summarize",
           "downstream_report"]
