"""Giving freed memory back to the operating system between the stages' big steps.

pandas and numpy free their arrays, but glibc's allocator keeps much of what was freed in
its heap for reuse (after large frees it raises its own threshold for returning memory), so
a process that builds and drops per-customer frames of gigabytes keeps a peak that is the
sum of the steps, not the largest of them. ``malloc_trim(0)`` hands the free heap back.
It is a no-op where the C library has no ``malloc_trim`` (not glibc: macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _trim():  # noqa: ANN202 - a ctypes function or None
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> bool:
    """Collect garbage and return the allocator's free memory to the system; True when the C
    library could be asked."""
    gc.collect()
    trim = _trim()
    if trim is None:
        return False
    trim(0)
    return True
