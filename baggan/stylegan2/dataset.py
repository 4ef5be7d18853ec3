"""Training images for the GAN: a data set in the toolkit's format read as uint8 [C, R, R] tensors, and a
data order that is a pure function of (seed, step) so that runs resume and shard deterministically.

Order: the global sample at position q = step * batch + j is schedule[perm_e[q mod n]] with
e = q div n, perm_e a permutation drawn from (seed, e) and n = len(schedule); the schedule lists every
sample once, or several times where `repeat` asks for more of a category. Process `rank` reads only its
slice of each step's global batch, on a DataLoader whose sampler is the sequence of steps.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from baggan.data.coco import CocoDataset
from baggan.errors import ConfigError, DataError

IN_MEMORY_LIMIT = 4 << 30  # bytes of decoded images kept in RAM when `in_memory` is left to auto


@functools.lru_cache(maxsize=4)
def _permutation(seed: int, n: int, epoch: int) -> np.ndarray:
    """The order of epoch `epoch` over n samples."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(seed: int, n: int, step: int, batch: int) -> np.ndarray:
    """Data indices of the global minibatch of `step` (each index once per epoch, epochs reshuffled)."""
    positions = step * batch + np.arange(batch)
    epochs, offsets = np.divmod(positions, n)
    return np.array([_permutation(seed, n, int(e))[o] for e, o in zip(epochs, offsets)], dtype=np.int64)


class TrainingImages:
    """Images of a data set folder (DIR/annotations.json + images/) as uint8 [C, R, R]; x-flip doubles it.
    `schedule` lists the sample indices of one epoch (each once, or n times for a category in `repeat`)."""

    def __init__(self, root: str | Path, resolution: int, channels: int, xflip: bool = False,
                 labels: bool = False, in_memory: bool | None = None, progress: bool = True,
                 repeat: dict[str, int] | None = None):
        self.coco = CocoDataset(root)
        self.resolution, self.channels, self.xflip = resolution, channels, xflip
        self.num_files = len(self.coco)
        table = self._label_table()
        self.label_table = table if labels else None
        self.schedule = self._schedule(table, repeat or {})
        if in_memory is None:
            in_memory = self.num_files * channels * resolution**2 <= IN_MEMORY_LIMIT
        self.cache: np.ndarray | None = None
        first = self._decode(0)  # fail early (before any progress bar) on a wrong size
        if in_memory:
            self.cache = np.empty((self.num_files, *first.shape), np.uint8)
            with tqdm(total=self.num_files, desc="decoding images", unit="img", disable=not progress) as bar:
                for i in range(self.num_files):
                    self.cache[i] = self._decode(i)
                    bar.update()

    @property
    def c_dim(self) -> int:
        """Length of the label vectors (0 without labels)."""
        return 0 if self.label_table is None else self.label_table.shape[1]

    def _label_table(self) -> np.ndarray:
        """Multi-hot [num_files, K] over the data set's categories (sorted by id): which occur in each scan."""
        cat_index = {c["id"]: k for k, c in enumerate(sorted(self.coco.categories, key=lambda c: c["id"]))}
        row = {rec["id"]: i for i, rec in enumerate(self.coco.images)}
        table = np.zeros([self.num_files, len(cat_index)], np.float32)
        for ann in self.coco.doc["annotations"]:
            table[row[ann["image_id"]], cat_index[ann["category_id"]]] = 1
        return table

    def _schedule(self, table: np.ndarray, repeat: dict[str, int]) -> np.ndarray:
        """Sample indices of one epoch: sample i repeated by the largest `repeat` count of its categories."""
        names = [c["name"] for c in sorted(self.coco.categories, key=lambda c: c["id"])]
        unknown = sorted(set(repeat) - set(names))
        if unknown:
            raise ConfigError(f"data.repeat: {', '.join(unknown)} not among the data set's categories "
                              f"({', '.join(names)})")
        counts = np.ones(self.num_files, np.int64)
        for name, n in repeat.items():
            counts = np.where(table[:, names.index(name)] > 0, np.maximum(counts, n), counts)
        return np.repeat(np.arange(len(self)), np.tile(counts, len(self) // self.num_files))

    def _decode(self, i: int) -> np.ndarray:
        """File i as uint8 [C, R, R]; DataError naming the file if its size is wrong."""
        img = self.coco.read_image(i)
        r = self.resolution
        if img.shape[:2] != (r, r):
            raise DataError(f"{self.coco.image_path(i)}: image is {img.shape[1]}x{img.shape[0]}, the network needs "
                            f"{r}x{r} (set network.resolution, or write the data at --size {r})")
        if self.channels == 1:
            img = img.mean(axis=2, keepdims=True).round().astype(np.uint8)
        return np.ascontiguousarray(img.transpose(2, 0, 1))

    def __len__(self) -> int:
        return self.num_files * (2 if self.xflip else 1)

    def image(self, i: int) -> np.ndarray:
        """Sample i as uint8 [C, R, R] (indices >= num_files are the mirrored copies)."""
        f = i % self.num_files
        img = self.cache[f] if self.cache is not None else self._decode(f)
        return np.ascontiguousarray(img[:, :, ::-1]) if i >= self.num_files else img

    def label(self, i: int) -> np.ndarray:
        """Label vector of sample i ([0] without labels)."""
        if self.label_table is None:
            return np.zeros([0], np.float32)
        return self.label_table[i % self.num_files]

    def batch(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images [n, C, R, R], float labels [n, c_dim]) of the given sample indices."""
        images = torch.from_numpy(np.stack([self.image(int(i)) for i in indices]))
        labels = torch.from_numpy(np.stack([self.label(int(i)) for i in indices]))
        return images, labels


class StepBatches(torch.utils.data.Dataset):
    """Item `step` = this process's slice of the global minibatch of that step."""

    def __init__(self, images: TrainingImages, seed: int, batch: int, start: int, stop: int):
        self.images, self.seed, self.batch, self.start, self.stop = images, seed, batch, start, stop

    def __len__(self) -> int:
        return 1 << 62  # indexed by step, never exhausted

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        schedule = self.images.schedule
        indices = schedule[batch_indices(self.seed, len(schedule), step, self.batch)[self.start:self.stop]]
        return self.images.batch(indices)


def step_loader(images: TrainingImages, seed: int, batch: int, start: int, stop: int, first_step: int,
                workers: int) -> torch.utils.data.DataLoader:
    """A loader yielding samples [start, stop) of each global minibatch, from `first_step` on."""
    workers = 0 if images.cache is not None else workers
    return torch.utils.data.DataLoader(StepBatches(images, seed, batch, start, stop), batch_size=None,
                                       sampler=range(first_step, 1 << 62), num_workers=workers,
                                       pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0,
                                       prefetch_factor=2 if workers > 0 else None)


__all__ = ["TrainingImages", "batch_indices", "step_loader", "StepBatches"]
