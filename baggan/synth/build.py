"""Wire the real pieces for the engine: generator file + HFC encoder file + one-shot segmenter file → Annotate.

A segmenter file says which category each of its classes is in its metadata (hfc `save_classifier(path,
model, meta)`):

    meta = {"label_set": "pidray", "class_to_category": [0, 3, 10, ...]}   # class i → category id; 0 = background

`--label-set` / `--classes` on the command line declare it for files saved without it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from baggan.data.labelsets import LabelSet, get_label_set
from baggan.errors import UserError, about


@dataclass
class Wiring:
    """Everything `synthesize` needs besides the settings."""

    gen: object  # a FeatureGenerator
    annotate: Callable  # ws → (images, class maps, probs)
    label_set: LabelSet
    class_to_category: list[int]
    provenance: dict
    inputs: dict  # SHA-256 of the network, encoder and segmenter files: part of what defines the output
    conditions: Callable | None = None  # z seeds → category id each is drawn with (a conditional generator)


def class_mapping(meta: dict, num_classes: int, source: str, label_set: str | None = None,
                  classes: Sequence[str] | None = None) -> tuple[LabelSet, list[int]]:
    """(label set, class index → category id) from a segmenter's metadata or the command-line overrides."""
    ls = get_label_set(label_set or meta.get("label_set") or "pidray")
    if classes:
        table = [0] + [ls.id_of(c) for c in classes]
    elif "class_to_category" in meta:
        table = [int(c) for c in meta["class_to_category"]]
    elif num_classes == ls.num_classes and (label_set or "label_set" in meta):
        table = list(range(num_classes))  # the segmenter predicts the whole label set in its order
    else:
        raise UserError(f"{source}: the segmenter's metadata does not say which category each of its {num_classes} "
                        f"classes is; give --classes NAME,NAME,... (classes 1..{num_classes - 1} of --label-set)")
    if len(table) != num_classes or table[0] != 0:
        raise UserError(f"{source}: class → category table {table} must have {num_classes} entries starting with 0 "
                        "(background)")
    bad = [c for c in table[1:] if not 1 <= c < ls.num_classes]
    if bad:
        raise UserError(f"{source}: category ids {bad} are not in label set {ls.name} (1..{ls.num_classes - 1})")
    return ls, table


def load_annotator(network: str | Path, hfc: str | Path | None, segmenter: str | Path, device: torch.device,
                   label_set: str | None = None, classes: Sequence[str] | None = None) -> Wiring:
    """Load generator, HFC encoder (not needed for a baseline segmenter) and segmenter into an Annotate. A
    conditional generator labelled with the label set's categories draws its label (uniformly, from the z seed)
    among the categories the segmenter predicts."""
    from baggan.io import file_sha256
    from baggan.stylegan2 import load_feature_generator
    from hfc.checkpoint import load_module
    from hfc.features import PixelEncoder
    from hfc.oneshot import Annotator, load_classifier

    gen = load_feature_generator(network, device)
    with about("--hfc"):
        encoder = load_module(hfc, device, expect=PixelEncoder) if hfc else None
    with about("--segmenter"):
        model = load_classifier(segmenter, encoder, device)
    annotate = Annotator(gen, encoder, model)
    meta = getattr(getattr(model, "segmenter", model), "meta", {}) or {}
    ls, table = class_mapping(meta, annotate.num_classes, str(segmenter), label_set, classes)
    conditioned = None
    if gen.G.c_dim and gen.G.c_dim == len(ls.names):  # labels are the label set's categories: draw the segmented ones
        conditioned = [c - 1 for c in table[1:]]
        gen.draw_among(conditioned)
    provenance = {"network": str(network), "hfc": str(hfc) if hfc else None, "segmenter": str(segmenter),
                  "segmenter_meta": {k: v for k, v in meta.items() if isinstance(v, (str, int, float, list))},
                  "device": str(device), "img_resolution": gen.img_resolution}
    inputs = {"network": file_sha256(network), "hfc": file_sha256(hfc) if hfc else None,
              "segmenter": file_sha256(segmenter)}
    if conditioned is not None:
        provenance["conditioned_on"] = [ls.names[c] for c in conditioned]
        inputs["labels"] = conditioned
    return Wiring(gen, annotate, ls, table, provenance, inputs,
                  None if conditioned is None else lambda seeds: [drawn_category(gen, z) for z in seeds])


def drawn_category(gen, z_seed: int) -> int:
    """The category id (label index + 1) a conditional generator draws for z seed `z_seed` (`gen.sample_ws`)."""
    return int(gen.draw(1, z_seed)[1][0]) + 1


def write_random_pieces(outdir: str | Path, cfg, dim: int = 512, segmenter: str = "mlp1",
                        classes: Sequence[str] = ("Hammer", "Knife"), seed: int = 0) -> tuple[Path, Path, Path]:
    """Randomly initialised generator (NetworkConfig `cfg`), HFC encoder (D = dim) and segmenter files under
    `outdir` → (network, hfc, segmenter) paths: a timing proxy for the benchmark and a kit for smoke tests."""
    from baggan.data.labelsets import PIDRAY
    from baggan.stylegan2 import StyleGANFeatureGenerator, build_generator, save_network
    from hfc.checkpoint import save_module
    from hfc.oneshot import HFCSegmenter, save_classifier
    from hfc.segmenters import make_segmenter
    from hfc.swav import ProjectionHead

    outdir = Path(outdir)
    paths = outdir / "network.pt", outdir / "hfc.pt", outdir / "segmenter.pt"
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        g = build_generator(cfg).eval()
        encoder = ProjectionHead([layer.channels for layer in StyleGANFeatureGenerator(g).feature_layers], dim)
        seg = make_segmenter(segmenter, dim, len(classes) + 1)
    save_network(paths[0], {"G_ema": g}, cfg)
    save_module(paths[1], encoder)
    save_classifier(paths[2], HFCSegmenter(encoder, seg),
                    {"label_set": PIDRAY.name, "class_to_category": [0] + [PIDRAY.id_of(c) for c in classes]})
    return paths
