"""Full-corpus evaluation vs a bare matmul + top-k over the same scores, on amazon-3cat.

Both sides score every one of the 42,381 items for the same users with the same 64-d vectors
(seeded random: the values do not change the cost) in chunks of users, one torch thread:

* **bare**: ``topk(U_chunk @ I.T, 100)`` and nothing else: the floor;
* **evaluate_scores**: what validation and test run (``clusterneg.eval.evaluate_scores``:
  seen items masked, top-100, HR/recall/NDCG@10/20/50/100, MRR, exposure and popularity
  buckets), with the real leave-last-out validation targets and training masks;
* the same on a fixed seeded sample of validation users (``--valid-users``), the option the
  per-epoch validation can use.

Run::

    PYTHONPATH=src python bench/bench_eval.py --threads 1

Writes ``bench/results/eval_a3.json`` and ``bench/results/eval_a3.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from clusterneg.eval.csr import UserItemCSR

from clusterneg.eval.evaluate import evaluate_scores

OUT = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("CLUSTERNEG_A3", "/work/shared/data/amazon-3cat"))
KMAX, CHUNK = 100, 256


def bare(users: np.ndarray, ue: torch.Tensor, ie: torch.Tensor) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(users), CHUNK):
            u = torch.from_numpy(users[s : s + CHUNK])
            torch.topk(ue[u] @ ie.T, KMAX, dim=1)
    return time.perf_counter() - t0


def full(users: np.ndarray, ue: torch.Tensor, ie: torch.Tensor, valid: UserItemCSR,
         train: UserItemCSR, pop: np.ndarray) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = evaluate_scores(lambda u: ue[u] @ ie.T, users, valid, train, ie.shape[0],
                        item_popularity=pop)
    return time.perf_counter() - t0, r.summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--valid-users", type=int, default=10_000)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from clusterneg.data.load import load_dataset
    from clusterneg.data.splits import make_split

    ds = load_dataset(str(DATA))
    split = make_split(ds, method="leave-last-out", seed=0)
    train = UserItemCSR.from_pairs(split.train.user, split.train.item, ds.n_users)
    valid = UserItemCSR.from_pairs(split.valid.user, split.valid.item, ds.n_users)
    pop = np.bincount(split.train.item, minlength=ds.n_items)
    users = np.flatnonzero(valid.row_lengths() > 0)
    sample = np.sort(np.random.default_rng(0).choice(users, args.valid_users, replace=False))
    g = torch.Generator().manual_seed(0)
    ue = torch.nn.functional.normalize(torch.randn(ds.n_users, 64, generator=g), dim=-1)
    ie = torch.nn.functional.normalize(torch.randn(ds.n_items, 64, generator=g), dim=-1)
    rows = {"bare_all": [], "evaluate_all": [], "bare_sample": [], "evaluate_sample": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit both sides alike
        rows["bare_all"].append(bare(users, ue, ie))
        rows["evaluate_all"].append(full(users, ue, ie, valid, train, pop)[0])
        rows["bare_sample"].append(bare(sample, ue, ie))
        rows["evaluate_sample"].append(full(sample, ue, ie, valid, train, pop)[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    res = {
        "command": f"PYTHONPATH=src python bench/bench_eval.py --threads {args.threads} "
                   f"--repeats {args.repeats} --valid-users {args.valid_users}",
        "dataset": str(DATA), "n_users_evaluated": int(len(users)), "n_items": ds.n_items,
        "sample_users": args.valid_users, "dim": 64, "kmax": KMAX, "user_chunk": CHUNK,
        "threads": args.threads, "load_avg": os.getloadavg(), "seconds": rows,
        "median_s": med,
        "evaluate_over_bare_all": med["evaluate_all"] / med["bare_all"],
        "evaluate_over_bare_sample": med["evaluate_sample"] / med["bare_sample"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "eval_a3.json").write_text(json.dumps(res, indent=2) + "\n")
    md = "\n".join([
        "# Full-corpus evaluation vs bare matmul + top-k (amazon-3cat)", "",
        f"`{res['command']}`", "",
        f"{ds.n_items:,} items, 64-d, top-{KMAX}, users in chunks of {CHUNK}, "
        f"{args.threads} thread, median of {args.repeats} interleaved repeats; load average "
        f"{res['load_avg'][0]:.2f}.", "",
        "| users | bare matmul + top-k (s) | evaluate_scores (s) | ratio |", "|---|---|---|---|",
        f"| all {len(users):,} validation users | {med['bare_all']:.2f} | "
        f"{med['evaluate_all']:.2f} | {res['evaluate_over_bare_all']:.2f} |",
        f"| seeded sample of {args.valid_users:,} | {med['bare_sample']:.2f} | "
        f"{med['evaluate_sample']:.2f} | {res['evaluate_over_bare_sample']:.2f} |", ""])
    (OUT / "eval_a3.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
