"""Keep glibc's allocator from handing big tensors back to the OS between training steps.

By default glibc serves allocations above a (dynamic, at most 32 MB) threshold with a fresh
``mmap`` and unmaps them when freed, so every IMDB step faults its [32, 8, 256, 256] attention
tensors (67 MB each) and the dense embedding gradient (86 MB) back in, page by page. Raising the
mmap and trim thresholds lets freed memory be reused: measured on the 2-core CPU, an IMDB training
step went from 0.62 s to 0.48 s (page faults per step from ~3800 to ~200). The cost is that the
process keeps its peak memory instead of returning it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(mmap_threshold: int = 2**30, trim_threshold: int = 2**31 - 1) -> bool:
    """Raise glibc's mmap/trim thresholds for this process; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)  # glibc only (musl has none)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
