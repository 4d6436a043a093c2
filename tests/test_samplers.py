"""Every sampler behind one contract, plus the logQ algebra worked out by hand.

The contract (shared by all seven samplers, as implicit's shared recommender test): blocks
are well formed, log_q is finite where valid, no example's positive (nor, when asked, its
user's training items) is among its own valid negatives, the sampler is deterministic under
a seed, its state round-trips, and its config is JSON.
"""

from __future__ import annotations

import copy
import io
import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterneg.data.user_items import UserItems
from clusterneg.errors import ConfigError
from clusterneg.loss import in_batch_log_q, sampled_softmax_loss, sampler_loss
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.samplers import SAMPLER_NAMES, build_sampler, sampler_options
from clusterneg.samplers.protocol import Batch, NegativeBlock, NegativeSampler, SamplerContext

N_ITEMS, N_USERS, N_CLUSTERS, B = 60, 12, 6, 8
OPTIONS = {  # small sizes so every block is non-trivial on a 60-item catalog
    "in-batch": {}, "mixed": {"n_negatives": 6}, "cross-batch": {"n_negatives": 12},
    "dns": {"n_negatives": 4, "n_candidates": 12}, "ance": {"n_negatives": 4, "depth": 15},
    "goobs": {"n_negatives": 6, "slots": 8},
    "cluster-goobs": {"n_negatives": 6, "n_cluster": 2, "slots": 8},
    "full": {},
    "cluster-dns": {"n_negatives": 6, "n_cluster": 2, "n_candidates": 5, "slots": 8},
    "cluster-follow": {"n_negatives": 6, "n_cluster": 2, "slots": 8, "recluster_every": 2},
}


def make_ctx(seed: int = 0, n_items: int = N_ITEMS) -> SamplerContext:
    g = torch.Generator().manual_seed(123)
    counts = torch.randint(1, 20, (n_items,), generator=g).float()
    user_items = [torch.randperm(n_items, generator=g)[:20].sort().values
                  for _ in range(N_USERS)]
    users = torch.repeat_interleave(torch.arange(N_USERS), len(user_items[0]))
    return SamplerContext(
        n_items=n_items, item_log_freq=(counts / counts.sum()).log(),
        item_cluster=torch.randint(0, N_CLUSTERS, (n_items,), generator=g),
        n_clusters=N_CLUSTERS,
        user_items=UserItems.from_pairs(users.numpy(), torch.cat(user_items).numpy(), N_USERS,
                                        n_items),
        batch_size=B, seed=seed)


def make_model() -> TwoTower:
    torch.manual_seed(0)
    return TwoTower(ModelConfig(dim=8, history_len=0), N_USERS, N_ITEMS)


def batches(n: int, seed: int = 7) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    return [Batch(torch.randint(0, N_USERS, (B,), generator=g),
                  torch.randint(0, N_ITEMS, (B,), generator=g), step=i) for i in range(n)]


def run_step(sampler, model: TwoTower, batch: Batch, ctx: SamplerContext):
    """What the trainer does: blocks, vectors, loss (no optimiser), observe."""
    blocks = sampler.negatives(batch, model)
    out = sampler_loss(sampler, batch, blocks, model.user_vectors(batch.users),
                       model.item_vectors(batch.items),
                       lambda b: model.item_vectors(b.item_ids, b.rows), model.temperature,
                       ctx.item_log_freq)
    sampler.observe(batch, model, model.item_vectors(batch.items).detach())
    return blocks, out


