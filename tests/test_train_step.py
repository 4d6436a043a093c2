"""The training step's fast paths give the same numbers as the plain ones.

One item-tower call over deduplicated candidates (``candidate_vectors``), the fused Adam, the
loss without diagnostics, the one-``where`` in-batch logQ of cluster-goobs, and shared random
negatives (mixed negative sampling) with their hand-computed log expected counts.
"""

from __future__ import annotations

import math

import pytest
import torch

from clusterneg.loss import in_batch_log_q, sampled_softmax_loss
from clusterneg.model import ModelConfig, TwoTower
from clusterneg.samplers import build_sampler
from clusterneg.samplers.base import SamplerBase
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext
from clusterneg.train.config import TrainConfig
from clusterneg.train.optimizer import make_optimizer
from clusterneg.train.trainer import candidate_vectors, train_step

N_ITEMS, N_USERS = 30, 5


def _model(content: bool = True, seed: int = 0) -> TwoTower:
    torch.manual_seed(seed)
    feats = torch.randn(N_ITEMS, 6) if content else None
    return TwoTower(ModelConfig(dim=4, history_len=0), N_USERS, N_ITEMS, content=feats)


def _block(ids: torch.Tensor, rows: torch.Tensor | None = None) -> NegativeBlock:
    ones = torch.ones(ids.shape, dtype=torch.bool)
    return NegativeBlock("b", ids, torch.zeros(ids.shape), ones, rows=rows)


@pytest.mark.parametrize("with_rows", [False, True])
def test_one_tower_call_equals_separate_calls_values_and_gradients(with_rows: bool) -> None:
    items = torch.tensor([3, 3, 7, 0])  # a repeated positive, also drawn as a negative below
    per_example = torch.tensor([[7, 1], [2, 2], [3, 9], [0, 29]])
    shared = torch.tensor([4, 7, 11])
    fifo = NegativeBlock("fifo", torch.tensor([5, 6]), torch.zeros(2), torch.ones(2).bool(),
                         embeddings=torch.randn(2, 4))
    grads = []
    ref_pos, ref_vecs = torch.empty(0), []  # set by the first (fast) pass
    for fast in (True, False):
        model = _model()
        rows = model.content[per_example] if with_rows else None
        blocks = [_block(per_example, rows), fifo, _block(shared)]
        if fast:
            pos, vecs = candidate_vectors(model, items, blocks)
        else:
            pos = model.item_vectors(items)
            vecs = [b.embeddings if b.embeddings is not None
                    else model.item_vectors(b.item_ids, b.rows) for b in blocks]
        assert pos.shape == (4, 4) and vecs[0].shape == (4, 2, 4) and vecs[2].shape == (3, 4)
        assert vecs[1] is fifo.embeddings
        loss = (pos.sum(-1) ** 2).sum() + (vecs[0] ** 3).sum() + (vecs[2] * 2).sum()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()
                      if p.grad is not None})
        if not fast:
            assert torch.allclose(pos, ref_pos) and torch.allclose(vecs[0], ref_vecs[0])
            assert torch.allclose(vecs[2], ref_vecs[2])
        ref_pos, ref_vecs = pos.detach(), [v.detach() for v in vecs]
    assert set(grads[0]) == set(grads[1]) == {"item_emb.weight", "content_proj.weight",
                                              "content_proj.bias"}
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-5)


def test_item_vectors_unknown_ids_use_the_given_content_rows() -> None:
    model = _model()
    rows = torch.randn(2, 6)
    ids = torch.tensor([N_ITEMS + 3, 2])
    out = model.item_vectors(ids, rows)
    # unknown id: content path only; known id: id embedding + content projection
    first = torch.nn.functional.normalize(model.content_proj(rows[:1]), dim=-1)
    second = torch.nn.functional.normalize(model.item_emb.weight[2] + model.content_proj(rows[1]),
                                           dim=-1)
    assert torch.allclose(out[0], first[0], atol=1e-6)
    assert torch.allclose(out[1], second, atol=1e-6)


