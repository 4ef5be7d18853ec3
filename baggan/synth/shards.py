"""Sharded output: one data set per shard, each written in a hidden folder renamed into place when complete,
and DIR/index.json rebuilt (under a file lock) from the finished shards (the writers: baggan.synth.writers).

    DIR/index.json                 settings, categories, finished shards, totals (atomic, lock-serialised)
    DIR/shard-00000/annotations.json, images/, labels/, latents.npy, shard.json
    DIR/.shard-00000.*.partial/    a shard being written (removed when a run stops; after kill -9, by the
                                   next run of that shard, which redoes it)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from pathlib import Path

import numpy as np

from baggan.data.coco import INDEX_FILE, CocoWriter, instances_from_label_map, label_map_from_instances
from baggan.data.coco_tools import LATENT_FILE
from baggan.errors import UserError
from baggan.io import atomic_dir, read_json, remove_stale, write_json_atomic
from baggan.synth.quality import most_confident

SHARD_INFO = "shard.json"
INDEX_FORMAT = "baggan-synth-shards/1"


def shard_name(k: int) -> str:
    """Folder name of shard k."""
    return f"shard-{k:05d}"


def shard_done(outdir: Path, k: int) -> bool:
    """True when shard k was written completely (its folder exists only once finished)."""
    return (outdir / shard_name(k) / SHARD_INFO).is_file()


class ShardWriter:
    """Writes one shard: scans, cleaned label maps, instances and latents; `finish` drops, indexes and renames."""

    def __init__(self, outdir: Path, k: int, categories: list[dict], keep: int, min_area: int, fill_holes: bool,
                 polygons: bool, info: dict):
        self.k, self.keep, self.min_area, self.fill_holes = k, keep, min_area, fill_holes
        self._stack = contextlib.ExitStack()
        self.tmp = self._stack.enter_context(atomic_dir(outdir / shard_name(k)))
        self.coco = CocoWriter(self.tmp, categories, info, polygons=polygons)
        self.latents: list[np.ndarray] = []

    def add(self, image: np.ndarray, label: np.ndarray, latent: np.ndarray, meta: dict) -> None:
        """Write one scan: its label map (category ids) is split into instances, then rebuilt from them."""
        instances = instances_from_label_map(label, self.min_area, self.fill_holes)
        clean = label_map_from_instances(instances, label.shape)
        meta = dict(meta, latent_file=LATENT_FILE, latent_row=len(self.latents))
        self.coco.add(image, clean, instances, meta, stem=f"{self.k:05d}-{meta['candidate']:07d}")
        self.latents.append(latent)

    def add_rows(self, rows: list[tuple]) -> None:
        """`add` for each (image, label, latent, meta) row."""
        for row in rows:
            self.add(*row)

    def finish(self, stats: dict) -> dict:
        """Drop the least confident scans beyond `keep`, write annotations, latents and shard.json, rename."""
        images, anns = self.coco.images, self.coco.annotations
        kept = most_confident([im["confidence"] for im in images], self.keep) if len(images) > self.keep \
            else np.arange(len(images))
        keep_ids = {images[i]["id"] for i in kept}
        for im in images:
            if im["id"] not in keep_ids:
                (self.tmp / "images" / im["file_name"]).unlink()
                (self.tmp / "labels" / im["label_file"]).unlink()
        new_id = {images[i]["id"]: n for n, i in enumerate(kept, 1)}
        self.coco.images = [dict(images[i], id=new_id[images[i]["id"]], latent_row=n) for n, i in enumerate(kept)]
        self.coco.annotations = [dict(a, id=n, image_id=new_id[a["image_id"]])
                                 for n, a in enumerate((a for a in anns if a["image_id"] in keep_ids), 1)]
        if self.latents:
            lat = np.stack([self.latents[i] for i in kept])
            if lat.ndim == 3 and (lat == lat[:, :1]).all():
                lat = lat[:, 0]  # every layer gets the same w: store [n, w_dim]
            np.save(self.tmp / LATENT_FILE, lat)
        self.coco.close()
        per_cat: dict[str, int] = {}
        names = {c["id"]: c["name"] for c in self.coco.categories}
        for a in self.coco.annotations:
            per_cat[names[a["category_id"]]] = per_cat.get(names[a["category_id"]], 0) + 1
        conf = [im["confidence"] for im in self.coco.images]
        info = dict(stats, name=shard_name(self.k), images=len(self.coco.images),
                    annotations=len(self.coco.annotations), dropped=len(images) - len(kept),
                    instances_per_category=per_cat, mean_confidence=float(np.mean(conf)) if conf else None)
        write_json_atomic(self.tmp / SHARD_INFO, info, indent=2)
        self._stack.close()  # rename .shard-k.*.partial → shard-k
        return info

    def discard(self) -> None:
        """Remove the unfinished shard's hidden folder (the run stops before finishing it)."""
        self._stack.pop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


LOCK_FILE = ".index.lock"


@contextlib.contextmanager
def index_lock(outdir: Path):
    """Exclusive lock over the files at the top of DIR (index.json, steer.json, provenance) across processes
    (fcntl; needs a shared file system that honours it). The lock file is removed on release: a waiter that
    then holds a lock on the removed file sees it and locks the new one."""
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / LOCK_FILE
    while True:
        f = open(path, "a")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            if os.fstat(f.fileno()).st_ino == os.stat(path).st_ino:
                break  # the lock file we hold is still the one at `path`
        except FileNotFoundError:
            pass
        f.close()  # it was removed while we waited: lock the new one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        f.close()


def write_top_file(outdir: Path, name: str, obj: dict, indent: int | None = None) -> None:
    """Write DIR/name atomically under the index lock, removing what a killed writer left of it first."""
    with index_lock(outdir):
        remove_stale(outdir, f".{name}.*.tmp")
        write_json_atomic(outdir / name, obj, indent=indent)


def check_settings(outdir: Path, settings: dict) -> None:
    """UserError when DIR already holds a run whose content-defining settings differ from `settings`."""
    path = outdir / INDEX_FILE
    if not path.is_file():
        return
    old = read_json(path).get("settings", {})
    diff = [f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in settings.items() if old.get(k) != v]
    if diff:
        raise UserError(f"{outdir} holds a synthesis run with other settings ({'; '.join(diff)}); "
                        "resume with the same settings or choose a new --outdir")


def rebuild_index(outdir: Path, settings: dict, categories: list[dict], num_shards: int) -> dict:
    """Rewrite DIR/index.json from the finished shards on disk (atomic, under the index lock)."""
    with index_lock(outdir):
        shards = [read_json(outdir / shard_name(k) / SHARD_INFO) for k in range(num_shards) if shard_done(outdir, k)]
        per_cat: dict[str, int] = {}
        for s in shards:
            for name, count in s["instances_per_category"].items():
                per_cat[name] = per_cat.get(name, 0) + count
        candidates = sum(s["candidates"] for s in shards)
        accepted = sum(s["accepted"] for s in shards)
        totals = {"images": sum(s["images"] for s in shards), "annotations": sum(s["annotations"] for s in shards),
                  "instances_per_category": per_cat, "candidates": candidates, "accepted": accepted,
                  "acceptance_rate": accepted / candidates if candidates else None,
                  "dropped": sum(s["dropped"] for s in shards)}
        index = {"format": INDEX_FORMAT, "settings": settings, "categories": categories, "num_shards": num_shards,
                 "complete": len(shards) == num_shards, "shards": shards, "totals": totals}
        remove_stale(outdir, f".{INDEX_FILE}.*.tmp")
        write_json_atomic(outdir / INDEX_FILE, index, indent=1)
    return index
