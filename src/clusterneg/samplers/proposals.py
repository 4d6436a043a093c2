"""Proposal distributions and the logQ correction of negatives drawn from several at once.

Every negative block comes from a proposal; each proposal knows, for any candidate item and
example, the expected number of times it puts that item among the example's candidates. The
sampled softmax stays consistent when each candidate's logit is corrected by the log of that
expected count (Bengio & Senecal 2008; Yi et al. 2019). With several proposals per example
(in-batch + uniform pool + same-cluster) there are two consistent choices:

* ``"block"``: each candidate is corrected by the proposal that produced it;
* ``"mixture"``: each candidate is corrected by the SUM of its expected counts under every
  proposal the example uses (the candidate set is one draw from the mixture), and so are the
  in-batch columns. This is the multiple-importance-sampling "balance heuristic": an item that
  several proposals can produce is not over-counted.
* ``"none"``: extra blocks are not corrected (in-batch columns keep their own correction).

Units: an expected count, e.g. ``B * p_j`` for in-batch, ``K / n_filled`` for K uniform pool
draws, ``K_c / n_filled(segment)`` for K_c same-cluster draws.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Loss" (in-batch logQ plus OOB and cluster
    negatives in one sampled softmax) and section "What nobody offers yet" (logit correction
    for negatives drawn from several proposal distributions).
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019 (in-batch logQ).
    Veach & Guibas, "Optimally Combining Sampling Techniques for Monte Carlo Rendering",
    SIGGRAPH 1995 (the balance heuristic for mixtures of proposals).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from clusterneg.errors import ConfigError
from clusterneg.pool import ClusterPool

LOGQ_MODES = ("mixture", "block", "none")
_TINY = 1e-30  # keeps log finite for an item no proposal can produce


class Proposal(Protocol):
    """Expected count of each candidate among an example's candidates under one proposal.

    A proposal whose counts do not change from step to step may also offer
    ``item_counts(batch_size, n_items, device) -> ItemCounts | None`` (every item's count
    at once, for :class:`CountTable`); None, or no such method, keeps the per-step sum.
    """

    name: str

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        """float32 [B or 1, K] for ``ids`` int64 [B, K] (per example) or [1, K] (shared),
        given the examples' positives ``pos_items`` int64 [B]. ``in_pool=True`` promises
        that every id sits in the GOOBS pool (it was drawn from it), so pool proposals
        may skip the membership test."""
        ...


@dataclass(frozen=True)
class ItemCounts:
    """A proposal's expected count of each catalog item, when it does not change from step
    to step (see :class:`CountTable`).

    Args:
        count: float32 [N], the expected count of item j among an example's candidates,
            for an item in the GOOBS pool.
        pool_only: the proposal draws from the pool: an item outside it counts 0.
        clusters: int64 [N] each item's cluster when the count applies only to examples
            whose positive is in item j's cluster (0 for the others); None: to every example.
    """

    count: torch.Tensor
    pool_only: bool = False
    clusters: torch.Tensor | None = None


class InBatchProposal:
    """The other positives of a batch of B: expected count ``B * p_j`` (item frequency).

    Args:
        item_freq: float32 [N] each item's share of training interactions.
    """

    name = "in_batch"

    def __init__(self, item_freq: torch.Tensor) -> None:
        self.item_freq = item_freq

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        return pos_items.shape[0] * self.item_freq[ids]

    def item_counts(self, batch_size: int, n_items: int, device: torch.device) -> ItemCounts:
        return ItemCounts(batch_size * self.item_freq)


class UniformCorpusProposal:
    """K uniform draws from a corpus of N items: expected count ``K / N`` for every item.

    Args:
        n_items: N.
        k: draws per example.
    """

    name = "uniform"

    def __init__(self, n_items: int, k: int) -> None:
        self.n_items, self.k = n_items, k

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        return torch.full(ids.shape, self.k / self.n_items, device=ids.device)

    def item_counts(self, batch_size: int, n_items: int, device: torch.device) -> ItemCounts:
        return ItemCounts(torch.full((n_items,), self.k / self.n_items, device=device))


class FifoProposal:
    """A FIFO of the last F batch positives: expected count ``F * p_j``.

    Args:
        item_freq: float32 [N] item shares of training interactions.
        size: callable returning the number of filled FIFO entries F.
    """

    name = "fifo"

    def __init__(self, item_freq: torch.Tensor, size: Callable[[], int]) -> None:
        self.item_freq, self.size = item_freq, size

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        return self.size() * self.item_freq[ids]


class PoolUniformProposal:
    """K uniform draws over the filled pool: ``K / n_filled`` for an item in the pool, else 0.

    Args:
        pool: the :class:`~clusterneg.pool.ClusterPool`.
        item_cluster: int64 [N] cluster of each item (None: a single-segment pool).
        k: draws per example.
    """

    name = "random"

    def __init__(self, pool: ClusterPool, item_cluster: torch.Tensor | None, k: int) -> None:
        self.pool, self.item_cluster, self.k = pool, item_cluster, k

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        rate = self.k / max(self.pool.n_filled, 1)
        if in_pool:
            return torch.full(ids.shape, rate, device=ids.device)
        return self.pool.contains(ids, _clusters(self.item_cluster, ids)) * rate

    def item_counts(self, batch_size: int, n_items: int, device: torch.device
                    ) -> ItemCounts | None:
        if not self.pool.complete:  # the filled count may still change
            return None
        rate = self.k / max(self.pool.n_filled, 1)
        return ItemCounts(torch.full((n_items,), rate, device=self.pool.device),
                          pool_only=True)


class PoolClusterProposal:
    """K_c uniform draws inside the positive's cluster segment: ``K_c / n_filled(c)`` for an
    item of that cluster in the pool, else 0 (example-dependent, so [B, K]).

    Args:
        pool: the :class:`~clusterneg.pool.ClusterPool`.
        item_cluster: int64 [N] cluster of each item.
        k: draws per example.
    """

    name = "cluster"

    def __init__(self, pool: ClusterPool, item_cluster: torch.Tensor, k: int) -> None:
        self.pool, self.item_cluster, self.k = pool, item_cluster, k

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        cand_cluster = self.item_cluster[ids]
        pos_cluster = self.item_cluster[pos_items]
        inside = cand_cluster == pos_cluster[:, None]
        if not in_pool:
            inside = inside & self.pool.contains(ids, cand_cluster)
        count = self.pool.segment_filled[pos_cluster].clamp(min=1)
        return inside * (self.k / count)[:, None]

    def item_counts(self, batch_size: int, n_items: int, device: torch.device
                    ) -> ItemCounts | None:
        if not self.pool.complete:  # the segments' filled counts may still change
            return None
        per_cluster = self.k / self.pool.segment_filled.clamp(min=1)
        return ItemCounts(per_cluster[self.item_cluster], pool_only=True,
                          clusters=self.item_cluster)


def _clusters(item_cluster: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(ids) if item_cluster is None else item_cluster[ids]


def check_logq_mode(mode: str) -> str:
    """Validate a logQ mode name."""
    if mode not in LOGQ_MODES:
        raise ConfigError(f"logq_mode must be one of {', '.join(LOGQ_MODES)}, got {mode!r}")
    return mode


def log_expected_count(
    mode: str,
    own: Proposal | None,
    proposals: Sequence[Proposal],
    ids: torch.Tensor,
    pos_items: torch.Tensor,
    in_pool: bool = False,
) -> torch.Tensor:
    """The ``log_q`` of a block under a logQ mode.

    Args:
        mode: ``"mixture"``, ``"block"`` or ``"none"``.
        own: the proposal that drew the block (None: not a proposal, never corrected).
        proposals: every proposal the example's candidates come from (for ``"mixture"``).
        ids: int64 [B, K] per-example or [1, K] shared candidate ids.
        pos_items: int64 [B] the examples' positives.
        in_pool: every id was drawn from the GOOBS pool (skips membership tests).

    Returns:
        float32 [B or 1, K]: 0 for ``"none"`` or ``own=None``, else the log expected count.

    Example:
        >>> p = UniformCorpusProposal(n_items=100, k=10)
        >>> log_expected_count("block", p, [p], torch.zeros(1, 2).long(), torch.zeros(3).long())
        tensor([[-2.3026, -2.3026]])
    """
    if mode == "none" or own is None:
        return torch.zeros(ids.shape, device=ids.device)
    parts = [own] if mode == "block" else proposals
    total = sum(p.expected_count(ids, pos_items, in_pool=in_pool) for p in parts)
    return torch.log(total.float().clamp(min=_TINY))


class CountTable:
    """The ``"mixture"`` log expected counts of every catalog item, computed once.

    When no proposal's counts change from step to step (every pool complete: after a
    whole-catalog preload the filled counts are fixed), a candidate's mixture ``log_q``
    depends only on the candidate, on whether it sits in the pool, and on whether it shares
    the example's cluster. So three [N] tables replace the per-step sum over proposals: a
    block's ``log_q`` becomes a gather and a ``where`` (issue 12: on the CPU with small
    towers a step costs about its number of tensor operations). Each table is summed in
    the proposals' order, as :func:`log_expected_count` sums them, so the numbers are
    bit-for-bit the same. Memory: 12 bytes per catalog item per table (a sampler holds at
    most two: the full batch and an epoch's last, shorter one).

    Args:
        proposals: every proposal of the example's candidates; each must have
            ``item_counts`` returning an :class:`ItemCounts` (else :meth:`build` gives None).
        batch_size: B (the in-batch proposal's count is ``B * p_j``).
        n_items: N.

    Example:
        >>> p = UniformCorpusProposal(n_items=4, k=2)
        >>> table = CountTable.build([p], batch_size=8, n_items=4)
        >>> ids = torch.tensor([[0, 3]])
        >>> torch.equal(table.log_q(ids, torch.zeros(1).long()),
        ...             log_expected_count("mixture", p, [p], ids, torch.zeros(1).long()))
        True
    """

    def __init__(self, counts: Sequence[ItemCounts]) -> None:
        in_pool_other: torch.Tensor | int = 0  # in the pool, the example's cluster differs
        in_pool_same: torch.Tensor | int = 0  # in the pool, same cluster
        outside: torch.Tensor | int = 0  # not in the pool
        self.item_cluster: torch.Tensor | None = None
        for c in counts:
            in_pool_same = in_pool_same + c.count
            in_pool_other = in_pool_other + (0 if c.clusters is not None else c.count)
            outside = outside + (0 if c.pool_only else c.count)
            if c.clusters is not None:
                if self.item_cluster is not None and c.clusters is not self.item_cluster:
                    raise ConfigError("same-cluster proposals with different item clusters")
                self.item_cluster = c.clusters
        self.same_cluster = self.item_cluster is not None
        self.pool_only = any(c.pool_only for c in counts)
        n, device = counts[0].count.shape[0], counts[0].count.device
        self.log_other, self.log_same, self.log_outside = (
            torch.log((t if isinstance(t, torch.Tensor) else torch.zeros(n, device=device))
                      .float().clamp(min=_TINY))
            for t in (in_pool_other, in_pool_same, outside))

    @classmethod
    def build(cls, proposals: Sequence[Proposal], batch_size: int, n_items: int,
              device: str | torch.device = "cpu") -> CountTable | None:
        """The table, or None when a proposal has no fixed per-item counts."""
        counts = []
        for p in proposals:
            fn = getattr(p, "item_counts", None)
            c = None if fn is None else fn(batch_size, n_items, torch.device(device))
            if c is None:
                return None
            counts.append(c)
        return cls(counts) if counts else None

    def log_q(self, ids: torch.Tensor, pos_items: torch.Tensor,
              in_pool: torch.Tensor | None = None) -> torch.Tensor:
        """As ``log_expected_count("mixture", ...)``: float32 [B or 1, K] for ``ids``
        int64 [B, K] or [1, K]; ``in_pool`` bool of ``ids``' shape marks the candidates in
        the pool (None: every one, as for draws from the pool)."""
        flat = ids.reshape(-1)
        other = self.log_other.index_select(0, flat).view(ids.shape)
        outside = (self.log_outside.index_select(0, flat).view(ids.shape)
                   if in_pool is not None and self.pool_only else None)
        if self.same_cluster:
            same_value = self.log_same.index_select(0, flat).view(ids.shape)
            if outside is not None and ids.shape[0] == 1:
                # one row of candidates for every example (the in-batch columns): settle pool
                # membership per column first, so only one selection runs over [B, K]
                other = torch.where(in_pool, other, outside)
                same_value = torch.where(in_pool, same_value, outside)
                outside = None
            cand = self.item_cluster.index_select(0, flat).view(ids.shape)
            same = cand == self.item_cluster.index_select(0, pos_items)[:, None]
            other = torch.where(same, same_value, other)
        if outside is not None:
            other = torch.where(in_pool, other, outside)
        return other
