"""Rank the whole catalog for every evaluated user and compute ranking + exposure metrics.

No sampled candidates: ``score_fn`` scores every item, the items the user already
interacted with outside the evaluated split are masked to ``-inf`` (train; plus validation
when scoring test), ``torch.topk`` keeps the best ``Kmax``, and the pure metric functions
of :mod:`clusterneg.eval.metrics` and :mod:`clusterneg.eval.metrics` do the rest. The
ranked lists are written to and read from Parquet by :mod:`clusterneg.eval.topk_parquet`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from clusterneg.data.user_items import UserItems
from clusterneg.eval.metrics import (
    DEFAULT_KS,
    ExposureContext,
    MetricResult,
    check_ks,
    exposure_metrics,
    ranking_metrics,
    recall_by_popularity_bucket,
)

log = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
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
    scores: torch.Tensor, rows: UserItems, kmax: int, scratch: list[torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set each row's excluded items to -inf, then top-kmax; -inf slots become index -1.
    The mask is written into a copy of ``scores`` held in ``scratch`` (one buffer, reused
    from chunk to chunk), or into ``scores`` itself when ``scratch`` is None (the caller
    gives the tensor away)."""
    r, c = rows.coords(scores.device)
    if scratch is None:
        scores = scores.to(torch.float32)
    else:
        if not scratch or scratch[0].shape[0] < scores.shape[0] or (
                scratch[0].shape[1:] != scores.shape[1:]
                or scratch[0].device != scores.device):
            scratch[:] = [torch.empty(scores.shape, dtype=torch.float32, device=scores.device)]
        scores = scratch[0][: scores.shape[0]].copy_(scores)
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
    exclude: UserItems,
    n_items: int,
    kmax: int,
    batch_size: int = 256,
    max_scores: int = MAX_SCORES,
    writable_scores: bool = False,
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
        writable_scores: ``score_fn`` hands each result over for ranking to overwrite (a
            new tensor per call, or a buffer it refills on the next call); this saves a
            copy of every score chunk (issue 12).

    Returns:
        ``(topk int64 [U, kmax], scores float32 [U, kmax])``; ``-1`` / ``-inf`` where a user
        has fewer than ``kmax`` rankable items.
    """
    batch_size = max(1, min(batch_size, max_scores // max(n_items, 1)))
    topk = np.empty((len(eval_users), kmax), dtype=np.int64)
    vals = np.empty((len(eval_users), kmax), dtype=np.float32)
    scratch: list[torch.Tensor] | None = None if writable_scores else []
    for s in range(0, len(eval_users), batch_size):
        users = eval_users[s : s + batch_size]
        scores = score_fn(torch.from_numpy(users))
        _check_shape(scores, len(users), n_items)
        v, i = _mask_and_topk(scores, exclude.take_rows(users), kmax, scratch)
        _check_finite(v, int(users[0]))
        topk[s : s + len(users)] = i.numpy()
        vals[s : s + len(users)] = v.numpy()
    return topk, vals


def _warn_overlap(targets: UserItems, exclude: UserItems) -> None:
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
    writable_scores: bool = False,
) -> EvalResult:
    """Full-corpus evaluation: rank every item for every evaluated user, then score.

    Args:
        score_fn: ``score_fn(user_idx LongTensor [b]) -> FloatTensor [b, n_items]``; the
            indices arrive on the CPU (move them to the model's device inside); the scores
            may live on any device and are not modified.
        eval_users: int64 [U] user indices to evaluate; ``None`` = every user with a target.
        targets_csr: per-user target items over ALL users (:class:`UserItems`,
            ``(indptr, indices)`` or a scipy CSR matrix), e.g. the test split.
        exclude_csr: per-user items to mask, over all users (train, + valid for test).
        n_items: catalog size.
        ks: cut-offs for the ranking metrics.
        batch_size: users per ``score_fn`` call.
        exposure_ctx: training popularity for exposure metrics and popularity buckets.
        item_popularity: int64 [n_items] training counts; shorthand for
            ``exposure_ctx=ExposureContext(item_popularity)`` (defaults: top 50, top 100).
        writable_scores: see :func:`rank_all_items` (default: the scores are copied).

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
    targets, exclude = UserItems.coerce(targets_csr), UserItems.coerce(exclude_csr)
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
    topk, vals = rank_all_items(score_fn, eval_users, exclude, n_items, kmax, batch_size,
                                writable_scores=writable_scores)
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
