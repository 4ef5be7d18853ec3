"""The StyleGAN2-ADA training loop: phases G main / G reg / D main / D reg, ADA, G_ema, ticks, snapshots.

Determinism: the global minibatch of step s is cut into chunks of `batch_gpu` samples; chunk k of
phase φ draws all its random numbers (latents, style mixing, augmentation, noise inputs, PL noise)
after torch.manual_seed(hash(seed, s, φ, k)), and its real images are fixed by (seed, s). Each
process runs its own contiguous chunks; gradients and statistics are sums over the global batch,
all-reduced once per phase. So 1 process and N processes compute the same step (up to float
summation order), and a resumed run replays exactly what the uninterrupted run did.
"""

from __future__ import annotations

import copy
import dataclasses
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from baggan.config import save_config, to_dict
from baggan.errors import ConfigError, TrainingDiverged
from baggan.io import remove_stale
from baggan.stylegan2.augment import PIPES, AugmentPipe, ada_adjust
from baggan.stylegan2.checkpoint import load_network, save_network
from baggan.stylegan2.config import build_discriminator, build_generator
from baggan.stylegan2.dataset import TrainingImages, step_loader
from baggan.stylegan2.distributed import Processes
from baggan.stylegan2.loss import StyleGAN2Loss
from baggan.stylegan2.metrics import Extractor, RealismProbe, inception_extractor
from baggan.stylegan2.training_config import TrainConfig
from baggan.stylegan2.training_report import StatsLog, plot_curves, sample_diversity, save_grid
from baggan.stylegan2.training_state import load_snapshot, rng_state, set_rng_state, snapshot_name

FINAL_NAME = "network-final.pt"  # G, D, G_ema without training state, written when the run completes

PHASES = ("G_main", "G_reg", "D_main", "D_reg")


@dataclass
class Phase:
    """One optimisation phase: which network it updates, how often, with what optimiser and gain."""

    name: str
    module: nn.Module
    opt: torch.optim.Optimizer
    interval: int

    @property
    def gain(self) -> int:
        """Lazy regularisation: a phase run every k minibatches weighs its loss by k."""
        return self.interval


def chunk_seed(seed: int, step: int, phase: int, chunk: int) -> int:
    """The torch seed of one chunk of one phase of one step."""
    return int(np.random.SeedSequence([seed, step, phase, chunk]).generate_state(1)[0])


def make_optimizer(module: nn.Module, lr: float, betas: tuple[float, float], eps: float,
                   reg_interval: int | None) -> torch.optim.Adam:
    """Adam, with lr and betas corrected for lazy regularisation: mb_ratio = k / (k + 1)."""
    ratio = 1.0 if reg_interval is None else reg_interval / (reg_interval + 1)
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(betas[0] ** ratio, betas[1] ** ratio), eps=eps)


