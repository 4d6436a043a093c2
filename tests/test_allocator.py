"""keep_freed_memory: large blocks freed and allocated again, step after step, come back
without page faults once the heap has grown to hold them (counted as the process's minor
faults); the opt-out keeps glibc's default, where every such block faults in again."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from clusterneg.allocator import keep_freed_memory

# a "step" of two 44 MB tensors, 20 steps; glibc's default serves each tensor with a fresh
# mmap (above its 32 MB ceiling). Prints whether the allocator changed and the minor page
# faults of the last 10 steps.
PROBE = """
import resource, sys, torch
from clusterneg.allocator import keep_freed_memory
changed = keep_freed_memory(children=False) if sys.argv[1] == "keep" else False
faults = []
for _ in range(20):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(11_000_000)
    t.fill_(1.0)
    u = t * 2
    del t, u
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(changed, sum(faults[10:]))
"""
#: pages of the last 10 steps' tensors (2 x 44 MB each, 4 kB pages)
PAGES = 10 * 2 * 11_000_000 * 4 // 4096

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")


def _probe(mode: str, **env: str) -> tuple[bool, int]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("MALLOC_") and k != "CLUSTERNEG_MALLOC"}
    out = subprocess.run([sys.executable, "-c", PROBE, mode], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@glibc
def test_freed_blocks_are_reused_without_page_faults() -> None:
    changed, kept = _probe("keep")
    assert changed
    _, default = _probe("default")
    assert default > PAGES * 0.9  # fresh mmap each time: every page faults again
    assert kept < PAGES * 0.25  # reused heap memory: at most an occasional re-growth


@glibc
def test_opt_out_and_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTERNEG_MALLOC", "system")
    monkeypatch.delenv("MALLOC_MMAP_MAX_", raising=False)
    assert keep_freed_memory() is False
    assert "MALLOC_MMAP_MAX_" not in os.environ
    changed, faults = _probe("keep", CLUSTERNEG_MALLOC="system")
    assert not changed and faults > PAGES * 0.9
    monkeypatch.delenv("CLUSTERNEG_MALLOC")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")  # the user's own value is kept
    assert keep_freed_memory() is True
    assert os.environ["MALLOC_MMAP_MAX_"] == "0"
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "12345"
