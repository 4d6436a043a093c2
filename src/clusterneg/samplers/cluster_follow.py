"""Cluster Follow: clusters that start from the LLM's and then follow the model's item space.

What it adds to the paper: the paper clusters items once, by their LLM content embedding, so
"same cluster" means "similar text" for the whole run. What the model confuses changes as it
learns: items it already separates stay in one cluster, items it mixes up may sit in
different ones. Every ``recluster_every`` steps this sampler runs ``lloyd_iters`` spherical
k-means (Lloyd) iterations on the *learned* item-tower vectors, starting from the current
assignment (the LLM clusters at first), and re-segments the GOOBS pool in place (every item
the pool holds is rewritten into its new cluster's segment; memory stays C x S). Starting
from the LLM assignment and moving only a few iterations is the blend: with few iterations
the clusters stay close to the semantic ones, with many they become the model's own. Why it
should help: same-cluster negatives stay hard as the model learns (ANCE-style refresh, Xiong
et al. 2021) without an ANN index, and the LLM still decides where the clusters start, which
matters most for items the model has seen little.

Everything else (draws, the mixture logQ over in-batch, random-pool and same-cluster
proposals) is exactly :class:`~clusterneg.samplers.cluster_goobs.ClusterGoobsSampler`'s, on
the current assignment; the number of clusters C never changes (a cluster may empty).

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (LLM clusters, GOOBS pool,
    Algorithms 1 and 2).
    Xiong et al., "Approximate Nearest Neighbor Negative Contrastive Learning for Dense Text
    Retrieval", ICLR 2021 (negatives refreshed from the model's own, evolving embeddings).

Example:
    >>> from clusterneg.model import ModelConfig, TwoTower
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=60, item_log_freq=torch.full((60,), -4.1),
    ...                      item_cluster=torch.arange(60) % 3, n_clusters=3)
    >>> model = TwoTower(ModelConfig(dim=8, history_len=0), n_users=4, n_items=60)
    >>> s = build_sampler("cluster-follow", ctx, n_negatives=4, slots=64, recluster_every=1)
    >>> batch = Batch(torch.tensor([0, 1]), torch.tensor([3, 4]))
    >>> s.observe(batch, model, model.item_vectors(batch.items))
    >>> s.stats()["recluster/count"], s.pool.n_filled == 60  # every item still in the pool
    (1.0, True)
    >>> bool(torch.equal(ctx.item_cluster, torch.arange(60) % 3))  # the context is untouched
    True
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from clusterneg.pool import ClusterPool
from clusterneg.samplers.base import check_int
from clusterneg.samplers.cluster_goobs import ClusterGoobsSampler
from clusterneg.samplers.protocol import Batch, SamplerContext

ASSIGN_CHUNK = 65536  # items scored against the centroids at once (bounded memory)


def lloyd_steps(vectors: torch.Tensor, assign: torch.Tensor, n_clusters: int,
                iters: int) -> torch.Tensor:
    """``iters`` spherical k-means iterations from an assignment; returns the new one.

    Centroids are the normalised means of each cluster's vectors; a cluster left empty keeps
    no centroid (nothing is assigned to it), so ids stay in ``[0, n_clusters)``.

    Args:
        vectors: float32 [N, d] item vectors (L2-normalised).
        assign: int64 [N] starting cluster of each item.
        n_clusters: C.
        iters: iterations (>= 1).

    Example:
        >>> v = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> lloyd_steps(F.normalize(v, dim=1), torch.tensor([0, 1, 1, 1]), 2, 2).tolist()
        [0, 0, 1, 1]
    """
    for _ in range(iters):
        sums = torch.zeros(n_clusters, vectors.shape[1], device=vectors.device)
        sums.index_add_(0, assign, vectors)
        empty = torch.bincount(assign, minlength=n_clusters) == 0
        cent = F.normalize(sums, dim=1)
        assign = torch.cat([(chunk @ cent.T).masked_fill(empty, float("-inf")).argmax(1)
                            for chunk in vectors.split(ASSIGN_CHUNK)])
    return assign


class ClusterFollowSampler(ClusterGoobsSampler):
    """Cluster GOOBS on clusters re-fit to the learned item vectors every N steps.

    Args:
        ctx: the :class:`SamplerContext` (must carry ``item_cluster``: the starting clusters).
        recluster_every: steps between re-clusterings (after the optimiser step).
        lloyd_iters: k-means iterations per re-clustering (few: stay near the LLM clusters).
        **cluster_goobs: the options of
            :class:`~clusterneg.samplers.cluster_goobs.ClusterGoobsSampler` (``n_negatives``,
            ``n_cluster``, ``ratio``, ...), passed on unchanged.
    """

    name: ClassVar[str] = "cluster-follow"
    citation: ClassVar[str] = ("clusterneg variant: Ji et al. 2026 cluster GOOBS with clusters "
                               "re-fit to the model's item vectors (ANCE-style refresh)")
    tuning_grid: ClassVar[dict[str, tuple[Any, ...]]] = {
        **ClusterGoobsSampler.tuning_grid, "recluster_every": (200, 1000)}

    def __init__(self, ctx: SamplerContext, *, recluster_every: int = 500, lloyd_iters: int = 2,
                 **cluster_goobs: Any) -> None:
        super().__init__(ctx, **cluster_goobs)
        self.every = check_int("recluster_every", recluster_every)
        self.iters = check_int("lloyd_iters", lloyd_iters)
        # our own copy: the assignment changes in place and must not leak into the context
        own = self.item_cluster.clone()
        self.item_cluster = self.random.item_cluster = self.cluster.item_cluster = own
        self.n_reclusters, self.moved_share = 0, 0.0
        self.options.update(recluster_every=self.every, lloyd_iters=self.iters)

    def observe(self, batch: Batch, model: Any, item_vectors: torch.Tensor) -> None:
        """Pool update (Algorithm 1), then a re-clustering every ``recluster_every`` steps."""
        super().observe(batch, model, item_vectors)
        if model is not None and (batch.step + 1) % self.every == 0:
            self.recluster(model)

    @torch.no_grad()
    def recluster(self, model: Any) -> None:
        """Re-fit the assignment to the model's item vectors and re-segment the pool."""
        vecs = F.normalize(model.all_item_vectors().to(self.device).float(), dim=1)
        new = lloyd_steps(vecs, self.item_cluster, self.ctx.n_clusters, self.iters)
        self.moved_share = float((new != self.item_cluster).float().mean())
        self.item_cluster.copy_(new)
        self._resegment()
        self.n_reclusters += 1

    def _resegment(self) -> None:
        """Rewrite every item the pool holds into its (new) cluster's segment, in place."""
        pool = self.pool
        held = (pool.item_ids >= 0).nonzero().squeeze(1)
        ids = pool.item_ids[held]
        rows = pool.slot_rows(held) if pool.stores_rows else None
        fresh = ClusterPool(pool.n_clusters, pool.slots, row_shape=pool.row_shape,
                            row_dtype=pool.row_dtype,
                            device=pool.device)
        fresh.clock = pool.clock  # re-segmented items count as written now
        fresh.preload(ids, self.item_cluster[ids], rows, generator=self.generator)
        state = fresh.state_dict()
        state["counts"] = pool.state_dict()["counts"]  # keep the run's write counters
        pool.load_state_dict(state)

    def gauges(self) -> dict[str, float]:
        return {**super().gauges(), "recluster/count": float(self.n_reclusters),
                "recluster/moved_share": self.moved_share}

    def extra_state(self) -> dict[str, Any]:
        return {**super().extra_state(), "item_cluster": self.item_cluster.clone(),
                "n_reclusters": self.n_reclusters, "moved_share": self.moved_share}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        super().load_extra_state(state)
        self.item_cluster.copy_(state["item_cluster"])
        self.n_reclusters = int(state["n_reclusters"])
        self.moved_share = float(state["moved_share"])
