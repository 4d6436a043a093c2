"""The large-catalog study's samplers (issue 11): the exact softmax reference and the two
beyond-the-paper variants, checked against hand computations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tests.test_samplers import N_ITEMS, N_USERS, B, batches, make_ctx, make_model, run_step

from clusterneg.errors import ConfigError
from clusterneg.samplers import build_sampler
from clusterneg.samplers.cluster_follow import lloyd_steps
from clusterneg.samplers.protocol import Batch, SamplerContext


def test_full_softmax_loss_is_the_exact_cross_entropy_over_the_catalog() -> None:
    ctx, model = make_ctx(), make_model()
    sampler = build_sampler("full", ctx)
    batch = batches(1)[0]
    _, out = run_step(sampler, model, batch, ctx)
    with torch.no_grad():
        logits = model.user_vectors(batch.users) @ model.all_item_vectors().T / model.temperature
    expect = F.cross_entropy(logits, batch.items)
    assert out.loss.item() == pytest.approx(expect.item(), rel=1e-5)
    assert not sampler.in_batch


def _full_grads(sampler, batch: Batch, ctx: SamplerContext, general: bool):
    """Loss, stats, counters and parameter gradients of one full-softmax step through the
    trainer's own path; ``general`` swaps the catalog block for the masked general block."""
    from clusterneg.train.trainer import batch_loss

    model = make_model()
    if general:
        sampler.negatives = lambda b, m: [sampler.make_block("full", sampler.catalog, b, None)]
    blocks = sampler.negatives(batch, model)
    assert blocks[0].catalog is not general
    out, _ = batch_loss(model, sampler, batch, blocks, ctx, True, diagnostics=True)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads, sampler.stats()


@pytest.mark.parametrize("mask", [False, True])
def test_full_softmax_catalog_block_matches_the_general_masked_block(mask: bool) -> None:
    """The catalog fast path (one fused cross-entropy over [B, N]; with ``mask_user_items``
    the user's other training items zeroed out of each row's sum) gives the general path's
    loss, gradients, diagnostics and counters (positive column + masked catalog)."""
    ctx = make_ctx()
    batch = batches(1)[0]
    fast, g_fast, c_fast = _full_grads(build_sampler("full", ctx, mask_user_items=mask), batch,
                                       ctx, general=False)
    slow, g_slow, c_slow = _full_grads(build_sampler("full", ctx, mask_user_items=mask), batch,
                                       ctx, general=True)
    assert fast.loss.item() == pytest.approx(slow.loss.item(), rel=1e-6)
    assert sorted(g_fast) == sorted(g_slow) and g_fast
    for name in g_fast:
        assert torch.allclose(g_fast[name], g_slow[name], rtol=1e-4, atol=1e-7), name
    assert sorted(fast.stats) == sorted(slow.stats)
    for key, value in slow.stats.items():
        assert fast.stats[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert c_fast == c_slow
    assert c_fast["full/pos_hits"] == B
    masked = c_fast.get("full/user_hits", 0)
    assert c_fast["full/draws"] == B * (N_ITEMS - 1) - masked
    assert (masked > 0) == mask  # the fixture's users have other training items


def test_full_softmax_with_user_items_masked_never_scores_them() -> None:
    """Hand check of the masked catalog block: each row's user's training items are out of
    its sum but its own positive (the target) is in, and the loss is the cross-entropy over
    the remaining columns."""
    ctx, model = make_ctx(), make_model()
    sampler = build_sampler("full", ctx, mask_user_items=True)
    batch = batches(1)[0]
    (block,), out = run_step(sampler, model, batch, ctx)
    assert block.catalog and block.valid.shape == (len(batch), N_ITEMS)
    with torch.no_grad():
        logits = model.user_vectors(batch.users) @ model.all_item_vectors().T / model.temperature
    for b in range(len(batch)):
        seen = set(ctx.user_items.row(int(batch.users[b])).tolist()) - {int(batch.items[b])}
        assert not block.valid[b, sorted(seen)].any()  # the user's items are never negatives
        assert not block.valid[b, int(batch.items[b])]  # the target, not a negative
        assert int((~block.valid[b]).sum()) == len(seen) + 1
        logits[b, sorted(seen)] = -torch.inf
    expect = F.cross_entropy(logits, batch.items)
    assert out.loss.item() == pytest.approx(expect.item(), rel=1e-5)


def test_full_softmax_refuses_a_catalog_that_does_not_fit() -> None:
    ctx = SamplerContext(n_items=1_000_000, item_log_freq=torch.zeros(1), batch_size=1024)
    with pytest.raises(ConfigError, match=r"full softmax does not fit: batch 1024 x 1000000"):
        build_sampler("full", ctx, max_mb=100)


def test_cluster_dns_keeps_the_models_hardest_same_cluster_item() -> None:
    ctx, model = make_ctx(), make_model()
    # slots >= catalog: every item sits in the pool; 400 candidates cover each segment
    sampler = build_sampler("cluster-dns", ctx, n_cluster=1, n_random=1, n_candidates=400,
                            slots=64)
    batch = batches(1)[0]
    (block,), _ = run_step(sampler, model, batch, ctx)
    with torch.no_grad():
        scores = model.user_vectors(batch.users) @ model.all_item_vectors().T
    for b in range(len(batch)):
        pos = int(batch.items[b])
        same = (ctx.item_cluster == ctx.item_cluster[pos]).nonzero().squeeze(1).tolist()
        others = [i for i in same if i != pos]
        best = max(others, key=lambda i: float(scores[b, i]))
        assert int(block.item_ids[b, 0]) == best


def test_cluster_dns_never_keeps_the_positive_or_the_users_items() -> None:
    ctx, model = make_ctx(), make_model()
    sampler = build_sampler("cluster-dns", ctx, n_cluster=3, n_random=1, n_candidates=30,
                            slots=64, mask_user_items=True)
    for batch in batches(3):
        (block,), _ = run_step(sampler, model, batch, ctx)
        for b in range(len(batch)):
            u = int(batch.users[b])
            seen = set(ctx.user_items.row(u).tolist())
            kept = block.item_ids[b, :3][block.valid[b, :3]].tolist()
            assert int(batch.items[b]) not in kept and not seen & set(kept)


def test_lloyd_steps_by_hand() -> None:
    v = F.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8]]), dim=1)
    # start: {1, 2} and {0, 3}; centroids (0.447, 0.894) and (0.894, 0.447) after
    # normalising -> items 0 and 1 closer to cluster 1, items 2 and 3 closer to cluster 0
    out = lloyd_steps(v, torch.tensor([1, 0, 0, 1]), 2, 1)
    assert out.tolist() == [1, 1, 0, 0]
    assert lloyd_steps(v, torch.tensor([0, 0, 0, 0]), 3, 1).tolist() == [0, 0, 0, 0]  # empty


