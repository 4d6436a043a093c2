"""Rank the whole catalog for every evaluated user and compute ranking + exposure metrics.

No sampled candidates: ``score_fn`` scores every item, the items the user already
interacted with outside the evaluated split are masked to ``-inf`` (train; plus validation
when scoring test), ``torch.topk`` keeps the best ``Kmax``, and the pure metric functions
of :mod:`clusterneg.eval.metrics` and :mod:`clusterneg.eval.exposure` do the rest. The
ranked lists can be written to Parquet (:func:`save_topk_parquet`) and the metrics
recomputed from that file alone plus the test interactions
(:func:`metrics_from_topk_parquet`).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from clusterneg.errors import DataError
from clusterneg.eval.csr import UserItemCSR, as_csr
from clusterneg.eval.exposure import (
    ExposureContext,
    exposure_metrics,
    recall_by_popularity_bucket,
)
from clusterneg.eval.metrics import DEFAULT_KS, MetricResult, check_ks, ranking_metrics

log = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
TOPK_COLUMNS = ("user_id", "rank", "item_id", "score")
MAX_SCORES = 1 << 25  # scores held at once while ranking (128 MiB of float32)


@dataclass
class EvalResult:
    """Everything one evaluation produced.

    Args:
        summary: summary ranking metrics (``hr@K``, ``recall@K``, ``ndcg@K``, ``mrr``).
        exposure: exposure metrics (empty when no exposure context was given).
        ranking: the full :class:`MetricResult` (per-user arrays, for paired tests).
        users: int64 [U] evaluated user indices, row order of ``topk``.
        topk: int64 [U, Kmax] ranked item indices (``-1`` where fewer items were rankable).
        scores: float32 [U, Kmax] their scores (``-inf`` on padding).
        buckets: recall by item-popularity bucket (empty without exposure context).
    """

    summary: dict[str, float]
    exposure: dict[str, float]
    ranking: MetricResult
    users: np.ndarray
    topk: np.ndarray
    scores: np.ndarray
    buckets: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def per_user(self) -> dict[str, np.ndarray]:
        return self.ranking.per_user

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no per-user arrays, no lists)."""
        return {
            "metrics": dict(self.summary),
            "exposure": dict(self.exposure),
            "n_users": self.ranking.n_users,
            "n_targets": self.ranking.n_targets,
            "popularity_buckets": {k: v.tolist() for k, v in self.buckets.items()},
        }


