"""The GOOBS pool: Algorithm 1 (slot formula, later writes win), Algorithm 2 (uniform over
filled slots of a segment / of the pool), fixed memory, counters and state round-trip."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterneg.errors import ConfigError
from clusterneg.pool import ClusterPool

SETTINGS = settings(max_examples=50, deadline=None)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _writes(max_c: int = 5):
    """Strategy: (C, S, list of batches of (item, cluster) pairs)."""
    return st.integers(1, max_c).flatmap(lambda c: st.tuples(
        st.just(c), st.integers(1, 8),
        st.lists(st.lists(st.tuples(st.integers(0, 40), st.integers(0, c - 1)),
                          min_size=1, max_size=12), min_size=1, max_size=6)))


def _apply(pool: ClusterPool, batches: list[list[tuple[int, int]]]) -> dict[int, int]:
    """Write the batches; return the reference slot -> item map computed in plain Python."""
    ref: dict[int, int] = {}
    for batch in batches:
        items = torch.tensor([i for i, _ in batch])
        clusters = torch.tensor([c for _, c in batch])
        pool.update(items, clusters)
        for i, c in batch:
            ref[c * pool.slots + i % pool.slots] = i
    return ref


@SETTINGS
@given(_writes())
def test_slot_formula_and_later_writes_win(case) -> None:
    c, s, batches = case
    pool = ClusterPool(c, s)
    ref = _apply(pool, batches)
    expect = torch.full((c * s,), -1)
    for slot, item in ref.items():
        expect[slot] = item
    assert torch.equal(pool.item_ids, expect)
    filled = (expect >= 0).view(c, s).sum(1)
    assert torch.equal(pool.segment_filled, filled)
    assert pool.n_filled == len(ref)


@SETTINGS
@given(_writes(), st.integers(1, 6), st.integers(0, 2**31))
def test_in_cluster_draws_are_filled_slots_of_that_segment(case, n, seed) -> None:
    c, s, batches = case
    pool = ClusterPool(c, s)
    _apply(pool, batches)
    clusters = torch.arange(c).repeat(3)
    draw = pool.sample_in_cluster(clusters, n, _gen(seed))
    assert draw.item_ids.shape == (3 * c, n)
    seg_has = (pool.segment_filled > 0)[clusters]
    assert torch.equal(draw.valid, seg_has[:, None].expand(-1, n))
    ok = draw.valid
    assert torch.equal((draw.slots // s)[ok], clusters[:, None].expand(-1, n)[ok])
    assert bool((pool.item_ids[draw.slots][ok] >= 0).all())
    assert torch.equal(draw.item_ids[ok], pool.item_ids[draw.slots][ok])
    assert bool((draw.item_ids[~ok] == 0).all())


@SETTINGS
@given(_writes(), st.integers(0, 2**31))
def test_memory_is_constant_after_any_number_of_updates(case, seed) -> None:
    c, s, batches = case
    pool = ClusterPool(c, s, row_shape=(3,))
    before = pool.nbytes()
    for batch in batches * 3:
        items = torch.tensor([i for i, _ in batch])
        pool.update(items, torch.tensor([k for _, k in batch]), rows=torch.rand(len(batch), 3))
        pool.sample_in_cluster(torch.tensor([0]), 4, _gen(seed))
        pool.sample_uniform((2, 3), _gen(seed))
    assert pool.nbytes() == before
    assert pool.item_ids.numel() == c * s


@SETTINGS
@given(_writes(), st.integers(0, 2**31))
def test_state_round_trip_and_determinism(case, seed) -> None:
    c, s, batches = case
    pool = ClusterPool(c, s)
    _apply(pool, batches)
    clone = ClusterPool(c, s)
    clone.load_state_dict(copy.deepcopy(pool.state_dict()))
    a = pool.sample_in_cluster(torch.arange(c), 5, _gen(seed))
    b = clone.sample_in_cluster(torch.arange(c), 5, _gen(seed))
    assert torch.equal(a.slots, b.slots)
    assert torch.equal(pool.sample_uniform((7,), _gen(seed)).slots,
                       clone.sample_uniform((7,), _gen(seed)).slots)
    assert pool.counters() == clone.counters()


def test_draws_are_uniform_over_filled_slots_only() -> None:
    pool = ClusterPool(2, 8)
    pool.update(torch.tensor([1, 4, 6, 9]), torch.tensor([0, 0, 0, 1]))
    draw = pool.sample_in_cluster(torch.zeros(30000, dtype=torch.long), 1, _gen())
    freq = torch.bincount(draw.item_ids.view(-1), minlength=10).float() / 30000
    assert set(draw.item_ids.unique().tolist()) == {1, 4, 6}
    assert torch.allclose(freq[[1, 4, 6]], torch.full((3,), 1 / 3), atol=0.015)
    whole = pool.sample_uniform((40000,), _gen(1)).item_ids
    freq = torch.bincount(whole, minlength=10).float() / 40000
    assert set(whole.unique().tolist()) == {1, 4, 6, 9}
    assert torch.allclose(freq[[1, 4, 6, 9]], torch.full((4,), 0.25), atol=0.015)


def test_empty_segment_and_empty_pool_give_invalid_draws() -> None:
    pool = ClusterPool(3, 4)
    assert not bool(pool.sample_uniform((5,), _gen()).valid.any())
    pool.update(torch.tensor([2]), torch.tensor([1]))
    draw = pool.sample_in_cluster(torch.tensor([0, 1, 2]), 2, _gen())
    assert draw.valid.tolist() == [[False, False], [True, True], [False, False]]
    assert draw.item_ids[1].tolist() == [2, 2]


def test_counters_fill_overwrites_refreshes_staleness() -> None:
    pool = ClusterPool(2, 4)
    pool.update(torch.tensor([0, 1]), torch.tensor([0, 0]), step=1)  # 2 new fills
    pool.update(torch.tensor([4, 1]), torch.tensor([0, 0]), step=3)  # 4 evicts 0; 1 refresh
    pool.update(torch.tensor([7]), torch.tensor([1]), step=5)  # new fill
    got = pool.counters()
    assert got["fill"] == 3 / 8 and got["filled"] == 3
    assert (got["writes"], got["new_fills"], got["overwrites"], got["refreshes"]) == (5, 3, 1, 1)
    # slots written at 3, 3, 5; clock 5 -> staleness 2, 2, 0
    assert got["staleness_mean"] == pytest.approx(4 / 3)
    assert got["staleness_max"] == 2


def test_rows_of_any_dtype_follow_their_items() -> None:
    pool = ClusterPool(2, 4, row_shape=(3,), row_dtype=torch.int64)
    items, clusters = torch.tensor([5, 6, 13]), torch.tensor([0, 1, 1])
    pool.update(items, clusters, rows=torch.stack([items * 10 + k for k in range(3)], 1))
    draw = pool.sample_in_cluster(torch.tensor([1, 0]), 6, _gen())
    assert draw.rows is not None and draw.rows.dtype == torch.int64
    assert torch.equal(draw.rows[..., 0], draw.item_ids * 10)
    assert torch.equal(draw.rows[..., 2], draw.item_ids * 10 + 2)


def test_preload_fills_from_the_item_table_and_contains() -> None:
    pool = ClusterPool(3, 4)
    items = torch.arange(12)
    pool.preload(items, items % 3, generator=_gen())
    assert pool.clock == 0
    assert pool.n_filled == 12  # items of cluster c are c, c+3, c+6, c+9: distinct mod 4
    assert bool(pool.contains(items, items % 3).all())
    assert not bool(pool.contains(torch.tensor([1]), torch.tensor([0])).any())


def test_bad_input_raises_config_error() -> None:
    pool = ClusterPool(2, 4)
    with pytest.raises(ConfigError, match="cluster ids"):
        pool.update(torch.tensor([1]), torch.tensor([2]))
    with pytest.raises(ConfigError, match="rows"):
        pool.update(torch.tensor([1]), torch.tensor([0]), rows=torch.zeros(1, 3))
    with pytest.raises(ConfigError, match="2 x 4"):
        ClusterPool(3, 4).load_state_dict(pool.state_dict())
    with pytest.raises(ConfigError):
        ClusterPool(0, 4)


@given(st.integers(1, 4), st.integers(1, 8), st.integers(1, 60), st.integers(0, 10_000))
@SETTINGS
def test_complete_preload_skips_the_fill_check_and_samples_the_same(c, s, n_items, seed) -> None:
    """After a whole-catalog preload (``complete=True``) no write can fill a new slot, so
    writes do not ask for the fill counter (no host read per step), and every draw equals
    that of the same pool preloaded without the promise."""
    g = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, c, (n_items,), generator=g)
    items = torch.arange(n_items)
    sealed, plain = ClusterPool(c, s), ClusterPool(c, s)
    sealed.preload(items, cluster, generator=_gen(seed), complete=True)
    plain.preload(items, cluster, generator=_gen(seed))
    assert sealed.complete and not plain.complete
    assert sealed.n_filled == plain.n_filled  # the preload's own fills are indexed once
    ga, gb = _gen(seed + 1), _gen(seed + 1)
    for step in range(4):
        batch = torch.randint(0, n_items, (5,), generator=g)
        for pool in (sealed, plain):
            pool.update(batch, cluster[batch])
        assert not sealed._check_fills and plain._check_fills
        assert sealed.n_filled == plain.n_filled
        a = sealed.sample_in_cluster(cluster[batch], 3, ga)
        b = plain.sample_in_cluster(cluster[batch], 3, gb)
        assert torch.equal(a.item_ids, b.item_ids) and torch.equal(a.valid, b.valid), step
    state = sealed.state_dict()
    again = ClusterPool(c, s)
    again.load_state_dict(state)
    assert again.complete


@given(st.integers(1, 4), st.integers(2, 8), st.integers(1, 60), st.integers(0, 10_000))
@SETTINGS
def test_a_complete_pool_keeps_its_rows_in_rank_order_and_draws_the_same(c, s, n_items,
                                                                          seed) -> None:
    """The compact layout (issue 12, cost): once a complete pool is indexed, its ids and rows
    sit in rank order (``n_filled`` rows, not C x S) and writes go to their slot's rank;
    every draw, row and saved state equals that of the same pool kept by slot."""
    g = torch.Generator().manual_seed(seed)
    cluster = torch.randint(0, c, (n_items,), generator=g)
    items = torch.arange(n_items)

    def rows_of(ids: torch.Tensor, step: int) -> torch.Tensor:
        return torch.stack([ids * 10.0 + step, -ids.double().float()], 1)

    sealed, plain = ClusterPool(c, s, row_shape=(2,)), ClusterPool(c, s, row_shape=(2,))
    sealed.preload(items, cluster, rows_of(items, 0), generator=_gen(seed), complete=True)
    plain.preload(items, cluster, rows_of(items, 0), generator=_gen(seed))
    n = sealed.n_filled  # the first index build makes it compact
    assert sealed.compact and not plain.compact
    assert sealed.nbytes() - plain.nbytes() == (n - c * s) * 2 * 4  # rows: n, not C x S
    ga, gb = _gen(seed + 1), _gen(seed + 1)
    for step in range(1, 5):
        batch = torch.randint(0, n_items, (5,), generator=g)
        for pool in (sealed, plain):
            pool.update(batch, cluster[batch], rows_of(batch, step), step=step)
        assert torch.equal(sealed.slot_rows(), plain.slot_rows())
        a = sealed.sample_in_cluster(cluster[batch], 3, ga)
        b = plain.sample_in_cluster(cluster[batch], 3, gb)
        u, v = sealed.sample_uniform((4, 2), ga), plain.sample_uniform((4, 2), gb)
        for x, y in ((a, b), (u, v)):
            assert torch.equal(x.slots, y.slots) and torch.equal(x.item_ids, y.item_ids)
            assert torch.equal(x.valid, y.valid) and torch.equal(x.rows, y.rows)
            held = x.rows[x.valid]  # a drawn row is its item's row of its last write
            assert torch.equal(held[:, 1], -x.item_ids[x.valid].float())
    state = sealed.state_dict()
    assert torch.equal(state["rows"], plain.state_dict()["rows"])  # saved by slot
    again = ClusterPool(c, s, row_shape=(2,))
    again.load_state_dict(state)
    assert again.n_filled == n and again.compact
    assert torch.equal(again.slot_rows(), sealed.slot_rows())
    x, y = again.sample_uniform((6,), _gen(3)), plain.sample_uniform((6,), _gen(3))
    assert torch.equal(x.rows, y.rows) and torch.equal(x.item_ids, y.item_ids)


def test_a_complete_pool_refuses_a_write_that_fills_an_empty_slot() -> None:
    """Its ranks are fixed: an item outside the preload (or moved to another cluster) would
    fill a slot that has none, so the write fails loudly instead of going unseen."""
    pool = ClusterPool(2, 8, row_shape=(1,))
    pool.preload(torch.tensor([0, 1, 2]), torch.tensor([0, 0, 1]), torch.zeros(3, 1),
                 complete=True)
    assert pool.n_filled == 3 and pool.compact
    pool.update(torch.tensor([2]), torch.tensor([1]), torch.ones(1, 1))  # its own slot: fine
    before = pool.state_dict()
    with pytest.raises(ConfigError, match="complete"):
        pool.update(torch.tensor([5]), torch.tensor([1]), torch.ones(1, 1))
    after = pool.state_dict()  # nothing was written
    for key in ("item_ids", "written", "rows", "segment_filled", "counts"):
        assert torch.equal(before[key], after[key]), key
