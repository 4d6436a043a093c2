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
from typing import Protocol

import torch

from clusterneg.errors import ConfigError
from clusterneg.pool import ClusterPool

LOGQ_MODES = ("mixture", "block", "none")
_TINY = 1e-30  # keeps log finite for an item no proposal can produce


class Proposal(Protocol):
    """Expected count of each candidate among an example's candidates under one proposal."""

    name: str

    def expected_count(
        self, ids: torch.Tensor, pos_items: torch.Tensor, in_pool: bool = False
    ) -> torch.Tensor:
        """float32 [B or 1, K] for ``ids`` int64 [B, K] (per example) or [1, K] (shared),
        given the examples' positives ``pos_items`` int64 [B]. ``in_pool=True`` promises
        that every id sits in the GOOBS pool (it was drawn from it), so pool proposals
        may skip the membership test."""
        ...


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