def check_block(block: NegativeBlock, batch: Batch, ctx: SamplerContext) -> None:
    if block.catalog:  # the whole catalog in id order; the loss takes the positive's column
        assert block.shared and torch.equal(block.item_ids, torch.arange(ctx.n_items))
        assert not bool(block.log_q.any())
        if block.valid.dim() == 1:  # unmasked: nothing out but the positive, implicitly
            assert bool(block.valid.all())
            return
    ids = block.item_ids if not block.shared else block.item_ids[None, :].expand(B, -1)
    assert ids.dtype == torch.long and ids.dim() == 2 and ids.shape[0] == B
    assert bool(((ids >= 0) & (ids < ctx.n_items)).all())
    valid = block.valid if block.valid.dim() == 2 else block.valid[None].expand_as(ids)
    log_q = block.log_q if block.log_q.dim() == 2 else block.log_q[None].expand_as(ids)
    assert valid.shape == ids.shape and log_q.shape == ids.shape
    assert bool(torch.isfinite(log_q[valid]).all())
    assert not bool((valid & (ids == batch.items[:, None])).any()), "positive among negatives"
    if block.embeddings is not None:
        assert block.embeddings.shape[:-1] == block.item_ids.shape


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_contract_blocks_loss_and_stats(name: str) -> None:
    ctx, model = make_ctx(), make_model()
    sampler = build_sampler(name, ctx, **OPTIONS[name])
    assert isinstance(sampler, NegativeSampler)
    assert sampler.citation and sampler.name == name
    for batch in batches(3):
        blocks, out = run_step(sampler, model, batch, ctx)
        for block in blocks:
            check_block(block, batch, ctx)
        assert math.isfinite(out.loss.item())
    if name != "in-batch":
        assert blocks, f"{name} proposed no negatives after warm-up"
    stats = sampler.stats()
    assert all(isinstance(v, float) for v in stats.values())
    cfg = json.loads(json.dumps(sampler.config_dict()))
    assert cfg["name"] == name
    rebuilt = build_sampler(cfg["name"], ctx, **cfg["options"])  # the config rebuilds it
    assert rebuilt.config_dict() == sampler.config_dict()


@pytest.mark.parametrize("name", SAMPLER_NAMES)
def test_contract_determinism_and_state_round_trip(name: str) -> None:
    ctx, model, data = make_ctx(seed=3), make_model(), batches(4)
    a = build_sampler(name, ctx, **OPTIONS[name])
    b = build_sampler(name, ctx, **OPTIONS[name])
    for batch in data[:2]:
        ba, _ = run_step(a, model, batch, ctx)
        bb, _ = run_step(b, model, batch, ctx)
        assert _same(ba, bb)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # plain tensors / numbers: loads with weights_only
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    next_a, _ = run_step(a, model, data[2], ctx)
    fresh = build_sampler(name, make_ctx(seed=99), **OPTIONS[name])  # other seed, then loaded
    fresh.load_state_dict(state)
    next_f, _ = run_step(fresh, model, data[2], ctx)
    assert _same(next_a, next_f)
    # counters round-trip; ANCE's index is rebuilt from the model after a load (by design)
    counters = ("draws", "pos_hits", "user_hits")
    assert ({k: v for k, v in a.stats().items() if k.endswith(counters)}
            == {k: v for k, v in fresh.stats().items() if k.endswith(counters)})


def _same(x: list[NegativeBlock], y: list[NegativeBlock]) -> bool:
    return len(x) == len(y) and all(
        torch.equal(p.item_ids, q.item_ids) and torch.equal(p.valid, q.valid)
        and torch.allclose(p.log_q, q.log_q) for p, q in zip(x, y, strict=True))


@pytest.mark.parametrize("name", [n for n in SAMPLER_NAMES if n != "in-batch"])
def test_contract_user_items_are_masked_and_counted(name: str) -> None:
    ctx, model = make_ctx(), make_model()
    sampler = build_sampler(name, ctx, mask_user_items=True, **OPTIONS[name])
    seen = {u: set(ctx.user_items.row(u).tolist()) for u in range(N_USERS)}
    for batch in batches(4):
        blocks, _ = run_step(sampler, model, batch, ctx)
        for block in blocks:
            ids = block.item_ids.expand(B, -1) if block.shared else block.item_ids
            for b in range(B):
                kept = set(ids[b][block.valid[b]].tolist())
                assert not kept & seen[int(batch.users[b])]
    stats = sampler.stats()
    # a third of the catalog is each user's: the masks must have fired, and been counted
    assert sum(v for k, v in stats.items() if k.endswith("user_hits")) > 0
    if sampler.in_batch:
        assert stats["in_batch/user_hits"] > 0


