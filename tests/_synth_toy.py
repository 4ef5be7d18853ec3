"""A toy generator + annotator for the synthesis tests: latents decide where blobs are and whether they exist.

w (8-d, psi-scaled standard normal) → a disc of class 1 (category Hammer) present iff w[3] > 0.8, and a
rectangle of class 2 (category Knife) present iff w[6] > 0. So the Hammer category depends on one
latent direction, which a steered sampler can find.
"""

from __future__ import annotations

import time

import torch

from baggan.data.labelsets import PIDRAY

W_DIM, NUM_WS = 8, 2
CLASS_TO_CATEGORY = [0, PIDRAY.id_of("Hammer"), PIDRAY.id_of("Knife")]
HAMMER = CLASS_TO_CATEGORY[1]


class ToyGenerator:
    """The FeatureGenerator subset the engine uses: sample_ws and synthesize (images only)."""

    w_dim, num_ws, img_channels = W_DIM, NUM_WS, 3

    def __init__(self, resolution: int = 32):
        self.img_resolution = resolution

    def sample_ws(self, n: int, psi: float = 1.0, seed: int | None = None) -> torch.Tensor:
        """n latents from `seed`; truncation around w_avg = 0."""
        g = torch.Generator().manual_seed(int(seed or 0))
        w = psi * torch.randn(n, W_DIM, generator=g)
        return w[:, None].expand(n, NUM_WS, W_DIM).clone()

    def logits(self, ws: torch.Tensor) -> torch.Tensor:
        """Per-pixel class logits [N, 3, R, R] drawn from w."""
        r = self.img_resolution
        w = ws[:, 0]
        yy, xx = torch.meshgrid(torch.linspace(0, 1, r), torch.linspace(0, 1, r), indexing="ij")
        cx, cy = torch.sigmoid(w[:, 0])[:, None, None], torch.sigmoid(w[:, 1])[:, None, None]
        rad = 0.12 + 0.08 * torch.sigmoid(w[:, 2])[:, None, None]
        disc = rad - ((xx - cx) ** 2 + (yy - cy) ** 2).sqrt() + 0.5 * (w[:, 3, None, None] - 0.8).clamp(max=0)
        bx, by = torch.sigmoid(w[:, 4])[:, None, None], torch.sigmoid(w[:, 5])[:, None, None]
        rect = 0.1 - torch.maximum((xx - bx).abs() * 0.6, (yy - by).abs() * 2.0) + 0.5 * w[:, 6, None, None].clamp(max=0)
        return torch.stack([torch.zeros_like(disc), disc, rect], 1) * 40.0

    def synthesize(self, ws: torch.Tensor, noise_mode: str = "const", return_features: bool = False):
        """Images in [-1, 1]: grey texture from w, objects darker."""
        p = self.logits(ws).softmax(1)
        r = self.img_resolution
        tex = torch.sin(torch.arange(r * r, dtype=torch.float32).view(1, r, r) * 0.1 * (1 + ws[:, 0, 7, None, None]))
        base = 0.6 + 0.1 * tex - 0.8 * p[:, 1] - 0.5 * p[:, 2]
        img = torch.stack([base, base * 0.9, base * 0.8], 1).clamp(-1, 1)
        return img, []


class ToyAnnotator:
    """ws → (images, class maps, probs) in one pass, like hfc's Annotator."""

    def __init__(self, gen: ToyGenerator, sleep: float = 0.0):
        self.gen, self.sleep = gen, sleep  # sleep: seconds per call, so a test can kill a run mid-way

    def __call__(self, ws: torch.Tensor):
        time.sleep(self.sleep)
        probs = self.gen.logits(ws).softmax(1)
        images, _ = self.gen.synthesize(ws)
        return images, probs.argmax(1), probs


def run_toy(outdir, resolution: int = 32, rank: int = 0, world: int = 1, progress: bool = False,
            on_shard_done=None, sleep: float = 0.0, conditions=None, **settings):
    """Synthesise with the toy annotator into `outdir`; returns the engine's Summary."""
    from baggan.synth import SynthSettings, synthesize

    gen = ToyGenerator(resolution)
    return synthesize(ToyAnnotator(gen, sleep), gen.sample_ws, PIDRAY.coco_categories(), CLASS_TO_CATEGORY, outdir,
                      SynthSettings(**settings), rank=rank, world=world, progress=progress,
                      on_shard_done=on_shard_done, conditions=conditions)


def snapshot(outdir) -> dict:
    """Everything a synthesis run wrote that defines its content (bytes per file; no timings, no ranks)."""
    import json
    from pathlib import Path

    out = {}
    for p in sorted(Path(outdir).rglob("*")):
        rel = str(p.relative_to(outdir))
        if not p.is_file() or rel.startswith(".") or "stats" in p.parts or p.name.startswith("provenance"):
            continue
        if p.name in ("shard.json", "index.json"):
            doc = json.loads(p.read_text())
            for s in doc.get("shards", [doc]):
                s.pop("seconds", None), s.pop("rank", None)
            out[rel] = doc
        else:
            out[rel] = p.read_bytes()
    return out


if __name__ == "__main__":  # python tests/_synth_toy.py OUTDIR N SHARD_SIZE BATCH SLEEP (rank: RANK / WORLD_SIZE)
    import sys

    from baggan.synth import rank_world

    r, w = rank_world()
    run_toy(sys.argv[1], rank=r, world=w, n=int(sys.argv[2]), shard_size=int(sys.argv[3]), batch=int(sys.argv[4]),
            sleep=float(sys.argv[5]), min_area=3)


def sigint_default() -> None:
    """Popen preexec_fn: default SIGINT handling in the child, so that Python raises KeyboardInterrupt (a
    shell that runs the suite in the background ignores SIGINT, and children inherit ignored signals)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
