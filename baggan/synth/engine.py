"""The synthesis engine: latents → (scan, label map, confidence) in batches on the device, written beside it.

The engine knows nothing of networks: it takes an `Annotate` callable (ws → images, class maps, probs),
a `sample_ws(n, psi, seed)` function and the class → category-id table. `baggan.synth.build` wires the
real generator, HFC encoder and segmenter; tests wire a toy.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from tqdm import tqdm

from baggan.config import check
from baggan.errors import UserError
from baggan.io import quantize, read_json
from baggan.synth.latents import CALIBRATION_SHARD, LatentSampler, candidate_seed, fit_direction
from baggan.oneshot import THREAT_THRESHOLD, condition_classes
from baggan.synth.quality import confidence, has_category
from baggan.synth.shards import check_settings, rebuild_index, shard_done, write_top_file
from baggan.synth.writers import WRITERS, ProcessWriter, ShardJobs, ThreadWriter, make_writer

STEER_FILE = "steer.json"
CLASS_FROM = ("segmenter", "condition")  # SynthSettings.class_from
Conditions = Callable[[Sequence[int]], Sequence[int]]  # z seeds → the category id each scan was drawn with


class Annotate(Protocol):
    """ws [N, num_ws, w_dim] → (images [N, 3, H, W] in [-1, 1], class maps [N, H, W] int, probs [N, K, H, W])."""

    def __call__(self, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ...


@dataclass(frozen=True)
class SynthSettings:
    """What to synthesise. Every field but `batch`, `queue` and `writer` fixes the content of the output."""

    n: int  # images in the data set (after threat rejection and the confidence drop)
    shard_size: int = 1000
    seed: int = 0
    psi: float = 0.7  # truncation
    batch: int = 8  # scans per annotate call (does not change the content)
    threat: int | None = None  # keep only scans holding this category id ...
    min_area: int = 0  # ... with a connected region of >= min_area pixels; also the instance minimum area
    fill_holes: bool = False
    drop_uncertain: float = 0.0  # per shard, drop this fraction of least confident scans (generating extra)
    steer: float = 0.0  # with `threat`: w' = w + steer * d, d = mean(w | accepted) - mean(w | rejected)
    calibration: int = 256  # candidates the steering direction is fitted on
    max_tries: int = 100  # with `threat`: give up a shard after max_tries * its size candidates
    polygons: bool = False  # segmentation as polygons instead of RLE
    queue: int = 4  # batches waiting for the writer
    writer: str = "thread"  # where the writing runs beside annotation: a "thread" or a forked "process"
    class_from: str = "segmenter"  # a threat pixel's category: the segmenter's, or the label the scan was drawn with
    threat_threshold: float = THREAT_THRESHOLD  # class_from condition: threat where 1 - p(background) > this

    def __post_init__(self):
        check(self.n >= 1, "n", f"must be >= 1, got {self.n}")
        check(math.isfinite(self.psi) and math.isfinite(self.steer), "psi/steer",
              f"must be finite numbers, got {self.psi} and {self.steer}")
        check(self.shard_size >= 1, "shard_size", f"must be >= 1, got {self.shard_size}")
        check(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")
        check(0.0 <= self.drop_uncertain < 1.0, "drop_uncertain", f"must lie in [0, 1), got {self.drop_uncertain}")
        check(self.min_area >= 0, "min_area", f"must be >= 0, got {self.min_area}")
        check(self.steer == 0.0 or self.threat is not None, "steer", "needs a threat category")
        check(self.calibration >= 2, "calibration", f"must be >= 2, got {self.calibration}")
        check(self.max_tries >= 1 and self.queue >= 1, "max_tries/queue", "must be >= 1")
        check(self.writer in WRITERS, "writer", f"must be one of {', '.join(WRITERS)}, got {self.writer!r}")
        check(self.class_from in CLASS_FROM, "class_from",
              f"must be one of {', '.join(CLASS_FROM)}, got {self.class_from!r}")
        check(0.0 < self.threat_threshold < 1.0, "threat_threshold", f"must lie in (0, 1), got {self.threat_threshold}")

    @property
    def num_shards(self) -> int:
        """Number of shards."""
        return math.ceil(self.n / self.shard_size)

    def shard_target(self, k: int) -> int:
        """Images shard k holds."""
        return min(self.shard_size, self.n - k * self.shard_size)

    def shard_need(self, k: int) -> int:
        """Accepted scans shard k generates before its least confident ones are dropped."""
        return math.ceil(self.shard_target(k) / (1.0 - self.drop_uncertain))

    def content(self) -> dict:
        """The settings that define the output (compared when resuming; class_from only where it is not the
        segmenter's and threat_threshold only where it applies and is not 0.5, so that data sets written before
        they existed still resume)."""
        skip = ("batch", "queue", "writer") + (("class_from",) if self.class_from == "segmenter" else ()) \
            + (("threat_threshold",) if self.class_from == "segmenter" or self.threat_threshold == 0.5 else ())
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class HostBatch:
    """One annotated batch on the host: uint8 scans, category-id maps, confidences, latents."""

    images: np.ndarray  # [N, H, W, 3] uint8
    labels: np.ndarray  # [N, H, W] category ids (uint8 where every id is below 256)
    confidence: np.ndarray  # [N] float
    ws: np.ndarray  # [N, num_ws, w_dim] float32


def category_table(class_to_category: Sequence[int]) -> torch.Tensor:
    """Class → category id as a tensor: uint8 while every id is below 256 (then the category maps that
    `annotate_batch` brings to the host and hands to the writer take a quarter of the bytes), else int64."""
    ids = list(class_to_category)
    return torch.as_tensor(ids, dtype=torch.uint8 if max(ids) < 256 else torch.int64)


def annotate_batch(annotate: Annotate, ws: torch.Tensor, class_to_category: torch.Tensor,
                   drawn: Sequence[int] | None = None, threshold: float = THREAT_THRESHOLD) -> HostBatch:
    """Run `annotate` on ws and bring scans, category maps (via the class → id table) and confidences to the host.
    With `drawn` (the category id each scan was drawn with) a threat pixel (1 - p(background) > `threshold`) takes
    that category (`condition_classes`)."""
    with torch.no_grad():
        images, classes, probs = annotate(ws)
        assert images.ndim == 4 and images.shape[1] == 3, f"images must be [N, 3, H, W], got {list(images.shape)}"
        assert classes.shape == (images.shape[0], *images.shape[2:]), (
            f"label maps {list(classes.shape)} do not match images {list(images.shape)}")
        if drawn is not None:
            ids = torch.as_tensor(list(drawn), device=classes.device)
            classes = condition_classes(probs, class_to_category.to(classes.device).long()[None, :] == ids[:, None],
                                        threshold)
        conf = confidence(probs, classes)
        pixels = quantize(images).permute(0, 2, 3, 1)
        labels = class_to_category.to(classes.device)[classes.long()]  # the table's dtype: see `category_table`
    return HostBatch(pixels.cpu().numpy(), labels.cpu().numpy(), conf.double().cpu().numpy(),
                     ws.float().cpu().numpy())


@dataclass
class Summary:
    """What one `synthesize` call did, plus the totals of the data set on disk."""

    outdir: Path
    rank: int
    world: int
    shards_written: list[int]
    shards_skipped: list[int]
    images: int  # written by this call (after drops)
    seconds: float
    index: dict
    steering: dict | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def images_per_s(self) -> float:
        """Throughput of this call."""
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        """Human-readable summary."""
        t = self.index["totals"]
        rate = t["acceptance_rate"]
        out = [f"rank {self.rank}/{self.world}: wrote {len(self.shards_written)} shard(s), "
               f"skipped {len(self.shards_skipped)} finished; {self.images} images in {self.seconds:.1f} s "
               f"({self.images_per_s:.2f} images/s)",
               f"data set: {t['images']} images, {t['annotations']} instances in "
               f"{len(self.index['shards'])}/{self.index['num_shards']} shards"
               + ("" if self.index["complete"] else " (incomplete: other ranks or a resume still to run)"),
               "instances per category: " + (", ".join(f"{k} {v}" for k, v in sorted(t["instances_per_category"].items()))
                                             or "none"),
               f"acceptance rate: {rate:.3f} ({t['accepted']}/{t['candidates']} candidates)" if rate is not None
               else "acceptance rate: n/a", f"dropped as least confident: {t['dropped']}"]
        if self.steering:
            out.append(f"steering: alpha {self.steering['alpha']}, direction fitted on {self.steering['calibration']} "
                       f"scans ({self.steering['calibration_acceptance']:.3f} accepted there)")
        out += [f"warning: {w}" for w in self.warnings]
        out.append(f"written to {self.outdir} (index: {self.outdir / 'index.json'})")
        return out


def _steering(annotate: Annotate, sampler: LatentSampler, table: torch.Tensor, s: SynthSettings,
              outdir: Path, device: torch.device | str, progress: bool, conditions: Conditions | None) -> dict | None:
    """Load DIR/steer.json or fit the steering direction on `s.calibration` candidates (None if it cannot)."""
    path = outdir / STEER_FILE
    if path.is_file():
        return read_json(path)
    seeds = [candidate_seed(s.seed, CALIBRATION_SHARD, j) for j in range(s.calibration)]
    ws, accepted = [], []
    for i in tqdm(range(0, len(seeds), s.batch), desc="calibrating steering", unit="batch", leave=False,
                  disable=not progress):
        part = seeds[i:i + s.batch]
        b = annotate_batch(annotate, sampler(part).to(device), table, conditions and conditions(part),
                           s.threat_threshold)
        ws.append(torch.from_numpy(b.ws))
        accepted += [has_category(lab, s.threat, s.min_area) for lab in b.labels]
    ws_all, acc = torch.cat(ws), torch.tensor(accepted)
    if acc.all() or not acc.any():
        return None
    d = fit_direction(ws_all[acc], ws_all[~acc])
    info = {"calibration": s.calibration, "calibration_acceptance": float(acc.float().mean()), "direction": d.tolist()}
    write_top_file(outdir, STEER_FILE, info)
    return info


def _fill_shard(annotate: Annotate, sampler: LatentSampler, table: torch.Tensor, s: SynthSettings, k: int,
                device: torch.device | str, writer: ThreadWriter | ProcessWriter, bar: tqdm,
                conditions: Conditions | None) -> tuple[int, int]:
    """Annotate shard k's candidates in order until it has its accepted scans; queue them. → (accepted, examined)."""
    need = s.shard_need(k)
    limit = need * s.max_tries if s.threat is not None else need
    accepted = examined = j = 0
    while accepted < need and j < limit:
        size = min(s.batch, need - accepted) if s.threat is None else min(s.batch, limit - j)
        seeds = [candidate_seed(s.seed, k, j + i) for i in range(size)]
        b = annotate_batch(annotate, sampler(seeds).to(device), table, conditions and conditions(seeds),
                           s.threat_threshold)
        rows = []
        for i in range(size):
            if accepted == need:
                break  # later candidates of this batch are discarded: the content does not depend on the batch
            examined += 1
            if s.threat is not None and not has_category(b.labels[i], s.threat, s.min_area):
                continue
            accepted += 1
            # 4 decimals: batched kernels may differ in the last float bits between batch sizes
            meta = {"seed": s.seed, "shard": k, "candidate": j + i, "z_seed": seeds[i], "psi": s.psi,
                    "confidence": round(float(b.confidence[i]), 4)}
            if sampler.alpha:
                meta["steer"] = sampler.alpha
            rows.append((b.images[i], b.labels[i], b.ws[i], meta))
        writer.submit("rows", k, rows)
        bar.update(len(rows))
        bar.set_postfix(shard=k, accept=f"{accepted / max(examined, 1):.2f}")
        j += size
    return accepted, examined


