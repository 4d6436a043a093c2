"""ANN on synthetic item embeddings: recall@100 against exact search and single-thread
queries/s for exact, HNSW and IVF (issue 13).

The vectors imitate item-tower outputs: unit 64-d vectors around 2,000 random topic
directions (so the neighbourhoods have structure, as trained embeddings do). Queries are drawn
the same way. Ground truth is the exact top-100 by inner product. Every search runs with one
faiss thread; the HNSW graph and the IVF cells are built with the threads given.

Run (the committed result):
    OMP_NUM_THREADS=1 nice python bench/ann.py --n 1000000 --queries 1000 --build-threads 1
Writes bench/results/ann.json and bench/results/ann.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from clusterneg.index import IndexSpec, build_index, recall_at_k, search
from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
K = 100


def synthetic(n: int, d: int, topics: int, seed: int) -> np.ndarray:
    """float32 [n, d] unit vectors: a random topic direction plus isotropic noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((topics, d)).astype(np.float32)
    x = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x[start:stop] = centres[rng.integers(0, topics, stop - start)]
        x[start:stop] += 0.6 * rng.standard_normal((stop - start, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def timed_search(index, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """(ids [q, K], queries/s), one query at a time as a service would send them."""
    ids = np.empty((len(queries), K), dtype=np.int64)
    t0 = time.perf_counter()
    for i in range(len(queries)):
        ids[i] = search(index, queries[i:i + 1], K)[1][0]
    return ids, len(queries) / (time.perf_counter() - t0)


def main() -> None:
    import faiss

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--exact-queries", type=int, default=200,
                    help="queries timed one by one on the exact index (it is slow)")
    ap.add_argument("--build-threads", type=int, default=1)
    ap.add_argument("--hnsw-m", type=int, default=IndexSpec.hnsw_m)
    ap.add_argument("--ef-construction", type=int, default=IndexSpec.ef_construction)
    ap.add_argument("--nlist", type=int, default=0, help="IVF cells (0: 4 sqrt(n))")
    ap.add_argument("--train-size", type=int, default=IndexSpec.train_size)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    x = synthetic(args.n, args.d, 2000, seed=0)
    q = synthetic(args.queries, args.d, 2000, seed=0)  # same topic centres
    q = q + 0.3 * np.random.default_rng(1).standard_normal(q.shape).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    rows: list[dict] = []

    faiss.omp_set_num_threads(args.build_threads)
    t0 = time.perf_counter()
    exact = build_index(x, IndexSpec("exact"))
    exact_build = time.perf_counter() - t0
    truth = exact.search(q, K)[1]  # batched ground truth (all threads allowed)
    faiss.omp_set_num_threads(1)
    ids, qps = timed_search(exact, q[: args.exact_queries])
    rows.append({"kind": "exact", "params": {}, "build_s": exact_build,
                 "recall@100": recall_at_k(ids, truth[: len(ids)], K), "qps_1thread": qps})
    print(rows[-1], file=sys.stderr, flush=True)
    write(args, rows, final=False)

    for kind, knob, values in (("ivf", "nprobe", (8, 16, 32, 64, 128)),
                               ("hnsw", "ef_search", (128, 256, 512, 1024))):
        faiss.omp_set_num_threads(args.build_threads)
        spec = IndexSpec(kind, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                         nlist=args.nlist, train_size=args.train_size)
        t0 = time.perf_counter()
        index = build_index(x, spec)
        build_s = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        for v in values:
            if kind == "hnsw":
                index.hnsw.efSearch = v
            else:
                index.nprobe = v
            ids, qps = timed_search(index, q)
            params = {knob: v, **({"M": spec.hnsw_m, "ef_construction": spec.ef_construction}
                                  if kind == "hnsw" else {"nlist": index.nlist})}
            rows.append({"kind": kind, "params": params, "build_s": build_s,
                         "recall@100": recall_at_k(ids, truth, K), "qps_1thread": qps})
            print(rows[-1], file=sys.stderr, flush=True)
            write(args, rows, final=False)
        del index
    write(args, rows, final=True)


def write(args: argparse.Namespace, rows: list[dict], final: bool) -> None:
    """Write the JSON and markdown results (also after every row, so a stopped run keeps
    what it measured; ``complete`` says whether every row was measured)."""
    ok = [r for r in rows if r["kind"] != "exact" and r["recall@100"] >= 0.95]
    best = max(ok, key=lambda r: r["qps_1thread"]) if ok else rows[0]
    result = {"n": args.n, "d": args.d, "queries": args.queries,
              "exact_queries_timed": args.exact_queries, "build_threads": args.build_threads,
              "search_threads": 1, "rows": rows, "default": best, "complete": final,
              "command": "OMP_NUM_THREADS=1 nice python bench/ann.py " + " ".join(sys.argv[1:]),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "load_1min": os.getloadavg()[0]}}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "ann.json", json.dumps(result, indent=1))
    atomic_write_text(args.out / "ann.md", markdown(result))
    if final:
        print(markdown(result))


def markdown(r: dict) -> str:
    lines = [f"# ANN on {r['n']:,} synthetic {r['d']}-d item vectors", "",
             f"`{r['command']}`", "",
             f"Recall@100 against exact inner-product search over {r['queries']} queries; "
             f"queries/s one query at a time, one faiss thread (exact timed on "
             f"{r['exact_queries_timed']} queries); build with {r['build_threads']} thread(s). "
             f"Shared 2-core machine, 1-min load {r['machine']['load_1min']:.1f} at the end.", "",
             "| index | params | build (s) | recall@100 | queries/s |", "|---|---|---|---|---|"]
    for row in r["rows"]:
        p = ", ".join(f"{k}={v}" for k, v in row["params"].items()) or "-"
        lines.append(f"| {row['kind']} | {p} | {row['build_s']:.1f} | "
                     f"{row['recall@100']:.4f} | {row['qps_1thread']:.0f} |")
    if not r["complete"]:
        lines += ["", "**Incomplete**: the run was stopped before every row was measured."]
    d = r["default"]
    params = ", ".join(f"{k}={v}" for k, v in d["params"].items())
    lines += ["", f"Default: **{d['kind']}** ({params}), the fastest setting with "
              "recall@100 >= 0.95.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