def test_cluster_follow_resegments_the_pool_in_place() -> None:
    ctx, model = make_ctx(), make_model()
    before = ctx.item_cluster.clone()
    sampler = build_sampler("cluster-follow", ctx, n_negatives=4, n_cluster=2, slots=64,
                            recluster_every=2, lloyd_iters=3)
    filled = sampler.pool.n_filled
    for batch in batches(2):
        run_step(sampler, model, batch, ctx)
    expect = lloyd_steps(F.normalize(model.all_item_vectors(), dim=1), before, 6, 3)
    assert torch.equal(sampler.item_cluster, expect)
    assert torch.equal(ctx.item_cluster, before)  # the shared context is not modified
    held = sampler.pool.item_ids[sampler.pool.item_ids >= 0]
    assert held.numel() == filled == N_ITEMS  # nothing lost: ids < slots never collide
    assert bool(sampler.pool.contains(held, sampler.item_cluster[held]).all())
    counts = torch.bincount(sampler.item_cluster[held], minlength=6)
    assert torch.equal(sampler.pool.segment_filled, counts)
    stats = sampler.stats()
    assert stats["recluster/count"] == 1.0 and 0.0 <= stats["recluster/moved_share"] <= 1.0
    # the next same-cluster draws follow the new clusters
    batch = Batch(torch.arange(N_USERS), torch.arange(N_USERS), step=2)
    (block,), _ = run_step(sampler, model, batch, ctx)
    near, ok = block.item_ids[:, :2], block.valid[:, :2]
    same = sampler.item_cluster[near] == sampler.item_cluster[batch.items][:, None]
    assert bool(same[ok].all())


def test_variants_refuse_bad_options() -> None:
    ctx = make_ctx()
    with pytest.raises(ConfigError, match="n_candidates >= n_cluster"):
        build_sampler("cluster-dns", ctx, n_cluster=4, n_random=4, n_candidates=2)
    with pytest.raises(ConfigError, match="recluster_every"):
        build_sampler("cluster-follow", ctx, recluster_every=0)


def test_catalog_cross_entropy_backward_runs_once() -> None:
    """It scales its saved exponentials in place: a second backward must fail loudly, not
    return a wrong gradient."""
    from clusterneg.loss import CatalogCrossEntropy

    u = torch.randn(4, 3, requires_grad=True)
    v = torch.randn(7, 3, requires_grad=True)
    ce = CatalogCrossEntropy.apply(u, v, torch.tensor([0, 6, 2, 2])).sum()
    ce.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward runs once"):
        ce.backward()
