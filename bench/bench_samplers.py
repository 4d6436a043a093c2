"""Cost of the GOOBS pool and of every sampler, on a synthetic 30,000-item catalog.

(a) pool bookkeeping (update + in-cluster sample + random sample) as a share of one training
    step at batch 1024 (target <= 2%);
(b) training examples/s of every sampler at equal numbers of extra negatives (16 per example;
    target: cluster-goobs >= 0.97x goobs);
(c) pool update and in-cluster sample throughput in rows/s at 300 clusters x 1024 slots, against
    a plain tensor copy of the same bytes (the memory-bandwidth bound) and a random gather.

Run: PYTHONPATH=src .venv/bin/python bench/bench_samplers.py [--quick] [--threads 2]
Writes bench/results/samplers.json and bench/results/samplers.md (``--out`` renames them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from clusterneg.loss import in_batch_log_q, sampled_softmax_loss
from clusterneg.model import ModelConfig, TwoTower, build_history
from clusterneg.outputs import atomic_write_text
from clusterneg.pool import ClusterPool
from clusterneg.samplers import SAMPLER_NAMES, build_sampler
from clusterneg.samplers.protocol import Batch, SamplerContext

OUT = Path(__file__).resolve().parent / "results"
N_ITEMS, N_CLUSTERS, N_USERS, N_INTER, D_CONTENT = 30_000, 300, 5_000, 300_000, 384
BATCH, K = 1024, 16
OPTIONS = {
    "in-batch": {}, "mixed": {"n_negatives": K}, "cross-batch": {"n_negatives": K},
    "dns": {"n_negatives": K, "n_candidates": 4 * K}, "ance": {"n_negatives": K},
    "goobs": {"n_negatives": K}, "cluster-goobs": {"n_negatives": K},  # 1 cluster + 15 random
}


def synthetic(seed: int = 0) -> dict:
    """Users with 3 taste clusters each, Zipf item popularity inside clusters."""
    rng = np.random.default_rng(seed)
    item_cluster = rng.integers(0, N_CLUSTERS, N_ITEMS)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 0.8
    rng.shuffle(pop)
    by_cluster = [np.flatnonzero(item_cluster == c) for c in range(N_CLUSTERS)]
    taste = rng.integers(0, N_CLUSTERS, (N_USERS, 3))
    users = rng.integers(0, N_USERS, N_INTER)
    clusters = taste[users, rng.integers(0, 3, N_INTER)]
    items = np.empty(N_INTER, dtype=np.int64)
    for c in range(N_CLUSTERS):  # one vectorised draw per cluster
        rows = np.flatnonzero(clusters == c)
        p = pop[by_cluster[c]] / pop[by_cluster[c]].sum()
        items[rows] = rng.choice(by_cluster[c], size=len(rows), p=p)
    content = rng.standard_normal((N_ITEMS, D_CONTENT)).astype(np.float32)
    return {"users": users, "items": items, "item_cluster": item_cluster, "content": content}


def make_ctx(data: dict) -> SamplerContext:
    counts = np.maximum(np.bincount(data["items"], minlength=N_ITEMS), 0.5)
    return SamplerContext(
        n_items=N_ITEMS, item_log_freq=torch.from_numpy(np.log(counts / counts.sum())).float(),
        item_cluster=torch.from_numpy(data["item_cluster"]), n_clusters=N_CLUSTERS,
        batch_size=BATCH, seed=0)


def make_model(data: dict) -> TwoTower:
    torch.manual_seed(0)
    cfg = ModelConfig(dim=64, temperature=0.05, history_len=50)
    hist = build_history(data["users"], data["items"], np.arange(N_INTER, dtype=np.float64),
                         N_USERS, N_ITEMS, cfg.history_len)
    return TwoTower(cfg, N_USERS, N_ITEMS, content=torch.from_numpy(data["content"]),
                    history=hist)


_CLOCK = {"cpu": time.process_time, "wall": time.perf_counter}
clock = time.process_time  # set by main(): CPU time of this process, or wall time


class Runner:
    """One sampler + its own model and optimiser; times steps and the sampler's share."""

    def __init__(self, name: str, data: dict) -> None:
        self.ctx = make_ctx(data)
        self.sampler = build_sampler(name, self.ctx, **OPTIONS[name])
        self.model = make_model(data)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=2e-3)
        self.users = torch.from_numpy(data["users"])
        self.items = torch.from_numpy(data["items"])
        self.gen = torch.Generator().manual_seed(1)
        self.step_no = 0

    def step(self) -> tuple[float, float]:
        """One training step, as clusterneg's trainer does it: (step s, sampler s)."""
        idx = torch.randint(0, N_INTER, (BATCH,), generator=self.gen)
        batch = Batch(self.users[idx], self.items[idx], step=self.step_no)
        m, s = self.model, self.sampler
        t0 = clock()
        blocks = s.negatives(batch, m)
        t_neg = clock() - t0
        user = m.user_vectors(batch.users, exclude_items=batch.items)
        pos = m.item_vectors(batch.items)
        vecs = [b.embeddings if b.embeddings is not None else m.item_vectors(b.item_ids, b.rows)
                for b in blocks]
        t1 = clock()
        ib = s.in_batch_log_q(batch, in_batch_log_q(self.ctx.item_log_freq, batch.items))
        t_ib = clock() - t1
        out = sampled_softmax_loss(user, pos, batch.items, m.temperature, in_batch=s.in_batch,
                                   in_batch_log_q=ib, blocks=blocks, block_vectors=vecs)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        self.opt.step()
        t2 = clock()
        s.observe(batch, m, pos.detach())
        t3 = clock()
        self.step_no += 1
        return t3 - t0, t_neg + t_ib + (t3 - t2)


