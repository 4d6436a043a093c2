"""Cluster GOOBS: hard negatives from the positive's semantic cluster, plus random ones.

The paper's method. Items are clustered by their LLM content embeddings; the GOOBS pool keeps
one segment of S slots per cluster, refreshed by every batch (Algorithm 1). For each example,
``n_cluster`` negatives are drawn uniformly from the filled slots of its positive's cluster
segment (semantically close, hence hard) and ``n_random`` uniformly over the whole pool
(Algorithm 2); the paper used a ratio cluster:random of 1:15 (MovieLens) and 1:31 (Amazon).

logQ: a same-cluster item in the pool is drawn ``n_cluster / n_filled(c)`` times in
expectation, any pool item ``n_random / n_filled``, any item ``B p_j`` in-batch. Under
``"mixture"`` (default) every candidate, in-batch columns included, is corrected by the log
of the sum of the expected counts of the proposals that could have produced it for that
example, so a same-cluster item is not double counted when the random draw also hits it.

References:
    Ji et al., "Real-Time Hard Negative Sampling via LLM-based Clustering for Large-Scale
    Two-Tower Retrieval", arXiv 2607.00448, 2026, section "Method", items 1-3 (LLM clusters,
    GOOBS pool, Algorithms 1 and 2, mixing ratio).

Example:
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=100, item_log_freq=torch.full((100,), -4.6),
    ...                      item_cluster=torch.arange(100) % 5, n_clusters=5)
    >>> s = build_sampler("cluster-goobs", ctx, n_negatives=16, slots=32)
    >>> s.n_cluster, s.n_random
    (1, 15)
    >>> block, = s.negatives(Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), None)
    >>> block.name, block.item_ids.shape  # column 0: same cluster; columns 1-15: random
    ('cluster+random', torch.Size([2, 16]))
    >>> bool((ctx.item_cluster[block.item_ids[:, 0]] == torch.tensor([3, 4]) % 5).all())
    True
"""

from __future__ import annotations

from typing import Any

import torch

from clusterneg.errors import ConfigError
from clusterneg.pool import PoolDraw
from clusterneg.samplers.base import BlockPart, check_bool, check_int
from clusterneg.samplers.goobs import GoobsSampler
from clusterneg.samplers.proposals import PoolClusterProposal
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext

DEFAULT_RATIO = (1, 15)


def split_negatives(
    n_negatives: int | None, n_cluster: int | None, n_random: int | None, ratio: str | None
) -> tuple[int, int]:
    """Resolve (n_cluster, n_random) from the options; explicit counts win over ``ratio``.

    Args:
        n_negatives: total per example (None: 16, or n_cluster + n_random when both given).
        n_cluster, n_random: explicit counts, or None.
        ratio: ``"a:b"`` cluster:random (None: 1:15).

    Example:
        >>> split_negatives(32, None, None, "1:3")
        (8, 24)
    """
    if n_cluster is not None and n_random is not None:
        nc, nr = check_int("n_cluster", n_cluster, 0), check_int("n_random", n_random, 0)
        if n_negatives is not None and n_negatives != nc + nr:
            raise ConfigError(f"n_negatives={n_negatives} but n_cluster + n_random = {nc + nr}")
        return nc, nr
    total = check_int("n_negatives", 16 if n_negatives is None else n_negatives, 0)
    if n_cluster is not None:
        return check_int("n_cluster", n_cluster, 0), total - n_cluster
    if n_random is not None:
        return total - check_int("n_random", n_random, 0), n_random
    a, b = _parse_ratio(ratio)
    nc = max(1, round(total * a / (a + b))) if a > 0 and total > 0 else 0
    return nc, total - nc


