"""One-shot (and few-shot) segmentation of generated images (section 5, 6.2.4).

Every method, ours and the baselines, is a `PixelClassifier`: hidden features [H_1..H_L] of a
generated image → per-pixel class logits. It splits into `prepare` (the frozen part, computed once
per annotated sample: for ours the HFC encoder, giving z) and `classify` (the trained part). So one
`fit` and one `Annotator` serve every method.

An annotated sample is an `Annotation`: the ws of a generated scan (from a seed, a saved ws file, or
GAN inversion of a real scan) plus an int64 label map aligned with the generated image (0 =
background; `ignore_index` marks unannotated pixels). `fit` renders each sample once (constant
noise) and, with OneShotConfig.views, W+ views of it under its label (Eq. 7 at fit time,
hfc.augment.fit_views), lets the model calibrate fixed input statistics on them (ours: the segmenter's
standardisation of the codes, hfc.segmenters), then trains with cross-entropy, Adam (lr 0.01, betas
(0.9, 0.99)), 200 epochs; an epoch is one optimiser step on the gradient summed over all N samples and
their views (N = 1, no views: one-shot).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hfc.augment import fit_view_seed, fit_views
from hfc.checkpoint import check_layers, load_module, save_module
from hfc.config import OneShotConfig
from hfc.errors import Diverged, HFCError
from hfc.features import PixelEncoder, upsample
from hfc.generator import FeatureGenerator, NoiseMode, layer_channels, offering_image
from hfc.segmenters import ConvSegmenter


class PixelClassifier(nn.Module):
    """Hidden features → per-pixel class logits [N, K, size, size] (ours and every baseline)."""

    num_classes: int
    layer_channels: tuple[int, ...]  # C_l of the hidden layers it reads
    image_channels: int = 0  # > 0: it also reads the generated image, as the last feature layer

    def prepare(self, features: Sequence[torch.Tensor], size: int) -> Any:
        """The frozen part, computed once per sample by `fit` (no gradient)."""
        raise NotImplementedError

    def classify(self, x: Any) -> torch.Tensor:
        """The trained part: prepared input → logits [N, K, size, size]."""
        raise NotImplementedError

    def calibrate(self, inputs: Sequence[Any]) -> None:
        """Adapt fixed input statistics to the prepared training inputs before `fit` trains (default: nothing)."""

    def loss(self, x: Any, labels: torch.Tensor, ignore_index: int, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy of the logits against labels [N, size, size] (class weights `weight` [K], if given)."""
        return F.cross_entropy(self.classify(x), labels, weight=weight, ignore_index=ignore_index)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """What `fit` optimises (default: every parameter)."""
        return list(self.parameters())

    def forward(self, features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        """Logits [N, K, size, size]."""
        return self.classify(self.prepare(features, size))

    @torch.no_grad()
    def predict(self, features: Sequence[torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(label maps [N, size, size] int64, softmax probabilities [N, K, size, size]), one image at a time: a
        single D x size² code map is alive at once, and on the CPU small blocks are reused instead of paged in."""
        probs = torch.cat([self.forward([h[i:i + 1] for h in features], size).softmax(dim=1)
                           for i in range(features[0].shape[0])])
        return probs.max(dim=1).indices, probs  # = argmax (first maximum), an order faster along dim 1 on the CPU


TILE_VALUES = 1 << 20  # code values per block of HFCSegmenter.predict's CPU path (4 MB of float32)


def image_input(features: Sequence[torch.Tensor], channels: int, size: int) -> torch.Tensor:
    """The image layer that ends `features` (hfc.generator.ImageLayer), [N, channels, size, size], no gradient."""
    image = features[-1].detach()
    assert image.shape[1] == channels, f"image layer: {list(image.shape)}, expected {channels} channels"
    return upsample(image, size).contiguous()


class HFCSegmenter(PixelClassifier):
    """Ours: the frozen HFC encoder (z, section 4) followed by a one-shot segmenter on z."""

    def __init__(self, encoder: PixelEncoder, segmenter: ConvSegmenter, image_channels: int = 0) -> None:
        super().__init__()
        assert segmenter.in_dim == encoder.out_dim + image_channels, (
            f"segmenter takes {segmenter.in_dim} channels, encoder gives {encoder.out_dim} (+ {image_channels} image)")
        self.encoder = encoder  # frozen: `prepare` runs it without gradient, `fit` never optimises it
        self.segmenter = segmenter
        self.num_classes = segmenter.num_classes
        self.image_channels = image_channels  # the segmenter's input: [z, image] (hfc.generator.ImageLayer)

    def prepare(self, features: Sequence[torch.Tensor], size: int) -> torch.Tensor:
        """z = encoder(H) [N, D, size, size], without gradient; [z, image] with image channels."""
        with torch.no_grad():
            if not self.image_channels:
                return self.encoder(features, size)
            return torch.cat([self.encoder(features[:-1], size), image_input(features, self.image_channels, size)],
                             dim=1)

    @property
    def layer_channels(self) -> tuple[int, ...]:
        """C_l of the hidden layers the encoder was built for (then the image's channels, if it reads them)."""
        return self.encoder.layer_channels + ((self.image_channels,) if self.image_channels else ())

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Segmenter logits on z."""
        return self.segmenter(x)

    def calibrate(self, inputs: Sequence[torch.Tensor]) -> None:
        """The segmenter's input standardisation from the samples' codes (if it standardises)."""
        if self.segmenter.standardize:
            self.segmenter.calibrate(inputs)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The segmenter's parameters only."""
        return list(self.segmenter.parameters())

    @torch.no_grad()
    def predict(self, features: Sequence[torch.Tensor], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """As PixelClassifier.predict; with an MLP segmenter on the CPU, encoder and MLP run on blocks of
        TILE_VALUES code values, so that the codes never leave the cache (same values)."""
        if self.image_channels or not (self.segmenter.per_pixel and self.encoder.proj.sparse_path(features, size)):
            return super().predict(features, size)
        n, k = features[0].shape[0], self.num_classes
        probs = features[0].new_empty(n, k, size * size)
        tile = max(1, TILE_VALUES // self.encoder.out_dim)
        for i in range(n):
            for rows, z in self.encoder.encode_tiles([h[i:i + 1] for h in features], size, tile):
                probs[i, :, rows] = self.segmenter.pixelwise(z[0]).softmax(dim=0)
        probs = probs.view(n, k, size, size)
        return probs.max(dim=1).indices, probs

    def train(self, mode: bool = True) -> HFCSegmenter:
        """Only the segmenter ever trains; the encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self


@dataclass(frozen=True)
class Annotation:
    """An annotated generated scan: its ws [num_ws, w_dim] and a label map [H, W] aligned with the image.

    `features` ([H_1..H_L], batch 1) replaces rendering ws with the generator's own noise, e.g. for a GAN
    inversion that also optimised the noise maps; `gen` then renders the sample's W+ views (OneShotConfig.views)
    the way its features were rendered (e.g. with those noise maps). Without `gen`, fit's generator renders them.
    """

    ws: torch.Tensor
    label: torch.Tensor
    features: tuple[torch.Tensor, ...] | None = None
    gen: FeatureGenerator | None = None

    @classmethod
    def from_seed(cls, gen: FeatureGenerator, seed: int, label: np.ndarray | torch.Tensor, psi: float = 1.0) -> Annotation:
        """The scan made from `seed` (gen.sample_ws) with its label map."""
        return cls(gen.sample_ws(1, psi=psi, seed=seed)[0], torch.as_tensor(np.asarray(label)).long())


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def _check_label(label: torch.Tensor, size: int, num_classes: int, ignore_index: int, i: int) -> torch.Tensor:
    """Label map as int64 [1, size, size]; HFCError naming the sample if its size or values are wrong."""
    label = torch.as_tensor(label).long()
    if label.shape != (size, size):
        raise HFCError(f"annotated sample {i}: label map is {tuple(label.shape)}, the generator makes {size}x{size} images")
    bad = (label != ignore_index) & ((label < 0) | (label >= num_classes))
    if bool(bad.any()):
        raise HFCError(
            f"annotated sample {i}: label {int(label[bad][0])} outside 0..{num_classes - 1} (ignore_index {ignore_index})"
        )
    return label.unsqueeze(0)


def num_classes_of(samples: Sequence[Annotation], ignore_index: int = 255) -> int:
    """1 + the largest label used in the samples (ignoring ignore_index)."""
    top = max(int(s.label[s.label != ignore_index].max()) if bool((s.label != ignore_index).any()) else 0 for s in samples)
    return top + 1


def class_weights(labels: Sequence[torch.Tensor], num_classes: int, power: float, ignore_index: int = 255) -> torch.Tensor:
    """Cross-entropy class weights [K] ∝ (class share of the labelled pixels)^-power; classes absent weigh 1."""
    labels = torch.cat([y.flatten() for y in labels])
    counts = torch.bincount(labels[labels != ignore_index], minlength=num_classes)[:num_classes].double()
    present = counts > 0
    weight = (counts / counts.sum().clamp(min=1)).clamp(min=1e-12) ** -power
    weight = weight / weight[present].min() if bool(present.any()) else weight
    return torch.where(present, weight, torch.ones_like(weight)).float()  # the most frequent class weighs 1


def fit(
    model: PixelClassifier,
    gen: FeatureGenerator,
    samples: Sequence[Annotation],
    cfg: OneShotConfig = OneShotConfig(),
    noise_mode: NoiseMode = "const",
    progress: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train `model` on 1..N annotated samples (cross-entropy; Adam, or L-BFGS with cfg.optimizer); returns the loss
    per step (an L-BFGS step is one loss evaluation). `on_epoch(step, loss)` is called after each (1-based), e.g. for
    a progress display."""
    if not samples:
        raise HFCError("no annotated samples to fit on")
    gen = offering_image(gen, model.image_channels)
    check_layers(model.layer_channels, layer_channels(gen), type(model).__name__)
    size, device = gen.img_resolution, _device(model)
    if cfg.views:
        unrendered = [i for i, s in enumerate(samples) if s.features is not None and s.gen is None]
        if unrendered:
            raise HFCError(f"annotated sample {unrendered[0]}: views need the generator that rendered its features "
                           "(Annotation.gen)")
    inputs, labels = [], []
    with torch.no_grad():
        for i, s in enumerate(samples):
            label = _check_label(s.label, size, model.num_classes, cfg.ignore_index, i).to(device)
            render = gen if s.gen is None else offering_image(s.gen, model.image_channels)
            ws = s.ws.reshape(1, gen.num_ws, gen.w_dim).to(device)
            feats = [h.to(device) for h in s.features] if s.features is not None else \
                render.synthesize(ws, noise_mode=noise_mode)[1]
            inputs.append(model.prepare(feats, size))
            labels.append(label)
            for view in fit_views(render, ws, cfg.views, cfg.views_tau_p, cfg.views_min_resolution,
                                   fit_view_seed(cfg.seed, i)):
                inputs.append(model.prepare(render.synthesize(view[None], noise_mode=noise_mode)[1], size))
                labels.append(label)
    model.calibrate(inputs)
    weight = class_weights(labels, model.num_classes, cfg.class_balance, cfg.ignore_index).to(device) \
        if cfg.class_balance else None
    model.train()
    history: list[float] = []
    bar = tqdm(total=cfg.epochs, desc="one-shot fit", disable=not progress)

    def closure() -> torch.Tensor:
        """One full-batch loss and gradient (the losses of the samples averaged), logged."""
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for x, y in zip(inputs, labels):
            loss = model.loss(x, y, cfg.ignore_index, weight) / len(inputs)
            loss.backward()
            total += float(loss.detach())
        if not np.isfinite(total):
            hint = "lower the learning rate" if cfg.optimizer == "adam" else "try optimizer adam"
            raise Diverged(f"one-shot fit: loss is {total} at step {len(history) + 1}; {hint}")
        history.append(total)
        bar.update()
        if on_epoch is not None:
            on_epoch(len(history), total)
        return torch.tensor(total)

    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(model.trainable_parameters(), lr=1, max_iter=cfg.epochs, max_eval=cfg.epochs,
                                history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-7,
                                tolerance_change=1e-10)
        opt.step(closure)
    else:
        opt = torch.optim.Adam(model.trainable_parameters(), lr=cfg.lr, betas=cfg.betas)
        for _ in range(cfg.epochs):
            closure()
            opt.step()
    bar.close()
    model.eval()
    return history


class Annotated(NamedTuple):
    """A batch of generated scans with their predicted segmentation."""

    images: torch.Tensor  # [N, C, H, W] in [-1, 1]
    labels: torch.Tensor  # [N, H, W] int64
    probs: torch.Tensor  # [N, K, H, W] per-pixel class probabilities


class Annotator:
    """ws → (images, label maps, probabilities) in ONE synthesis pass (for the synthesis engine).

    `Annotator(gen, encoder, segmenter)` for ours; `Annotator(gen, None, baseline)` for a baseline
    (any PixelClassifier). Works under torch.no_grad / torch.inference_mode, on CPU or CUDA.
    """

    def __init__(
        self,
        gen: FeatureGenerator,
        encoder: PixelEncoder | None,
        segmenter: nn.Module,
        noise_mode: NoiseMode = "const",
    ) -> None:
        self.noise_mode = noise_mode
        if encoder is None:
            if not isinstance(segmenter, PixelClassifier):
                raise TypeError("without an encoder, the segmenter must be a PixelClassifier (a baseline)")
            self.model = segmenter
        else:
            self.model = segmenter if isinstance(segmenter, HFCSegmenter) else HFCSegmenter(
                encoder, segmenter, image_channels_of(segmenter))
        self.gen = offering_image(gen, self.model.image_channels)  # the image, if the model reads it
        check_layers(self.model.layer_channels, layer_channels(self.gen), "the annotator's encoder / baseline")
        self.model.eval()

    @property
    def num_classes(self) -> int:
        """K."""
        return self.model.num_classes

    @torch.no_grad()
    def __call__(self, ws: torch.Tensor) -> Annotated:
        """ws [N, num_ws, w_dim] → Annotated(images, labels, probs)."""
        images, feats = self.gen.synthesize(ws, noise_mode=self.noise_mode, return_features=True)
        labels, probs = self.model.predict(feats, self.gen.img_resolution)
        return Annotated(images, labels, probs)


def image_channels_of(segmenter: nn.Module) -> int:
    """How many image channels a saved segmenter reads after the codes (its file's meta; 0 for older files)."""
    return int((getattr(segmenter, "meta", None) or {}).get("image_channels", 0))


def save_classifier(path: str | os.PathLike, model: PixelClassifier, meta: dict[str, Any] | None = None) -> None:
    """Write a fitted model: for ours only the segmenter (the encoder lives in its own file; the meta records the
    image channels it reads), else the baseline."""
    if isinstance(model, HFCSegmenter):
        extra = {"image_channels": model.image_channels} if model.image_channels else {}
        save_module(path, model.segmenter, {**(meta or {}), **extra})
    else:
        save_module(path, model, meta)


def load_classifier(
    path: str | os.PathLike, encoder: PixelEncoder | None = None, map_location: str | torch.device = "cpu"
) -> PixelClassifier:
    """Read a file from `save_classifier`; a segmenter on HFC codes needs the encoder it was fitted with."""
    module = load_module(path, map_location)
    if isinstance(module, PixelClassifier):
        return module.eval()
    if not isinstance(module, ConvSegmenter):
        raise HFCError(f"{path}: holds a {type(module).__name__}, not a segmenter")
    if encoder is None:
        raise HFCError(f"{path}: a segmenter on HFC codes; give the HFC encoder it was fitted with")
    image_channels = image_channels_of(module)
    if encoder.out_dim + image_channels != module.in_dim:
        raise HFCError(f"{path}: segmenter takes {module.in_dim}-channel codes, the encoder gives {encoder.out_dim}"
                       + (f" (+ {image_channels} image channels)" if image_channels else ""))
    return HFCSegmenter(encoder, module, image_channels).eval()
