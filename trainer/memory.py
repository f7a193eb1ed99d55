"""Give freed heap memory back to the operating system between training steps.

glibc's malloc keeps freed memory in its arenas; a CPU training loop whose tensors change size from step
to step (detectors: every image its own size, a different number of regions each step) leaves the heap
so fragmented that the trainer's resident memory doubles. Measured on Faster R-CNN (MobileNetV2 FPN, batch
4, 2 CPU cores): 2.6 GB resident after 12 steps, 1.1 GB with malloc_trim after each step, at the same
speed; lowering malloc's mmap threshold instead cost 1.2-3x the step time.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_trim = None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _trim = getattr(_libc, "malloc_trim", None)  # glibc only
except OSError:  # no C library to load (not Linux): nothing to trim
    pass


def release_free_memory() -> None:
    """malloc_trim(0): return the heap's free pages to the system (a no-op without glibc)."""
    if _trim is not None:
        _trim(0)
