"""Many projections at once: one single-threaded worker process per CPU core.

A 64² generator's forward and backward pass gains nothing from a larger batch on the CPU (25–32 ms an image at
batch 1–16, one thread) and little from a second thread, so N scans project fastest as N independent
`project` calls spread over worker processes, each with one torch thread. Every worker loads the generator from
its file; a projection there is the one `project` makes in a single-threaded process (same seed, same values).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from baggan.stylegan2.projector import ProjectionResult, ProjectorConfig, project

_G = None  # the worker's generator


def _init_worker(network: str) -> None:
    """Worker start: one torch thread, denormals flushed (as the `baggan` command), the generator loaded once."""
    global _G
    from baggan.denormals import flush_denormals
    from baggan.stylegan2.checkpoint import load_network

    torch.set_num_threads(1)
    flush_denormals()
    nets = load_network(network, "cpu")
    _G = nets.get("G_ema", nets.get("G"))  # the generator the parent projects into (both read the file so)


def _project_one(job: tuple[np.ndarray, np.ndarray | None, ProjectorConfig]) -> ProjectionResult:
    """One projection in a worker, its tensors as numpy arrays (torch would share them through semaphores and
    shared-memory files that outlive the pool) and its step history dropped (the parent never reads it)."""
    image, c, cfg = job
    r = project(_G, image, cfg, progress=False, c=None if c is None else torch.from_numpy(c))
    return dataclasses.replace(r, ws=r.ws.numpy(), noise={k: v.numpy() for k, v in r.noise.items()}, history=[])


def _as_tensors(r: ProjectionResult) -> ProjectionResult:
    """A worker's result with its arrays back as tensors."""
    return dataclasses.replace(r, ws=torch.from_numpy(r.ws), noise={k: torch.from_numpy(v) for k, v in r.noise.items()})


def project_many(network: str | Path, G, targets: Sequence[np.ndarray], cfg: ProjectorConfig,
                 labels: Sequence[torch.Tensor | None] | None = None, workers: int = 1,
                 on_done: Callable[[int, ProjectionResult], None] | None = None) -> list[ProjectionResult]:
    """The projections of `targets` (HxWxC uint8) into generator G, read from `network` by the workers; `labels` the
    targets' labels for a conditional G. workers <= 1 (or G not on the CPU): in this process, one after another;
    `on_done(i, result)` is called as each projection arrives, in order (a progress bar, a cache that keeps what an
    interruption would lose). Results keep the targets' order."""
    labels = list(labels) if labels is not None else [None] * len(targets)
    assert len(labels) == len(targets), f"{len(labels)} labels for {len(targets)} targets"
    if workers <= 1 or len(targets) <= 1 or G.mapping.fc0.weight.device.type != "cpu":
        results = (project(G, image, cfg, progress=False, c=c) for image, c in zip(targets, labels))
        return _collect(results, on_done)
    import multiprocessing

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    with ctx.Pool(min(workers, len(targets)), _init_worker, (str(network),)) as pool:
        jobs = [(image, None if c is None else c.numpy(), cfg) for image, c in zip(targets, labels)]
        return _collect(map(_as_tensors, pool.imap(_project_one, jobs)), on_done)


def _collect(results: Iterable[ProjectionResult],
             on_done: Callable[[int, ProjectionResult], None] | None) -> list[ProjectionResult]:
    """The results as a list, `on_done` told of each as it arrives."""
    out = []
    for i, result in enumerate(results):
        out.append(result)
        if on_done is not None:
            on_done(i, result)
    return out


__all__ = ["project_many"]
