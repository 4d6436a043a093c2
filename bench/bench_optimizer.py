"""Training step cost of dense Adam against lazy Adam as the catalog grows, in one run.

Dense Adam (``--optimizer adam``) rewrites every row of every embedding table each step; lazy
Adam (``--optimizer lazy-adam``, ``clusterneg.train.optimizer``) only the rows the batch
looked up. So the first costs O(catalog) per step and the second O(batch). This bench puts a
number on it: ID-only towers (user id, item id; 64-d, the paper protocol's towers), a
Zipf(1.1) stream of seeded random batches of 256 over catalogs of 10^4 to 10^6 items and
10^5 users, in-batch and cluster-goobs (16 extra negatives, 1:15, cached vectors, random
negatives shared), each sampler with each optimiser in one process, steps interleaved,
CPU time of the trainer's ``train_step`` (one thread). Quality is not measured here (random
batches); the amazon-3cat comparisons in ``bench/README.md`` measure it.

Run::

    PYTHONPATH=src python bench/bench_optimizer.py --items 10000,100000,1000000

Writes ``bench/results/optimizer.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from clusterneg.model import ModelConfig, TwoTower
from clusterneg.outputs import atomic_write_text
from clusterneg.samplers import build_sampler
from clusterneg.samplers.protocol import Batch, SamplerContext
from clusterneg.train.config import TrainConfig
from clusterneg.train.optimizer import make_optimizer, reuse_embedding_grads
from clusterneg.train.trainer import train_step

OUT = Path(__file__).resolve().parent / "results"
BATCH, DIM, USERS, CLUSTERS = 256, 64, 100_000, 300
SAMPLERS = {"in-batch": {},
            "cluster-goobs cached shared": {"n_negatives": 16, "ratio": "1:15",
                                            "cached_vectors": True, "shared": True}}
OPTIMIZERS = ("adam", "lazy-adam")


def zipf_items(n_items: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Item ids with a Zipf(1.1) popularity over ``n_items`` (id 0 the most popular)."""
    p = 1.0 / np.arange(1, n_items + 1) ** 1.1
    return rng.choice(n_items, size=size, p=p / p.sum())


class Runner:
    """One (sampler, optimiser): its own seeded model, sampler and optimiser."""

    def __init__(self, sampler: str, optimizer: str, n_items: int, log_freq: torch.Tensor,
                 cluster: torch.Tensor) -> None:
        torch.manual_seed(0)
        self.model = TwoTower(ModelConfig(dim=DIM, history_len=0, user_id=True,
                                          content=False), USERS, n_items)
        cfg = TrainConfig(sampler=sampler.split()[0], optimizer=optimizer, batch_size=BATCH)
        if optimizer == "adam":
            reuse_embedding_grads(self.model)  # as train() does on the CPU
        self.ctx = SamplerContext(n_items=n_items, item_log_freq=log_freq,
                                  item_cluster=cluster, n_clusters=CLUSTERS,
                                  batch_size=BATCH, seed=0)
        self.sampler = build_sampler(cfg.sampler, self.ctx, **SAMPLERS[sampler])
        self.opt = make_optimizer(self.model, cfg)
        self.steps = 0

    def step(self, users: torch.Tensor, items: torch.Tensor) -> float:
        c0 = time.process_time()
        out = train_step(self.model, self.sampler, Batch(users, items, step=self.steps),
                         self.opt, self.ctx, True)
        float(out.loss.detach())
        self.steps += 1
        return time.process_time() - c0


def measure(n_items: int, steps: int, rounds: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    counts = np.bincount(zipf_items(n_items, 2_000_000, rng), minlength=n_items) + 0.5
    log_freq = torch.from_numpy(np.log(counts / counts.sum())).float()
    cluster = torch.from_numpy(rng.integers(0, CLUSTERS, n_items)).long()
    runners = {(s, o): Runner(s, o, n_items, log_freq, cluster)
               for s in SAMPLERS for o in OPTIMIZERS}
    times: dict[tuple[str, str], list[float]] = {k: [] for k in runners}

    def batches(n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        g = np.random.default_rng(seed)
        return [(torch.from_numpy(g.integers(0, USERS, BATCH)),
                 torch.from_numpy(zipf_items(n_items, BATCH, g))) for _ in range(n)]

    for r in runners.values():  # warm-up: pool filled, first-step allocations made
        for u, i in batches(3, 99):
            r.step(u, i)
    for rep in range(rounds):
        todo = batches(steps, rep)
        keys = list(runners)
        for key in keys[rep % len(keys):] + keys[: rep % len(keys)]:
            times[key] += [runners[key].step(u, i) for u, i in todo]
    ms = {f"{s} / {o}": 1e3 * statistics.median(times[(s, o)]) for s, o in runners}
    return {"n_items": n_items, "ms_per_step_median": ms,
            "lazy_over_adam": {s: ms[f"{s} / lazy-adam"] / ms[f"{s} / adam"] for s in SAMPLERS},
            "cluster_over_in_batch": {o: ms[f"cluster-goobs cached shared / {o}"]
                                      / ms[f"in-batch / {o}"] for o in OPTIMIZERS}}


def table(res: dict[str, Any]) -> str:
    lines = ["# Dense Adam against lazy Adam as the catalog grows", "",
             f"`{res['command']}`", "",
             f"ID-only towers (user id + item id, {DIM}-d), {USERS:,} users, Zipf(1.1) random "
             f"batches of {BATCH}, one thread, {res['rounds']} interleaved rounds x "
             f"{res['steps']} steps per (sampler, optimiser), median CPU ms per `train_step`; "
             f"cluster-goobs: 16 extra negatives 1:15, {CLUSTERS} random clusters, cached "
             f"vectors, shared random negatives. Load average {res['load_avg_start']:.2f} at "
             f"start, {res['load_avg_end']:.2f} at end.", "",
             "| items | in-batch, adam | in-batch, lazy-adam | lazy / adam | cluster-goobs, adam "
             "| cluster-goobs, lazy-adam | lazy / adam | cluster / in-batch, adam | "
             "cluster / in-batch, lazy-adam |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    cg = "cluster-goobs cached shared"
    for r in res["catalogs"]:
        m = r["ms_per_step_median"]
        lines.append(
            f"| {r['n_items']:,} | {m['in-batch / adam']:.1f} | {m['in-batch / lazy-adam']:.1f} "
            f"| {r['lazy_over_adam']['in-batch']:.2f} | {m[f'{cg} / adam']:.1f} "
            f"| {m[f'{cg} / lazy-adam']:.1f} | {r['lazy_over_adam'][cg]:.2f} "
            f"| {r['cluster_over_in_batch']['adam']:.2f} "
            f"| {r['cluster_over_in_batch']['lazy-adam']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="10000,100000,1000000")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tag", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    res: dict[str, Any] = {
        "command": "PYTHONPATH=src python bench/bench_optimizer.py --items " + args.items
        + f" --steps {args.steps} --rounds {args.rounds}"
        + (f" --tag {args.tag}" if args.tag else ""),
        "steps": args.steps, "rounds": args.rounds, "threads": 1,
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "load_avg_start": os.getloadavg()[0]}
    res["catalogs"] = [measure(int(n), args.steps, args.rounds) for n in args.items.split(",")]
    res["load_avg_end"] = os.getloadavg()[0]
    name = "optimizer" + (f"_{args.tag}" if args.tag else "")
    atomic_write_text(OUT / f"{name}.json", json.dumps(res, indent=2) + "\n")
    atomic_write_text(OUT / f"{name}.md", table(res))
    print(table(res))


if __name__ == "__main__":
    main()
