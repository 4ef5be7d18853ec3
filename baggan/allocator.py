"""Keep freed memory inside the process (glibc): large tensors are then reused instead of paged in again.

glibc's malloc serves blocks above a threshold with fresh mmap pages and gives them back to the kernel on
free, and trims the top of its heap the same way, so every batch of a CPU generator page-faults its
activations in again (docs/benchmarks.md has the cost on this machine). `keep_freed_memory` raises both
thresholds with mallopt; the price is that the process keeps up to 1 GB of freed memory. The `baggan`
command calls it at start; BAGGAN_MALLOC=system turns it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
MMAP_THRESHOLDS = (1 << 30, 32 << 20)  # 1 GB (a 256² feature stack is 33 MB); 32 MB where older glibc refuses more
TRIM_THRESHOLD = 1 << 30  # the process may keep up to this much freed memory


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (mallopt); False where that is not glibc or BAGGAN_MALLOC=system."""
    if os.environ.get("BAGGAN_MALLOC", "").lower() == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt, Windows)
        return False
    mmap = any(mallopt(M_MMAP_THRESHOLD, value) for value in MMAP_THRESHOLDS)  # stops at the first accepted
    return mmap and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
