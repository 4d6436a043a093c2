"""Exposure and popularity-bias metrics over every evaluated user's top-K list.

The paper's popularity-bias result is that cluster negatives move exposure away from the
most popular items: the share of impressions going to the top-100 items fell from 50% to
32%, and more long-tail items got exposure. Here "exposure" of an item is the number of
top-K slots (default K = 50) it fills, summed over all evaluated users.

Definitions (popularity = number of TRAINING interactions of the item; ties in popularity
are broken by the lower item index, so every split is deterministic):

- ``top100_share``: share of all top-K slots that go to the 100 most popular items.
- ``coverage@K``: fraction of catalog items that appear in at least one list.
- ``gini@K``: Gini coefficient of the exposure counts over ALL catalog items (items never
  shown count as 0): 0 when every item is shown equally often, ``(n - 1) / n`` when a
  single item takes every slot.
- ``tail_share@K``: share of slots going to long-tail items. Head = the top 20% of catalog
  items by training popularity (``ceil(0.2 * n_items)`` items, the usual 20/80 "short head"
  split of Abdollahpouri et al.); tail = every other item, cold items included.
- ``tail_coverage@K``: fraction of tail items shown at least once (the analogue of the
  paper's "long-tail items with impressions").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clusterneg.eval.metrics import target_ranks


def popularity_order(popularity: np.ndarray) -> np.ndarray:
    """Item indices from most to least popular; ties by lower index. int64 [n_items]."""
    return np.argsort(-np.asarray(popularity, dtype=np.int64), kind="stable")


@dataclass
class ExposureContext:
    """What exposure metrics need from training: item popularity and the cut-offs.

    Args:
        popularity: int64 [n_items] training interaction count per item.
        k: list length whose slots are counted (default 50).
        n_top: size of the "most popular" set for ``top{n_top}_share`` (default 100).
        head_fraction: share of items (by popularity) forming the head (default 0.2).
        n_buckets: popularity buckets for :func:`recall_by_popularity_bucket` (default 5).

    Example:
        >>> ctx = ExposureContext(np.array([5, 0, 3, 1, 9]), n_top=2)
        >>> ctx.top_mask.tolist(), ctx.tail_mask.tolist()
        ([True, False, False, False, True], [True, True, True, True, False])
    """

    popularity: np.ndarray
    k: int = 50
    n_top: int = 100
    head_fraction: float = 0.2
    n_buckets: int = 5
    top_mask: np.ndarray = field(init=False, repr=False)
    tail_mask: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.popularity = np.asarray(self.popularity, dtype=np.int64)
        if self.k <= 0 or self.n_top <= 0 or not 0.0 <= self.head_fraction <= 1.0:
            raise ValueError(
                f"need k > 0, n_top > 0, 0 <= head_fraction <= 1; got k={self.k}, "
                f"n_top={self.n_top}, head_fraction={self.head_fraction}"
            )
        order = popularity_order(self.popularity)
        n = len(order)
        self.top_mask = np.zeros(n, dtype=bool)
        self.top_mask[order[: self.n_top]] = True
        self.tail_mask = np.ones(n, dtype=bool)
        self.tail_mask[order[: math.ceil(self.head_fraction * n)]] = False

    @property
    def n_items(self) -> int:
        return len(self.popularity)


def exposure_counts(topk: np.ndarray, n_items: int, k: int = 50) -> np.ndarray:
    """Slots each item fills in the first ``k`` columns of every list. int64 [n_items].

    Args:
        topk: int64 [U, Kmax] ranked item indices; ``< 0`` is padding (not counted).
        n_items: catalog size.
        k: cut-off.
    """
    cols = np.asarray(topk)[:, :k].ravel()
    return np.bincount(cols[cols >= 0], minlength=n_items).astype(np.int64)


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = equal; ``(n-1)/n`` = all in one).

    Uses ``G = sum_i (2i - n - 1) x_(i) / (n * sum x)`` over the ascending-sorted counts
    ``x_(1..n)``. NaN when there is no exposure at all.

    Example:
        >>> gini(np.array([0, 0, 0, 8]))
        0.75
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def lorenz_curve(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lorenz curve of exposure: cumulative share of items vs cumulative share of slots.

    Args:
        counts: int [n_items] exposure counts.

    Returns:
        ``(x, y)``, float64 [n_items + 1] each, from (0, 0) to (1, 1); items sorted from
        least to most exposed. The diagonal is perfect equality.
    """
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    xs = np.arange(n + 1, dtype=np.float64) / max(n, 1)
    cum = np.concatenate([[0.0], np.cumsum(x)])
    return xs, (cum / total if total > 0 else cum)