def median_time(fn, repeats: int, inner: int = 1) -> float:
    """Median seconds of one call of ``fn`` (each sample times ``inner`` calls)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        for _ in range(inner):
            fn()
        times.append((clock() - t0) / inner)
    return statistics.median(times)


def bench_pool_share(data: dict, steps: int) -> dict:
    """(a): pool operations of one cluster-goobs step vs the whole step."""
    run = Runner("cluster-goobs", data)
    for _ in range(3):
        run.step()
    timed = [run.step() for _ in range(steps)]
    step_s = statistics.median(t for t, _ in timed)
    sampler_s = statistics.median(s for _, s in timed)
    pool, gen = run.sampler.pool, torch.Generator().manual_seed(0)
    cluster = run.ctx.item_cluster
    idx = torch.randint(0, N_INTER, (BATCH,), generator=gen)
    items = run.items[idx]

    def pool_ops() -> None:
        pool.update(items, cluster[items])
        pool.sample_in_cluster(cluster[items], run.sampler.n_cluster, gen)
        pool.sample_uniform((BATCH, run.sampler.n_random), gen)

    pool_s = median_time(pool_ops, 50, inner=10)
    return {"batch": BATCH, "n_cluster": run.sampler.n_cluster, "n_random": run.sampler.n_random,
            "step_ms_median": 1e3 * step_s, "pool_ops_ms_median": 1e3 * pool_s,
            "pool_share_pct": 100 * pool_s / step_s,
            "sampler_total_ms_median": 1e3 * sampler_s,
            "sampler_share_pct": 100 * sampler_s / step_s, "steps": steps}


def bench_throughput(data: dict, rounds: int, steps: int, pairs: int) -> dict:
    """(b): examples/s per sampler (median step time; samplers interleaved in rotating order),
    then goobs and cluster-goobs alternated step by step for a paired ratio."""
    runners = {name: Runner(name, data) for name in SAMPLER_NAMES}
    for r in runners.values():
        for _ in range(2):
            r.step()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(rounds):
        k = rep % len(SAMPLER_NAMES)
        for name in SAMPLER_NAMES[k:] + SAMPLER_NAMES[:k]:
            times[name] += [runners[name].step()[0] for _ in range(steps)]
    paired = [(runners["goobs"].step()[0], runners["cluster-goobs"].step()[0])
              for _ in range(pairs)]
    g = statistics.median(t for t, _ in paired)
    c = statistics.median(t for _, t in paired)
    return {
        "extra_negatives_per_example": K, "batch": BATCH, "rounds": rounds,
        "steps_per_round": steps,
        "examples_per_s_median": {n: BATCH / statistics.median(v) for n, v in times.items()},
        "step_s_all": times, "paired_steps": pairs,
        "paired_goobs_examples_per_s": BATCH / g, "paired_cluster_goobs_examples_per_s": BATCH / c,
        "cluster_goobs_over_goobs_paired": g / c,
        "cluster_goobs_over_goobs_median_of_pair_ratios": statistics.median(
            a / b for a, b in paired),
    }


def bench_pool_rows(repeats: int) -> list[dict]:
    """(c): rows/s of update and in-cluster sampling vs copying / gathering the same bytes."""
    gen = torch.Generator().manual_seed(0)
    return [_pool_rows_case(n, row_dim, gen, repeats)
            for n in (1024, 16384) for row_dim in (None, D_CONTENT)]


def _pool_rows_case(n: int, row_dim: int | None, gen: torch.Generator, repeats: int) -> dict:
    cap = N_CLUSTERS * 1024
    pool = ClusterPool(N_CLUSTERS, 1024, row_shape=None if row_dim is None else (row_dim,))
    pool.update(torch.arange(cap), torch.arange(cap) // 1024,
                None if row_dim is None else torch.randn(cap, row_dim))  # a full pool
    items = torch.randint(0, 10**6, (n,), generator=gen)
    clusters = torch.randint(0, N_CLUSTERS, (n,), generator=gen)
    rows = None if row_dim is None else torch.randn(n, row_dim)
    inner = 20 if n <= 1024 else 2
    upd = median_time(lambda: pool.update(items, clusters, rows), repeats, inner)
    smp = median_time(lambda: pool.sample_in_cluster(clusters, 1, gen), repeats, inner)
    row_bytes = 8 + (0 if row_dim is None else 4 * row_dim)  # id + row
    src = torch.empty(n * row_bytes, dtype=torch.uint8)
    dst = torch.empty_like(src)
    cp = median_time(lambda: dst.copy_(src), repeats, inner)
    table = torch.empty(cap, row_bytes, dtype=torch.uint8)
    idx = torch.randint(0, cap, (n,), generator=gen)
    gat = median_time(lambda: table.index_select(0, idx), repeats, inner)
    return {"rows": n, "row_bytes": row_bytes,
            "update_rows_per_s": n / upd, "sample_in_cluster_rows_per_s": n / smp,
            "copy_rows_per_s": n / cp, "random_gather_rows_per_s": n / gat,
            "update_over_copy": cp / upd, "sample_over_copy": cp / smp}


def write_markdown(res: dict, path: Path) -> None:
    a, b = res["pool_share"], res["throughput"]
    lines = [
        "# Sampler and pool cost", "",
        f"`{res['command']}` ({res['threads']} CPU thread(s), {res['clock']} clock, "
        f"{res['machine']}; synthetic "
        f"catalog of {N_ITEMS:,} items in {N_CLUSTERS} clusters, {N_USERS:,} users, "
        f"TwoTower dim 64 + {D_CONTENT}-d content + 50-item history, batch {BATCH}). "
        "Medians over repeats. CPU timings on a shared 2-core machine are noisy "
        f"(1-min load average at start / end: {res['load_average_start_end'][0][0]:.1f} / "
        f"{res['load_average_start_end'][1][0]:.1f}).", "",
        "## (a) Pool bookkeeping per step (cluster-goobs, 1 + 15 negatives)", "",
        "| step (ms) | pool update + samples (ms) | pool share | whole sampler (ms) | "
        "sampler share |", "|---|---|---|---|---|",
        f"| {a['step_ms_median']:.1f} | {a['pool_ops_ms_median']:.3f} | "
        f"{a['pool_share_pct']:.2f}% | {a['sampler_total_ms_median']:.2f} | "
        f"{a['sampler_share_pct']:.2f}% |", "",
        "Whole sampler = `negatives()` + mixture `in_batch_log_q()` + `observe()` in the step.",
        "", f"## (b) Training examples/s, {K} extra negatives per example", "",
        "| sampler | examples/s | vs goobs |", "|---|---|---|",
    ]
    rates = b["examples_per_s_median"]
    for name, v in rates.items():
        lines.append(f"| {name} | {v:.0f} | {v / rates['goobs']:.3f} |")
    lines += ["", f"goobs and cluster-goobs alternated step by step ({b['paired_steps']} pairs): "
              f"{b['paired_goobs_examples_per_s']:.0f} vs "
              f"{b['paired_cluster_goobs_examples_per_s']:.0f} examples/s, ratio "
              f"{b['cluster_goobs_over_goobs_paired']:.3f} (median of per-pair ratios "
              f"{b['cluster_goobs_over_goobs_median_of_pair_ratios']:.3f}; target >= 0.97).", "",
              "## (c) Pool throughput at 300 clusters x 1024 slots", "",
              "| rows/call | bytes/row | update rows/s | in-cluster sample rows/s | "
              "copy rows/s | random gather rows/s | update/copy | sample/copy |",
              "|---|---|---|---|---|---|---|---|"]
    for r in res["pool_rows"]:
        lines.append(
            f"| {r['rows']} | {r['row_bytes']} | {r['update_rows_per_s']:.3g} | "
            f"{r['sample_in_cluster_rows_per_s']:.3g} | {r['copy_rows_per_s']:.3g} | "
            f"{r['random_gather_rows_per_s']:.3g} | {r['update_over_copy']:.2f} | "
            f"{r['sample_over_copy']:.2f} |")
    atomic_write_text(path, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--clock", choices=tuple(_CLOCK), default="cpu",
                        help="cpu: this process's CPU time (robust on a shared machine, "
                        "meaningful with --threads 1); wall: elapsed time")
    parser.add_argument("--out", default="samplers", help="results file stem")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    global clock
    clock = _CLOCK[args.clock]
    load_start = list(os.getloadavg())
    data = synthetic()
    q = args.quick
    res = {
        "command": "PYTHONPATH=src .venv/bin/python bench/bench_samplers.py"
                   + (" --quick" if q else "")
                   + f" --threads {args.threads} --clock {args.clock} --out {args.out}",
        "clock": args.clock,
        "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "pool_share": bench_pool_share(data, steps=5 if q else 30),
        "throughput": bench_throughput(data, rounds=2 if q else 6, steps=2 if q else 3,
                                       pairs=4 if q else 60),
        "pool_rows": bench_pool_rows(repeats=5 if q else 50),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    res["load_average_start_end"] = [load_start, list(os.getloadavg())]
    atomic_write_text(OUT / f"{args.out}.json", json.dumps(res, indent=2) + "\n")
    write_markdown(res, OUT / f"{args.out}.md")


if __name__ == "__main__":
    main()
