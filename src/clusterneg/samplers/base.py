"""What every sampler shares: seeded generator, block assembly, masking, logQ, stats, state.

:class:`SamplerBase` turns raw candidate ids into a :class:`NegativeBlock`: it masks each
example's own positive and (optionally) the items its user interacted with in training,
counts both, and attaches the ``log_q`` of the configured logQ mode
(``clusterneg.samplers.proposals``). Counters accumulate as tensors (no device sync on the
training path) and become floats only when :meth:`SamplerBase.stats` is called.

References:
    Ji et al., arXiv 2607.00448, 2026, sections "Loss" and "What nobody offers yet"
    (accidental-hit masking, mixed-proposal logQ, false-negative diagnostics).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

import torch

from clusterneg.errors import ConfigError
from clusterneg.samplers.proposals import (
    CountTable,
    InBatchProposal,
    Proposal,
    check_logq_mode,
    log_expected_count,
)
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext


class BlockPart(NamedTuple):
    """Consecutive columns of a block drawn by one proposal.

    Args:
        name: stats prefix of the part (e.g. ``"cluster"``).
        proposal: the proposal that drew them (None: not a proposal).
        width: number of columns.
    """

    name: str
    proposal: Proposal | None
    width: int


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer option >= ``minimum`` (bools refused), else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"sampler option {name} must be an integer >= {minimum}, got "
                          f"{value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """A boolean option, else ConfigError."""
    if not isinstance(value, bool):
        raise ConfigError(f"sampler option {name} must be true or false, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of ``choices``, else ConfigError."""
    if value not in choices:
        raise ConfigError(f"sampler option {name} must be one of {', '.join(choices)}, got "
                          f"{value!r}")
    return value


def _counts_key(proposal: Proposal) -> tuple[Any, ...]:
    """What a proposal's per-item counts depend on besides the batch size: its draw count,
    whether its pool is complete (else it yields no table at all), and the versions of the
    tensors they are read from (bumped by any in-place write: a streamed run's frequency
    estimates, a pool's fill or a loaded pool state, cluster-follow's new assignment)."""
    pool = getattr(proposal, "pool", None)
    tensors = (getattr(proposal, "item_freq", None), getattr(proposal, "item_cluster", None),
               None if pool is None else pool.segment_filled)
    return (id(proposal), getattr(proposal, "k", None), None if pool is None else pool.complete,
            *(t._version if isinstance(t, torch.Tensor) else None for t in tensors))


def user_vectors(model: Any, batch: Batch) -> torch.Tensor:
    """The model's user vectors [B, d] for the batch, without gradient (for scoring)."""
    with torch.no_grad():
        try:
            return model.user_vectors(batch.users, exclude_items=batch.items)
        except TypeError:  # a user tower without the history-exclusion argument
            return model.user_vectors(batch.users)


