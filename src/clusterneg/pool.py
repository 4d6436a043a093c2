"""GOOBS: a fixed-size, cluster-segmented, real-time pool of item rows.

The pool is one preallocated tensor of ``C x S`` slots: segment ``c`` (slots ``c*S`` to
``c*S + S - 1``) holds items of cluster ``c``. The update engine (Algorithm 1) writes every
training batch's items at ``slot = cluster_id * S + item_id mod S``; a later write to the same
slot overwrites the earlier one, so the pool stays fresh and its memory never grows, whatever
the size of the catalog. The sample engine (Algorithm 2) draws, for each example, uniform
slots inside its positive's cluster segment (hard negatives) or over the whole pool (random
out-of-batch negatives).

Only filled slots are ever drawn. Sampling is exact rank-select, with no rejection loop: a
compacted, sorted index of the filled slots (``_filled_index``) is rebuilt lazily, only after
an update filled a slot that was empty (slots are never emptied, so after a preload or a
warm-up this almost never happens); the ``r``-th filled slot of segment ``c`` is then
``_filled_index[segment_start[c] + r]`` with ``r`` uniform in ``[0, segment_filled[c])``.
Each draw is therefore uniform over the filled slots of the segment, and since an item owns
exactly one slot (its cluster's), each item of the segment is drawn with probability
``1 / segment_filled[c]`` per draw: the expected count the logQ correction needs.

Compact layout (beyond the paper, for cost: issue 12). Once the pool is *complete* (a
whole-catalog preload: no write can fill a new slot again, so the filled slots and their
ranks never change), the item ids and rows are also kept in rank order, ``n_filled`` rows
instead of ``C x S``: a draw reads them at its rank directly, from a block the size of the
filled part (amazon-3cat: 39,610 of 307,200 slots, 10 MB of 64-d vectors instead of 79 MB),
not through the scattered slots. Writes go to ``rank_of_slot[slot]``. What the pool holds and
draws does not change, only where the rows sit; :meth:`ClusterPool.slot_rows` reads them by
slot whichever the layout.

References:
    Ji et al., "Real-Time Hard Negative Sampling via LLM-based Clustering for Large-Scale
    Two-Tower Retrieval", arXiv 2607.00448, 2026, section "Method", GOOBS (Algorithm 1,
    update engine; Algorithm 2, sample engine).

Example:
    >>> pool = ClusterPool(n_clusters=2, slots=4)
    >>> pool.update(torch.tensor([5, 6, 9]), torch.tensor([0, 0, 1]))
    >>> pool.item_ids.tolist()
    [-1, 5, 6, -1, -1, 9, -1, -1]
    >>> draw = pool.sample_in_cluster(torch.tensor([1]), 3, torch.Generator().manual_seed(0))
    >>> draw.item_ids.tolist()
    [[9, 9, 9]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from clusterneg.errors import ConfigError

_RAND_HIGH = 2**62  # uniform integers reduced modulo a count: bias <= count / 2**62
_COUNTERS = ("writes", "new_fills", "overwrites", "refreshes", "written_sum")


@dataclass
class PoolDraw:
    """Slots drawn from the pool and what they hold.

    Args:
        slots: int64 [...] drawn slot indices.
        item_ids: int64 [...] item ids in those slots (0 where ``valid`` is False).
        valid: bool [...] False where the segment (or the pool) had no filled slot.
        rows: [..., *row_shape] the stored rows, or None when the pool stores ids only.
    """

    slots: torch.Tensor
    item_ids: torch.Tensor
    valid: torch.Tensor
    rows: torch.Tensor | None = None


class ClusterPool:
    """C segments of S slots of item rows, with the GOOBS update and sample engines.

    Args:
        n_clusters: C, number of segments (one per cluster).
        slots: S, slots per segment.
        row_shape: shape of one stored row (e.g. ``(384,)`` content features, ``(12,)`` token
            ids); None stores item ids only.
        row_dtype: dtype of the stored rows.
        device: torch device of every buffer.

    Example:
        >>> pool = ClusterPool(300, 1024, row_shape=(8,))
        >>> pool.capacity
        307200
    """

    def __init__(
        self,
        n_clusters: int,
        slots: int,
        row_shape: tuple[int, ...] | None = None,
        row_dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        if n_clusters <= 0 or slots <= 0:
            raise ConfigError(f"pool needs n_clusters > 0 and slots > 0, got {n_clusters} x "
                              f"{slots}")
        self.n_clusters, self.slots = int(n_clusters), int(slots)
        self.row_shape = None if row_shape is None else tuple(int(s) for s in row_shape)
        self.device = torch.device(device)
        cap, kw = self.capacity, {"dtype": torch.long, "device": self.device}
        self.item_ids = torch.full((cap,), -1, **kw)  # -1: empty slot
        self.written = torch.zeros(cap, **kw)  # clock value of the last write
        self.row_dtype = row_dtype
        # the stored rows: by slot ([C x S, ...]) until the pool is compact, then by rank of
        # the filled slot ([n_filled, ...]); read them through slot_rows()
        self._rows = (None if self.row_shape is None else
                      torch.zeros((cap, *self.row_shape), dtype=row_dtype, device=self.device))
        self.segment_filled = torch.zeros(self.n_clusters, **kw)
        self.clock = 0
        self._counts = torch.zeros(len(_COUNTERS), **kw)
        # caches and scratch, all preallocated so memory never grows
        self._filled_index = torch.zeros(cap, **kw)
        self._segment_start = torch.zeros(self.n_clusters, **kw)
        self._segment_draw = torch.ones(self.n_clusters, **kw)  # filled count, at least 1
        self._no_empty_segment = False  # every segment has a filled slot (as of the index)
        self._n_filled = 0
        self._winner = torch.full((cap,), -1, **kw)
        self._dirty, self._check_fills, self._fills_indexed = True, False, -1
        # True once every slot a write can reach is filled (a whole-catalog preload); from
        # then on no write can fill a new slot, so no step reads the fill counter
        self.complete = False
        # compact layout (a complete pool, once indexed): ids and rows by rank of filled slot
        self._compact = False
        self._rank_of_slot = torch.zeros(cap, **kw)
        self._ranked_items = torch.zeros(cap, **kw)

    @property
    def stores_rows(self) -> bool:
        """Whether the pool keeps a row per slot (else item ids only)."""
        return self._rows is not None

    @property
    def compact(self) -> bool:
        """Whether ids and rows are kept in rank order of the filled slots (see the module
        docstring); only a complete pool becomes compact, at its first index build."""
        return self._compact

    def slot_rows(self, slots: torch.Tensor | None = None) -> torch.Tensor:
        """The rows held in ``slots`` (int64 [n]; None: every slot, ``[C x S, ...]``, zero
        where a slot is empty), whatever the layout.

        Example:
            >>> pool = ClusterPool(1, 4, row_shape=(1,))
            >>> pool.update(torch.tensor([1, 2]), torch.tensor([0, 0]), torch.ones(2, 1))
            >>> pool.slot_rows()[:, 0].tolist()
            [0.0, 1.0, 1.0, 0.0]
        """
        if self._rows is None:
            raise ConfigError("slot_rows: this pool stores item ids only")
        if slots is None:
            if not self._compact:
                return self._rows.clone()
            out = torch.zeros((self.capacity, *self.row_shape), dtype=self._rows.dtype,
                              device=self.device)
            filled = self._filled_index[: self._n_filled]
            out.index_copy_(0, filled, self._rows)
            return out
        slots = slots.to(self.device, torch.long)
        return self._rows.index_select(0, self._row_index(slots).reshape(-1)).view(
            *slots.shape, *self.row_shape)

    def _row_index(self, slots: torch.Tensor) -> torch.Tensor:
        """Where the rows of filled ``slots`` sit in the row store."""
        return self._rank_of_slot[slots] if self._compact else slots

    @property
    def capacity(self) -> int:
        """C x S, the fixed number of slots."""
        return self.n_clusters * self.slots

    @property
    def n_filled(self) -> int:
        """Number of filled slots over the whole pool."""
        self._ensure_index()
        return self._n_filled

    def attach_rows(self, row_shape: tuple[int, ...], row_dtype: torch.dtype = torch.float32
                    ) -> None:
        """Allocate the row store of a pool built for ids only, once the row shape is known
        (the item vectors a sampler with ``cached_vectors`` keeps exist only once the model
        does). The rows of slots filled so far are zero until :meth:`rewrite_rows` or a write.

        Example:
            >>> pool = ClusterPool(2, 4)
            >>> pool.attach_rows((3,))
            >>> tuple(pool.slot_rows().shape)
            (8, 3)
        """
        if self._rows is not None:
            raise ConfigError(f"pool already stores rows of shape {self.row_shape}")
        self._ensure_index()  # a complete pool turns compact here: n_filled rows suffice
        self.row_shape = tuple(int(s) for s in row_shape)
        self.row_dtype = row_dtype
        n = self._n_filled if self._compact else self.capacity
        self._rows = torch.zeros((n, *self.row_shape), dtype=row_dtype, device=self.device)

    def rewrite_rows(self, encode: Callable[[torch.Tensor], torch.Tensor],
                     chunk: int = 65536) -> None:
        """Recompute the row of every filled slot from its item id, ``chunk`` slots at a
        time (memory bounded by the chunk, cost by the pool's capacity, never by the
        catalog). The clock and the write counters do not change: no item moves.

        Args:
            encode: int64 [n] item ids -> [n, *row_shape] rows.
            chunk: slots per ``encode`` call.

        Example:
            >>> pool = ClusterPool(1, 4)
            >>> pool.update(torch.tensor([1, 2]), torch.tensor([0, 0]))
            >>> pool.attach_rows((1,))
            >>> pool.rewrite_rows(lambda ids: ids[:, None].float() * 10)
            >>> pool.slot_rows()[:, 0].tolist()
            [0.0, 10.0, 20.0, 0.0]
        """
        if self._rows is None:
            raise ConfigError("rewrite_rows: this pool stores item ids only")
        self._ensure_index()
        filled = self._filled_index[: self._n_filled]
        for start in range(0, int(filled.numel()), chunk):
            slot = filled[start : start + chunk]
            rows = encode(self.item_ids.index_select(0, slot))
            rows = rows.reshape(-1, *self.row_shape).to(self._rows.dtype)
            if self._compact:  # rank order: the chunk is one contiguous block
                self._rows[start : start + slot.numel()] = rows
            else:
                self._rows.index_copy_(0, slot, rows)

    def slot_of(self, item_ids: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
        """``cluster_id * S + item_id mod S`` (Algorithm 1), int64 of the inputs' shape."""
        return cluster_ids.long() * self.slots + item_ids.long() % self.slots

    def update(
        self,
        item_ids: torch.Tensor,
        cluster_ids: torch.Tensor,
        rows: torch.Tensor | None = None,
        step: int | None = None,
    ) -> None:
        """Update engine (Algorithm 1): write a batch of items into their slots.

        Within one call, as across calls, the later write to a slot wins.

        Args:
            item_ids: int64 [n] item ids (>= 0).
            cluster_ids: int64 [n] their clusters, in ``[0, C)``.
            rows: [n, *row_shape] their rows (required when the pool stores rows).
            step: the training step of this write (staleness clock); None advances the
                pool's own clock by one.
        """
        self.clock = self.clock + 1 if step is None else int(step)
        self._write(item_ids, cluster_ids, rows)

    def preload(
        self,
        item_ids: torch.Tensor,
        cluster_ids: torch.Tensor,
        rows: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        complete: bool = False,
    ) -> None:
        """Fill the pool from an item table, without advancing the clock.

        Args:
            item_ids: int64 [n] item ids of the table.
            cluster_ids: int64 [n] their clusters.
            rows: [n, *row_shape] their rows, or None.
            generator: when given, the table is written in a random order, so which of two
                colliding items keeps a slot does not depend on the id order.
            complete: the table is every item that will ever be written, with the cluster
                it will be written under (a whole-catalog preload with a fixed assignment).
                Slots are never emptied, so afterwards every slot a write can reach is
                filled and later writes cannot change the index of filled slots: sampling
                then never reads the fill counter back to the host (issue 12, no per-step
                host sync on an accelerator).
        """
        if generator is not None:
            perm = torch.randperm(item_ids.numel(), generator=generator,
                                  device=generator.device).to(item_ids.device)
            item_ids, cluster_ids = item_ids.reshape(-1)[perm], cluster_ids.reshape(-1)[perm]
            rows = None if rows is None else rows[perm.to(rows.device)]
        self._write(item_ids, cluster_ids, rows)
        self.complete = self.complete or complete

    def _write(
        self, item_ids: torch.Tensor, cluster_ids: torch.Tensor, rows: torch.Tensor | None
    ) -> None:
        """Write without a host sync: every write to a slot carries the value of the slot's
        LAST write (its winner), so duplicate indices write identical values and the
        scatter order does not matter; counters count winners only.

        Every step calls this, so it is written for few tensor operations (issue 12: on the
        CPU, with small towers, a step's cost is mostly the number of operations, not their
        size): gathers through ``index_select``, the counters as one ``bincount``, and a
        compact pool, where no write can fill a slot, skips the fill bookkeeping.
        """
        items = item_ids.reshape(-1).to(self.device, torch.long)
        clusters = cluster_ids.reshape(-1).to(self.device, torch.long)
        self._check_write(items, clusters, rows)
        slot = self.slot_of(items, clusters)
        order = torch.arange(slot.numel(), device=self.device)
        win = self._last_writes(slot, order)
        keep = win == order
        items = items.index_select(0, win)
        old = self.item_ids.index_select(0, slot)
        old_written = self.written.index_select(0, slot)
        empty = old < 0
        new_fill = empty & keep
        if self._compact:  # checked before anything changes
            self._check_no_new_fill(new_fill)
        # per winning write: 1 new fill, 2 overwrite (another item), 3 refresh (same item);
        # the counters' order: writes, new fills, overwrites, refreshes, written_sum
        kind = torch.where(empty, 1, torch.where(old == items, 3, 2)) * keep
        tally = torch.bincount(kind, minlength=4)[1:]
        since = self.clock - torch.where(new_fill, 0, old_written)
        self._counts += torch.cat([tally.sum(0, keepdim=True), tally,
                                   (since * keep).sum(0, keepdim=True)])
        self.item_ids.index_copy_(0, slot, items)
        self.written.index_fill_(0, slot, self.clock)
        where = slot
        if self._compact:  # every written slot is filled already: its rank is known
            where = self._rank_of_slot.index_select(0, slot)
            self._ranked_items.index_copy_(0, where, items)
        if self._rows is not None and rows is not None:
            rows = rows.reshape(-1, *self.row_shape).to(self.device, self._rows.dtype)
            self._rows.index_copy_(0, where, rows.index_select(0, win))
        if not self._compact:  # a compact pool has just checked: no write filled a slot
            self.segment_filled.index_add_(0, clusters, new_fill.long())
        # the index is rebuilt only if a slot was newly filled, which a complete pool rules out
        self._check_fills = self._check_fills or not self.complete

    def _check_write(
        self, items: torch.Tensor, clusters: torch.Tensor, rows: torch.Tensor | None
    ) -> None:
        if items.shape != clusters.shape:
            raise ConfigError(f"pool update: {items.numel()} item ids but {clusters.numel()} "
                              "cluster ids")
        if (self._rows is None) != (rows is None):
            raise ConfigError("pool update: rows must be given exactly when the pool stores "
                              f"rows (row_shape={self.row_shape})")
        if not items.numel():
            return
        msg = f"pool update: item ids must be >= 0 and cluster ids in [0, {self.n_clusters})"
        if self.device.type != "cpu":  # checked on the device, without a host sync
            bad = ((items < 0) | (clusters < 0) | (clusters >= self.n_clusters)).any()
            torch._assert_async(~bad, msg)
            return
        low, high = torch.aminmax(clusters)  # two reductions: this runs every step
        if int(items.min()) < 0 or int(low) < 0 or int(high) >= self.n_clusters:
            raise ConfigError(msg)

    def _check_no_new_fill(self, new_fill: torch.Tensor) -> None:
        """A complete pool's contract: no write fills an empty slot (its item was not in the
        preload, or its cluster changed)."""
        msg = ("pool update: the pool was preloaded as complete (every item, with its "
               "cluster), but a write filled an empty slot")
        if self.device.type != "cpu":
            torch._assert_async(~new_fill.any(), msg)
        elif bool(new_fill.any()):
            raise ConfigError(msg)

    def _last_writes(self, slot: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """int64 [n]: for each write, the position of the last write to its slot (later
        writes win); ``order`` is ``arange(n)``."""
        self._winner.scatter_reduce_(0, slot, order, reduce="amax")
        win = self._winner.index_select(0, slot)
        self._winner.index_fill_(0, slot, -1)
        return win

    def _ensure_index(self) -> None:
        """Rebuild the compacted index of filled slots when a new slot was filled (one read
        of the fill counter after an update; nothing when no update happened)."""
        if self._check_fills:
            self._check_fills = False
            fills = int(self._counts[1])
            if fills != self._fills_indexed:
                self._dirty, self._fills_indexed = True, fills
        if not self._dirty:
            return
        idx = torch.nonzero(self.item_ids >= 0).squeeze(1)  # sorted, so grouped by segment
        self._n_filled = int(idx.numel())
        self._filled_index[: self._n_filled] = idx
        self._segment_start.copy_(torch.cumsum(self.segment_filled, 0) - self.segment_filled)
        self._segment_draw.copy_(self.segment_filled.clamp(min=1))
        self._no_empty_segment = bool((self.segment_filled > 0).all())
        self._dirty, self._fills_indexed = False, int(self._counts[1])
        if self.complete and not self._compact and self._n_filled:
            self._make_compact()

    def _make_compact(self) -> None:
        """Switch a complete, freshly indexed pool to the compact layout (once)."""
        n = self._n_filled
        filled = self._filled_index[:n]
        self._rank_of_slot.index_copy_(0, filled, torch.arange(n, device=self.device))
        self._ranked_items[:n] = self.item_ids.index_select(0, filled)
        if self._rows is not None:
            self._rows = self._rows.index_select(0, filled)  # frees the per-slot store
        self._compact = True

    def sample_in_cluster(
        self, cluster_ids: torch.Tensor, n: int, generator: torch.Generator
    ) -> PoolDraw:
        """Sample engine (Algorithm 2): ``n`` uniform filled slots of each example's segment.

        Args:
            cluster_ids: int64 [B] the cluster of each example's positive.
            n: draws per example (with replacement).
            generator: torch.Generator on the pool's device.

        Returns:
            :class:`PoolDraw` of shape [B, n]; ``valid`` is False where the segment is empty.
            Each item of segment c is drawn with probability ``1 / segment_filled[c]``.
        """
        self._ensure_index()
        cluster_ids = cluster_ids.to(self.device, torch.long)
        raw = torch.randint(0, _RAND_HIGH, (cluster_ids.numel(), n), generator=generator,
                            device=self.device)
        rank = raw % self._segment_draw.index_select(0, cluster_ids)[:, None]
        start = self._segment_start.index_select(0, cluster_ids)[:, None]
        if self._no_empty_segment:  # every draw is valid: nothing to mask
            return self._gather(start + rank, None)
        valid = self.segment_filled.index_select(0, cluster_ids) > 0
        return self._gather(start + rank, valid[:, None].expand(-1, n))

    def sample_uniform(self, shape: tuple[int, ...], generator: torch.Generator) -> PoolDraw:
        """Uniform filled slots over the whole pool (random out-of-batch negatives).

        Each filled slot is drawn with probability ``1 / n_filled`` per draw.

        Args:
            shape: output shape, e.g. ``(B, K)`` or ``(K,)``.
            generator: torch.Generator on the pool's device.
        """
        n = self.n_filled
        raw = torch.randint(0, _RAND_HIGH, shape, generator=generator, device=self.device)
        return self._gather(raw % max(n, 1), torch.full(shape, n > 0, device=self.device))

    def _gather(self, rank: torch.Tensor, valid: torch.Tensor | None) -> PoolDraw:
        """The draw at global ranks ``rank`` of the filled slots (index_select throughout:
        several times faster than advanced indexing); ``valid`` None: every rank is a
        filled slot's (no empty segment was drawn from)."""
        flat = rank.reshape(-1)
        slot = self._filled_index.index_select(0, flat)
        if self._compact:  # ids and rows in rank order: read at the rank (an empty
            if valid is not None:  # segment's rank is masked by valid)
                flat = flat.clamp(max=self._n_filled - 1)
            ids, where = self._ranked_items.index_select(0, flat), flat
        else:
            ids, where = self.item_ids.index_select(0, slot), slot
        rows = (None if self._rows is None else
                self._rows.index_select(0, where).view(*rank.shape, *self.row_shape))
        ids = ids.view(rank.shape)
        if valid is None:
            return PoolDraw(slots=slot.view(rank.shape), item_ids=ids,
                            valid=torch.ones(rank.shape, dtype=torch.bool, device=self.device),
                            rows=rows)
        return PoolDraw(slots=slot.view(rank.shape), item_ids=torch.where(valid, ids, 0),
                        valid=valid, rows=rows)

    def contains(self, item_ids: torch.Tensor, cluster_ids: torch.Tensor) -> torch.Tensor:
        """bool, same shape: whether each item currently sits in its slot."""
        slot = self.slot_of(item_ids.to(self.device), cluster_ids.to(self.device))
        return self.item_ids[slot] == item_ids.to(self.device)

    def counters(self) -> dict[str, float]:
        """Fill fraction, writes, overwrites (a different item evicted), refreshes (the same
        item rewritten), and staleness (clock steps since a filled slot was last written)."""
        writes, new_fills, overwrites, refreshes, written_sum = self._counts.tolist()
        n = self.n_filled
        filled = self.item_ids >= 0
        oldest = int(self.written[filled].min()) if n else self.clock
        return {
            "fill": n / self.capacity, "filled": float(n), "writes": float(writes),
            "new_fills": float(new_fills), "overwrites": float(overwrites),
            "refreshes": float(refreshes),
            "staleness_mean": self.clock - written_sum / n if n else 0.0,
            "staleness_max": float(self.clock - oldest), "clock": float(self.clock),
        }

    def nbytes(self) -> int:
        """Bytes held by every buffer of the pool: constant, except that a complete pool sheds
        its per-slot rows once, when it turns compact (its first index build)."""
        return sum(t.numel() * t.element_size() for t in vars(self).values()
                   if isinstance(t, torch.Tensor))

    def state_dict(self) -> dict[str, Any]:
        """Slots, rows, write clocks and counters (caches are rebuilt on load)."""
        return {
            "n_clusters": self.n_clusters, "slots": self.slots, "clock": self.clock,
            "item_ids": self.item_ids.clone(), "written": self.written.clone(),
            "rows": None if self._rows is None else self.slot_rows(),
            "segment_filled": self.segment_filled.clone(), "counts": self._counts.clone(),
            "complete": self.complete,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a pool with the same C, S and row shape."""
        if (state["n_clusters"], state["slots"]) != (self.n_clusters, self.slots):
            raise ConfigError(f"pool state is {state['n_clusters']} x {state['slots']}, this "
                              f"pool is {self.n_clusters} x {self.slots}")
        if (state["rows"] is None) != (self._rows is None) or (
                self._rows is not None
                and tuple(state["rows"].shape) != (self.capacity, *self.row_shape)):
            raise ConfigError("pool state rows do not match this pool's row shape")
        self.item_ids.copy_(state["item_ids"])
        self.written.copy_(state["written"])
        self.segment_filled.copy_(state["segment_filled"])
        self._counts.copy_(state["counts"])
        if self._rows is not None:  # slot layout; compact again at the next index build
            self._rows = state["rows"].to(self.device, self._rows.dtype).clone()
        self.clock = int(state["clock"])
        self.complete = bool(state.get("complete", False))
        self._compact = False
        self._dirty, self._check_fills = True, True