def test_in_batch_valid_masks_user_items_in_the_loss() -> None:
    ctx = make_ctx()
    sampler = build_sampler("in-batch", ctx, mask_user_items=True)
    batch = batches(1)[0]
    valid = sampler.in_batch_valid(batch)
    assert valid is not None and valid.shape == (B, B) and bool(valid.diagonal().all())
    u, it = batch.users, batch.items
    for i in range(B):
        row = set(ctx.user_items.row(int(u[i])).tolist())
        for j in range(B):
            expect = i == j or int(it[j]) == int(it[i]) or int(it[j]) not in row
            assert bool(valid[i, j]) == expect


# ---- registry -----------------------------------------------------------------------------

def test_registry_names_and_errors() -> None:
    assert set(SAMPLER_NAMES) == {"in-batch", "mixed", "cross-batch", "dns", "ance", "goobs",
                                  "cluster-goobs", "full", "cluster-dns", "cluster-follow"}
    ctx = make_ctx()
    with pytest.raises(ConfigError, match="cluster-goobs"):
        build_sampler("nope", ctx)
    with pytest.raises(ConfigError, match="n_cluster"):
        build_sampler("cluster-goobs", ctx, bogus=1)
    with pytest.raises(ConfigError, match="logq"):
        build_sampler("goobs", ctx, logq_mode="sometimes")
    with pytest.raises(ConfigError, match="n_negatives"):
        build_sampler("mixed", ctx, n_negatives="many")
    no_clusters = copy.copy(ctx)
    no_clusters.item_cluster, no_clusters.n_clusters = None, 0
    with pytest.raises(ConfigError, match="clusters"):
        build_sampler("cluster-goobs", no_clusters)
    assert build_sampler("goobs", no_clusters).pool.n_clusters == 1
    assert sampler_options("cluster-goobs")["logq_mode"] == "mixture"


@pytest.mark.parametrize(("opts", "split"), [
    ({}, (1, 15)), ({"n_negatives": 32, "ratio": "1:31"}, (1, 31)),
    ({"n_negatives": 16, "ratio": "1:1"}, (8, 8)), ({"n_cluster": 3, "n_random": 5}, (3, 5)),
    ({"n_negatives": 10, "n_cluster": 4}, (4, 6)),
])
def test_cluster_random_split(opts: dict, split: tuple[int, int]) -> None:
    s = build_sampler("cluster-goobs", make_ctx(), **opts)
    assert (s.n_cluster, s.n_random) == split


# ---- logQ: hand-computed ------------------------------------------------------------------

def _tiny_ctx() -> SamplerContext:
    """6 items, clusters {0,1,2} and {3,4,5}; item shares p = [.3 .1 .1 .2 .2 .1]."""
    p = torch.tensor([0.3, 0.1, 0.1, 0.2, 0.2, 0.1])
    return SamplerContext(n_items=6, item_log_freq=p.log(),
                          item_cluster=torch.tensor([0, 0, 0, 1, 1, 1]), n_clusters=2)


