"""Full-corpus evaluation: ranking metrics, exposure / popularity bias, significance.

Public API:

- :func:`evaluate_scores` ranks every item for every evaluated user (seen items masked)
  and returns an :class:`EvalResult` (summary, exposure, per-user arrays, top-K lists).
- :func:`ranking_metrics` (``hr@K``, ``recall@K``, ``ndcg@K``, ``mrr``) and
  :func:`exposure_metrics` (``top100_share``, ``coverage@50``, ``gini@50``,
  ``tail_share@50``) are pure functions over numpy arrays.
- :func:`save_topk_parquet` / :func:`metrics_from_topk_parquet` write the ranked lists and
  recompute the metrics from them.
- :func:`paired_bootstrap`, :func:`paired_test`, :func:`compare_metric` say whether a
  difference between two runs is real.
"""

from __future__ import annotations

from clusterneg.data.user_items import UserItems
from clusterneg.eval.evaluate import EvalResult, evaluate_scores, rank_all_items
from clusterneg.eval.metrics import (
    DEFAULT_KS,
    ExposureContext,
    MetricResult,
    exposure_counts,
    exposure_metrics,
    gini,
    lorenz_curve,
    per_user_metrics,
    popularity_buckets,
    ranking_metrics,
    recall_by_popularity_bucket,
    summarize,
    target_ranks,
)
from clusterneg.eval.significance import compare_metric, paired_bootstrap, paired_test
from clusterneg.eval.topk_parquet import (
    metrics_from_topk_parquet,
    read_topk_parquet,
    save_topk_parquet,
)

__all__ = [
    "DEFAULT_KS",
    "EvalResult",
    "ExposureContext",
    "MetricResult",
    "UserItems",
    "compare_metric",
    "evaluate_scores",
    "exposure_counts",
    "exposure_metrics",
    "gini",
    "lorenz_curve",
    "metrics_from_topk_parquet",
    "paired_bootstrap",
    "paired_test",
    "per_user_metrics",
    "popularity_buckets",
    "rank_all_items",
    "ranking_metrics",
    "read_topk_parquet",
    "recall_by_popularity_bucket",
    "save_topk_parquet",
    "summarize",
    "target_ranks",
]
