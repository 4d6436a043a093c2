"""What one more item-tower row costs on this CPU: the arithmetic behind docs/cost.md.

Times, with one torch thread and CPU time (median of repeated calls), the per-row work a
training step does for every candidate it embeds, at the row counts of amazon-3cat with
batch 256: 256 rows (in-batch: the positives only), 4,352 (16 extra negatives per example:
256 x 17) and 8,448 (32, the paper's Amazon ratio 1:31: 256 x 33).

* ``content tower``: gather the 384-d content rows, ``Linear(384, 64)`` forward and its
  weight gradient (2 x 2 x rows x 384 x 64 FLOPs), as ``TwoTower.item_vectors`` does;
* ``normalise (autograd)`` vs ``normalise (rowops)``: ``F.normalize`` forward + backward
  against :func:`clusterneg.model.unit_rows` on 64-d rows;
* ``dot (bmm)`` vs ``dot (rowops)``: per-example dot products [B, K] with their backward.

Run::

    PYTHONPATH=src python bench/bench_tower_rows.py

Writes ``bench/results/tower_rows.json`` and ``bench/results/tower_rows.md``.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from clusterneg.model import row_dot, unit_rows
from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
N_ITEMS, D_CONTENT, D, BATCH = 42381, 384, 64, 256
ROWS = {"in-batch (256)": 256, "16 negatives (4,352)": 256 * 17,
        "32 negatives (8,448)": 256 * 33}


def cpu_ms(fn: Callable[[], object], repeats: int = 40) -> float:
    """Median CPU milliseconds of ``fn`` (one thread)."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return 1e3 * statistics.median(times)


def content_tower(rows: int) -> Callable[[], None]:
    gen = torch.Generator().manual_seed(0)
    content = torch.randn(N_ITEMS, D_CONTENT, generator=gen)
    lin = torch.nn.Linear(D_CONTENT, D)
    ids = torch.randint(0, N_ITEMS, (rows,), generator=gen)

    def step() -> None:
        out = lin(content.index_select(0, ids))
        out.backward(torch.ones_like(out))
    return step


def normalise(rows: int, fused: bool) -> Callable[[], None]:
    x = torch.randn(rows, D, requires_grad=True)
    g = torch.randn(rows, D)
    fn = unit_rows if fused else (lambda t: F.normalize(t, dim=-1))
    return lambda: fn(x).backward(g)


def dot(rows: int, fused: bool) -> Callable[[], None]:
    k = max(rows // BATCH - 1, 1)
    u = torch.randn(BATCH, D, requires_grad=True)
    v = torch.randn(BATCH, k, D, requires_grad=True)
    g = torch.randn(BATCH, k)
    fn = row_dot if fused else (lambda a, b: torch.einsum("bd,bkd->bk", a, b))
    return lambda: fn(u, v).backward(g)


def main() -> None:
    torch.set_num_threads(1)
    res: dict = {"command": "PYTHONPATH=src python bench/bench_tower_rows.py", "threads": 1,
                 "load_avg_start": os.getloadavg(), "torch": torch.__version__, "rows": ROWS,
                 "ms": {}}
    for label, n in ROWS.items():
        ms = {"content tower": cpu_ms(content_tower(n)),
              "normalise (autograd)": cpu_ms(normalise(n, False)),
              "normalise (rowops)": cpu_ms(normalise(n, True)),
              "dot (einsum)": cpu_ms(dot(n, False)),
              "dot (rowops)": cpu_ms(dot(n, True))}
        ms["content tower GFLOP/s"] = 4 * n * D_CONTENT * D / ms["content tower"] / 1e6
        res["ms"][label] = ms
    res["load_avg_end"] = os.getloadavg()
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "tower_rows.json", json.dumps(res, indent=2) + "\n")
    cols = list(next(iter(res["ms"].values())))
    lines = ["# What one more item-tower row costs (CPU ms, median, 1 thread)", "",
             f"`{res['command']}`; load average {res['load_avg_start'][0]:.1f} at start, "
             f"{res['load_avg_end'][0]:.1f} at end.", "",
             "| rows | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, ms in res["ms"].items():
        lines.append(f"| {label} | " + " | ".join(f"{ms[c]:.2f}" for c in cols) + " |")
    atomic_write_text(OUT / "tower_rows.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