def test_mixture_logq_matches_hand_computation() -> None:
    p = torch.tensor([0.3, 0.1, 0.1, 0.2, 0.2, 0.1])
    cl = torch.tensor([0, 0, 0, 1, 1, 1])
    s = build_sampler("cluster-goobs", _tiny_ctx(), n_cluster=1, n_random=2, slots=4,
                      merge=False)
    assert s.pool.n_filled == 6 and s.pool.segment_filled.tolist() == [3, 3]
    batch = Batch(torch.tensor([0, 1]), torch.tensor([0, 3]))
    cluster, pool = s.negatives(batch, None)
    assert (cluster.name, pool.name) == ("cluster", "random")

    def expect(i: int, j: int) -> float:  # B p_j + K_u / n_filled + K_c [same cluster] / 3
        return math.log(2 * p[j] + 2 / 6 + 1 * (cl[j] == cl[batch.items[i]]) / 3)

    for block in (cluster, pool):
        for i in range(2):
            for k in range(block.item_ids.shape[1]):
                j = int(block.item_ids[i, k])
                assert block.log_q[i, k].item() == pytest.approx(expect(i, j), rel=1e-5)
    ib = s.in_batch_log_q(batch, in_batch_log_q(_tiny_ctx().item_log_freq, batch.items))
    assert ib.shape == (2, 2)
    for i in range(2):
        for k in range(2):
            assert ib[i, k].item() == pytest.approx(expect(i, int(batch.items[k])), rel=1e-5)
    # e.g. example 0 (item 0, cluster 0) against column 1 (item 3, cluster 1): 2*.2 + 1/3
    assert ib[0, 1].item() == pytest.approx(math.log(0.4 + 1 / 3), rel=1e-6)


def test_block_and_none_logq_modes() -> None:
    batch = Batch(torch.tensor([0, 1]), torch.tensor([0, 3]))
    s = build_sampler("cluster-goobs", _tiny_ctx(), n_cluster=1, n_random=2, slots=4,
                      logq_mode="block")
    (block,) = s.negatives(batch, None)  # merged: column 0 cluster, columns 1-2 random
    assert torch.allclose(block.log_q[:, :1], torch.full((2, 1), math.log(1 / 3)))
    assert torch.allclose(block.log_q[:, 1:], torch.full((2, 2), math.log(2 / 6)))
    base = in_batch_log_q(_tiny_ctx().item_log_freq, batch.items)
    assert s.in_batch_log_q(batch, base) is base
    s = build_sampler("cluster-goobs", _tiny_ctx(), n_cluster=1, n_random=2, slots=4,
                      logq_mode="none")
    assert all(bool((b.log_q == 0).all()) for b in s.negatives(batch, None))


def test_mixed_and_cross_batch_mixture_by_hand() -> None:
    p = torch.tensor([0.3, 0.1, 0.1, 0.2, 0.2, 0.1])
    batch = Batch(torch.tensor([0, 1]), torch.tensor([0, 3]))
    mixed = build_sampler("mixed", _tiny_ctx(), n_negatives=3)
    (block,) = mixed.negatives(batch, None)
    assert torch.allclose(block.log_q, (2 * p[block.item_ids] + 3 / 6).log())
    ib = mixed.in_batch_log_q(batch, in_batch_log_q(_tiny_ctx().item_log_freq, batch.items))
    assert torch.allclose(ib, (2 * p[batch.items] + 0.5).log())
    cbns = build_sampler("cross-batch", _tiny_ctx(), n_negatives=4)
    cbns.observe(Batch(torch.tensor([0, 1]), torch.tensor([1, 5])), None, torch.eye(2, 3))
    (block,) = cbns.negatives(batch, None)
    filled = block.item_ids[:2]  # 2 of 4 FIFO entries filled: expected count (B + F) p_j
    assert torch.allclose(block.log_q[:2], ((2 + 2) * p[filled]).log())


def test_positive_drawn_from_its_cluster_is_masked_and_counted() -> None:
    # cluster 1 holds only item 3: every cluster draw for a positive 3 is an accidental hit
    ctx = SamplerContext(n_items=4, item_log_freq=torch.full((4,), math.log(0.25)),
                         item_cluster=torch.tensor([0, 0, 0, 1]), n_clusters=2)
    s = build_sampler("cluster-goobs", ctx, n_cluster=2, n_random=0, slots=4)
    (block,) = s.negatives(Batch(torch.tensor([0, 1, 2]), torch.tensor([3, 3, 0])), None)
    assert block.valid.tolist() == [[False, False], [False, False],
                                    block.valid[2].tolist()]
    assert s.stats()["cluster/pos_hits"] == 4 + int((block.item_ids[2] == 0).sum())


