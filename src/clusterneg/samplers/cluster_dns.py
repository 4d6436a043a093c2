"""Cluster DNS: the same-cluster negatives the current model finds hardest, not random ones.

What it adds to the paper: Cluster GOOBS draws its same-cluster negatives uniformly from the
positive's pool segment, so most of them are items the model already separates from the
positive (a segment holds up to S items of a coarse semantic cluster). Here each example
draws ``n_candidates`` items from its positive's segment, the current model scores them
against the example's user (no gradient) and the ``n_cluster`` highest-scored are kept: the
hardness of DNS (Zhang et al. 2013) restricted to the semantic neighbourhood the LLM
clusters give, instead of DNS's uniform candidates over the whole catalog, where hard items
are rare. Why it should help: the paper's hard negatives are hard for the *content*
similarity; the ones that move the gradient are the ones hard for the *model*. The pool makes
it cheap: candidates come from one segment (and with ``store_rows`` carry their item-tower
input rows), so the extra cost is one item-tower pass over B x ``n_candidates`` rows.

logQ: a top-k selection has no exact expected count; the kept items are corrected as
cluster-goobs corrects its same-cluster draws (``n_cluster / n_filled(c)``, in the same
mixture), so the only difference from cluster-goobs is which same-cluster items are kept.
The example's own positive, empty slots and (with ``mask_user_items``) the user's training
items are never selected.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (cluster segments, Algorithm 2).
    Zhang et al., "Optimizing Top-N Collaborative Filtering via Dynamic Negative Item
    Sampling", SIGIR 2013, section 3 (score candidates, keep the highest-scored).

Example:
    >>> from clusterneg.model import ModelConfig, TwoTower
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=100, item_log_freq=torch.full((100,), -4.6),
    ...                      item_cluster=torch.arange(100) % 5, n_clusters=5)
    >>> model = TwoTower(ModelConfig(dim=8, history_len=0), n_users=4, n_items=100)
    >>> s = build_sampler("cluster-dns", ctx, n_negatives=8, n_cluster=2, n_candidates=6,
    ...                   slots=32)
    >>> block, = s.negatives(Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), model)
    >>> block.item_ids.shape  # 2 model-chosen same-cluster + 6 random pool negatives
    torch.Size([2, 8])
    >>> bool((ctx.item_cluster[block.item_ids[:, :2]] == torch.tensor([[3], [4]]) % 5).all())
    True
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from clusterneg.errors import ConfigError
from clusterneg.pool import PoolDraw
from clusterneg.samplers.base import check_int, user_vectors
from clusterneg.samplers.cluster_goobs import ClusterGoobsSampler
from clusterneg.samplers.protocol import Batch, SamplerContext


class ClusterDnsSampler(ClusterGoobsSampler):
    """Cluster GOOBS whose ``n_cluster`` same-cluster negatives are the model's top-scored of
    ``n_candidates`` drawn from the positive's pool segment.

    Args:
        ctx: the :class:`SamplerContext` (must carry ``item_cluster``).
        n_candidates: M same-cluster candidates scored per example (None: 8 x n_cluster).
        **cluster_goobs: the options of
            :class:`~clusterneg.samplers.cluster_goobs.ClusterGoobsSampler` (``n_negatives``,
            ``n_cluster``, ``ratio``, ...), passed on unchanged.
    """

    name: ClassVar[str] = "cluster-dns"
    citation: ClassVar[str] = ("clusterneg variant: Ji et al. 2026 cluster segments + Zhang "
                               "et al. 2013 dynamic negative selection")
    tuning_grid: ClassVar[dict[str, tuple[Any, ...]]] = {
        **ClusterGoobsSampler.tuning_grid, "n_candidates": (8, 32)}

    def __init__(self, ctx: SamplerContext, *, n_candidates: int | None = None,
                 **cluster_goobs: Any) -> None:
        super().__init__(ctx, **cluster_goobs)
        self.m = check_int("n_candidates",
                           8 * max(self.n_cluster, 1) if n_candidates is None else n_candidates)
        if self.m < self.n_cluster:
            raise ConfigError(f"cluster-dns needs n_candidates >= n_cluster, got {self.m} < "
                              f"{self.n_cluster}")
        self.options.update(n_candidates=self.m)

    def cluster_draw(self, batch: Batch, model: Any) -> PoolDraw:
        """Top ``n_cluster`` of ``n_candidates`` same-cluster pool draws under the model."""
        items = batch.items.to(self.device)
        cand = self.pool.sample_in_cluster(self.item_cluster[items], self.m, self.generator)
        if model is None:  # nothing to score with: keep the first draws (uniform)
            return _take(cand, torch.arange(self.n_cluster, device=self.device)
                         .expand(items.shape[0], -1))
        with torch.no_grad():
            vecs = (cand.rows if self.cached_vectors  # the pooled vectors: no tower pass
                    else model.item_vectors(cand.item_ids, cand.rows))
            score = torch.einsum("bd,bmd->bm", user_vectors(model, batch), vecs)
        bad = ~cand.valid | (cand.item_ids == items[:, None])
        if self.user_index is not None:
            bad |= self.user_index.contains(batch.users.to(self.device), cand.item_ids)
        score = score.masked_fill(bad, float("-inf"))
        top = score.topk(self.n_cluster, dim=1)
        draw = _take(cand, top.indices)
        draw.valid &= torch.isfinite(top.values)
        self.count("cluster/candidates_bad", bad.sum())
        return draw


def _take(draw: PoolDraw, cols: torch.Tensor) -> PoolDraw:
    """The columns ``cols`` [B, k] of a [B, M] draw."""
    rows = None
    if draw.rows is not None:
        idx = cols.reshape(*cols.shape, *([1] * (draw.rows.dim() - 2)))
        rows = draw.rows.gather(1, idx.expand(*cols.shape, *draw.rows.shape[2:]))
    return PoolDraw(slots=draw.slots.gather(1, cols), item_ids=draw.item_ids.gather(1, cols),
                    valid=draw.valid.gather(1, cols), rows=rows)
