"""Full-corpus evaluation vs a bare matmul + top-k over the same scores, on amazon-3cat.

Both sides score every one of the 42,381 items for the same users with the same 64-d vectors
(seeded random: the values do not change the cost) in chunks of users, one torch thread:

* **bare**: ``topk(U_chunk @ I.T, 100)`` and nothing else: the floor;
* **evaluate_scores**: what validation and test run (``clusterneg.eval.evaluate_scores``:
  seen items masked, top-100, HR/recall/NDCG@10/20/50/100, MRR, exposure and popularity
  buckets), with the real leave-last-out validation targets and training masks;
* the same on a fixed seeded sample of validation users (``--valid-users``), the option the
  per-epoch validation can use.

Each is run two ways, interleaved: with a **fresh** score tensor per chunk (``U @ I.T``: a new
[256, 42381] float32 result, 43 MB, whose pages the kernel zero-fills on first touch), and
with **one buffer** refilled per chunk (``torch.mm(..., out=buffer)``, what
``clusterneg.experiment.score_fn`` does since issue 12). evaluate_scores is called with
``writable_scores=True`` as the trainer's validation calls it (the mask is written into the
scores).

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

from clusterneg.data.user_items import UserItems
from clusterneg.eval.evaluate import evaluate_scores
from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent / "results"
DATA = Path(os.environ.get("CLUSTERNEG_A3", "/work/shared/data/amazon-3cat"))
KMAX, CHUNK = 100, 256


def scorer(ue: torch.Tensor, ie: torch.Tensor, buffered: bool):
    """users -> scores of every item: a fresh tensor per call, or one refilled buffer."""
    buf: list[torch.Tensor] = []

    def fn(u: torch.Tensor) -> torch.Tensor:
        if not buffered:
            return ue[u] @ ie.T
        if not buf or buf[0].shape[0] < len(u):
            buf[:] = [torch.empty(len(u), ie.shape[0])]
        return torch.mm(ue[u], ie.T, out=buf[0][: len(u)])

    return fn


def bare(users: np.ndarray, score) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, len(users), CHUNK):
            torch.topk(score(torch.from_numpy(users[s : s + CHUNK])), KMAX, dim=1)
    return time.perf_counter() - t0


def full(users: np.ndarray, score, valid: UserItems, train: UserItems, n_items: int,
         pop: np.ndarray) -> tuple[float, dict]:
    t0 = time.perf_counter()
    r = evaluate_scores(score, users, valid, train, n_items, item_popularity=pop,
                        writable_scores=True)
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
    train = UserItems.from_pairs(split.train.user, split.train.item, ds.n_users)
    valid = UserItems.from_pairs(split.valid.user, split.valid.item, ds.n_users)
    pop = np.bincount(split.train.item, minlength=ds.n_items)
    users = np.flatnonzero(valid.row_lengths() > 0)
    sample = np.sort(np.random.default_rng(0).choice(users, args.valid_users, replace=False))
    g = torch.Generator().manual_seed(0)
    ue = torch.nn.functional.normalize(torch.randn(ds.n_users, 64, generator=g), dim=-1)
    ie = torch.nn.functional.normalize(torch.randn(ds.n_items, 64, generator=g), dim=-1)
    kinds = ("bare", "evaluate")
    rows: dict[str, list[float]] = {f"{k}_{how}_{who}": [] for who in ("all", "sample")
                                    for k in kinds for how in ("fresh", "buffer")}
    summaries: dict[str, dict] = {}
    for _ in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for who, us in (("all", users), ("sample", sample)):
            for how in ("fresh", "buffer"):
                score = scorer(ue, ie, how == "buffer")
                rows[f"bare_{how}_{who}"].append(bare(us, score))
                sec, summaries[f"{how}_{who}"] = full(us, score, valid, train, ds.n_items, pop)
                rows[f"evaluate_{how}_{who}"].append(sec)
    same = all(summaries[f"fresh_{w}"] == summaries[f"buffer_{w}"] for w in ("all", "sample"))
    med = {k: statistics.median(v) for k, v in rows.items()}
    res = {
        "command": f"PYTHONPATH=src python bench/bench_eval.py --threads {args.threads} "
                   f"--repeats {args.repeats} --valid-users {args.valid_users}",
        "dataset": str(DATA), "n_users_evaluated": int(len(users)), "n_items": ds.n_items,
        "sample_users": args.valid_users, "dim": 64, "kmax": KMAX, "user_chunk": CHUNK,
        "threads": args.threads, "load_avg": os.getloadavg(), "seconds": rows,
        "median_s": med, "same_metrics_fresh_and_buffer": same,
        "evaluate_over_bare_all": med["evaluate_buffer_all"] / med["bare_buffer_all"],
        "evaluate_over_bare_sample": med["evaluate_buffer_sample"] / med["bare_buffer_sample"],
        "buffer_over_fresh_evaluate_all": med["evaluate_buffer_all"] / med["evaluate_fresh_all"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_text(OUT / "eval_a3.json", json.dumps(res, indent=2) + "\n")
    def line(who: str, label: str) -> str:
        m = {k: med[f"{k}_{who}"] for k in ("bare_fresh", "bare_buffer", "evaluate_fresh",
                                              "evaluate_buffer")}
        return (f"| {label} | {m['bare_fresh']:.2f} | {m['bare_buffer']:.2f} | "
                f"{m['evaluate_fresh']:.2f} | {m['evaluate_buffer']:.2f} | "
                f"{m['evaluate_buffer'] / m['bare_buffer']:.2f} | "
                f"{m['evaluate_buffer'] / m['evaluate_fresh']:.2f} |")

    md = "\n".join([
        "# Full-corpus evaluation vs bare matmul + top-k (amazon-3cat)", "",
        f"`{res['command']}`", "",
        f"{ds.n_items:,} items, 64-d, top-{KMAX}, users in chunks of {CHUNK}, "
        f"{args.threads} thread, median of {args.repeats} interleaved repeats; load average "
        f"{res['load_avg'][0]:.2f}. *fresh*: a new score tensor per chunk; *buffer*: one "
        "buffer refilled per chunk (what validation does now). Same metrics both ways: "
        f"{'yes' if same else 'NO'}.", "",
        "| users | bare, fresh (s) | bare, buffer (s) | evaluate, fresh (s) | "
        "evaluate, buffer (s) | evaluate / bare (buffer) | buffer / fresh (evaluate) |",
        "|---|---|---|---|---|---|---|",
        line("all", f"all {len(users):,} validation users"),
        line("sample", f"seeded sample of {args.valid_users:,}"), ""])
    atomic_write_text(OUT / "eval_a3.md", md)
    print(md)


if __name__ == "__main__":
    main()