def _mask_and_topk(
    scores: torch.Tensor, rows: UserItemCSR, kmax: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set each row's excluded items to -inf, then top-kmax; -inf slots become index -1."""
    r = torch.from_numpy(rows.row_of_entry()).to(scores.device)
    c = torch.from_numpy(rows.indices).to(scores.device)
    scores = scores.to(torch.float32, copy=True)  # never write into the caller's tensor
    scores[r, c] = float("-inf")
    vals, idx = torch.topk(scores, kmax, dim=1)
    idx = torch.where(torch.isneginf(vals), torch.full_like(idx, -1), idx)
    return vals.cpu(), idx.cpu()


def _check_shape(scores: torch.Tensor, b: int, n_items: int) -> None:
    if tuple(scores.shape) != (b, n_items):
        raise ValueError(f"score_fn returned shape {tuple(scores.shape)}, expected {(b, n_items)}")


def _check_finite(vals: torch.Tensor, first_user: int) -> None:
    """topk sorts NaN above every number, so a NaN/+inf anywhere in a row shows up here."""
    if torch.isnan(vals).any() or torch.isposinf(vals).any():
        raise ValueError(f"score_fn returned NaN/+inf scores (batch starting at user {first_user})")


@torch.no_grad()
def rank_all_items(
    score_fn: ScoreFn,
    eval_users: np.ndarray,
    exclude: UserItemCSR,
    n_items: int,
    kmax: int,
    batch_size: int = 256,
    max_scores: int = MAX_SCORES,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``kmax`` items per user over the whole catalog, excluded items masked.

    Users are scored in chunks, so memory stays bounded whatever the number of users; the
    chunk also shrinks so that it never holds more than ``max_scores`` scores (a catalog of
    10^6 items is ranked 32 users at a time by default).

    Args:
        score_fn: ``LongTensor [b] -> FloatTensor [b, n_items]``, any device.
        eval_users: int64 [U] user indices (rows of ``exclude``).
        exclude: CSR over all users of the items never to rank for that user.
        n_items: catalog size.
        kmax: list length (at most ``n_items``).
        batch_size: users scored per call (at most).
        max_scores: bound on ``users per call x n_items``.

    Returns:
        ``(topk int64 [U, kmax], scores float32 [U, kmax])``; ``-1`` / ``-inf`` where a user
        has fewer than ``kmax`` rankable items.
    """
    batch_size = max(1, min(batch_size, max_scores // max(n_items, 1)))
    topk = np.empty((len(eval_users), kmax), dtype=np.int64)
    vals = np.empty((len(eval_users), kmax), dtype=np.float32)
    for s in range(0, len(eval_users), batch_size):
        users = eval_users[s : s + batch_size]
        scores = score_fn(torch.from_numpy(users))
        _check_shape(scores, len(users), n_items)
        v, i = _mask_and_topk(scores, exclude.take_rows(users), kmax)
        _check_finite(v, int(users[0]))
        topk[s : s + len(users)] = i.numpy()
        vals[s : s + len(users)] = v.numpy()
    return topk, vals


def _warn_overlap(targets: UserItemCSR, exclude: UserItemCSR) -> None:
    """Targets also in the exclude set can never be retrieved: say so once."""
    n = targets.indices.max(initial=-1) + 1
    n = int(max(n, exclude.indices.max(initial=-1) + 1))
    t = targets.row_of_entry() * n + targets.indices
    e = exclude.row_of_entry() * n + exclude.indices
    overlap = int(np.isin(t, e).sum())
    if overlap:
        log.warning("%d target pairs are also masked (seen before); they count as misses", overlap)


def evaluate_scores(
    score_fn: ScoreFn,
    eval_users: np.ndarray | None,
    targets_csr: Any,
    exclude_csr: Any,
    n_items: int,
    ks: Sequence[int] = DEFAULT_KS,
    batch_size: int = 256,
    exposure_ctx: ExposureContext | None = None,
    item_popularity: np.ndarray | None = None,
) -> EvalResult:
    """Full-corpus evaluation: rank every item for every evaluated user, then score.

    Args:
        score_fn: ``score_fn(user_idx LongTensor [b]) -> FloatTensor [b, n_items]``; the
            indices arrive on the CPU (move them to the model's device inside); the scores
            may live on any device and are not modified.
        eval_users: int64 [U] user indices to evaluate; ``None`` = every user with a target.
        targets_csr: per-user target items over ALL users (:class:`UserItemCSR`,
            ``(indptr, indices)`` or a scipy CSR matrix), e.g. the test split.
        exclude_csr: per-user items to mask, over all users (train, + valid for test).
        n_items: catalog size.
        ks: cut-offs for the ranking metrics.
        batch_size: users per ``score_fn`` call.
        exposure_ctx: training popularity for exposure metrics and popularity buckets.
        item_popularity: int64 [n_items] training counts; shorthand for
            ``exposure_ctx=ExposureContext(item_popularity)`` (defaults: top 50, top 100).

    Returns:
        :class:`EvalResult`.

    References:
        Ji et al., arXiv 2607.00448, "Reported results": global HR@K ranked over the whole
        corpus, no sampled candidates.

    Example:
        >>> emb = torch.randn(5, 4)
        >>> r = evaluate_scores(lambda u: emb[u] @ emb.T, None, (np.array([0, 1, 1]),
        ...     np.array([2])), (np.array([0, 0, 1]), np.array([3])), 5, ks=(1, 2))
        >>> sorted(r.summary)
        ['hr@1', 'hr@2', 'mrr', 'ndcg@1', 'ndcg@2', 'recall@1', 'recall@2']
    """
    ks = check_ks(ks)
    if exposure_ctx is None and item_popularity is not None:
        exposure_ctx = ExposureContext(item_popularity)
    targets, exclude = as_csr(targets_csr), as_csr(exclude_csr)
    if targets.n_rows != exclude.n_rows:
        raise ValueError(f"targets has {targets.n_rows} users, exclude has {exclude.n_rows}")
    for name, csr in (("targets", targets), ("exclude", exclude)):
        if csr.nnz and csr.indices.max() >= n_items:
            raise ValueError(f"{name} holds item {csr.indices.max()} >= n_items={n_items}")
    if eval_users is None:
        eval_users = np.flatnonzero(targets.row_lengths() > 0)
    eval_users = np.asarray(eval_users, dtype=np.int64)
    if len(eval_users) and (eval_users.min() < 0 or eval_users.max() >= targets.n_rows):
        raise ValueError(f"eval_users outside [0, {targets.n_rows})")
    if exposure_ctx is not None and exposure_ctx.n_items != n_items:
        raise ValueError(f"exposure_ctx has {exposure_ctx.n_items} items, expected {n_items}")
    _warn_overlap(targets, exclude)
    need = max(ks[-1], exposure_ctx.k if exposure_ctx else 0)
    kmax = min(need, n_items)
    topk, vals = rank_all_items(score_fn, eval_users, exclude, n_items, kmax, batch_size)
    tgt = targets.take_rows(eval_users)
    ranking = ranking_metrics(topk, tgt.indptr, tgt.indices, ks)
    exposure: dict[str, float] = {}
    buckets: dict[str, np.ndarray] = {}
    if exposure_ctx is not None:
        exposure = exposure_metrics(topk, exposure_ctx)
        buckets = recall_by_popularity_bucket(
            topk,
            tgt.indptr,
            tgt.indices,
            exposure_ctx.popularity,
            k=exposure_ctx.k,
            n_buckets=exposure_ctx.n_buckets,
        )
    return EvalResult(ranking.summary, exposure, ranking, eval_users, topk, vals, buckets)


def save_topk_parquet(
    path: str | Path,
    user_ids_raw: np.ndarray,
    item_ids_raw: np.ndarray,
    topk: np.ndarray,
    scores: np.ndarray | None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write every user's ranked list as rows ``(user_id, rank, item_id, score)``, atomically.

    The file is written to a temporary name in the same directory and renamed, so readers
    never see half a file. ``rank`` is 1-based; padding slots (``topk < 0``) are skipped.

    Args:
        path: destination ``.parquet`` file.
        user_ids_raw: raw user ids [U], one per row of ``topk``.
        item_ids_raw: raw item ids [n_items] (catalog order: index j -> raw id).
        topk: int64 [U, Kmax] ranked item indices.
        scores: float [U, Kmax] scores, or ``None`` (the column is then all null).
        metadata: extra key/value strings stored in the Parquet schema metadata.

    Example:
        >>> save_topk_parquet("top.parquet", np.array(["u1"]), np.array(["a", "b"]),
        ...                   np.array([[1, 0]]), np.array([[0.9, 0.1]]))  # doctest: +SKIP
    """
    path = Path(path)
    topk = np.asarray(topk, dtype=np.int64)
    if scores is None:
        scores = np.full(topk.shape, np.nan, dtype=np.float32)
    if topk.shape != np.shape(scores) or len(user_ids_raw) != topk.shape[0]:
        raise ValueError(
            f"topk {topk.shape}, scores {np.shape(scores)}, {len(user_ids_raw)} user ids differ"
        )
    valid = topk >= 0
    row, col = np.nonzero(valid)
    users = pa.array(np.asarray(user_ids_raw).astype(str)).take(pa.array(row))
    items = pa.array(np.asarray(item_ids_raw).astype(str)).take(pa.array(topk[valid]))
    table = pa.table(
        {
            "user_id": users,
            "rank": pa.array(col.astype(np.int32) + 1),
            "item_id": items,
            "score": pa.array(np.asarray(scores, dtype=np.float32)[valid], from_pandas=True),
        }
    )
    meta = {"clusterneg.kmax": str(topk.shape[1]), **(metadata or {})}
    table = table.replace_schema_metadata({k: str(v) for k, v in meta.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_topk_table(path: Path) -> pa.Table:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(path, f"not a readable Parquet file ({exc})") from exc
    missing = [c for c in TOPK_COLUMNS if c not in table.column_names]
    if missing:
        raise DataError(path, f"expected columns {list(TOPK_COLUMNS)}", field=missing[0])
    return table


def read_topk_parquet(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a file written by :func:`save_topk_parquet` back into arrays.

    Returns:
        ``(user_ids_raw [U], item_ids_raw [M], topk int64 [U, Kmax], scores float32 [U, Kmax])``
        where ``topk`` indexes ``item_ids_raw`` (only the items present in the file), users
        appear in first-appearance order, and missing slots are ``-1`` / ``-inf``.
    """
    path = Path(path)
    table = _read_topk_table(path)
    u = table.column("user_id").cast(pa.string()).combine_chunks().dictionary_encode()
    it = table.column("item_id").cast(pa.string()).combine_chunks().dictionary_encode()
    rank = table.column("rank").to_numpy().astype(np.int64)
    if len(rank) and rank.min() < 1:
        raise DataError(path, f"rank must be >= 1, got {rank.min()}", field="rank")
    kmax = int(rank.max()) if len(rank) else 0
    rows = u.indices.to_numpy().astype(np.int64)
    topk = np.full((len(u.dictionary), kmax), -1, dtype=np.int64)
    scores = np.full(topk.shape, -np.inf, dtype=np.float32)
    topk[rows, rank - 1] = it.indices.to_numpy()
    col = table.column("score").cast(pa.float32())
    scores[rows, rank - 1] = col.to_numpy(zero_copy_only=False)  # nulls -> NaN
    return (
        np.asarray(u.dictionary.to_pylist(), dtype=object),
        np.asarray(it.dictionary.to_pylist(), dtype=object),
        topk,
        scores,
    )


def metrics_from_topk_parquet(
    path: str | Path,
    target_user_ids_raw: np.ndarray,
    target_item_ids_raw: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> MetricResult:
    """Recompute the ranking metrics from a saved top-K file and the test interactions.

    Test users absent from the file count as users with an empty list (all their targets
    are misses), so ``hr@K`` stays "fraction of all test interactions". Per-user arrays
    follow the file's user order, then the missing test users in order of appearance.

    Args:
        path: file written by :func:`save_topk_parquet`.
        target_user_ids_raw: raw user id of each test interaction [n].
        target_item_ids_raw: raw item id of each test interaction [n].
        ks: cut-offs.

    Example:
        >>> metrics_from_topk_parquet("top.parquet", np.array(["u1"]), np.array(["b"]),
        ...                           ks=(1,)).summary["hr@1"]  # doctest: +SKIP
        1.0
    """
    users, items, topk, _ = read_topk_parquet(path)
    tu = np.asarray(target_user_ids_raw).astype(str).astype(object)
    ti = np.asarray(target_item_ids_raw).astype(str).astype(object)
    # Users: the file's, in file order, then test users missing from the file.
    uinv = _first_appearance_codes(np.concatenate([users, tu]))
    iinv = _first_appearance_codes(np.concatenate([items, ti]))
    n_users = int(uinv.max(initial=-1)) + 1
    full = np.full((n_users, topk.shape[1]), -1, dtype=np.int64)
    file_items = iinv[: len(items)]
    full[uinv[: len(users)]] = np.where(topk >= 0, file_items[np.maximum(topk, 0)], -1)
    tgt = UserItemCSR.from_pairs(uinv[len(users) :], iinv[len(items) :], n_users)
    return ranking_metrics(full, tgt.indptr, tgt.indices, ks)


def _first_appearance_codes(values: np.ndarray) -> np.ndarray:
    """Integer code per value, numbered in order of first appearance. int64 [n]."""
    _, first, inv = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]