def ema_beta(nimg: int, batch: int, half_life_kimg: float, rampup: float | None) -> float:
    """G_ema decay per step: half-life of ema_kimg thousand images, ramped up as rampup × images seen."""
    ema_nimg = half_life_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """G_ema ← lerp(G, G_ema, beta) for parameters; buffers copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory so far: torch.cuda.max_memory_allocated on GPU, peak RSS of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


class Trainer:
    """One training run (one per process under torchrun; rank 0 writes every file)."""

    def __init__(self, cfg: TrainConfig, data: str | Path, outdir: str | Path, procs: Processes,
                 resume: str | Path | None = None, extractor: Extractor | None = None, progress: bool = True,
                 init: str | Path | None = None):
        self.cfg, self.procs, self.outdir = cfg, procs, Path(outdir)
        self.progress = progress and procs.is_main
        # the files named on the command line are read (and refused) before the data set is
        snapshot = load_snapshot(resume) if resume is not None else None
        init_nets = load_network(init) if resume is None and init is not None else None
        self.device = procs.device
        sch = cfg.schedule
        self.batch_gpu = sch.batch_gpu or sch.batch // procs.world
        if sch.batch % (self.batch_gpu * procs.world):
            raise ConfigError(f"schedule.batch: {sch.batch} is not a multiple of batch_gpu ({self.batch_gpu}) x "
                              f"{procs.world} processes")
        self.chunks = sch.batch // (self.batch_gpu * procs.world)  # chunks per process and phase
        self.net_cfg = cfg.network.resolved()
        group = self.net_cfg.mbstd_group_size
        if group and self.batch_gpu % min(group, self.batch_gpu):
            raise ConfigError(f"network.mbstd_group_size: {group} does not divide the per-process batch "
                              f"{self.batch_gpu} (schedule.batch_gpu)")

        self.images = TrainingImages(data, self.net_cfg.resolution, self.net_cfg.img_channels, xflip=cfg.data.xflip,
                                     labels=cfg.data.labels, in_memory=cfg.data.in_memory, progress=self.progress,
                                     repeat=cfg.data.repeat)
        if self.images.c_dim != self.net_cfg.c_dim:
            raise ConfigError(f"network.c_dim: is {self.net_cfg.c_dim} but the data gives labels of length "
                              f"{self.images.c_dim} (data.labels: {cfg.data.labels})")

        torch.manual_seed(cfg.seed)  # identical initial weights on every process
        self.G = build_generator(self.net_cfg).train().requires_grad_(False).to(self.device)
        self.D = build_discriminator(self.net_cfg).train().requires_grad_(False).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval()
        self.augment = None
        if cfg.augment.pipe != "none" and (cfg.augment.p > 0 or cfg.augment.target is not None):
            self.augment = AugmentPipe(PIPES[cfg.augment.pipe], p=cfg.augment.p).train().requires_grad_(False)
            self.augment.to(self.device)
        self.loss = StyleGAN2Loss(cfg.loss, self.G, self.D, self.augment)
        self.loss.path_length.to(self.device)
        self.phases = self._phases()

        # Counters and accumulators (all saved in snapshots).
        self.step = self.nimg = self.tick = self.tick_start_nimg = 0
        self.ada_sums = [0.0, 0.0]  # sum of sign(D(real)), count since the last p adjustment
        self.elapsed = 0.0  # seconds spent in training steps (maintenance excluded), over resumes
        self.maintenance = 0.0
        self.snapshot: Path | None = None
        if snapshot is not None:
            self._restore(snapshot)
            self.snapshot = Path(resume)
        elif init_nets is not None:
            self._initialise(init_nets, init)

        self.probe = None
        if cfg.metrics.fid_ticks > 0:
            self.probe = RealismProbe(extractor or inception_extractor(self.device), self.images,
                                      cfg.metrics.fid_samples, cfg.metrics.seed, procs, batch=self.batch_gpu)
        self.grid_z = torch.randn([cfg.grid**2, self.net_cfg.z_dim], generator=torch.Generator().manual_seed(cfg.seed))
        self.grid_c = self.images.batch(np.arange(cfg.grid**2) % len(self.images))[1]

    # -----------------------------------------------------------------------------------------
    # Set-up.

    def _phases(self) -> list[Phase]:
        """G main, G reg (path length), D main, D reg (R1); reg phases only when their weight is > 0."""
        lc, oc = self.cfg.loss, self.cfg.optim
        g_reg = lc.pl_interval if lc.pl_weight > 0 else None
        d_reg = lc.r1_interval if lc.r1_gamma > 0 else None
        g_opt = make_optimizer(self.G, oc.g_lr, oc.betas, oc.eps, g_reg)
        d_opt = make_optimizer(self.D, oc.d_lr, oc.betas, oc.eps, d_reg)
        phases = [Phase("G_main", self.G, g_opt, 1)]
        if g_reg:
            phases.append(Phase("G_reg", self.G, g_opt, g_reg))
        phases.append(Phase("D_main", self.D, d_opt, 1))
        if d_reg:
            phases.append(Phase("D_reg", self.D, d_opt, d_reg))
        return phases

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """The two optimisers by name."""
        return {"G_opt": self.phases[0].opt, "D_opt": next(p.opt for p in self.phases if p.module is self.D)}

    def _restore(self, snapshot: dict) -> None:
        """Load a snapshot's networks, optimisers, ADA/PL state, counters and RNG states."""
        if snapshot["config"] != to_dict(self.net_cfg):
            raise ConfigError("network: the config's network block differs from the snapshot's; resume with the "
                              "run's own config.yaml")
        for name in ("G", "D", "G_ema"):
            getattr(self, name).load_state_dict(snapshot["nets"][name])
        state = snapshot["extra"]["training"]
        for name, opt in self._optimizers().items():
            opt.load_state_dict(state[name])
        if self.augment is not None:
            self.augment.p.fill_(state["augment_p"])
        self.ada_sums = list(state["ada_sums"])
        self.loss.path_length.mean.fill_(state["pl_mean"])
        c = state["counters"]
        self.step, self.nimg, self.tick, self.tick_start_nimg = c["step"], c["nimg"], c["tick"], c["tick_start_nimg"]
        self.elapsed = state["elapsed_s"]
        set_rng_state(state["rng"])

    def _initialise(self, nets: dict[str, nn.Module], path: str | Path) -> None:
        """Start from the networks of file `path` (ours, NVlabs pickle, rosinality), as the official --resume
        does: fresh optimisers, ADA p and counters; a missing D keeps its fresh initialisation."""
        if "G" not in nets and "G_ema" not in nets:
            raise ConfigError(f"--init {path}: holds no generator")
        for name, fallback in (("G", "G_ema"), ("D", None), ("G_ema", "G")):
            src = nets.get(name, nets.get(fallback) if fallback else None)
            if src is None:
                continue
            state = src.state_dict()
            if not self.net_cfg.use_noise:  # a network trained with noise inputs, continued without them
                state = {k: v for k, v in state.items() if not k.endswith((".noise_strength", ".noise_const"))}
            try:
                getattr(self, name).load_state_dict(state)
            except RuntimeError as e:  # torch lists every mismatch, one per line after a header: show the first
                first = (str(e).splitlines()[1:] or [str(e)])[0].strip()
                raise ConfigError(f"--init {path}: its {name} does not fit the config's network block ({first})") from None

    # -----------------------------------------------------------------------------------------
    # One step.

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        """Labels for generated images: those of random training samples of the epoch schedule (None when
        unconditional)."""
        if not self.images.c_dim:
            return None
        schedule = self.images.schedule
        idx = schedule[torch.randint(len(schedule), (n,)).numpy()]
        return self.images.batch(idx)[1].to(self.device)

    def _run_phase(self, phase: Phase, phase_id: int, reals: torch.Tensor, real_c: torch.Tensor) -> dict[str, float]:
        """Accumulate one phase over this process's chunks, all-reduce, check for NaN, step the optimiser."""
        lc = self.cfg.loss
        per_chunk = self.batch_gpu if phase.name != "G_reg" else max(self.batch_gpu // lc.pl_batch_shrink, 1)
        n_global = per_chunk * self.chunks * self.procs.world
        phase.opt.zero_grad(set_to_none=True)
        phase.module.requires_grad_(True)
        sums: dict[str, torch.Tensor] = {}
        for r in range(self.chunks):
            torch.manual_seed(chunk_seed(self.cfg.seed, self.step, phase_id, self.procs.rank * self.chunks + r))
            z = torch.randn([self.batch_gpu, self.net_cfg.z_dim], device=self.device)
            c = self._fake_labels(self.batch_gpu)
            sl = slice(r * self.batch_gpu, (r + 1) * self.batch_gpu)
            rc = real_c[sl] if self.images.c_dim else None
            if phase.name == "G_main":
                objective, stats = self.loss.g_main(z, c)
            elif phase.name == "G_reg":
                objective, stats = self.loss.g_reg(z, c)
            elif phase.name == "D_main":
                objective, stats = self.loss.d_main(reals[sl], rc, z, c)
            else:
                objective, stats = self.loss.d_reg(reals[sl], rc)
            (objective.sum() * (phase.gain / n_global)).backward()
            for key, v in stats.items():
                sums[key] = sums.get(key, 0) + v.detach().float().sum(dim=0)
        phase.module.requires_grad_(False)

        # One all-reduce per phase: gradients and statistics together.
        params = [p for p in phase.module.parameters()]
        keys = sorted(sums)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten() for p in params]
                         + [sums[k].flatten() for k in keys])
        self.procs.all_reduce_sum(flat)
        offset = 0
        for p in params:
            if p.grad is not None:
                p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        means = {}
        for k in keys:
            size = sums[k].numel()
            means[k] = flat[offset:offset + size].reshape(sums[k].shape) / n_global
            offset += size
        self._check_finite(means)
        for p in params:
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        phase.opt.step()

        if "w" in means and getattr(self.G.mapping, "w_avg_beta", None) is not None:  # D main: track w_avg
            self.G.mapping.w_avg.copy_(means.pop("w").lerp(self.G.mapping.w_avg, self.G.mapping.w_avg_beta))
        means.pop("w", None)
        if "G/pl_length" in means:
            self.loss.path_length.update(float(means["G/pl_length"]))
        if "D/sign_real" in means:
            self.ada_sums[0] += float(means["D/sign_real"]) * n_global
            self.ada_sums[1] += n_global
        return {k: float(v) for k, v in means.items()}

    def _check_finite(self, means: dict[str, torch.Tensor]) -> None:
        """TrainingDiverged naming the first NaN/Inf loss, the iteration and the last good checkpoint."""
        for key, v in means.items():
            if not torch.isfinite(v).all():
                where = f"the last good checkpoint is {self.snapshot}" if self.snapshot else "no checkpoint written yet"
                raise TrainingDiverged(f"loss {key} is {float(v.flatten()[~torch.isfinite(v.flatten())][0])} at "
                                       f"iteration {self.step} ({self.nimg / 1000:.3f} kimg); {where}")

    def _train_step(self, reals: torch.Tensor, real_c: torch.Tensor, tick_stats: dict[str, list[float]]) -> None:
        """All phases due at this step, then G_ema, counters and the ADA heuristic."""
        reals = reals.to(self.device).float() / 127.5 - 1
        real_c = real_c.to(self.device)
        self.loss.blur_sigma = self.cfg.loss.blur_at(self.nimg)
        if self.cfg.loss.blur_sigma > 0:
            tick_stats.setdefault("D/blur_sigma", []).append(self.loss.blur_sigma)
        for phase in self.phases:
            if self.step % phase.interval == 0:
                for k, v in self._run_phase(phase, PHASES.index(phase.name), reals, real_c).items():
                    tick_stats.setdefault(k, []).append(v)
        sch = self.cfg.schedule
        update_ema(self.G_ema, self.G, ema_beta(self.nimg, sch.batch, sch.ema_half_life_kimg(), sch.ema_rampup))
        self.step += 1
        self.nimg += sch.batch
        ac = self.cfg.augment
        if self.augment is not None and ac.target is not None and self.step % ac.interval == 0:
            r_t = self.ada_sums[0] / max(self.ada_sums[1], 1)
            self.augment.p.fill_(ada_adjust(float(self.augment.p), r_t, ac.target, sch.batch * ac.interval, ac.kimg))
            self.ada_sums = [0.0, 0.0]

    # -----------------------------------------------------------------------------------------
    # Ticks: log, images, metrics, snapshots.

    @torch.no_grad()
    def _sample_grid(self) -> torch.Tensor:
        """G_ema on the fixed grid latents (const noise)."""
        out = []
        for z, c in zip(self.grid_z.split(self.batch_gpu), self.grid_c.split(self.batch_gpu)):
            out.append(self.G_ema(z.to(self.device), c.to(self.device) if self.images.c_dim else None,
                                  noise_mode="const").float().cpu())
        return torch.cat(out)

    def _training_state(self) -> dict:
        """The training state a snapshot holds beside the networks (counters as after this tick's maintenance)."""
        return {
            "config": to_dict(self.cfg),
            **{name: opt.state_dict() for name, opt in self._optimizers().items()},
            "augment_p": float(self.augment.p) if self.augment is not None else 0.0,
            "ada_sums": list(self.ada_sums), "pl_mean": float(self.loss.path_length.mean),
            "counters": {"step": self.step, "nimg": self.nimg, "tick": self.tick + 1, "tick_start_nimg": self.nimg},
            "data": {"seed": self.cfg.seed, "next_step": self.step, "batch": self.cfg.schedule.batch},
            "rng": rng_state(), "elapsed_s": self.elapsed,
        }

    def _nets(self) -> dict[str, nn.Module]:
        """The three networks by name."""
        return {"G": self.G, "D": self.D, "G_ema": self.G_ema}

    def _tick(self, done: bool, tick_stats: dict[str, list[float]], tick_time: float, tick_cpu: float,
              log: StatsLog | None) -> None:
        """Maintenance at the end of a tick (rank 0 writes; every rank joins the metric)."""
        sch = self.cfg.schedule
        kimg = max(self.nimg - self.tick_start_nimg, 1) / 1000
        cpu = float(self.procs.all_reduce_sum(torch.tensor([tick_cpu], dtype=torch.float64, device=self.device)))
        record = {"tick": self.tick, "kimg": self.nimg / 1000, "step": self.step, "time_s": round(self.elapsed, 2),
                  "sec_per_tick": round(tick_time, 3), "sec_per_kimg": round(tick_time / kimg, 3),
                  "cpu_sec_per_kimg": round(cpu / kimg, 3),  # CPU seconds of all processes (robust on a shared CPU)
                  "maintenance_s": round(self.maintenance, 3),  # the previous tick's log, images, metric, snapshot
                  "peak_mem_gb": round(peak_memory_gb(self.device), 4),
                  "augment_p": float(self.augment.p) if self.augment is not None else 0.0,
                  **{k: float(np.mean(v)) for k, v in sorted(tick_stats.items())}}
        record["ada_rt"] = record.pop("D/sign_real", None)
        if self.probe is not None and (done or self.tick % self.cfg.metrics.fid_ticks == 0):
            record.update(self.probe(self.G_ema))
        if self.procs.is_main:
            samples = self._sample_grid()
            record["diversity"] = sample_diversity(samples.clamp(-1, 1))  # 0 = every sample the same (collapse)
            record["diversity_real"] = self.real_diversity
            log.append(record)
            if done or self.tick % sch.image_snapshot_ticks == 0:
                save_grid(self.outdir / f"fakes-{self.nimg:010d}.png", samples, self.cfg.grid)
                plot_curves(self.outdir / "curves.png", log.records, self.cfg.augment.target)
            if done or self.tick % sch.snapshot_ticks == 0:
                path = self.outdir / snapshot_name(self.nimg)
                save_network(path, self._nets(), self.net_cfg, extra={"training": self._training_state()})
                self.snapshot = path
            if done:
                save_network(self.outdir / FINAL_NAME, self._nets(), self.net_cfg)
        self.procs.barrier()

    def _start_files(self) -> StatsLog:
        """Rank 0: the resolved config, the grid of reals and the log (cut back to the snapshot on resume).
        Temporary files of writes a kill cut off (a snapshot, a picture) are removed first."""
        self.outdir.mkdir(parents=True, exist_ok=True)
        remove_stale(self.outdir, ".*.tmp")
        save_config(self.outdir / "config.yaml", dataclasses.replace(self.cfg, network=self.net_cfg))
        reals = self.images.batch(np.arange(self.cfg.grid**2) % len(self.images))[0]
        save_grid(self.outdir / "reals.png", reals, self.cfg.grid)
        self.real_diversity = sample_diversity(reals.float() / 127.5 - 1)
        return StatsLog(self.outdir / "stats.jsonl", keep_before_tick=self.tick)

    def train(self, on_step: Callable[[int], None] | None = None) -> Path | None:
        """Run until total_kimg; returns the last snapshot's path (on rank 0)."""
        sch = self.cfg.schedule
        log = self._start_files() if self.procs.is_main else None
        total_nimg = int(round(sch.total_kimg * 1000))
        if self.nimg >= total_nimg:
            return self.snapshot
        start = self.procs.rank * self.chunks * self.batch_gpu
        loader = step_loader(self.images, self.cfg.seed, sch.batch, start, start + self.chunks * self.batch_gpu,
                             self.step, self.cfg.data.workers)
        bar = tqdm(total=total_nimg / 1000, initial=self.nimg / 1000, unit="kimg", desc="training",
                   disable=not self.progress, bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} kimg [{elapsed}<{remaining}]")
        tick_stats: dict[str, list[float]] = {}
        tick_start, tick_cpu = time.time(), time.process_time()
        for reals, real_c in loader:
            self._train_step(reals, real_c, tick_stats)
            bar.update(min(self.nimg, total_nimg) / 1000 - bar.n)
            if on_step is not None:
                on_step(self.step)
            done = self.nimg >= total_nimg
            if not done and self.tick != 0 and self.nimg < self.tick_start_nimg + sch.kimg_per_tick * 1000:
                continue
            now = time.time()
            self.elapsed += now - tick_start
            self._tick(done, tick_stats, now - tick_start, time.process_time() - tick_cpu, log)
            self.maintenance = time.time() - now
            if self.procs.is_main:
                bar.set_postfix(tick=self.tick, p=f"{float(self.augment.p) if self.augment else 0:.3f}")
            self.tick += 1
            self.tick_start_nimg = self.nimg
            tick_stats = {}
            tick_start, tick_cpu = time.time(), time.process_time()
            if done:
                break
        bar.close()
        return self.snapshot


__all__ = ["Trainer", "FINAL_NAME", "Phase", "chunk_seed", "make_optimizer", "ema_beta", "update_ema", "peak_memory_gb", "PHASES"]