@torch.no_grad()  # inference only; restores the caller's autograd mode on return
def synthesize(annotate: Annotate, sample_ws: Callable[..., torch.Tensor], categories: list[dict],
               class_to_category: Sequence[int], outdir: str | Path, settings: SynthSettings, rank: int = 0,
               world: int = 1, device: torch.device | str = "cpu", provenance: dict | None = None,
               progress: bool = True, on_shard_done: Callable[[int], None] | None = None,
               inputs: dict | None = None, conditions: Conditions | None = None) -> Summary:
    """Fill the shards k ≡ rank (mod world) of DIR that are not finished yet; returns a Summary.

    `class_to_category[c]` is the category id of segmenter class c (0 = background). Each shard is written
    by a writer thread (or process: `settings.writer`) into a hidden folder renamed into place when complete;
    DIR/index.json is rebuilt after every shard. `on_shard_done(k)` runs once shard k is in place (on the
    writer thread, or in this process when the writer process reports it: baggan.synth.writers).
    `inputs` (e.g. hashes of the network files) joins the settings that a resumed run must match.
    `conditions` (z seeds → the category id each scan is drawn with: a conditional generator's label) is what
    `settings.class_from = "condition"` needs.
    """
    s, outdir, t0 = settings, Path(outdir), time.perf_counter()
    if s.class_from == "condition" and conditions is None:
        raise UserError("class_from condition: the generator draws no label among the segmenter's categories (it is "
                        "not conditional on them); use class_from segmenter")
    conditions = conditions if s.class_from == "condition" else None
    if s.threat is not None and s.threat not in {c["id"] for c in categories}:
        raise UserError(f"threat category id {s.threat} is not among the data set's categories")
    table = category_table(class_to_category)
    content = dict(s.content(), class_to_category=table.tolist(), inputs=inputs)
    check_settings(outdir, content)
    mine = range(rank, s.num_shards, world)
    todo = [k for k in mine if not shard_done(outdir, k)]
    index_meta = {"settings": content, "categories": categories, "num_shards": s.num_shards}
    rebuild_index(outdir, **index_meta)
    if provenance:
        write_top_file(outdir, f"provenance-rank{rank}.json", provenance, indent=2)
    sampler = LatentSampler(sample_ws, s.psi)
    steering, warnings = None, []
    if s.steer and todo:
        steering = _steering(annotate, sampler, table, s, outdir, device, progress, conditions)
        if steering is None:
            warnings.append("calibration scans were all accepted or all rejected: no steering direction, "
                            "plain rejection sampling used")
        else:
            sampler = LatentSampler(sample_ws, s.psi, torch.tensor(steering["direction"]), s.steer)
    jobs = ShardJobs(outdir, index_meta, categories, s.min_area, s.fill_holes, s.polygons,
                     on_shard_done or (lambda k: None))
    writer = make_writer(s.writer, jobs, s.queue)
    bar = tqdm(total=sum(s.shard_need(k) for k in todo), unit="img", desc=f"synthesis (rank {rank})",
               disable=not progress, dynamic_ncols=True)
    written = 0

    try:
        for k in todo:
            t_shard = time.perf_counter()
            writer.submit("open", k, s.shard_target(k), {"description": f"baggan synthesis, shard {k}", "seed": s.seed})
            accepted, examined = _fill_shard(annotate, sampler, table, s, k, device, writer, bar, conditions)
            if accepted < s.shard_need(k):
                warnings.append(f"shard {k}: only {accepted}/{s.shard_need(k)} scans accepted after {examined} "
                                "candidates")
            stats = {"rank": rank, "candidates": examined, "accepted": accepted,
                     "seconds": round(time.perf_counter() - t_shard, 3)}
            writer.submit("finish", k, stats)
            written += min(accepted, s.shard_target(k))
    except BaseException:
        writer.abandon()
        raise
    finally:
        bar.close()
    writer.close()
    index = rebuild_index(outdir, **index_meta)
    steer_info = steering and dict({k: v for k, v in steering.items() if k != "direction"}, alpha=s.steer)
    return Summary(outdir, rank, world, todo, [k for k in mine if k not in todo], written,
                   time.perf_counter() - t0, index, steer_info, warnings)


def rank_world() -> tuple[int, int]:
    """(rank, world size) from torchrun's RANK / WORLD_SIZE environment (0, 1 when unset)."""
    import os

    try:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise UserError(f"RANK / WORLD_SIZE must be integers, got {os.environ.get('RANK')!r} / "
                        f"{os.environ.get('WORLD_SIZE')!r}") from None
    if not 0 <= rank < world:
        raise UserError(f"RANK {rank} must lie in [0, WORLD_SIZE={world})")
    return rank, world


def load_latent(root: str | Path, record: dict, num_ws: int) -> torch.Tensor:
    """The W+ latent [num_ws, w_dim] a scan was rendered from (its row of ROOT/latents.npy); render it again
    with `annotate(load_latent(...)[None])`."""
    row = np.load(Path(root) / record["latent_file"], mmap_mode="r")[record["latent_row"]]
    row = torch.from_numpy(np.array(row, np.float32))
    return row.expand(num_ws, -1).clone() if row.ndim == 1 else row
