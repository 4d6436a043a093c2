"""A small synthetic comparison (7 samplers x 3 seeds, 300 users) for the report tests.

Per-user hits are drawn from a per-sampler hit probability, and ``results.json``'s runs are
computed from those same arrays, so summary, paired tests and verdict are all consistent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clusterneg.report import (
    ClusterDiagnostics,
    ClusterRow,
    ExampleItem,
    ExampleUser,
    PopularityBucket,
    ReportInputs,
)

N_USERS = 300
N_ITEMS = 400
EVIL_TITLE = "<script>alert('x')</script> & Sons"
BASE_HIT = {"in-batch": 0.20, "mixed": 0.21, "cross-batch": 0.205, "dns": 0.215,
            "ance": 0.22, "goobs": 0.225, "cluster-goobs": 0.30}


def _per_user(p: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One run's per-user arrays with hit probability ``p`` at K=50 (higher at K=100)."""
    n_t = np.random.default_rng(0).integers(1, 4, size=N_USERS).astype(np.float64)
    h50 = rng.binomial(n_t.astype(np.int64), p).astype(np.float64)
    h100 = np.minimum(n_t, h50 + rng.binomial(1, 0.3, size=N_USERS))
    return {
        "n_targets": n_t,
        "hits@50": h50,
        "hits@100": h100,
        "recall@50": h50 / n_t,
        "ndcg@10": 0.5 * h50 / n_t * rng.uniform(0.5, 1.0, size=N_USERS),
        "mrr": 0.3 * h50 / n_t * rng.uniform(0.5, 1.0, size=N_USERS),
    }


def _run(sampler: str, seed: int, pu: dict[str, np.ndarray]) -> dict[str, Any]:
    n_t = pu["n_targets"]
    cluster = sampler == "cluster-goobs"
    return {
        "sampler": sampler,
        "seed": seed,
        "metrics": {
            "hr@10": float(pu["hits@50"].sum() / n_t.sum()) * 0.4,
            "hr@50": float(pu["hits@50"].sum() / n_t.sum()),
            "hr@100": float(pu["hits@100"].sum() / n_t.sum()),
            "recall@20": float(pu["recall@50"].mean()) * 0.6,
            "recall@50": float(pu["recall@50"].mean()),
            "ndcg@10": float(pu["ndcg@10"].mean()),
            "mrr": float(pu["mrr"].mean()),
        },
        "exposure": {"top100_share": 0.32 if cluster else 0.5 - 0.01 * seed,
                     "coverage@50": 0.6 if cluster else 0.4, "gini@50": 0.5,
                     "tail_share@50": 0.3},
        "train": {"seconds": 10.0 + seed, "examples_per_s": 50_000.0 - 1000 * seed},
        "config": {"temperature": 0.1},
    }


def synthetic(
    base_hit: dict[str, float] | None = None, seed: int = 0
) -> tuple[dict[str, Any], ReportInputs]:
    """(results dict in the issue's schema, ReportInputs with every section filled)."""
    base_hit = base_hit or BASE_HIT
    rng = np.random.default_rng(seed)
    runs, per_user = [], {}
    for s, p in base_hit.items():
        per_user[s] = [_per_user(p, rng) for _ in range(3)]
        runs += [_run(s, k, pu) for k, pu in enumerate(per_user[s])]
    results = {"dataset": "toy", "split": "leave-last-out", "n_users": N_USERS,
               "n_items": N_ITEMS, "n_train": 5000, "n_test": 600, "runs": runs}
    inputs = ReportInputs(per_user=per_user, n_boot=300, **_extras(list(base_hit), rng))
    return results, inputs


def _extras(samplers: list[str], rng: np.random.Generator) -> dict[str, Any]:
    """Curves, exposure counts, buckets, clusters and example users."""
    ks = (10, 20, 50, 100)
    zipf = 1.0 / np.arange(1, N_ITEMS + 1)
    titles = [f"Item {i}" for i in range(N_ITEMS)]
    titles[3] = EVIL_TITLE
    names = ["Space opera", "Romantic comedy", "Film noir", "Documentary"]
    item = lambda i, hit=False: ExampleItem(titles[i], names[i % 4], hit)  # noqa: E731
    return {
        "hr_curves": {s: {k: min(1.0, (0.1 + i / 100) * k ** 0.4) for k in ks}
                      for i, s in enumerate(samplers)},
        "recall_curves": {s: {k: min(1.0, (0.08 + i / 100) * k ** 0.4) for k in ks}
                          for i, s in enumerate(samplers)},
        "exposure_counts": {s: rng.poisson(3000 * zipf ** (1.2 - 0.1 * i))
                            for i, s in enumerate(samplers)},
        "popularity_recall": {s: [PopularityBucket(f"b{b}", 0.05 * b + 0.01 * i, 100)
                                  for b in range(5)] for i, s in enumerate(samplers)},
        "cluster_diagnostics": ClusterDiagnostics(
            n_clusters=20, rule="auto: sqrt(n_items / 2)", sizes=rng.integers(5, 40, size=20),
            false_negative_rate=0.012, false_negative_rate_random=0.003, nmi=0.41,
            hardness=0.62, hardness_random=0.18),
        "cluster_rows": [ClusterRow(c, names[c % 4], 20, [titles[c], titles[c + 20]])
                         for c in range(8)],
        "examples": [ExampleUser(str(u), [item(3), item(5), item(7)],
                                 {s: [item(j, hit=j == 11) for j in range(10, 20)]
                                  for s in samplers}, targets=[item(11)])
                     for u in (17, 42)],
    }
