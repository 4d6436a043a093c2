"""GOOBS: random out-of-batch negatives drawn from the fixed-size, real-time item pool.

The pool (``clusterneg.pool.ClusterPool``, C segments x S slots) is preloaded from the item
table and refreshed by every training batch (Algorithm 1); each example gets K negatives drawn
uniformly over the pool's filled slots (Algorithm 2, the random part). An item in the pool is
drawn ``K / n_filled`` times in expectation (its logQ); under ``"mixture"`` every candidate,
in-batch columns included, is corrected by ``log(B p_j + K [j in pool] / n_filled)``.

When the context has clusters, the pool is the same C x S cluster-segmented pool that
``cluster-goobs`` uses (same memory, same freshness); without clusters it is one segment.

References:
    Ji et al., "Real-Time Hard Negative Sampling via LLM-based Clustering for Large-Scale
    Two-Tower Retrieval", arXiv 2607.00448, 2026, section "Method", item 2 (GOOBS pool,
    random OOB negatives) and section "Reported results" (plain GOOBS baseline).

Example:
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=100, item_log_freq=torch.full((100,), -4.6),
    ...                      item_cluster=torch.arange(100) % 5, n_clusters=5)
    >>> s = build_sampler("goobs", ctx, n_negatives=4, slots=32)
    >>> s.negatives(Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), None)[0].item_ids.shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from typing import Any

import torch

from clusterneg.errors import ConfigError
from clusterneg.pool import ClusterPool
from clusterneg.samplers.base import SamplerBase, check_bool, check_int
from clusterneg.samplers.proposals import PoolUniformProposal
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext

DEFAULT_SLOTS = 1024
MAX_SINGLE_SEGMENT = 1 << 20


def build_pool(ctx: SamplerContext, slots: int | None, store_rows: bool) -> ClusterPool:
    """The sampler's pool: C x ``slots`` with clusters, else one segment of up to the catalog.

    Args:
        ctx: the context (clusters, item rows, device).
        slots: S per segment (None: 1024 with clusters, else min(N, 2^20)).
        store_rows: keep the context's item rows in the pool (else ids only).
    """
    clustered = ctx.item_cluster is not None
    default = DEFAULT_SLOTS if clustered else min(ctx.n_items, MAX_SINGLE_SEGMENT)
    s = check_int("slots", default if slots is None else slots)
    if store_rows and ctx.item_rows is None:
        raise ConfigError("store_rows needs item rows (content features) in the context")
    row_shape = tuple(ctx.item_rows.shape[1:]) if store_rows else None
    row_dtype = ctx.item_rows.dtype if store_rows else torch.float32
    n_seg = max(int(ctx.n_clusters), 1) if clustered else 1
    return ClusterPool(n_seg, s, row_shape=row_shape, row_dtype=row_dtype, device=ctx.device)


class GoobsSampler(SamplerBase):
    """In-batch plus K random negatives per example from the GOOBS pool.

    Args:
        ctx: the :class:`SamplerContext`.
        n_negatives: K random pool negatives per example.
        slots: S slots per cluster segment (None: 1024; one segment of min(N, 2^20) when the
            context has no clusters).
        shared: draw one set of K for the whole batch ([K]) instead of K per example.
        preload: fill the pool from the item table before the first step.
        store_rows: keep item rows (content features) in the pool and hand them to the item
            tower, as a production pool of item features would.
        cached_vectors: keep the item tower's OUTPUT in the pool instead (beyond the paper,
            for cost: issue 12). Each slot holds its item's vector as computed when the item
            last passed through the item tower (as a positive of a batch, or at the last
            refresh), detached; pool negatives are scored against those vectors, so they
            cost no item-tower pass at all and only the user tower gets their gradient (the
            embedding-stability argument of cross-batch negatives, Wang et al., SIGIR 2021).
            The vectors are filled from the model at the first step.
        refresh_every: with ``cached_vectors``, recompute every pooled vector from the
            current model every this many steps (0: never; a pooled item is then refreshed
            only when it is a positive again). The cost is one no-grad item-tower pass over
            the pool's filled slots, bounded by C x S whatever the catalog.
        negative_grad: False embeds the pool negatives with the current item tower but
            without gradient: the negatives' logits still push the user vectors, while the
            negative items' own vectors get no gradient from them. An ablation (issue 11)
            that separates the two things ``cached_vectors`` changes at once, staleness
            and the missing item gradient; cached vectors never carry a gradient, whatever
            this option says.
        in_batch: also use the batch's other positives.
        logq_mode: ``"mixture"``, ``"block"`` or ``"none"``.
        mask_user_items: also mask items the example's user interacted with in training.
    """

    name = "goobs"
    citation = ("Ji et al., Real-Time Hard Negative Sampling via LLM-based Clustering for "
                "Large-Scale Two-Tower Retrieval, arXiv 2607.00448, 2026 (GOOBS)")
    # its own knobs (issue 11, step 5): how many pool negatives, how logQ treats them, and
    # whether the user's own training items are masked out as false negatives
    tuning_grid = {"n_negatives": (32, 128), "logq_mode": ("mixture", "block"),
                   "mask_user_items": (False, True)}

    def __init__(
        self, ctx: SamplerContext, *, n_negatives: int = 16, slots: int | None = None,
        shared: bool = False, preload: bool = True, store_rows: bool = False,
        cached_vectors: bool = False, refresh_every: int = 500, negative_grad: bool = True,
        in_batch: bool = True, logq_mode: str = "mixture", mask_user_items: bool = False,
    ) -> None:
        super().__init__(ctx, in_batch=in_batch, logq_mode=logq_mode,
                         mask_user_items=mask_user_items)
        self.n_random = check_int("n_negatives", n_negatives, minimum=0)
        self.shared = check_bool("shared", shared)
        self.store_rows = check_bool("store_rows", store_rows)
        self.cached_vectors = check_bool("cached_vectors", cached_vectors)
        self.refresh_every = check_int("refresh_every", refresh_every, minimum=0)
        self.negative_grad = check_bool("negative_grad", negative_grad)
        if self.cached_vectors and self.store_rows:
            raise ConfigError("store_rows and cached_vectors both use the pool's rows (item "
                              "features vs item vectors); choose one")
        self.pool = build_pool(ctx, slots, self.store_rows)
        self.item_cluster = (None if ctx.item_cluster is None
                             else ctx.item_cluster.to(self.device).long())
        self.random = PoolUniformProposal(self.pool, self.item_cluster, self.n_random)
        if self.n_random:
            self.proposals.append(self.random)
        if check_bool("preload", preload):
            self._preload()
        self.options.update(n_negatives=self.n_random, slots=self.pool.slots, shared=shared,
                            preload=preload, store_rows=store_rows,
                            cached_vectors=cached_vectors, refresh_every=refresh_every,
                            negative_grad=negative_grad)

    def _clusters_of(self, items: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(items) if self.item_cluster is None else self.item_cluster[items]

    def _rows_of(self, items: torch.Tensor) -> torch.Tensor | None:
        return self.ctx.item_rows[items.cpu()].to(self.device) if self.store_rows else None

    def pool_rows(self, items: torch.Tensor, item_vectors: torch.Tensor | None
                  ) -> torch.Tensor | None:
        """What the pool stores for ``items`` when they are written: their item vectors
        (detached) with ``cached_vectors``, their content rows with ``store_rows``, else
        nothing."""
        if self.cached_vectors:
            if item_vectors is None:
                raise ConfigError("cached_vectors: the pool update needs the items' vectors")
            return item_vectors.detach().to(self.device)
        return self._rows_of(items)

    def block_inputs(self, ids: torch.Tensor, rows: torch.Tensor | None, model: Any
                     ) -> dict[str, torch.Tensor | None]:
        """How drawn pool negatives reach the loss: as the candidates' vectors
        (``embeddings``, no item-tower pass in the step) with ``cached_vectors``, or
        computed now without gradient when ``negative_grad`` is False; else as item-tower
        input ``rows`` (None: the trainer's tower call looks the ids up)."""
        if self.cached_vectors:
            return {"embeddings": rows}
        if not self.negative_grad and model is not None:
            with torch.no_grad():
                vecs = model.item_vectors(ids, rows)
            return {"embeddings": vecs}
        return {"rows": rows}

    def fill_vectors(self, model: Any) -> None:
        """``cached_vectors``: allocate the pool's vector rows (their size asked of the
        model) and recompute every filled slot's vector from ``model`` (no gradient)."""
        if model is None:
            return
        if not self.pool.stores_rows:
            with torch.no_grad():
                probe = model.item_vectors(torch.zeros(1, dtype=torch.long, device=self.device))
            self.pool.attach_rows((int(probe.shape[-1]),))

        def encode(ids: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model.item_vectors(ids)

        self.pool.rewrite_rows(encode)
        self.count("pool/vector_refreshes", torch.ones((), device=self.device))

    def ensure_vectors(self, model: Any) -> None:
        """``cached_vectors``: the first step fills the pooled vectors from the model (the
        pool holds vector rows exactly once they have been filled)."""
        if self.cached_vectors and not self.pool.stores_rows:
            self.fill_vectors(model)

    def after_write(self, model: Any, step: int) -> None:
        """``cached_vectors``: every ``refresh_every`` steps, recompute the pooled vectors."""
        if (self.cached_vectors and self.refresh_every and model is not None
                and (int(step) + 1) % self.refresh_every == 0):
            self.fill_vectors(model)

    def _preload(self) -> None:
        items = torch.arange(self.ctx.n_items, device=self.device)
        self.pool.preload(items, self._clusters_of(items), self._rows_of(items),
                          generator=self.generator, complete=True)

    def random_block(self, batch: Batch, model: Any = None) -> list[NegativeBlock]:
        """The uniform pool block: [B, K] per example, or [K] when ``shared``."""
        if self.n_random == 0:
            return []
        shape = (self.n_random,) if self.shared else (batch.items.shape[0], self.n_random)
        draw = self.pool.sample_uniform(shape, self.generator)
        return [self.make_block("random", draw.item_ids, batch, self.random, valid=draw.valid,
                                in_pool=True, **self.block_inputs(draw.item_ids, draw.rows,
                                                                  model))]

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        self.ensure_vectors(model)
        return self.random_block(batch, model)

    def observe(self, batch: Batch, model: Any, item_vectors: torch.Tensor) -> None:
        """Update engine: write the batch's positives into their slots (with their vectors,
        under ``cached_vectors``)."""
        items = batch.items.to(self.device)
        self.ensure_vectors(model)
        self.pool.update(items, self._clusters_of(items), self.pool_rows(items, item_vectors),
                         step=batch.step)
        self.after_write(model, batch.step)

    def gauges(self) -> dict[str, float]:
        return {f"pool/{k}": v for k, v in self.pool.counters().items()}

    def extra_state(self) -> dict[str, Any]:
        return {"pool": self.pool.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        rows = state["pool"]["rows"]
        if self.cached_vectors and not self.pool.stores_rows and rows is not None:
            self.pool.attach_rows(tuple(rows.shape[1:]), rows.dtype)
        self.pool.load_state_dict(state["pool"])
