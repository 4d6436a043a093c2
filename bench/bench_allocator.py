"""Training step cost with glibc's default malloc and with ``keep_freed_memory``, in one run.

Each mode runs in its own child process (the allocator is per process): the same seeded
amazon-3cat batches through the trainer's ``train_step`` (``bench_speed.Runner``), one
thread, the paper protocol's ID-only towers, for in-batch, the exact softmax (``full``,
whose [256, 42381] logits are far above glibc's 32 MB mmap ceiling) and goobs with cached
vectors. Reported per sampler: CPU ms per step (median; user + system time, so page faults
count wherever the machine's other load runs), minor page faults per step, and the child's
peak resident size. The numbers a step computes do not depend on the allocator (checked
here: each sampler's parameters after its last step are summed in float64 in both modes,
and the table says whether the sums are equal).

Run::

    PYTHONPATH=src python bench/bench_allocator.py

Writes ``bench/results/allocator.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
LABELS = {"in-batch": 60, "goobs cached": 60, "full": 12}  # label -> timed steps
WARM = 3


def child(mode: str) -> dict[str, Any]:
    """Time every sampler in this process under ``mode`` ("system" or "keep")."""
    import torch

    from clusterneg.allocator import keep_freed_memory

    changed = keep_freed_memory(children=False) if mode == "keep" else False
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_speed as bs

    torch.set_num_threads(1)
    data, _ = bs.load_train()
    out: dict[str, Any] = {"mode": mode, "allocator_changed": changed, "samplers": {}}
    for label, steps in LABELS.items():
        runner = bs.Runner(label, data, 1, towers="id")
        batches = bs.batches(data, WARM + steps, 0)
        for b in batches[:WARM]:
            runner.step(b)
        cpu, faults = [], []
        for b in batches[WARM:]:
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            cpu.append(runner.step(b)[0])
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        checksum = sum(float(p.detach().double().sum()) for p in runner.model.parameters())
        out["samplers"][label] = {
            "steps": steps, "param_checksum": checksum,
            "cpu_ms_median": 1000 * statistics.median(cpu),
            "minor_faults_per_step": statistics.mean(faults),
        }
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def table(res: dict[str, Any]) -> str:
    by = {r["mode"]: r for r in res["runs"]}
    lines = [
        "# Training step cost: glibc's default malloc vs keep_freed_memory\n",
        f"`{res['command']}`\n",
        "amazon-3cat, ID-only towers (paper protocol), batch 256, one thread, each mode in its "
        "own process, same batches; CPU time is user + system (page faults included). "
        f"Load average {res['load_avg_start'][0]:.2f} at start, {res['load_avg_end'][0]:.2f} "
        "at end.\n",
        "| sampler | CPU ms/step, default | CPU ms/step, keep | keep / default | "
        "page faults/step, default | keep | same parameters after the steps |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in LABELS:
        d, k = by["system"]["samplers"][label], by["keep"]["samplers"][label]
        lines.append(
            f"| {label} | {d['cpu_ms_median']:.1f} | {k['cpu_ms_median']:.1f} | "
            f"{k['cpu_ms_median'] / d['cpu_ms_median']:.2f}x | "
            f"{d['minor_faults_per_step']:,.0f} | {k['minor_faults_per_step']:,.0f} | "
            f"{'yes' if d['param_checksum'] == k['param_checksum'] else 'NO'} |")
    lines.append(f"\nPeak resident size: default {by['system']['peak_rss_mb']:,.0f} MB, keep "
                 f"{by['keep']['peak_rss_mb']:,.0f} MB.")
    ib_d = by["system"]["samplers"]["in-batch"]["cpu_ms_median"]
    ib_k = by["keep"]["samplers"]["in-batch"]["cpu_ms_median"]
    lines.append(f"\n`full` costs {by['system']['samplers']['full']['cpu_ms_median'] / ib_d:.0f} "
                 f"in-batch steps with the default, "
                 f"{by['keep']['samplers']['full']['cpu_ms_median'] / ib_k:.0f} with keep.\n")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", choices=["system", "keep"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    t0 = time.perf_counter()
    res: dict[str, Any] = {"command": "PYTHONPATH=src python bench/bench_allocator.py",
                           "machine": platform.processor() or platform.machine(),
                           "load_avg_start": os.getloadavg(), "runs": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    for mode in ("system", "keep"):
        proc = subprocess.run([sys.executable, __file__, "--child", mode], env=env,
                              capture_output=True, text=True, check=True)
        res["runs"].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    res["load_avg_end"] = os.getloadavg()
    res["seconds"] = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "allocator.json", json.dumps(res, indent=2) + "\n")
    atomic_write_text(OUT / "allocator.md", table(res))
    print(table(res))


if __name__ == "__main__":
    main()
