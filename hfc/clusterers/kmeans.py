"""HFC+KMeans: k-means on the raw hidden features of sampled pixels, as a soft per-pixel encoder.

Following section 7.1 (the DeepCluster-style variant, Caron et al. 2018, and Pakhomov et al.'s
k-means on StyleGAN features): D centroids mu_k are fitted with k-means (k-means++ seeding, Lloyd
iterations) on Eq. 8's features H at random pixels of generated images -- the raw hidden features,
not a learned projection. A pixel's code is its soft assignment to the centroids:

    z_k = softmax_k(-|h - mu_k|^2 / s) = softmax_k((2 mu_k.h - |mu_k|^2) / s)     (|h|^2 cancels)

with s = temperature x the mean squared distance of the fitted pixels to their centroid. The right
side is a Linear layer followed by a softmax, so this is a PixelEncoder like SwAV's f_theta and its
Linear runs in the fused form. The k-means is written in torch (matrix products on the device)
because scipy.cluster.vq.kmeans2 computes distances without BLAS, in float64, on the CPU only.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from tqdm.auto import trange

from hfc.checkpoint import register
from hfc.config import HFCConfig
from hfc.errors import HFCError
from hfc.features import PixelEncoder, sample_features_at
from hfc.generator import FeatureGenerator, layer_channels
from hfc.rng import draw_seed
from hfc.sampling import random_pixel_coords


@register
class KMeansEncoder(PixelEncoder):
    """Soft assignment to D k-means centroids of the raw hidden features."""

    kind = "kmeans"

    def activate(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        """Softmax over the centroids."""
        return y.softmax(dim=dim)

    def spec(self) -> dict[str, Any]:
        """Constructor kwargs."""
        return {"layer_channels": list(self.layer_channels), "dim": self.out_dim}

    @classmethod
    def from_centroids(cls, channels: Sequence[int], centroids: torch.Tensor, scale: float) -> KMeansEncoder:
        """The encoder whose Linear gives (2 mu_k.h - |mu_k|^2) / scale."""
        enc = cls(channels, centroids.shape[0]).to(centroids.device)
        with torch.no_grad():
            enc.proj.weight.copy_(2.0 * centroids / scale)
            enc.proj.bias.copy_(-centroids.square().sum(1) / scale)
        return enc


def _sq_dists(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """|x_i - c_j|^2, [M, K]."""
    return (x.square().sum(1, keepdim=True) - 2.0 * x @ c.t() + c.square().sum(1)).clamp_min_(0.0)


def kmeans_centroids(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """k-means++ seeding, then Lloyd iterations on x [M, C]: (centroids [k, C], mean squared distance)."""
    m = x.shape[0]
    assert m >= k, f"{m} points for {k} clusters"
    first = int(torch.randint(m, (1,), generator=generator))
    centroids = [x[first]]
    d2 = _sq_dists(x, x[first : first + 1])[:, 0]
    for _ in range(1, k):
        weights = d2.cpu() if float(d2.sum()) > 0 else torch.ones(m)
        i = int(torch.multinomial(weights, 1, generator=generator))
        centroids.append(x[i])
        d2 = torch.minimum(d2, _sq_dists(x, x[i : i + 1])[:, 0])
    c = torch.stack(centroids)
    assign = None
    for _ in range(iters):
        new_assign = _sq_dists(x, c).argmin(1)
        if assign is not None and torch.equal(new_assign, assign):
            break
        assign = new_assign
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        filled = counts > 0  # an emptied cluster keeps its centroid
        c[filled] = sums[filled] / counts[filled, None].to(x.dtype)
    inertia = float(_sq_dists(x, c).min(1).values.mean())
    return c, inertia


def fit_kmeans_encoder(
    gen: FeatureGenerator, cfg: HFCConfig, generator: torch.Generator, progress: bool = False
) -> tuple[KMeansEncoder, dict[str, float]]:
    """Cluster raw hidden features of cfg.kmeans.images generated images into cfg.dim centroids."""
    kc, size = cfg.kmeans, gen.img_resolution
    rows = []
    for start in trange(0, kc.images, cfg.batch_size, desc="k-means: sampling pixels", disable=not progress):
        n = min(cfg.batch_size, kc.images - start)
        ws = gen.sample_ws(n, psi=cfg.augment.psi, seed=draw_seed(generator))
        with torch.no_grad():
            _, feats = gen.synthesize(ws, noise_mode="const")
            coords = random_pixel_coords(size, kc.pixels_per_image, n, 1, generator)
            rows.append(sample_features_at(feats, coords, size).flatten(0, 1))
    x = torch.cat(rows).float()
    if x.shape[0] < cfg.dim:
        raise HFCError(
            f"kmeans: {x.shape[0]} sampled pixels for dim = {cfg.dim} clusters; raise kmeans.images or "
            "kmeans.pixels_per_image, or lower dim"
        )
    centroids, inertia = kmeans_centroids(x, cfg.dim, kc.iters, generator)
    encoder = KMeansEncoder.from_centroids(layer_channels(gen), centroids, kc.temperature * max(inertia, 1e-12))
    return encoder, {"pixels": float(x.shape[0]), "inertia": inertia}