def test_loss_without_diagnostics_is_the_same_loss() -> None:
    torch.manual_seed(1)
    user, pos = torch.randn(4, 3), torch.randn(4, 3)
    user, pos = [torch.nn.functional.normalize(x, dim=-1) for x in (user, pos)]
    block = NegativeBlock("r", torch.tensor([[1, 2], [0, 5], [3, 3], [9, 8]]),
                          torch.full((4, 2), -1.0), torch.ones(4, 2).bool())
    vecs = torch.nn.functional.normalize(torch.randn(4, 2, 3), dim=-1)
    ids = torch.tensor([1, 0, 3, 3])
    kw = {"in_batch_log_q": torch.tensor([0.1, 0.2, 0.3, 0.3]), "blocks": [block],
          "block_vectors": [vecs]}
    full = sampled_softmax_loss(user, pos, ids, 0.2, **kw)
    lean = sampled_softmax_loss(user, pos, ids, 0.2, diagnostics=False, **kw)
    assert torch.equal(full.loss, lean.loss)
    assert full.stats["in_batch/accidental_hits"] == 2 and lean.stats == {}


def _ctx(seed: int = 0) -> SamplerContext:
    g = torch.Generator().manual_seed(5)
    counts = torch.randint(1, 9, (N_ITEMS,), generator=g).float()
    return SamplerContext(n_items=N_ITEMS, item_log_freq=(counts / counts.sum()).log(),
                          item_cluster=torch.arange(N_ITEMS) % 3, n_clusters=3, seed=seed)


def test_cluster_goobs_in_batch_log_q_equals_the_generic_mixture() -> None:
    s = build_sampler("cluster-goobs", _ctx(), n_cluster=2, n_random=3, slots=4)
    batch = Batch(torch.zeros(9).long(), torch.tensor([0, 3, 6, 1, 4, 2, 2, 29, 5]))
    base = in_batch_log_q(s.ctx.item_log_freq, batch.items)
    fast = s.in_batch_log_q(batch, base)
    generic = SamplerBase.in_batch_log_q(s, batch, base)
    assert fast.shape == (9, 9) and torch.allclose(fast, generic, atol=1e-6)


def test_shared_random_negatives_carry_hand_computed_log_expected_counts() -> None:
    """Mixed negative sampling: one set of K random pool items for the whole batch; each
    example still sees each of them, so the expected count per example is K / n_filled,
    plus, under the mixture, B p_j (in-batch) and K_c / n_filled(c) for same-cluster items
    when the example's positive is in that cluster."""
    ctx = _ctx()
    s = build_sampler("cluster-goobs", ctx, n_cluster=2, n_random=5, shared=True, slots=16)
    items = torch.tensor([0, 1, 2, 4])
    blocks = s.negatives(Batch(torch.zeros(4).long(), items), None)
    assert [b.name for b in blocks] == ["cluster", "random"]
    rand = blocks[1]
    assert rand.item_ids.shape == (5,) and rand.log_q.shape == (4, 5)
    n_filled = s.pool.n_filled
    assert n_filled == N_ITEMS  # preloaded, 3 x 16 slots hold all 30 items
    freq = ctx.item_log_freq.exp()
    seg = s.pool.segment_filled
    for b in range(4):
        for k, j in enumerate(rand.item_ids.tolist()):
            same = j % 3 == int(items[b]) % 3
            expect = 4 * freq[j] + 5 / n_filled + (2 / int(seg[items[b] % 3]) if same else 0)
            assert math.isclose(float(rand.log_q[b, k]), math.log(expect), rel_tol=1e-5)
    block_only = build_sampler("goobs", ctx, n_negatives=5, shared=True, logq_mode="block")
    (blk,) = block_only.negatives(Batch(torch.zeros(4).long(), items), None)
    assert blk.log_q.shape == (5,)
    assert torch.allclose(blk.log_q, torch.full((5,), math.log(5 / N_ITEMS)))


def test_train_step_with_fused_adam_matches_plain_adam() -> None:
    ctx = _ctx()
    batch = Batch(torch.tensor([0, 1, 2, 3]), torch.tensor([3, 8, 8, 20]))
    params = []
    for fused in (True, False):
        model = _model()
        sampler = build_sampler("cluster-goobs", ctx, n_cluster=1, n_random=3, slots=16)
        cfg = TrainConfig(lr=0.01)
        opt = (make_optimizer(model, cfg) if fused
               else torch.optim.Adam(model.parameters(), lr=0.01))
        for step in range(3):
            batch.step = step
            train_step(model, sampler, batch, opt, ctx, True)
        params.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*params, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