def same_key_pairs(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All (i, j) with ``keys[i] == keys[j]`` (i == j included), without a [B, B] pass.

    Args:
        keys: int64 [B].

    Returns:
        (rows, cols), int64 [P] each, P = sum over distinct keys of count^2.

    Example:
        >>> r, c = same_key_pairs(torch.tensor([5, 7, 5]))
        >>> sorted(zip(r.tolist(), c.tolist()))
        [(0, 0), (0, 2), (1, 1), (2, 0), (2, 2)]
    """
    order = torch.argsort(keys)
    _, counts = torch.unique_consecutive(keys[order], return_counts=True)
    size = counts.repeat_interleave(counts)  # group size of each sorted element
    start = (counts.cumsum(0) - counts).repeat_interleave(counts)  # its group's start
    total = int(size.sum())
    rows = torch.repeat_interleave(torch.arange(keys.numel(), device=keys.device), size,
                                   output_size=total)
    offset = torch.arange(total, device=keys.device) - (size.cumsum(0) - size)[rows]
    return order[rows], order[start[rows] + offset]


def _parse_ratio(ratio: str | None) -> tuple[int, int]:
    if ratio is None:
        return DEFAULT_RATIO
    try:
        a, b = (int(x) for x in str(ratio).split(":"))
    except ValueError:
        a = b = -1
    if a < 0 or b < 0 or a + b == 0:
        raise ConfigError(f"ratio must be 'cluster:random' like '1:15', got {ratio!r}")
    return a, b


class ClusterGoobsSampler(GoobsSampler):
    """In-batch plus, per example, ``n_cluster`` same-cluster and ``n_random`` random pool
    negatives.

    Args:
        ctx: the :class:`SamplerContext` (must carry ``item_cluster``).
        n_negatives: total pool negatives per example (default 16).
        n_cluster: same-cluster negatives per example (default from ``ratio``).
        n_random: random pool negatives per example (default from ``ratio``).
        ratio: ``"cluster:random"``, default ``"1:15"``.
        merge: return the cluster and random negatives as one block ``"cluster+random"``
            ([B, n_cluster + n_random], per-column logQ), so the item tower and the loss
            run once, as for goobs; False returns two blocks, ``"cluster"`` and
            ``"random"``, and the loss then reports each one's share of the softmax mass.
            Sampler counters are per part either way.
        warmup_steps: curriculum on the cluster share (beyond the paper): at step t <
            ``warmup_steps`` each same-cluster column is kept with probability
            ``t / warmup_steps`` and otherwise replaced by a uniform pool draw, so training
            starts from goobs's easy negatives and reaches the full ratio at
            ``warmup_steps``; the mixture logQ follows the expected counts of the step
            (``n_cluster s`` same-cluster, ``n_random + n_cluster (1 - s)`` uniform draws).
            0 (default): the paper's fixed ratio from the first step.
        slots, shared, preload, store_rows, cached_vectors, refresh_every, negative_grad,
            in_batch, logq_mode, mask_user_items: as for
            :class:`~clusterneg.samplers.goobs.GoobsSampler` (``shared`` applies to the
            random negatives, which then form their own block; cluster negatives are always
            per example).
    """

    name = "cluster-goobs"
    citation = ("Ji et al., Real-Time Hard Negative Sampling via LLM-based Clustering for "
                "Large-Scale Two-Tower Retrieval, arXiv 2607.00448, 2026")
    # goobs's knobs plus the share of same-cluster negatives (the paper's 1:15 / 1:31, and
    # harder mixes); "block" logQ corrects the cluster block on its own (issue 11, step 5)
    tuning_grid = {**GoobsSampler.tuning_grid, "ratio": ("1:31", "1:7", "1:3")}

    def __init__(
        self, ctx: SamplerContext, *, n_negatives: int | None = None,
        n_cluster: int | None = None, n_random: int | None = None, ratio: str | None = None,
        slots: int | None = None, shared: bool = False, preload: bool = True,
        store_rows: bool = False, cached_vectors: bool = False, refresh_every: int = 500,
        negative_grad: bool = True, merge: bool = True, in_batch: bool = True,
        logq_mode: str = "mixture", mask_user_items: bool = False, warmup_steps: int = 0,
    ) -> None:
        if ctx.item_cluster is None or ctx.n_clusters <= 0:
            raise ConfigError("cluster-goobs needs item clusters (item_cluster, n_clusters) "
                              "in the sampler context")
        nc, nr = split_negatives(n_negatives, n_cluster, n_random, ratio)
        super().__init__(ctx, n_negatives=nr, slots=slots, shared=shared, preload=preload,
                         store_rows=store_rows, cached_vectors=cached_vectors,
                         refresh_every=refresh_every, negative_grad=negative_grad,
                         in_batch=in_batch, logq_mode=logq_mode,
                         mask_user_items=mask_user_items)
        self.n_cluster, self.merge = nc, check_bool("merge", merge)
        self.cluster = PoolClusterProposal(self.pool, self.item_cluster, nc)
        if nc:
            self.proposals.append(self.cluster)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 0)
        if self.warmup_steps and self.logq_mode != "mixture":
            raise ConfigError("warmup_steps needs logq_mode='mixture' (a warming column is a "
                              f"mix of two proposals), got logq_mode={self.logq_mode!r}")
        if self.warmup_steps and nc and self.random not in self.proposals:
            self.proposals.append(self.random)  # the swapped-in uniform draws
        self.options.update(n_negatives=nc + nr, n_cluster=nc, n_random=nr, ratio=ratio,
                            merge=merge, warmup_steps=warmup_steps)

    def cluster_share(self, step: int) -> float:
        """Share of the same-cluster columns that are same-cluster draws at ``step``.

        Example:
            >>> ctx = SamplerContext(n_items=20, item_log_freq=torch.full((20,), -3.0),
            ...                      item_cluster=torch.arange(20) % 2, n_clusters=2)
            >>> s = ClusterGoobsSampler(ctx, n_negatives=4, warmup_steps=100)
            >>> s.cluster_share(0), s.cluster_share(25), s.cluster_share(100)
            (0.0, 0.25, 1.0)
        """
        if not self.warmup_steps or step >= self.warmup_steps:
            return 1.0
        return max(int(step), 0) / self.warmup_steps

    def _set_share(self, share: float) -> None:
        """The proposals' expected counts for this step's mix (plain floats, no host read)."""
        self.cluster.k = self.n_cluster * share
        self.random.k = self.n_random + self.n_cluster * (1.0 - share)

    def in_batch_log_q(self, batch: Batch, base: torch.Tensor) -> torch.Tensor:
        """Mixture logQ of the in-batch columns, [B, B], in one pass over [B, B].

        Column k's same-cluster term ``n_cluster [k in pool] / n_filled(c_k)`` applies to
        row i only when ``c_i == c_k`` (then the segment counts are the same), so the
        [B, B] result picks, per pair, one of two per-column values (one ``torch.where``,
        no host sync); the generic path (:meth:`SamplerBase.in_batch_log_q`) gives the
        same numbers, slower.
        """
        if self.logq_mode != "mixture" or not self.in_batch or not self.n_cluster:
            return super().in_batch_log_q(batch, base)
        items = batch.items.to(self.device)
        col = self.item_cluster[items]
        in_pool = self.pool.contains(items, col)  # one membership test for both pool terms
        table = self.count_table(items.shape[0]) if self.proposals[-1] is self.cluster else None
        if table is not None:  # the same numbers from the per-item tables (no warm-up)
            return table.log_q(items[None, :], items, in_pool[None, :])
        other = sum(p.expected_count(items[None, :], items, in_pool=True)[0] * in_pool
                    if p is self.random else p.expected_count(items[None, :], items)[0]
                    for p in self.proposals if p is not self.cluster)
        term = in_pool * (self.cluster.k / self.pool.segment_filled[col].clamp(min=1))
        lo = other.float().clamp(min=1e-30).log()
        hi = (other + term).float().clamp(min=1e-30).log()
        return torch.where(col[:, None] == col[None, :], hi[None, :], lo[None, :])

    def cluster_draw(self, batch: Batch, model: Any) -> PoolDraw:
        """The ``n_cluster`` same-cluster negatives of each example, [B, n_cluster]
        (variants override this to choose them differently)."""
        items = batch.items.to(self.device)
        return self.pool.sample_in_cluster(self.item_cluster[items], self.n_cluster,
                                           self.generator)

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        self.ensure_vectors(model)
        if not self.n_cluster:
            return self.random_block(batch, model)
        items = batch.items.to(self.device)
        near = self.cluster_draw(batch, model)
        if self.warmup_steps:
            share = self.cluster_share(batch.step)
            self._set_share(share)
            self._counts_changing = share < 1.0  # the counts change every warm-up step
            if share < 1.0:
                near = self._warm(near, items.shape[0], share)
        if not self.merge or self.shared or not self.n_random:
            return [self.make_block("cluster", near.item_ids, batch, self.cluster,
                                    valid=near.valid, in_pool=True,
                                    **self.block_inputs(near.item_ids, near.rows, model)),
                    *self.random_block(batch, model)]
        far = self.pool.sample_uniform((items.shape[0], self.n_random), self.generator)
        parts = [BlockPart("cluster", self.cluster, self.n_cluster),
                 BlockPart("random", self.random, self.n_random)]
        rows = None if near.rows is None else torch.cat([near.rows, far.rows], dim=1)
        ids = torch.cat([near.item_ids, far.item_ids], 1)
        return [self.make_block("cluster+random", ids, batch, parts,
                                valid=torch.cat([near.valid, far.valid], 1), in_pool=True,
                                **self.block_inputs(ids, rows, model))]

    def _warm(self, near: PoolDraw, n: int, share: float) -> PoolDraw:
        """Replace each same-cluster draw by a uniform pool draw with probability 1 - share."""
        far = self.pool.sample_uniform((n, self.n_cluster), self.generator)
        swap = torch.rand((n, self.n_cluster), generator=self.generator,
                          device=self.device) >= share
        rows = (None if near.rows is None else
                torch.where(swap.unsqueeze(-1), far.rows, near.rows))
        return PoolDraw(torch.where(swap, far.slots, near.slots),
                        torch.where(swap, far.item_ids, near.item_ids),
                        torch.where(swap, far.valid, near.valid), rows)
