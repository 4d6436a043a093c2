"""Keep freed memory for reuse: glibc's malloc without mmap for large blocks, and no trimming.

A training step allocates the same large tensors every step. glibc's malloc serves any
block above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and gives it back to
the kernel on free, so the next step's tensor of the same size arrives as untouched pages
and pays one page fault per 4 kB before it can be written. The exact softmax's
[256, 42381] logits (43 MB, several per step) cost more in page faults than in arithmetic:
one ID-only ``full`` step on amazon-3cat took 0.63 s with glibc's defaults and 0.26 s with
this setting (one thread; ``bench/results/allocator.md``). The numbers a run produces do not
change: only where the bytes live does.

:func:`keep_freed_memory` sets ``M_MMAP_MAX = 0`` (every block from the heap) and a 2 GB
trim threshold (freed memory stays mapped for the next step), in this process through
``mallopt`` and, through the ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_`` environment
variables, in the processes it starts (``compare --jobs`` workers). It is what PyTorch's
CPU performance guides reach for with jemalloc or tcmalloc, without another library. The
``clusterneg`` command and its torchrun entry call it; a program that trains through the
Python API can call it once at start. ``CLUSTERNEG_MALLOC=system`` turns it off. It does
nothing (and says so) where the C library is not glibc.

The cost: memory a run freed is not returned to the system until the process ends, so the
resident size stays at the run's high-water mark.

Example:
    >>> import os
    >>> os.environ["CLUSTERNEG_MALLOC"] = "system"
    >>> keep_freed_memory()
    False
    >>> del os.environ["CLUSTERNEG_MALLOC"]
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import platform

log = logging.getLogger(__name__)

#: glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: freed memory beyond this at the top of the heap is returned to the system (mallopt takes
#: an int: 2 GB is the largest)
TRIM_THRESHOLD = 2**31 - 1
OPT_OUT = "CLUSTERNEG_MALLOC"


def keep_freed_memory(*, children: bool = True) -> bool:
    """Serve every allocation from glibc's heap and keep freed memory for reuse.

    Args:
        children: also set the environment variables glibc reads at start, so processes
            started from this one (spawned workers) keep freed memory too. An existing
            ``MALLOC_MMAP_MAX_`` / ``MALLOC_TRIM_THRESHOLD_`` is left as the user set it.

    Returns:
        True when this process's allocator was changed; False where the C library is not
        glibc or ``CLUSTERNEG_MALLOC=system`` asks to keep the system's behaviour.
    """
    if os.environ.get(OPT_OUT, "").strip().lower() == "system":
        return False
    if platform.libc_ver()[0] != "glibc":
        log.debug("allocator: C library is not glibc; malloc left as it is")
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        changed = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
    if children:
        os.environ.setdefault("MALLOC_MMAP_MAX_", "0")
        os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(TRIM_THRESHOLD))
    return changed