class SamplerBase:
    """Shared machinery of the samplers (not a sampler itself).

    Args:
        ctx: the :class:`SamplerContext`.
        in_batch: whether the batch's other positives are negatives too.
        logq_mode: ``"mixture"``, ``"block"`` or ``"none"`` (``clusterneg.samplers.proposals``).
        mask_user_items: also mask items the example's user interacted with in training.
    """

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    tuning_grid: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(
        self, ctx: SamplerContext, *, in_batch: bool = True, logq_mode: str = "mixture",
        mask_user_items: bool = False,
    ) -> None:
        self.ctx = ctx
        self.device = torch.device(ctx.device)
        self.in_batch = check_bool("in_batch", in_batch)
        self.logq_mode = check_logq_mode(logq_mode)
        self.mask_user_items = check_bool("mask_user_items", mask_user_items)
        self.generator = torch.Generator(device=self.device).manual_seed(int(ctx.seed))
        self.item_freq = ctx.item_log_freq.to(self.device).float().exp()
        self.user_index = None
        if mask_user_items:
            if ctx.user_items is None:
                raise ConfigError("mask_user_items needs the users' training items in the "
                                  "sampler context")
            self.user_index = ctx.user_items
        self.proposals: list[Proposal] = [InBatchProposal(self.item_freq)] if in_batch else []
        self.options: dict[str, Any] = {"in_batch": in_batch, "logq_mode": logq_mode,
                                        "mask_user_items": mask_user_items}
        self._tally: dict[str, torch.Tensor] = {}
        self._tables: dict[tuple[Any, ...], CountTable | None] = {}
        # per-item logQ tables: off where the counts change every step (a streamed run's
        # online frequencies; a cluster-goobs warm-up sets _counts_changing)
        self.use_count_tables = True
        self._counts_changing = False

    # ---- blocks -------------------------------------------------------------------------

    def make_block(
        self, name: str, ids: torch.Tensor, batch: Batch,
        own: Proposal | None | Sequence[BlockPart],
        valid: torch.Tensor | None = None, embeddings: torch.Tensor | None = None,
        rows: torch.Tensor | None = None, in_pool: bool = False,
    ) -> NegativeBlock:
        """Mask false negatives, count them and attach ``log_q``.

        Args:
            name: block name (stats prefix).
            ids: int64 [B, K] per-example or [K] shared candidate ids.
            batch: the batch (positives, users).
            own: the proposal that drew ``ids`` (None: not a proposal, no correction), or
                :class:`BlockPart` s when consecutive column ranges come from different
                proposals (one block, so the item tower and the loss run once).
            valid: bool [B, K] or [K] validity before masking (None: all valid).
            embeddings, rows: passed through to the block.
            in_pool: the ids were drawn from the GOOBS pool (skips membership tests).
        """
        shared = ids.dim() == 1
        ids2d = ids[None, :] if shared else ids
        pos = batch.items.to(self.device)
        parts = (list(own) if isinstance(own, (list, tuple))
                 else [BlockPart(name, own, ids2d.shape[1])])
        ok = torch.ones(pos.shape[0], ids2d.shape[1], dtype=torch.bool, device=self.device)
        if valid is not None:
            ok = ok & (valid[None, :] if valid.dim() == 1 else valid)
        ok = ok & ~self.count_false_negatives(parts, ids2d, batch, ok)
        log_q = self._block_log_q(parts, ids2d, pos, in_pool)
        if shared and log_q.shape[0] == 1:
            log_q = log_q[0]
        return NegativeBlock(name=name, item_ids=ids, log_q=log_q, valid=ok,
                             embeddings=embeddings, rows=rows)

    def _block_log_q(
        self, parts: list[BlockPart], ids2d: torch.Tensor, pos: torch.Tensor, in_pool: bool
    ) -> torch.Tensor:
        if self.logq_mode == "mixture" and parts[0].proposal is not None:
            table = self.count_table(pos.shape[0])
            if table is not None and (in_pool or not table.pool_only):
                return table.log_q(ids2d, pos)
        if len(parts) == 1 or self.logq_mode != "block":  # mixture: one sum over all columns
            return log_expected_count(self.logq_mode, parts[0].proposal, self.proposals, ids2d, pos,
                                      in_pool)
        cols = ids2d.split([p.width for p in parts], dim=1)
        outs = [log_expected_count("block", p.proposal, self.proposals, c, pos, in_pool)
                for p, c in zip(parts, cols, strict=True)]
        return torch.cat([o.expand(max(x.shape[0] for x in outs), -1) for o in outs], dim=1)

    def count_table(self, batch_size: int) -> CountTable | None:
        """The mixture logQ of every item for batches of ``batch_size``, while no
        proposal's counts change (:class:`~clusterneg.samplers.proposals.CountTable`);
        None otherwise. Rebuilt when a proposal's draw count or a pool's fill changes."""
        if not self.use_count_tables or self._counts_changing:
            return None
        key = (batch_size, *(_counts_key(p) for p in self.proposals))
        if key not in self._tables:
            if len(self._tables) >= 2:  # a full and a last batch per epoch: 24 bytes/item
                self._tables.clear()
            self._tables[key] = CountTable.build(self.proposals, batch_size, self.ctx.n_items,
                                                 self.device)
        return self._tables[key]

    def count_false_negatives(
        self, parts: list[BlockPart], ids2d: torch.Tensor, batch: Batch, among: torch.Tensor
    ) -> torch.Tensor:
        """bool [B, K]: candidates equal to the example's positive or (when masking user
        items) in its user's training items. Counts, per part, both kinds among ``among``
        [B, K] (``<part>/pos_hits``, ``<part>/user_hits``) and the rest (``<part>/draws``)."""
        pos = batch.items.to(self.device)
        hit = ids2d == pos[:, None]
        user_hit = None
        if self.user_index is not None:
            user_hit = self.user_index.contains(batch.users.to(self.device), ids2d) & ~hit
        bad = hit if user_hit is None else hit | user_hit
        kinds = {"pos_hits": hit & among}
        if user_hit is not None:
            kinds["user_hits"] = user_hit & among
        kinds["draws"] = among & ~bad
        if len(parts) == 1:  # the whole block: no column slices
            for kind, mask in kinds.items():
                self.count(f"{parts[0].name}/{kind}", mask.sum())
            return bad
        start = 0
        for part in parts:
            span = slice(start, start + part.width)
            start += part.width
            for kind, mask in kinds.items():
                self.count(f"{part.name}/{kind}", mask[:, span].sum())
        return bad

    # ---- in-batch columns ---------------------------------------------------------------

    def in_batch_log_q(self, batch: Batch, base: torch.Tensor) -> torch.Tensor:
        """logQ of the in-batch columns: ``base`` ([B], ``log(B p_j)``) unless the mode is
        ``"mixture"`` and other proposals exist, then ``log`` of the summed expected counts,
        [B] or [B, B] (row = example, column = the other positive)."""
        if self.logq_mode != "mixture" or len(self.proposals) <= 1 or not self.in_batch:
            return base
        items = batch.items.to(self.device)
        log_q = log_expected_count("mixture", self.proposals[0], self.proposals,
                                   items[None, :], items)
        return log_q[0] if log_q.shape[0] == 1 else log_q

    def in_batch_valid(self, batch: Batch) -> torch.Tensor | None:
        """bool [B, B] mask of in-batch columns (False: the column is an item the row's user
        interacted with in training), or None when user items are not masked."""
        if self.user_index is None or not self.in_batch:
            return None
        items = batch.items.to(self.device)
        same = items[:, None] == items[None, :]  # accidental hits: the loss masks these
        user_hit = self.user_index.contains(batch.users.to(self.device), items[None, :])
        masked = user_hit & ~same
        self.count("in_batch/user_hits", masked.sum())
        return ~masked

    # ---- protocol defaults --------------------------------------------------------------

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        return []

    def observe(self, batch: Batch, model: Any, item_vectors: torch.Tensor) -> None:
        return None

    def config_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the sampler's name, citation and resolved options."""
        return {"name": self.name, "citation": self.citation, "options": dict(self.options)}

    # ---- stats --------------------------------------------------------------------------

    def count(self, key: str, value: torch.Tensor) -> None:
        """Accumulate a counter without a device sync (integer counts stay int64: exact, and
        no conversion per step)."""
        prev = self._tally.get(key)
        value = value.detach()
        if value.is_floating_point():
            value = value.to(torch.float64)
        self._tally[key] = value if prev is None else prev + value

    def gauges(self) -> dict[str, float]:
        """Point-in-time values (pool fill, FIFO size...), overridden by samplers."""
        return {}

    def stats(self) -> dict[str, float]:
        """Accumulated counters (``<part>/draws``, ``<part>/pos_hits``,
        ``<part>/user_hits``, ``in_batch/user_hits``) plus the sampler's gauges (pool fill,
        overwrites, staleness; FIFO fill; ANN index age), as plain floats."""
        counts = {k: float(v) for k, v in self._tally.items()}
        counts.update(self.gauges())
        return counts

    # ---- state --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Generator state, counters and the sampler's own state (pool, FIFO...)."""
        return {"name": self.name, "generator": self.generator.get_state(),
                "tally": {k: v.clone() for k, v in self._tally.items()},
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of the same sampler."""
        if state.get("name") != self.name:
            raise ConfigError(f"sampler state is for {state.get('name')!r}, not {self.name!r}")
        self.generator.set_state(state["generator"])
        self._tally = {k: v.clone().to(self.device) for k, v in state["tally"].items()}
        self.load_extra_state(state["extra"])

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        return None