# ---- property tests -----------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, N_ITEMS - 1), min_size=2, max_size=16), st.integers(0, 2**31),
       st.sampled_from(["mixture", "block"]), st.booleans())
def test_property_cluster_draws_stay_in_cluster_and_never_hit_the_positive(
    items: list[int], seed: int, logq: str, shared: bool,
) -> None:
    ctx = make_ctx(seed=seed)
    s = build_sampler("cluster-goobs", ctx, n_cluster=3, n_random=4, slots=4, logq_mode=logq,
                      shared=shared, preload=seed % 2 == 0)
    pos = torch.tensor(items)
    for step in range(3):
        batch = Batch(torch.zeros_like(pos), pos, step=step)
        blocks = s.negatives(batch, None)
        for block in blocks:
            ids = block.item_ids.expand(len(items), -1) if block.shared else block.item_ids
            assert not bool((block.valid & (ids == pos[:, None])).any())
            log_q = block.log_q if block.log_q.dim() == 2 else block.log_q.expand_as(ids)
            assert bool(torch.isfinite(log_q[block.valid]).all())
            if block.name in ("cluster", "cluster+random"):
                near, ok = ids[:, :3], block.valid[:, :3]  # the n_cluster=3 first columns
                same = ctx.item_cluster[near] == ctx.item_cluster[pos][:, None]
                assert bool(same[ok].all())
        s.observe(batch, None, torch.zeros(len(items), 4))
    assert s.pool.nbytes() == build_sampler("cluster-goobs", ctx, slots=4).pool.nbytes()


def test_shared_block_with_per_example_mask_in_loss() -> None:
    """A shared block may carry [B, K] valid / log_q (the small loss.py extension)."""
    torch.manual_seed(0)
    user = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    pos = torch.nn.functional.normalize(torch.randn(3, 4), dim=-1)
    neg = torch.nn.functional.normalize(torch.randn(5, 4), dim=-1)
    ids, lq = torch.arange(10, 15), torch.randn(3, 5)
    valid = torch.rand(3, 5) > 0.3
    shared = NegativeBlock("u", ids, lq, valid)
    per = NegativeBlock("u", ids.expand(3, 5), lq, valid)
    a = sampled_softmax_loss(user, pos, torch.arange(3), 0.1, blocks=[shared],
                             block_vectors=[neg])
    b = sampled_softmax_loss(user, pos, torch.arange(3), 0.1, blocks=[per],
                             block_vectors=[neg.expand(3, 5, 4)])
    assert a.loss.item() == pytest.approx(b.loss.item(), rel=1e-6)


def test_cluster_goobs_fast_in_batch_mixture_equals_generic_path() -> None:
    from clusterneg.samplers.base import SamplerBase

    ctx = make_ctx()
    s = build_sampler("cluster-goobs", ctx, n_negatives=8, n_cluster=3, slots=4, preload=False)
    for batch in batches(3, seed=11):
        s.observe(batch, None, torch.zeros(B, 4))  # a partly filled pool: some columns absent
    batch = Batch(torch.zeros(40, dtype=torch.long), torch.randint(0, N_ITEMS, (40,)))
    base = in_batch_log_q(ctx.item_log_freq, batch.items)
    fast = s.in_batch_log_q(batch, base)
    slow = SamplerBase.in_batch_log_q(s, batch, base)
    assert fast.shape == (40, 40) and torch.allclose(fast, slow, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["mixed", "dns", "ance", "goobs", "cluster-goobs", "cluster-dns"]),
       st.integers(0, 2**31), st.integers(1, 9), st.booleans())
