"""Keeping freed memory for the next step: glibc's allocator set once for numpy's way of working.

numpy allocates a fresh array for nearly every intermediate result and frees it soon after.
glibc serves an allocation above its mmap threshold (128 KiB at first, rising as large
blocks are freed, to at most 32 MiB) with fresh pages from the kernel, and hands them back
on free, so the next step's arrays fault every page in again, zeroed by the kernel. The
`--preset cnn` step at batch 64 allocates tens of megabytes that way: on the project's
machine a fifth of its CPU time was system time, spent in those page faults (5 to 7 ms of
23 to 24 per step), where PyTorch's step spent 1.6 ms. With the mmap threshold at its
ceiling and a high trim threshold, freed blocks stay in the heap and are reused.

The cost: the process keeps up to TRIM_THRESHOLD of freed memory instead of returning it
at once. Only glibc has `mallopt`; elsewhere (macOS, Windows, musl) nothing changes.
XPNET_KEEP_FREED=0 leaves the allocator as it was.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import lru_cache

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit: above it, mmap as before
TRIM_THRESHOLD = 256 << 20  # freed memory kept at the top of the heap before it goes back


@lru_cache(maxsize=None)  # once per process: the setting is the process's
def keep_freed_memory() -> bool:
    """Tell glibc to keep freed blocks for reuse; whether it took the settings."""
    if os.environ.get("XPNET_KEEP_FREED", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
