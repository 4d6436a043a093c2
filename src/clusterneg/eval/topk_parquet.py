"""Ranked top-K lists as Parquet: write them, read them back, recompute the metrics.

:func:`save_topk_parquet` writes every evaluated user's list as rows ``(user_id, rank,
item_id, score)`` with raw ids; :func:`metrics_from_topk_parquet` recomputes the ranking
metrics from that file alone plus the test interactions, so anyone can check a reported
number without the model.

References:
    Ji et al., arXiv 2607.00448, "Reported results" (global HR@K over the whole corpus).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from clusterneg.data.user_items import UserItems
from clusterneg.errors import DataError
from clusterneg.eval.metrics import DEFAULT_KS, MetricResult, ranking_metrics

TOPK_COLUMNS = ("user_id", "rank", "item_id", "score")


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
    from clusterneg.outputs import atomic_write

    return atomic_write(path, lambda f: pq.write_table(table, f))


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
    tgt = UserItems.from_pairs(uinv[len(users) :], iinv[len(items) :], n_users)
    return ranking_metrics(full, tgt.indptr, tgt.indices, ks)


def _first_appearance_codes(values: np.ndarray) -> np.ndarray:
    """Integer code per value, numbered in order of first appearance. int64 [n]."""
    _, first, inv = np.unique(values, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inv.ravel()]