def test_property_count_tables_give_the_generic_mixture_logq_bit_for_bit(
    name: str, seed: int, batch_size: int, shared: bool,
) -> None:
    """The per-item tables (issue 12, fewer operations per step) reproduce the per-step sum
    over proposals exactly, for draws from the pool and for any candidate with its pool
    membership; a pool that is not complete gets no table."""
    from clusterneg.samplers.proposals import log_expected_count

    s = build_sampler(name, make_ctx(seed=seed % 7), **OPTIONS[name])
    table = s.count_table(batch_size)
    assert table is not None
    g = torch.Generator().manual_seed(seed)
    pos = torch.randint(0, N_ITEMS, (batch_size,), generator=g)
    ids = torch.randint(0, N_ITEMS, (1 if shared else batch_size, 5), generator=g)
    own = s.proposals[-1]
    assert torch.equal(table.log_q(ids, pos),
                       log_expected_count("mixture", own, s.proposals, ids, pos, in_pool=True))
    pool = getattr(s, "pool", None)
    if pool is not None:
        member = pool.contains(ids, s.item_cluster[ids])
        assert torch.equal(table.log_q(ids, pos, member),
                           log_expected_count("mixture", own, s.proposals, ids, pos))
        pool.complete = False  # e.g. after cluster-follow re-segments: counts may change
        assert s.count_table(batch_size) is None


def test_count_tables_follow_in_place_frequency_writes() -> None:
    """A streamed run writes its frequency estimates into ``item_freq`` in place: the table
    is rebuilt (tensor version in its key), so logQ never comes from stale counts."""
    from clusterneg.samplers.proposals import log_expected_count

    s = build_sampler("cluster-goobs", make_ctx(), **OPTIONS["cluster-goobs"])
    ids, pos = torch.randint(0, N_ITEMS, (B, 5)), torch.randint(0, N_ITEMS, (B,))
    before = s.count_table(B).log_q(ids, pos)
    s.item_freq[ids[0]] = 0.5  # as streaming.install_estimates does
    after = s.count_table(B).log_q(ids, pos)
    assert not torch.equal(before, after)
    assert torch.equal(after, log_expected_count("mixture", s.cluster, s.proposals, ids, pos,
                                                 in_pool=True))


def test_cluster_goobs_in_batch_logq_from_tables_equals_the_sum() -> None:
    ctx = make_ctx()
    s = build_sampler("cluster-goobs", ctx, n_negatives=8, n_cluster=3, slots=4)
    batch = Batch(torch.zeros(40, dtype=torch.long), torch.randint(0, N_ITEMS, (40,)))
    base = in_batch_log_q(ctx.item_log_freq, batch.items)
    assert not bool(s.pool.contains(batch.items, s.item_cluster[batch.items]).all())
    fast = s.in_batch_log_q(batch, base)
    s.use_count_tables = False
    assert torch.equal(fast, s.in_batch_log_q(batch, base))


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(SAMPLER_NAMES), st.integers(0, 2**31), st.booleans())
def test_property_no_sampler_returns_a_positive_as_its_own_negative(
    name: str, seed: int, mask: bool,
) -> None:
    ctx, model = make_ctx(seed=seed), make_model()
    sampler = build_sampler(name, ctx, mask_user_items=mask, **OPTIONS[name])
    for batch in batches(3, seed=seed):
        blocks, _ = run_step(sampler, model, batch, ctx)
        for block in blocks:
            check_block(block, batch, ctx)


@pytest.mark.parametrize("logq", ["mixture", "block", "none"])
def test_cluster_goobs_merged_block_equals_two_blocks(logq: str) -> None:
    ctx, model = make_ctx(), make_model()
    one = build_sampler("cluster-goobs", ctx, n_cluster=2, n_random=5, slots=8, logq_mode=logq,
                        mask_user_items=True)
    two = build_sampler("cluster-goobs", ctx, n_cluster=2, n_random=5, slots=8, logq_mode=logq,
                        mask_user_items=True, merge=False)
    for batch in batches(3):
        (merged,), out1 = run_step(one, model, batch, ctx)
        (near, far), out2 = run_step(two, model, batch, ctx)
        assert torch.equal(merged.item_ids, torch.cat([near.item_ids, far.item_ids], 1))
        assert torch.equal(merged.valid, torch.cat([near.valid, far.valid], 1))
        assert torch.allclose(merged.log_q, torch.cat([near.log_q, far.log_q], 1))
        assert out1.loss.item() == pytest.approx(out2.loss.item(), rel=1e-5)
    assert one.stats() == two.stats()  # per-part counters either way


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=30))
def test_property_same_key_pairs_equal_brute_force(keys: list[int]) -> None:
    from clusterneg.samplers.cluster_goobs import same_key_pairs

    rows, cols = same_key_pairs(torch.tensor(keys))
    got = sorted(zip(rows.tolist(), cols.tolist(), strict=True))
    n = len(keys)
    assert got == [(i, j) for i in range(n) for j in range(n) if keys[i] == keys[j]]


