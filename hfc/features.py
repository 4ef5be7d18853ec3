"""Pixel-wise hidden features (Eq. 8) and the exact fused form of a Linear layer applied to them.

Eq. 8 upsamples every hidden layer H_l bilinearly to the image size and concatenates them:
C_hidden x H x W floats (5376 x 1024 x 1024 = 22.5 GB for FF-HQ). Bilinear upsampling U is linear and
acts per channel, so for the first Linear layer of any per-pixel network

    Linear(concat_l U(H_l)) == sum_l U(W_l H_l) + b        (W_l: the column block of layer l)

`FusedLinear` computes the right-hand side: project each layer at its own resolution, upsample only
the D-channel result, sum. At sampled pixel positions it interpolates instead of upsampling (again
exact). Without gradient on the CPU (the synthesis engine's case) the sum is one sparse product:
bilinear upsampling of an r x r map is the matrix K_r = A_r (x) A_r (Kronecker product of the [size, r]
1-D weights, four non-zeros per row), so

    sum_r U(P_r) = [K_r1 | K_r2 | ...] @ stack_r(P_r)        (P_r = W_r H_r, pixels x D)

reads only the small coarse projections and writes the D x size x size result once. `FusedLinear.tiles`
yields that result a block of pixel rows of K at a time, so that a per-pixel consumer (the activation, an
MLP segmenter) reads each block from cache instead of a D x size² map from memory.
`upsample_concat` and `FusedLinear.naive` are the reference path, kept for tests and benchmarks.

Pixel coordinates are int64 (row, col) pairs in image pixels, shape [N, P, 2] (or [P, 2] shared by
the batch). Upsampling is bilinear with align_corners=False (PyTorch's default).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any, ClassVar, Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def layer_slices(channels: Sequence[int]) -> list[slice]:
    """Channel range of each layer inside the concatenated features H (Eq. 8)."""
    out, start = [], 0
    for c in channels:
        out.append(slice(start, start + c))
        start += c
    return out


def upsample(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear U_{size x size}(x) (align_corners=False); identity when x is already that size.

    The result is in channels-last memory layout: on the CPU, bilinear interpolation of many channels is
    several times faster there (same values), and the callers only add, activate and normalise it.
    """
    if x.shape[-2:] == (size, size):
        return x
    x = x.contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


SPARSE_MAX_SIZE = 512  # above, the sparse upsampling matrix would take more than ~100 MB: upsample instead


def bilinear_taps(r: int, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """1-D bilinear upsampling r → size (align_corners=False): two (source index, float64 weight) pairs per output."""
    src = ((torch.arange(size, dtype=torch.float64) + 0.5) * (r / size) - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=r - 1)
    return [(lo, 1 - (src - lo)), ((lo + 1).clamp(max=r - 1), src - lo)]


@lru_cache(maxsize=8)
def upsampling_matrix(resolutions: tuple[int, ...], size: int) -> torch.Tensor:
    """[K_r1 | K_r2 | ...]: bilinear upsampling (align_corners=False) of each r x r map to size x size as one
    sparse CSR matrix [size², sum r²] acting on row-major pixels (four non-zeros per row and block)."""
    rows, cols, vals, offset = [], [], [], 0
    pix = torch.arange(size * size)
    for r in resolutions:
        taps = bilinear_taps(r, size)
        for ia, wa in taps:
            for ib, wb in taps:
                rows.append(pix)
                cols.append(offset + (ia[:, None] * r + ib[None, :]).flatten())
                vals.append((wa[:, None] * wb[None, :]).flatten())
        offset += r * r
    coo = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals).float(),
                                  (size * size, offset), check_invariants=True).coalesce()  # border taps add up
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        csr = coo.to_sparse_csr()  # int32 indices: products 15 % faster than with int64 at 256²
        return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape)


def csr_rows(k: torch.Tensor, rows: slice) -> torch.Tensor:
    """Rows rows.start..rows.stop-1 of a sparse CSR matrix, as a CSR matrix (shares nothing; small)."""
    crow = k.crow_indices()
    lo, hi = int(crow[rows.start]), int(crow[rows.stop])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow[rows.start:rows.stop + 1] - lo, k.col_indices()[lo:hi],
                                       k.values()[lo:hi], (rows.stop - rows.start, k.shape[1]))


