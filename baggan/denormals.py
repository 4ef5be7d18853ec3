"""Flush denormal floats to zero on the CPU, for the whole process.

Floats below 1.2e-38 (denormals) take a slow path in x86 arithmetic: a convolution over denormal inputs ran
~90x slower on this machine (docs/benchmarks.md, "Denormals"). They arise where a softmax or sigmoid
saturates: a one-shot segmenter fitted to its example drives the probabilities of the other classes, and
so its gradients, below that, and its fit slowed from ~140 to ~9 steps/s. Flushing them to zero changes
values only below 1.2e-38. The `baggan` command calls `flush_denormals` at start (commands that never
compute with torch excepted); BAGGAN_DENORMALS=keep turns it off.
"""

from __future__ import annotations

import os


def flush_denormals() -> bool:
    """torch.set_flush_denormal(True); False where the CPU cannot or BAGGAN_DENORMALS=keep."""
    if os.environ.get("BAGGAN_DENORMALS", "").lower() == "keep":
        return False
    import torch

    return bool(torch.set_flush_denormal(True))