def test_cluster_goobs_warmup_runs_from_goobs_to_the_full_ratio() -> None:
    """warmup_steps (beyond the paper): at step 0 the same-cluster columns are uniform pool
    draws, corrected exactly as goobs corrects its draws; from warmup_steps on, the sampler
    is plain cluster-goobs (same blocks, same generator use)."""
    ctx = make_ctx()
    opts = {"n_cluster": 2, "n_random": 4, "slots": 8}
    g = torch.Generator().manual_seed(5)
    big = Batch(torch.randint(0, N_USERS, (400,), generator=g),
                torch.randint(0, N_ITEMS, (400,), generator=g), step=0)
    warm = build_sampler("cluster-goobs", ctx, warmup_steps=10, **opts)
    goobs = build_sampler("goobs", ctx, n_negatives=6, slots=8)
    assert torch.equal(warm.pool.item_ids, goobs.pool.item_ids)  # same seeded preload
    (block,) = warm.negatives(big, None)
    pos_cluster = ctx.item_cluster[big.items]
    same = ctx.item_cluster[block.item_ids[:, :2]] == pos_cluster[:, None]
    assert same.float().mean() < 0.4  # ~1/6 by chance, not all of them
    ref = goobs.make_block("random", block.item_ids, big, goobs.random, valid=block.valid,
                           in_pool=True)
    assert torch.allclose(block.log_q, ref.log_q, atol=1e-6)
    half = warm.cluster_share(5)
    assert half == 0.5 and warm.cluster_share(10) == 1.0

    late = Batch(big.users, big.items, step=10)
    fresh_warm = build_sampler("cluster-goobs", ctx, warmup_steps=10, **opts)
    plain = build_sampler("cluster-goobs", ctx, **opts)
    (a,), (b,) = fresh_warm.negatives(late, None), plain.negatives(late, None)
    assert torch.equal(a.item_ids, b.item_ids) and torch.allclose(a.log_q, b.log_q)
    assert (ctx.item_cluster[a.item_ids[:, :2]] == pos_cluster[:, None]).all()
    with pytest.raises(ConfigError, match="warmup_steps needs logq_mode='mixture'"):
        build_sampler("cluster-goobs", ctx, warmup_steps=10, logq_mode="block", **opts)


CACHED = ["goobs", "cluster-goobs", "cluster-dns", "cluster-follow"]


