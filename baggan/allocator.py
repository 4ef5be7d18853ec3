"""Keep freed memory inside the process (glibc): large tensors are then reused instead of paged in again.

glibc's malloc serves blocks above a threshold with fresh mmap pages and gives them back to the kernel on
free, and trims the top of its heap the same way, so every batch of a CPU generator page-faults its
activations in again: on this 2-core machine that made a 64² generation 40 % slower and a training step 9 %
slower (docs/benchmarks.md). `keep_freed_memory` raises both thresholds with mallopt; the price is that the
process keeps its peak memory. The `baggan` command calls it at start; BAGGAN_MALLOC=system turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLD = 32 << 20  # glibc's largest accepted value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (mallopt); False where that is not glibc or BAGGAN_MALLOC=system."""
    if os.environ.get("BAGGAN_MALLOC", "").lower() == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt, Windows)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
