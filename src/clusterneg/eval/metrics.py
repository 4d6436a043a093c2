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
"""

from __future__ import annotations

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
