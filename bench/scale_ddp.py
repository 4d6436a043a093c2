"""Examples/s of one process against two torchrun processes (gloo, one thread each).

Run from the repository root:

    PYTHONPATH=src nice python bench/scale_ddp.py [--steps 150] [--batch 256]

Generates a synthetic set (20,000 items, 400,000 interactions, 4,000 users, 40 clusters)
in a temporary directory, then runs ``clusterneg.train.distributed`` under torchrun with
``--nproc-per-node`` 1 and 2 (OMP_NUM_THREADS=1 each, cluster-goobs with 16 pool negatives,
id towers of dimension 32), the same number of steps per rank. Throughput is all ranks'
examples over the slowest rank's training seconds. Also reports what crosses the network per
step: the gradient all-reduce (dense embedding gradients: every parameter, every step) and
the pool all-gather (16 bytes per example). Writes bench/scale_ddp.json and bench/scale_ddp.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from clusterneg.outputs import atomic_write_text

HERE = Path(__file__).resolve().parent


def run(data: Path, out: Path, nproc: int, steps: int, batch: int, dim: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", str(nproc), "-m", "clusterneg.train.distributed",
                    str(data), "--out", str(out), "--steps", str(steps), "--batch-size",
                    str(batch), "--dim", str(dim), "--threads", "1"],
                   env=env, check=True, capture_output=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(nproc)]
    examples = sum(r["examples"] for r in ranks)
    seconds = max(r["seconds"] for r in ranks)
    return {"processes": nproc, "steps_per_rank": steps, "examples": examples,
            "seconds": round(seconds, 2), "examples_per_s": round(examples / seconds, 1),
            "per_rank_examples_per_s": [round(r["examples_per_s"], 1) for r in ranks]}


def allreduce_worker(n_floats: int, repeats: int = 30) -> None:
    """(under torchrun) Time a gloo all-reduce of ``n_floats`` fp32, as DDP does per step."""
    import time

    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    x = torch.ones(n_floats)
    dist.all_reduce(x)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        dist.all_reduce(x)
    ms = (time.perf_counter() - t0) / repeats * 1e3
    if dist.get_rank() == 0:
        print(json.dumps({"allreduce_ms": round(ms, 2)}))
    dist.destroy_process_group()


def time_allreduce(n_floats: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc-per-node", "2", __file__, "--allreduce-worker",
                          str(n_floats)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["allreduce_ms"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--allreduce-worker", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dim", type=int, default=32)
    args = ap.parse_args()
    if args.allreduce_worker:
        allreduce_worker(args.allreduce_worker)
        return
    from clusterneg.data.synth import SynthConfig, synthesize

    n_items, n_users = 20_000, 4_000
    with tempfile.TemporaryDirectory() as tmp:
        data = synthesize(SynthConfig(n_items=n_items, n_interactions=400_000,
                                      n_users=n_users, n_clusters=40, shard_rows=50_000),
                          Path(tmp) / "d")
        rows = [run(data, Path(tmp) / f"o{n}", n, args.steps, args.batch, args.dim)
                for n in (1, 2)]
    params = (n_items + n_users) * args.dim  # id embeddings; dense gradients
    allreduce_ms = time_allreduce(params)
    result = {
        "command": f"PYTHONPATH=src nice python bench/scale_ddp.py --steps {args.steps} "
                   f"--batch {args.batch}",
        "runs": rows, "speedup_2_over_1": round(rows[1]["examples_per_s"]
                                               / rows[0]["examples_per_s"], 3),
        "allreduce_bytes_per_step": params * 4,
        "allreduce_ms_2_processes": allreduce_ms,
        "step_ms": [round(r["seconds"] / r["steps_per_rank"] * 1e3, 1) for r in rows],
        "pool_allgather_bytes_per_step": 2 * args.batch * 16,
        "machine": f"{os.cpu_count()} logical CPUs, shared with other jobs while measured",
    }
    atomic_write_text(HERE / "scale_ddp.json", json.dumps(result, indent=2) + "\n")
    lines = ["# torchrun: one process against two (gloo, one thread each)", "",
             f"`{result['command']}`", "",
             "| processes | steps/rank | examples | seconds | examples/s | per rank |",
             "|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['processes']} | {r['steps_per_rank']} | {r['examples']:,} | "
              f"{r['seconds']} | {r['examples_per_s']:,.0f} | {r['per_rank_examples_per_s']} |"
              for r in rows]
    lines += ["", f"Speed-up of 2 processes over 1: **{result['speedup_2_over_1']}x**. Per "
              f"step the gradient all-reduce moves {params * 4 / 1e6:.1f} MB (dense "
              f"embedding gradients) and the pool all-gather "
              f"{result['pool_allgather_bytes_per_step'] / 1e3:.1f} kB. A step took "
              f"{result['step_ms'][0]} ms alone and {result['step_ms'][1]} ms with two "
              f"processes; a bare gloo all-reduce of the gradient size took "
              f"{allreduce_ms} ms between the two processes.", ""]
    atomic_write_text(HERE / "scale_ddp.md", "\n".join(lines))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
