"""The HFC training loop (sections 4 and 6.2.3): one loop for SwAV (ours) and SimCLR; k-means is a fit.

Per iteration: sample latents, build two pixel-aligned W+ views perturbed at one style block, render
both in one synthesis pass (generator frozen), draw G patches or pixel sets, compute Eq. 10 at those
pixels only (fused projection, hfc.features), take a LARS step, renormalise the prototypes.

Writes into `outdir`: checkpoint.pt (resumable: encoder, loss parameters, optimiser, RNG state;
atomic), encoder.pt (the trained encoder alone: what one-shot fitting loads), log.jsonl (one record
per iteration), loss.png (the loss curve). A NaN/Inf loss stops the run with `Diverged` naming the
iteration. On CPU a run is deterministic for a given config and seed, resumed or not.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from hfc.augment import ViewSampler
from hfc.checkpoint import CHECKPOINT_FORMAT, atomic_file, load_weights, module_record, save_atomic, save_module
from hfc.clusterers.kmeans import fit_kmeans_encoder
from hfc.clusterers.simclr import NTXentLoss
from hfc.config import HFCConfig
from hfc.errors import Diverged, HFCError
from hfc.features import PixelEncoder
from hfc.generator import FeatureGenerator, layer_channels
from hfc.lars import LARS
from hfc.rng import draw_seed, seeded
from hfc.sampling import sample_coords
from hfc.swav import HFCLoss, ProjectionHead, SwAVLoss

CHECKPOINT, ENCODER, LOG, CURVE = "checkpoint.pt", "encoder.pt", "log.jsonl", "loss.png"
_RESUMABLE_CHANGES = ("epochs", "checkpoint_every")  # a run may be extended without starting over


def build_objective(cfg: HFCConfig, channels: Sequence[int]) -> tuple[ProjectionHead, HFCLoss]:
    """f_theta and the Eq. 10 loss (SwAV or NT-Xent pair loss), initialised from cfg.seed."""
    with seeded(cfg.seed):
        head = ProjectionHead(channels, cfg.dim, cfg.negative_slope)
        if cfg.method == "swav":
            s = cfg.swav
            pair: nn.Module = SwAVLoss(cfg.dim, s.prototypes, s.temperature, s.eps, s.sinkhorn_iters, s.constraint)
        else:
            pair = NTXentLoss(cfg.simclr.temperature, cfg.simclr.pixels)
    return head, HFCLoss(pair, cfg.global_loss, cfg.local_loss)


def hfc_step(
    gen: FeatureGenerator,
    head: ProjectionHead,
    objective: HFCLoss,
    sampler: ViewSampler,
    cfg: HFCConfig,
    n: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float], int]:
    """The loss of one iteration on n fresh latents: (loss, {"global", "local"}, perturbed block)."""
    size = gen.img_resolution
    ws = gen.sample_ws(n, psi=cfg.augment.psi, seed=draw_seed(generator))
    views = sampler(ws, generator)
    with torch.no_grad():
        _, feats = gen.synthesize(torch.cat([views.ws_s, views.ws_t]), noise_mode="const")
    coords, patches = sample_coords(size, cfg.sampling, n, generator)
    loss, parts = objective(
        head, [h[:n] for h in feats], [h[n:] for h in feats], coords.to(ws.device), size, views.block.first_layer, patches
    )
    return loss, parts, views.block.index


def _meta(gen: FeatureGenerator, cfg: HFCConfig, **extra: Any) -> dict[str, Any]:
    """What an encoder file records about its origin."""
    return {"method": cfg.method, "layer_names": [layer.name for layer in gen.feature_layers],
            "img_resolution": gen.img_resolution, "config": cfg.to_dict(), **extra}  # fmt: skip


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _RESUMABLE_CHANGES}


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a log.jsonl (an empty list if there is none)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_losses(log_path: str | Path, png_path: str | Path) -> None:
    """Loss curve (total, global, local per iteration, with a moving average) as a PNG, atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in read_log(log_path) if "loss" in r]
    if not records:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    its = [r["iter"] for r in records]
    for key, style in (("global", ":"), ("local", "--")):
        if all(key in r for r in records):
            ax.plot(its, [r[key] for r in records], style, lw=0.8, label=key)
    losses = torch.tensor([r["loss"] for r in records])
    ax.plot(its, losses.tolist(), "-", color="0.6", lw=0.8, label="loss")
    window = max(1, len(its) // 20)
    ax.plot(its[window - 1 :], losses.unfold(0, window, 1).mean(1).tolist(), "k-", lw=1.5, label=f"loss, mean of {window}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("HFC loss (Eq. 10)")
    ax.set_title(f"HFC training: {Path(log_path).parent.name}")
    ax.legend()
    fig.tight_layout()
    with atomic_file(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _open_log(path: Path, keep_until: int) -> Any:
    """Open log.jsonl for appending, dropping records after iteration `keep_until` (a resumed run)."""
    kept = [r for r in read_log(path) if r.get("iter", 0) <= keep_until] if keep_until > 0 else []
    with atomic_file(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    return path.open("a", encoding="utf-8", buffering=1)


def _train_kmeans(gen: FeatureGenerator, cfg: HFCConfig, outdir: Path, progress: bool) -> PixelEncoder:
    """HFC+KMeans: no gradient loop, one k-means fit."""
    t0 = time.perf_counter()
    encoder, stats = fit_kmeans_encoder(gen, cfg, torch.Generator().manual_seed(cfg.seed), progress)
    save_module(outdir / ENCODER, encoder, _meta(gen, cfg, **stats))
    with _open_log(outdir / LOG, 0) as log:
        log.write(json.dumps({"method": "kmeans", **stats, "time": time.perf_counter() - t0}) + "\n")
    return encoder


def train_hfc(
    gen: FeatureGenerator, cfg: HFCConfig, outdir: str | Path, resume: bool = True, progress: bool = True
) -> PixelEncoder:
    """Train the HFC encoder for `gen` (method cfg.method), writing into outdir; returns the encoder."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    if cfg.method == "kmeans":
        return _train_kmeans(gen, cfg, outdir, progress)
    device = gen.sample_ws(1, seed=0).device
    sampler = ViewSampler(gen, cfg.augment)
    head, objective = build_objective(cfg, layer_channels(gen))
    head.to(device)
    objective.to(device)
    opt = LARS(
        list(head.parameters()) + list(objective.parameters()),
        lr=cfg.optim.lr, momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay,
        trust_coefficient=cfg.optim.trust_coefficient, exclude_bias_and_norm=cfg.optim.exclude_bias_and_norm,
    )  # fmt: skip
    rng = torch.Generator().manual_seed(cfg.seed)
    start_epoch = it = 0
    ckpt_path = outdir / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = load_weights(ckpt_path, device)
        if _comparable(ckpt["config"]) != _comparable(cfg.to_dict()):
            raise HFCError(f"{ckpt_path}: written with a different config; use the same config or a new outdir")
        head.load_state_dict(ckpt["encoder"]["state_dict"])
        objective.load_state_dict(ckpt["objective"])
        opt.load_state_dict(ckpt["optimizer"])
        rng.set_state(ckpt["rng"])
        start_epoch, it = ckpt["epoch"], ckpt["iteration"]
    with _open_log(outdir / LOG, it) as log, tqdm(
        total=cfg.epochs * cfg.iters_per_epoch, initial=it, desc=f"HFC {cfg.method}", disable=not progress
    ) as bar:
        t0 = time.perf_counter()
        for epoch in range(start_epoch, cfg.epochs):
            for start in range(0, cfg.images_per_epoch, cfg.batch_size):
                n = min(cfg.batch_size, cfg.images_per_epoch - start)
                loss, parts, block = hfc_step(gen, head, objective, sampler, cfg, n, rng)
                it += 1
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise Diverged(
                        f"HFC {cfg.method} loss became {value} at iteration {it} (epoch {epoch + 1}, block {block}); "
                        "lower optim.lr or raise the temperature"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                objective.after_step()
                record = {"iter": it, "epoch": epoch + 1, "loss": value, **parts, "block": block,
                          "time": round(time.perf_counter() - t0, 4)}  # fmt: skip
                log.write(json.dumps(record) + "\n")
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4f}", block=block)
            if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                meta = _meta(gen, cfg, epoch=epoch + 1, iteration=it)
                save_atomic(
                    {"format": CHECKPOINT_FORMAT, "config": cfg.to_dict(), "epoch": epoch + 1, "iteration": it,
                     "encoder": module_record(head, meta), "objective": objective.state_dict(),
                     "optimizer": opt.state_dict(), "rng": rng.get_state()},
                    ckpt_path,
                )  # fmt: skip
                save_module(outdir / ENCODER, head, meta)
                plot_losses(outdir / LOG, outdir / CURVE)
    return head
