"""Full-corpus ranking metrics (HR, recall, NDCG, MRR at several K) in one vectorised pass.

Input is each evaluated user's ranked list over the whole catalog (``topk``, seen items
already masked) and the user's target items (CSR). Definitions, for user ``u`` with target
set ``T_u`` (duplicates of the same (user, item) pair count once) and 0-based ranks:

- ``hr@K`` (the paper's metric): the fraction of all test interactions, pooled over users,
  whose item ranks in its user's top K: ``sum_u |top_K(u) & T_u| / sum_u |T_u|``.
- ``recall@K``: ``|top_K(u) & T_u| / |T_u|``, averaged over users with ``|T_u| >= 1``.
  With leave-one-out (one target per user) ``hr@K == recall@K``; with a ratio split they
  differ, because ``hr`` weights users by their number of targets.
- ``ndcg@K``: binary relevance, ``DCG = sum_{r<K, item_r in T_u} 1 / log2(r + 2)`` divided
  by the ideal DCG of ``min(|T_u|, K)`` hits at the top; averaged over users.
- ``mrr``: ``1 / (r_first + 1)`` for the first relevant item within the whole list (width
  ``Kmax``), 0 when none is retrieved; averaged over users (so it is MRR@Kmax).

Users without targets get NaN in the per-user arrays and are left out of every average.
A ``K`` wider than ``topk`` is evaluated on the whole list. Entries ``< 0`` in ``topk`` are
padding ("no item"), never a hit.

Exposure: popularity bias of the recommendations
------------------------------------------------

Exposure and popularity-bias metrics over every evaluated user's top-K list.

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
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from clusterneg.errors import ConfigError

DEFAULT_KS: tuple[int, ...] = (10, 20, 50, 100)


@dataclass
class MetricResult:
    """Summary and per-user ranking metrics.

    Args:
        summary: ``hr@K``, ``recall@K``, ``ndcg@K`` for each K, and ``mrr``.
        per_user: float64 [U] arrays: ``recall@K``, ``ndcg@K``, ``hits@K`` (count of targets
            in the top K), ``mrr``, ``n_targets``; NaN where the user has no target (except
            ``hits@K`` and ``n_targets``, which are 0 there).
        ks: the cut-offs evaluated.
    """

    summary: dict[str, float]
    per_user: dict[str, np.ndarray]
    ks: tuple[int, ...] = field(default=DEFAULT_KS)

    @property
    def n_users(self) -> int:
        """Users with at least one target (those averaged over)."""
        return int((self.per_user["n_targets"] > 0).sum())

    @property
    def n_targets(self) -> int:
        """Test interactions (unique user-item pairs) over all users."""
        return int(self.per_user["n_targets"].sum())

    def paired_values(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-user values and weights whose weighted mean is summary metric ``name``.

        ``hr@K`` is a pooled ratio, so it is the per-user hit rate weighted by the number
        of targets; every other metric is a plain mean (weights ``None``). Feed the result
        of two runs on the same users to :func:`clusterneg.eval.significance.paired_bootstrap`.
        """
        if name.startswith("hr@"):
            n = self.per_user["n_targets"]
            hits = self.per_user["hits@" + name[3:]]
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(n > 0, hits / n, np.nan), n.astype(np.float64)
        if name not in self.per_user:
            raise KeyError(f"unknown metric {name!r}; known: {sorted(self.summary)}")
        return self.per_user[name], None


def check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    """Validate the cut-offs: positive integers, returned sorted and unique."""
    out = tuple(sorted({int(k) for k in ks}))
    if not out or out[0] <= 0:
        raise ConfigError(f"ks must be positive integers, got {list(ks)}")
    return out


