"""Cross-check of `baggan train`: a separate, minimal StyleGAN2 loop written the way the official
stylegan2-ada-pytorch code orders its work, on baggan's networks (which match the official ones bit for
bit, docs/benchmarks.md), so that a failure seen in both is not a fault of baggan's training loop.

What it shares with baggan: the networks (`build_generator`, `build_discriminator`), the data reader and the
grid writer. What it does its own way, after the official `training/loss.py` and `training_loop.py`:
phases 'Gmain'/'Greg'/'Dmain'/'Dreg' (or 'Gboth'/'Dboth' without lazy regularisation); each phase
accumulates `mean loss x interval` over rounds of batch_gpu samples; the mapping updates w_avg on its
first call; data drawn uniformly at random; no per-chunk seeding, no multi-process code, no snapshots.
G_ema and the lazy-regularisation correction of Adam use baggan's `ema_beta` / `update_ema` / `make_optimizer`
(the official formulas, tested in tests/test_train_loss.py).
The logistic loss only, and no augmentation (the config's `augment` block is ignored).

Every 2 kimg it writes a JSON line (mean D scores, losses, R1, and the sample diversity of G and
G_ema: the per-pixel standard deviation across 64 fixed latents, 0 for a collapsed generator) and a
G_ema grid:

    python scripts/crosscheck_training.py --config docs/benchmarks/train-xraysim64-noada/config.yaml \\
        --data data/xraysim-64 --outdir runs/crosscheck --kimg 24
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from baggan.config import load_config, save_config
from baggan.errors import UserError
from baggan.stylegan2.config import build_discriminator, build_generator
from baggan.stylegan2.dataset import TrainingImages
from baggan.stylegan2.training_config import TrainConfig
from baggan.stylegan2.training_loop import ema_beta, make_optimizer, update_ema
from baggan.stylegan2.training_report import sample_diversity, save_grid


class OfficialStyleLoss:
    """The official accumulate_gradients for the logistic loss with R1 and path-length regularisation."""

    def __init__(self, cfg: TrainConfig, G: torch.nn.Module, D: torch.nn.Module):
        self.lc, self.G, self.D = cfg.loss, G, D
        self.pl_mean = torch.zeros([])

    def run_G(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """G with style mixing; the first mapping call updates w_avg."""
        ws = self.G.mapping(z, None, update_emas=True)
        if self.lc.style_mixing > 0:
            cutoff = torch.empty([], dtype=torch.int64).random_(1, ws.shape[1])
            cutoff = torch.where(torch.rand([]) < self.lc.style_mixing, cutoff, torch.full_like(cutoff, ws.shape[1]))
            ws[:, cutoff:] = self.G.mapping(torch.randn_like(z), None)[:, cutoff:]
        return self.G.synthesis(ws), ws

    def accumulate(self, phase: str, real: torch.Tensor, z: torch.Tensor, gain: int) -> dict[str, float]:
        """Back-propagate one round of one phase; returns its statistics."""
        stats = {}
        if phase in ("Gmain", "Gboth"):
            loss = F.softplus(-self.D(self.run_G(z)[0], None))
            stats["G/loss"] = float(loss.detach().mean())
            loss.mean().mul(gain).backward()
        if phase in ("Greg", "Gboth") and self.lc.pl_weight > 0:
            img, ws = self.run_G(z[:z.shape[0] // self.lc.pl_batch_shrink])
            noise = torch.randn_like(img) / np.sqrt(img.shape[2] * img.shape[3])
            (grad,) = torch.autograd.grad([(img * noise).sum()], [ws], create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            pl_mean = self.pl_mean.lerp(lengths.mean(), self.lc.pl_decay)
            self.pl_mean = pl_mean.detach()
            (img[:, 0, 0, 0] * 0 + (lengths - pl_mean).square() * self.lc.pl_weight).mean().mul(gain).backward()
        do_main, do_r1 = phase in ("Dmain", "Dboth"), phase in ("Dreg", "Dboth") and self.lc.r1_gamma > 0
        if do_main:
            fake_logits = self.D(self.run_G(z)[0], None)  # G's parameters do not require grad in D phases
            stats["D/score_fake"] = float(fake_logits.detach().mean())
            F.softplus(fake_logits).mean().mul(gain).backward()
        if do_main or do_r1:
            real = real.detach().requires_grad_(do_r1)
            real_logits = self.D(real, None)
            stats["D/score_real"] = float(real_logits.detach().mean())
            loss = F.softplus(-real_logits) if do_main else 0
            if do_r1:
                (grad,) = torch.autograd.grad([real_logits.sum()], [real], create_graph=True)
                r1 = grad.square().sum([1, 2, 3])
                stats["D/r1_penalty"] = float(r1.detach().mean())
                loss = loss + r1 * (self.lc.r1_gamma / 2)
            (real_logits * 0 + loss).mean().mul(gain).backward()
        return stats


def phases(cfg: TrainConfig, G: torch.nn.Module, D: torch.nn.Module) -> list[tuple[str, torch.nn.Module, torch.optim.Optimizer, int]]:
    """(name, module, optimiser, interval) as the official training_loop builds them (lazy-regularisation
    correction of lr and betas by baggan's `make_optimizer`, tested against the official formula)."""
    out = []
    for name, module, lr, reg in (("G", G, cfg.optim.g_lr, cfg.loss.pl_interval if cfg.loss.pl_weight > 0 else None),
                                  ("D", D, cfg.optim.d_lr, cfg.loss.r1_interval if cfg.loss.r1_gamma > 0 else None)):
        opt = make_optimizer(module, lr, cfg.optim.betas, cfg.optim.eps, reg)
        out += [(name + "both", module, opt, 1)] if reg is None else [(name + "main", module, opt, 1),
                                                                     (name + "reg", module, opt, reg)]
    return out


def main(argv: list[str] | None = None) -> None:
    """Train for --kimg with the official ordering; log every 2 kimg."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--kimg", type=float, default=24)
    args = ap.parse_args(argv)
    cfg = load_config(args.config, TrainConfig)
    if cfg.loss.kind != "logistic":
        raise UserError(f"{args.config}: loss.kind: the cross-check implements 'logistic' only, got {cfg.loss.kind!r}")
    if cfg.network.c_dim:
        raise UserError(f"{args.config}: network.c_dim: the cross-check trains unconditional networks only")
    net, sch = cfg.network.resolved(), cfg.schedule
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    G = build_generator(net).train().requires_grad_(False)
    D = build_discriminator(net).train().requires_grad_(False)
    G_ema = copy.deepcopy(G).eval()
    images = TrainingImages(args.data, net.resolution, net.img_channels, in_memory=True)
    loss, plan = OfficialStyleLoss(cfg, G, D), phases(cfg, G, D)
    batch_gpu = sch.batch_gpu or sch.batch
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / "config.yaml", cfg)
    grid_z = torch.randn([64, net.z_dim], generator=torch.Generator().manual_seed(cfg.seed))
    nimg = step = 0
    next_log, stats, start = 0, {}, time.time()
    with open(out / "log.jsonl", "w", encoding="utf-8") as log:
        while nimg < args.kimg * 1000:
            real = images.batch(np.random.randint(len(images), size=sch.batch))[0].float() / 127.5 - 1
            for (name, module, opt, interval), z in zip(plan, torch.randn([len(plan), sch.batch, net.z_dim])):
                if step % interval:
                    continue
                opt.zero_grad(set_to_none=True)
                module.requires_grad_(True)
                for sl in (slice(i, i + batch_gpu) for i in range(0, sch.batch, batch_gpu)):
                    for k, v in loss.accumulate(name, real[sl], z[sl], interval).items():
                        stats.setdefault(k, []).append(v)
                module.requires_grad_(False)
                for p in module.parameters():
                    if p.grad is not None:
                        torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
                opt.step()
            update_ema(G_ema, G, ema_beta(nimg, sch.batch, sch.ema_half_life_kimg(), sch.ema_rampup))
            nimg, step = nimg + sch.batch, step + 1
            if nimg >= next_log or nimg >= args.kimg * 1000:
                with torch.no_grad():
                    ema = torch.cat([G_ema(z, None, noise_mode="const") for z in grid_z.split(16)])
                    now = torch.cat([G(z, None) for z in grid_z.split(16)])
                save_grid(out / f"fakes-{nimg:07d}.png", ema, 8)
                record = {"kimg": nimg / 1000, "wall_s": round(time.time() - start, 1),
                          "diversity_G_ema": sample_diversity(ema.clamp(-1, 1)),
                          "diversity_G": sample_diversity(now.clamp(-1, 1)),
                          **{k: float(np.mean(v)) for k, v in sorted(stats.items())}}
                log.write(json.dumps(record) + "\n")
                log.flush()
                print(json.dumps(record), flush=True)
                next_log, stats = next_log + 2000, {}


if __name__ == "__main__":
    try:
        main()
    except UserError as e:
        sys.exit(f"error: {e}")