def exposure_metrics(topk: np.ndarray, ctx: ExposureContext) -> dict[str, float]:
    """``top{n}_share``, ``coverage@K``, ``gini@K``, ``tail_share@K``, ``tail_coverage@K``.

    Args:
        topk: int64 [U, Kmax >= ctx.k] ranked item indices per user; ``< 0`` is padding.
        ctx: popularity and cut-offs (see :class:`ExposureContext`).

    References:
        Ji et al., arXiv 2607.00448, "Reported results" (top-100 share, long-tail items).
        Abdollahpouri, Burke & Mobasher, "Managing popularity bias in recommender systems
        with personalized re-ranking", FLAIRS 2019 (short head / long tail).

    Example:
        >>> ctx = ExposureContext(np.array([9, 5, 1, 0]), k=2, n_top=1, head_fraction=0.25)
        >>> exposure_metrics(np.array([[0, 1], [0, 2]]), ctx)["top1_share"]
        0.5
    """
    counts = exposure_counts(topk, ctx.n_items, ctx.k)
    total = counts.sum()
    k = ctx.k
    n_tail = int(ctx.tail_mask.sum())
    nan = float("nan")
    return {
        f"top{ctx.n_top}_share": float(counts[ctx.top_mask].sum() / total) if total else nan,
        f"coverage@{k}": float((counts > 0).mean()) if ctx.n_items else nan,
        f"gini@{k}": gini(counts),
        f"tail_share@{k}": float(counts[ctx.tail_mask].sum() / total) if total else nan,
        f"tail_coverage@{k}": float((counts[ctx.tail_mask] > 0).sum() / n_tail) if n_tail else nan,
    }


def popularity_buckets(popularity: np.ndarray, n_buckets: int = 5) -> np.ndarray:
    """Bucket id per item: equal-size item quantiles by training popularity, 0 = least popular.

    Items are ordered from least to most popular (ties by higher index first, mirroring
    :func:`popularity_order`) and cut into ``n_buckets`` groups of (almost) equal item count.
    """
    if n_buckets <= 0:
        raise ValueError(f"n_buckets must be positive, got {n_buckets}")
    order = popularity_order(popularity)[::-1]
    n = len(order)
    bucket = np.empty(n, dtype=np.int64)
    bucket[order] = (np.arange(n) * n_buckets) // max(n, 1)
    return bucket


def recall_by_popularity_bucket(
    topk: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    popularity: np.ndarray,
    k: int = 50,
    n_buckets: int = 5,
) -> dict[str, np.ndarray]:
    """Recall@k of the test targets, split by the target item's popularity bucket.

    Args:
        topk: int64 [U, Kmax] ranked item indices; ``< 0`` is padding.
        indptr: int64 [U + 1] target CSR row pointers; indices: int64 [nnz] target items.
        popularity: int64 [n_items] training interaction counts.
        k: cut-off (default 50).
        n_buckets: equal-item-count popularity quantiles (see :func:`popularity_buckets`).

    Returns:
        Arrays of length ``n_buckets`` (bucket 0 = least popular): ``bucket``, ``min_pop``,
        ``max_pop`` (training counts spanned), ``n_items``, ``n_targets``, ``hits`` and
        ``recall`` (= hits / n_targets, pooled over targets; NaN for an empty bucket).
    """
    popularity = np.asarray(popularity, dtype=np.int64)
    bucket = popularity_buckets(popularity, n_buckets)
    _, items, ranks = target_ranks(topk, indptr, indices)
    if len(items) and items.max() >= len(popularity):
        raise ValueError(f"target item {items.max()} outside popularity [0, {len(popularity)})")
    tb = bucket[items]
    n_t = np.bincount(tb, minlength=n_buckets)
    hits = np.bincount(tb, weights=ranks < k, minlength=n_buckets)
    ids = np.arange(n_buckets)
    present = np.isin(ids, bucket)
    lo = np.full(n_buckets, np.iinfo(np.int64).max)
    hi = np.full(n_buckets, -1)
    np.minimum.at(lo, bucket, popularity)
    np.maximum.at(hi, bucket, popularity)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(n_t > 0, hits / n_t, np.nan)
    return {
        "bucket": ids,
        "min_pop": np.where(present, lo, -1),
        "max_pop": hi,
        "n_items": np.bincount(bucket, minlength=n_buckets),
        "n_targets": n_t,
        "hits": hits.astype(np.int64),
        "recall": recall,
    }