@pytest.mark.parametrize("name", CACHED)
def test_cached_vectors_score_pool_negatives_without_the_item_tower(name: str) -> None:
    """cached_vectors (issue 12): pool negatives arrive as the vectors the item tower gave
    their items (filled at the first step, rewritten when an item is a positive again,
    recomputed every refresh_every steps), detached; the contract holds, and the state
    round-trips with the vectors."""
    ctx, model, data = make_ctx(), make_model(), batches(5)
    opts = {**OPTIONS[name], "cached_vectors": True, "refresh_every": 3}
    sampler = build_sampler(name, ctx, **opts)
    assert not sampler.pool.stores_rows  # the vectors exist once the model does
    for batch in data[:2]:
        blocks, out = run_step(sampler, model, batch, ctx)
        assert math.isfinite(out.loss.item())
        for block in blocks:
            check_block(block, batch, ctx)
            assert block.rows is None and block.embeddings is not None
            assert not block.embeddings.requires_grad
            held = sampler.pool.contains(block.item_ids, ctx.item_cluster[block.item_ids])
            with torch.no_grad():  # nothing trained: every stored vector is the model's
                want = model.item_vectors(block.item_ids)
            ok = block.valid & held  # cluster-follow may have moved an item since the draw
            assert torch.allclose(block.embeddings[ok], want[ok], atol=1e-6)
    # step 2 is the third: refresh_every=3 recomputes every pooled vector after it
    run_step(sampler, model, data[2], ctx)
    assert sampler.stats()["pool/vector_refreshes"] == 2.0  # the first fill, then this
    filled = sampler.pool.item_ids >= 0
    with torch.no_grad():
        assert torch.allclose(sampler.pool.slot_rows()[filled],
                              model.item_vectors(sampler.pool.item_ids[filled]), atol=1e-6)
    # a positive's slot holds the vector observe() was given for it
    batch = data[3]
    sampler.negatives(batch, model)
    marked = torch.full((B, 8), 0.5)  # make_model: dim 8
    sampler.observe(batch, model, marked)
    slot = sampler.pool.slot_of(batch.items, sampler._clusters_of(batch.items))
    mine = sampler.pool.item_ids[slot] == batch.items
    assert mine.any() and torch.equal(sampler.pool.slot_rows(slot[mine]), marked[mine])
    # ... and the state carries them
    buf = io.BytesIO()
    torch.save(sampler.state_dict(), buf)
    buf.seek(0)
    fresh = build_sampler(name, ctx, **opts)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert torch.equal(fresh.pool.slot_rows(), sampler.pool.slot_rows())
    a, _ = run_step(sampler, model, data[4], ctx)
    f, _ = run_step(fresh, model, data[4], ctx)
    assert _same(a, f)
    assert all(torch.equal(x.embeddings, y.embeddings) for x, y in zip(a, f, strict=True))


def test_cached_vectors_refuse_store_rows_and_bad_refresh() -> None:
    ctx = make_ctx()
    with pytest.raises(ConfigError, match="store_rows and cached_vectors"):
        build_sampler("goobs", ctx, cached_vectors=True, store_rows=True, slots=8)
    with pytest.raises(ConfigError, match="refresh_every must be an integer >= 0"):
        build_sampler("cluster-goobs", ctx, cached_vectors=True, refresh_every=-1, slots=8)


@pytest.mark.parametrize("name", CACHED)
def test_negative_grad_false_keeps_the_draws_and_drops_the_item_gradient(name: str) -> None:
    """negative_grad=false (the issue-11 ablation): same draws and logQ as the default, the
    negatives' vectors are the current model's, and the loss's gradient reaches the item
    table only through the positives (in-batch columns), never through a pool negative."""
    ctx, data = make_ctx(), batches(2)
    plain = build_sampler(name, ctx, **OPTIONS[name])
    cut = build_sampler(name, ctx, negative_grad=False, **OPTIONS[name])
    for batch in data:
        model = make_model()
        a, out_a = run_step(plain, model, batch, ctx)
        b, out_b = run_step(cut, model, batch, ctx)
        assert _same(a, b) and torch.allclose(out_a.loss, out_b.loss)
        for block in b:
            assert block.embeddings is not None and not block.embeddings.requires_grad
            with torch.no_grad():
                assert torch.allclose(block.embeddings, model.item_vectors(block.item_ids))
        grads = []
        for out in (out_a, out_b):
            model.zero_grad(set_to_none=True)
            out.loss.backward()
            grads.append(model.item_emb.weight.grad.abs().sum(1))
        negative_only = torch.ones(N_ITEMS, dtype=torch.bool)
        negative_only[batch.items] = False
        drawn = torch.zeros(N_ITEMS, dtype=torch.bool)
        for block in a:
            drawn[block.item_ids[block.valid]] = True
        assert (grads[0][drawn & negative_only] > 0).any()
        assert (grads[1][negative_only] == 0).all()