def upsample_concat(features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
    """Eq. 8: H = U(H_1) (+)_c ... (+)_c U(H_L), [N, C_hidden, size, size]. The naive reference path."""
    return torch.cat([upsample(h, size) for h in features], dim=1)


def _batched_coords(coords: torch.Tensor, n: int) -> torch.Tensor:
    """[P, 2] or [N, P, 2] integer (row, col) → [N, P, 2]."""
    assert coords.ndim in (2, 3) and coords.shape[-1] == 2, f"coords must be [P, 2] or [N, P, 2], got {list(coords.shape)}"
    if coords.ndim == 2:
        coords = coords.unsqueeze(0).expand(n, -1, -1)
    assert coords.shape[0] == n, f"coords batch {coords.shape[0]} != features batch {n}"
    return coords


def gather_pixels(x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Values of a full-resolution map x [N, C, S, S] at integer pixels coords → [N, P, C]."""
    n, c, s, _ = x.shape
    coords = _batched_coords(coords, n).to(x.device)
    flat = (coords[..., 0] * s + coords[..., 1]).unsqueeze(1).expand(-1, c, -1)  # [N, C, P]
    return x.flatten(2).gather(2, flat).transpose(1, 2)


def sample_at(x: torch.Tensor, coords: torch.Tensor, size: int) -> torch.Tensor:
    """U_{size}(x) at integer pixels coords: x [N, C, r, r] → [N, P, C] (exact, whichever way is cheaper)."""
    n, _, r, _ = x.shape
    coords = _batched_coords(coords, n).to(x.device)
    if r == size:
        return gather_pixels(x, coords)
    if 5 * coords.shape[1] >= size * size:  # dense: upsampling once beats interpolating every pixel
        return gather_pixels(upsample(x, size), coords)
    # Pixel i of the upsampled map reads source position (i + 0.5) * r / size - 0.5, clamped to the
    # border: exactly grid_sample's mapping of the normalised coordinate (2i + 1) / size - 1.
    grid = (2.0 * coords.flip(-1).to(x.dtype) + 1.0) / size - 1.0  # grid_sample wants (x=col, y=row)
    out = F.grid_sample(x, grid.unsqueeze(1), mode="bilinear", padding_mode="border", align_corners=False)
    return out.squeeze(2).transpose(1, 2)


def sample_features_at(features: Sequence[torch.Tensor], coords: torch.Tensor, size: int) -> torch.Tensor:
    """Eq. 8's H at pixels coords, [N, P, C_hidden], computed per layer (no full-size tensor)."""
    return torch.cat([sample_at(h, coords, size) for h in features], dim=-1)


def pointwise(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 projection as one matrix product: weight [D, C] applied to x [N, C, H, W] → [N, D, H, W]."""
    return torch.matmul(weight, x.flatten(2)).unflatten(2, x.shape[2:])


class FusedLinear(nn.Module):
    """A Linear(C_hidden → D) on Eq. 8's features, computed without materialising them (exact)."""

    def __init__(self, layer_channels: Sequence[int], out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.layer_channels = tuple(int(c) for c in layer_channels)
        self.in_features = sum(self.layer_channels)
        self.out_features = int(out_features)
        self.slices = layer_slices(self.layer_channels)
        ref = nn.Linear(self.in_features, self.out_features, bias=bias)  # default nn.Linear init
        self.weight = ref.weight
        self.bias = ref.bias

    def _check(self, features: Sequence[torch.Tensor]) -> None:
        assert len(features) == len(self.layer_channels), (
            f"expected {len(self.layer_channels)} feature maps, got {len(features)}"
        )
        for i, (h, c) in enumerate(zip(features, self.layer_channels)):
            assert h.ndim == 4 and h.shape[1] == c, f"feature {i}: expected [N, {c}, r, r], got {list(h.shape)}"

    def _groups(self, features: Sequence[torch.Tensor], layers: Iterable[int] | None) -> dict[int, list[int]]:
        """Selected layer indices grouped by resolution (each group is upsampled/sampled once)."""
        self._check(features)
        groups: dict[int, list[int]] = {}
        for i in range(len(features)) if layers is None else layers:
            groups.setdefault(features[i].shape[-1], []).append(i)
        return groups

    def _group_weight(self, idx: list[int]) -> torch.Tensor:
        """[W_l for l in idx] side by side: [D, sum of their C_l] (a view when the layers are consecutive)."""
        if idx == list(range(idx[0], idx[-1] + 1)):
            return self.weight[:, self.slices[idx[0]].start:self.slices[idx[-1]].stop]
        return torch.cat([self.weight[:, self.slices[i]] for i in idx], dim=1)

    def _project_native(self, features: Sequence[torch.Tensor], idx: list[int]) -> torch.Tensor:
        """sum_{l in idx} W_l H_l at the layers' own resolution, [N, D, r, r], as one matrix product over the
        group's stacked channels (several times faster on the CPU than a product and a sum per layer)."""
        return pointwise(self._group_weight(idx), torch.cat([features[i] for i in idx], dim=1))

    def _finish(self, y: torch.Tensor | None, shape: tuple[int, ...], channel_dim: int, bias: bool) -> torch.Tensor:
        """Add the bias b (broadcast along `channel_dim`); zeros if no layer was selected."""
        if y is None:
            y = self.weight.new_zeros(shape)
        if bias and self.bias is not None:
            view = [1] * len(shape)
            view[channel_dim] = -1
            y = y.add_(self.bias.view(view))  # y is always a fresh tensor: no copy of a D x S x S map
        return y

    def forward(
        self, features: Sequence[torch.Tensor], size: int, layers: Iterable[int] | None = None, bias: bool = True
    ) -> torch.Tensor:
        """sum_l U(W_l H_l) + b over the selected layers (default all): [N, D, size, size], channels-last."""
        if self.sparse_path(features, size):  # one block of all pixels: one sparse product (module docstring)
            _, y = next(self.tiles(features, size, size * size, layers, bias))
            return y.view(y.shape[0], size, size, self.out_features).permute(0, 3, 1, 2)
        groups = self._groups(features, layers)
        y = None
        for res in sorted(groups):  # coarse first (the accumulator is channels-last); at most 2 D x size² maps alive
            term = upsample(self._project_native(features, groups[res]), size)
            y = term if y is None else y.add_(term)
            del term
        return self._finish(y, (features[0].shape[0], self.out_features, size, size), 1, bias)

    @staticmethod
    def _stacked(features: Sequence[torch.Tensor], idx: list[int], rows: slice = slice(None)) -> torch.Tensor:
        """The group's H_l at pixels `rows`, stacked along channels: [N, sum of C_l, T] (no copy for one layer).
        Stacking a block at a time keeps a 256² group's 33 MB stack (paged in afresh on every call) out."""
        maps = [features[i].flatten(2)[:, :, rows] for i in idx]
        return torch.cat(maps, dim=1) if len(maps) > 1 else maps[0]

    def _project_rows(self, h: torch.Tensor, idx: list[int], bias: bool) -> torch.Tensor:
        """sum_{l in idx} W_l H_l (+ b) of the stacked h [N, C, T] as rows [N, T, D]: one product reading h and W
        through transposed views (no channels-last copy)."""
        y = torch.matmul(h.transpose(1, 2), self._group_weight(idx).t())
        if bias and self.bias is not None:
            y.add_(self.bias)  # after the product: addmm's broadcast copy of b costs more than the product here
        return y

    def sparse_path(self, features: Sequence[torch.Tensor], size: int) -> bool:
        """Whether `forward` takes the sparse-product path (CPU, no gradient, size <= SPARSE_MAX_SIZE)."""
        return features[0].device.type == "cpu" and not torch.is_grad_enabled() and size <= SPARSE_MAX_SIZE

    def tiles(self, features: Sequence[torch.Tensor], size: int, tile: int, layers: Iterable[int] | None = None,
              bias: bool = True) -> Iterator[tuple[slice, torch.Tensor]]:
        """forward's values a block of pixels at a time on the sparse path: (pixel range, [N, T, D]) over the
        row-major size x size pixels. A per-pixel consumer (activation, an MLP) then finds each block in cache."""
        assert self.sparse_path(features, size), "tiles: CPU inference only, size <= SPARSE_MAX_SIZE"
        groups = self._groups(features, layers)
        n, d, pixels = features[0].shape[0], self.out_features, size * size
        native = groups.pop(size, None)
        coarse = sorted(groups)
        # Each row of K sums to 1, so b added to the coarsest projection (r² rows, not size²) reaches every pixel.
        fold = bias and bool(coarse)
        if coarse:
            stacked = torch.cat([self._project_rows(self._stacked(features, groups[r]), groups[r],
                                                    fold and r == coarse[0]) for r in coarse], 1)
            k = upsampling_matrix(tuple(coarse), size)
        for start in range(0, pixels, tile):
            rows = slice(start, min(start + tile, pixels))
            if native is not None:
                y = self._project_rows(self._stacked(features, native, rows), native, bias and not fold)
            else:
                y = self._finish(None, (n, rows.stop - rows.start, d), 2, bias and not fold)
            if coarse:
                k_rows = csr_rows(k, rows) if tile < pixels else k
                for i in range(n):
                    y[i].addmm_(k_rows, stacked[i])
            yield rows, y

    def at(
        self,
        features: Sequence[torch.Tensor],
        coords: torch.Tensor,
        size: int,
        layers: Iterable[int] | None = None,
        bias: bool = True,
    ) -> torch.Tensor:
        """The same projection only at pixels coords: [N, P, D] (exact, no full-size tensor)."""
        n = features[0].shape[0]
        coords = _batched_coords(coords, n)
        p = coords.shape[1]
        if 5 * p >= size * size:  # dense: the whole-image fused projection, read once at the pixels
            return gather_pixels(self.forward(features, size, layers, bias), coords)
        y = None
        for res, idx in self._groups(features, layers).items():
            if res * res <= p:  # cheaper to project all r^2 positions, then interpolate D channels
                term = sample_at(self._project_native(features, idx), coords, size)
            else:  # cheaper to interpolate the raw C_l channels at the P positions, then project
                h = torch.cat([sample_at(features[i], coords, size) for i in idx], dim=-1)
                term = h @ self._group_weight(idx).t()
            y = term if y is None else y + term
        return self._finish(y, (n, p, self.out_features), 2, bias)

    def naive(self, features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        """Reference: the Linear applied to the materialised Eq. 8 features, [N, D, size, size]."""
        self._check(features)
        y = pointwise(self.weight, upsample_concat(features, size))
        return y if self.bias is None else y.add_(self.bias.view(1, -1, 1, 1))


class PixelEncoder(nn.Module):
    """Hidden features [H_1..H_L] → per-pixel codes z: a FusedLinear followed by an activation.

    Every HFC encoder (SwAV's f_theta, SimCLR's, the k-means soft assigner) is one of these, so the
    one-shot segmenters and the Annotator work with any of them. Subclasses set `kind`, implement
    `activate` and `spec` (constructor kwargs, for save/load through hfc.checkpoint).
    """

    kind: ClassVar[str] = ""

    def __init__(self, layer_channels: Sequence[int], dim: int) -> None:
        super().__init__()
        self.proj = FusedLinear(layer_channels, dim)

    @property
    def out_dim(self) -> int:
        """D: channels of the code z."""
        return self.proj.out_features

    @property
    def layer_channels(self) -> tuple[int, ...]:
        """C_l of each hidden layer the encoder expects."""
        return self.proj.layer_channels

    def activate(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        """The nonlinearity after the Linear layer, along channel axis `dim`."""
        raise NotImplementedError

    def spec(self) -> dict[str, Any]:
        """Constructor keyword arguments that rebuild this encoder."""
        raise NotImplementedError

    def forward(self, features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        """Codes of every pixel: [N, D, size, size]."""
        return self.activate(self.proj(features, size), dim=1)

    def encode_tiles(
        self, features: Sequence[torch.Tensor], size: int, tile: int
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """Codes a block of row-major pixels at a time: (pixel range, [N, T, D]); CPU inference only."""
        for rows, y in self.proj.tiles(features, size, tile):
            yield rows, self.activate(y, dim=-1)

    def encode_at(self, features: Sequence[torch.Tensor], coords: torch.Tensor, size: int) -> torch.Tensor:
        """Codes at pixels coords only: [N, P, D]."""
        return self.activate(self.proj.at(features, coords, size), dim=-1)
