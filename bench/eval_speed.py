"""Time full-corpus evaluation (clusterneg.eval) at ml-100k size and a larger synthetic size.

Run: PYTHONPATH=src .venv/bin/python bench/eval_speed.py
Writes bench/eval_speed.json and bench/eval_speed.md.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from clusterneg.eval import ExposureContext, UserItems, evaluate_scores, ranking_metrics
from clusterneg.eval.metrics import exposure_metrics
from clusterneg.outputs import atomic_write_text

OUT = Path(__file__).resolve().parent


def case(n_users: int, n_items: int, n_train: int, n_test: int, repeats: int = 5) -> dict:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    ue, ie = torch.randn(n_users, 64), torch.randn(n_items, 64)
    exclude = UserItems.from_pairs(
        rng.integers(0, n_users, n_train), rng.integers(0, n_items, n_train), n_users
    )
    targets = UserItems.from_pairs(
        rng.integers(0, n_users, n_test), rng.integers(0, n_items, n_test), n_users
    )
    ctx = ExposureContext(np.bincount(exclude.indices, minlength=n_items))
    full, metric_only = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = evaluate_scores(
            lambda u: ue[u] @ ie.T, None, targets, exclude, n_items, exposure_ctx=ctx
        )
        full.append(time.perf_counter() - t0)
        tgt = targets.take_rows(r.users)
        t0 = time.perf_counter()
        ranking_metrics(r.topk, tgt.indptr, tgt.indices)
        exposure_metrics(r.topk, ctx)
        metric_only.append(time.perf_counter() - t0)
    return {
        "n_users": n_users,
        "n_items": n_items,
        "n_train": exclude.nnz,
        "n_test": targets.nnz,
        "evaluate_scores_s_median": float(np.median(full)),
        "metrics_only_s_median": float(np.median(metric_only)),
        "repeats": repeats,
    }


def main() -> None:
    torch.set_num_threads(2)
    cases = [case(943, 1682, 80_000, 10_000), case(10_000, 20_000, 500_000, 50_000, repeats=3)]
    result = {
        "machine": platform.processor() or platform.machine(),
        "torch_threads": 2,
        "cases": cases,
    }
    atomic_write_text(OUT / "eval_speed.json", json.dumps(result, indent=2) + "\n")
    lines = [
        "# Full-corpus evaluation speed",
        "",
        "`PYTHONPATH=src .venv/bin/python bench/eval_speed.py` (2 CPU threads, 64-d dot-product",
        "scores, K = 10/20/50/100 + exposure@50, median of repeats).",
        "",
        "| users | items | train pairs | test pairs | evaluate_scores (s) | metrics only (s) |",
        "|---|---|---|---|---|---|",
    ]
    for c in cases:
        lines.append(
            f"| {c['n_users']} | {c['n_items']} | {c['n_train']} | {c['n_test']} | "
            f"{c['evaluate_scores_s_median']:.3f} | {c['metrics_only_s_median']:.3f} |"
        )
    atomic_write_text(OUT / "eval_speed.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
