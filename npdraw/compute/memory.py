"""Host memory: keep the memory PyTorch frees for its next allocation instead of giving it back.

PyTorch's CPU tensors come from the C library's malloc.  glibc serves a request above its mmap
threshold (128 kiB, rising to at most 32 MiB as blocks are freed) with a fresh mmap and unmaps it on
free, and trims the heap's free top above 128 kiB.  A training step allocates and frees the same large
activations every step (at MNIST settings, batch 150: the decoder's (150, 128, 28, 28) maps, the
prior's 5,400 prefix canvases), so each step faulted all their pages in again and the kernel zeroed
them.  With mmap off and trimming at its ceiling, freed blocks stay in the heap and later steps reuse
them once the heap has settled on a layout (a few steps), for a slightly higher peak resident size
(`benchmarks/bench_model.py --malloc default` against the default; the figures: docs/performance.md).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_CEILING = 2 ** 31 - 1   # bytes: mallopt takes an int; free heap top beyond 2 GiB is still returned


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve every allocation from its heap and never trim it (mallopt), so that
    memory freed by one step is reused by the next without page faults.  The process's resident size
    stays at its peak instead of falling between steps.  Returns whether it applied: False off Linux
    or under another C library (musl, macOS), where nothing is changed."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version"):   # not glibc: its mallopt parameters may differ
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_CEILING))