def target_ranks(
    topk: np.ndarray, indptr: np.ndarray, indices: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank of every (unique) target in its user's list, by one sorted search.

    Args:
        topk: int64 [U, Kmax] ranked item indices; ``< 0`` is padding.
        indptr: int64 [U + 1] target CSR row pointers (row u = user ``u`` of ``topk``).
        indices: int64 [nnz] target item indices.

    Returns:
        ``(rows, items, ranks)``, each int64 [n_unique_targets]: 0-based rank of the target
        in the list, or ``Kmax`` when it is absent. If an item appears twice in a list, its
        first position counts.

    Example:
        >>> target_ranks(np.array([[4, 2, 7]]), np.array([0, 2]), np.array([7, 9]))[2].tolist()
        [2, 3]
    """
    topk = np.asarray(topk, dtype=np.int64)
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    n_users, kmax = topk.shape
    if len(indptr) != n_users + 1:
        raise ValueError(f"indptr has {len(indptr)} entries, expected {n_users + 1} (U + 1)")
    width = int(max(topk.max(initial=-1), indices.max(initial=-1))) + 1
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
    tkeys = np.unique(rows * width + indices)
    valid = topk >= 0
    qkeys = (np.arange(n_users, dtype=np.int64)[:, None] * width + topk)[valid]
    qrank = np.broadcast_to(np.arange(kmax, dtype=np.int64), topk.shape)[valid]
    order = np.argsort(qkeys, kind="stable")  # stable: a repeated item keeps its first rank
    sorted_q = qkeys[order]
    pos = np.searchsorted(sorted_q, tkeys)
    found = pos < len(sorted_q)
    found[found] = sorted_q[pos[found]] == tkeys[found]
    ranks = np.full(len(tkeys), kmax, dtype=np.int64)
    ranks[found] = qrank[order[pos[found]]]
    return tkeys // width, tkeys % width, ranks


def per_user_metrics(
    topk: np.ndarray, indptr: np.ndarray, indices: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> dict[str, np.ndarray]:
    """Per-user ``recall@K``, ``ndcg@K``, ``hits@K``, ``mrr`` and ``n_targets``.

    Args:
        topk: int64 [U, Kmax] ranked item indices per user, seen items masked; ``< 0`` pads.
        indptr: int64 [U + 1] target CSR row pointers.
        indices: int64 [nnz] target item indices.
        ks: cut-offs.

    Returns:
        name -> float64 [U]; NaN for users without targets (``hits@K``, ``n_targets``: 0).
    """
    ks = check_ks(ks)
    n_users, kmax = np.shape(topk)
    rows, _, ranks = target_ranks(topk, indptr, indices)
    n_t = np.bincount(rows, minlength=n_users).astype(np.float64)
    has = n_t > 0
    disc = 1.0 / np.log2(np.arange(kmax + 1, dtype=np.float64) + 2.0)
    disc[kmax] = 0.0  # rank == kmax means "not retrieved"
    ideal = np.concatenate([[0.0], np.cumsum(disc[:kmax])])
    out: dict[str, np.ndarray] = {"n_targets": n_t}
    for k in ks:
        keff = min(k, kmax)
        inside = ranks < keff
        hits = np.bincount(rows, weights=inside, minlength=n_users)
        dcg = np.bincount(rows, weights=np.where(inside, disc[ranks], 0.0), minlength=n_users)
        idcg = ideal[np.minimum(n_t, keff).astype(np.int64)]
        out[f"hits@{k}"] = hits
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"recall@{k}"] = np.where(has, hits / n_t, np.nan)
            out[f"ndcg@{k}"] = np.where(has, dcg / idcg, np.nan)
    best = np.zeros(n_users, dtype=np.float64)
    np.maximum.at(best, rows, 1.0 / (ranks + 1.0) * (ranks < kmax))
    out["mrr"] = np.where(has, best, np.nan)
    return out


def summarize(per_user: dict[str, np.ndarray], ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Summary metrics from :func:`per_user_metrics` output (pooled ``hr``, user means)."""
    n_t = per_user["n_targets"]
    total = float(n_t.sum())
    has = n_t > 0
    out: dict[str, float] = {}
    for k in check_ks(ks):
        out[f"hr@{k}"] = float(per_user[f"hits@{k}"].sum() / total) if total else float("nan")
        for name in (f"recall@{k}", f"ndcg@{k}"):
            out[name] = float(per_user[name][has].mean()) if has.any() else float("nan")
    out["mrr"] = float(per_user["mrr"][has].mean()) if has.any() else float("nan")
    return out


def ranking_metrics(
    topk: np.ndarray, indptr: np.ndarray, indices: np.ndarray, ks: Sequence[int] = DEFAULT_KS
) -> MetricResult:
    """HR@K, recall@K, NDCG@K for every K, and MRR, from ranked lists and target sets.

    Args:
        topk: int64 [U, Kmax] ranked item indices per evaluated user (seen items masked);
            entries ``< 0`` are padding.
        indptr: int64 [U + 1] row pointers of the target CSR (row u = row u of ``topk``).
        indices: int64 [nnz] target item indices.
        ks: cut-offs, default (10, 20, 50, 100).

    Returns:
        :class:`MetricResult` with ``summary`` and ``per_user`` arrays.

    References:
        HR@K over the whole corpus: Ji et al., "Real-Time Hard Negative Sampling via
        LLM-based Clustering for Large-Scale Two-Tower Retrieval", arXiv 2607.00448,
        "Reported results". NDCG: Jarvelin & Kekalainen, "Cumulated gain-based evaluation
        of IR techniques", TOIS 2002.

    Example:
        >>> # user 0: targets {7, 9}, 7 at rank 2 (0-based); user 1: target {1} at rank 0
        >>> r = ranking_metrics(np.array([[4, 2, 7], [1, 0, 3]]), np.array([0, 2, 3]),
        ...                     np.array([7, 9, 1]), ks=(1, 3))
        >>> r.summary["hr@3"], r.summary["recall@3"], r.summary["mrr"]
        (0.6666666666666666, 0.75, 0.6666666666666666)
    """
    ks = check_ks(ks)
    topk = np.asarray(topk)
    if topk.ndim != 2 or topk.shape[1] == 0:
        raise ValueError(f"topk must be 2-D [U, Kmax] with Kmax >= 1, got shape {topk.shape}")
    per_user = per_user_metrics(topk, indptr, indices, ks)
    return MetricResult(summarize(per_user, ks), per_user, ks)


# --- Exposure: popularity bias of the recommendations ----------------------------------------

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
