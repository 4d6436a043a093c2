"""The sampled softmax: hand-computed logits, logQ correction, accidental-hit masking."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from clusterneg.loss import in_batch_log_q, sampled_softmax_loss
from clusterneg.samplers.protocol import NegativeBlock


def _unit(*rows: list[float]) -> torch.Tensor:
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_in_batch_matches_hand_computed_cross_entropy() -> None:
    # two users, two positives on orthogonal axes: cos matrix = identity
    user = _unit([1, 0], [0, 1])
    pos = _unit([1, 0], [0, 1])
    out = sampled_softmax_loss(user, pos, torch.tensor([0, 1]), temperature=0.5)
    # row logits: [2, 0] -> CE = log(1 + e^-2) for both rows
    assert math.isclose(out.loss.item(), math.log(1 + math.exp(-2)), rel_tol=1e-6)


def test_logq_correction_subtracts_per_column() -> None:
    user = _unit([1, 0], [0, 1])
    pos = _unit([1, 0], [0, 1])
    log_q = torch.tensor([math.log(0.5), math.log(0.25)])
    out = sampled_softmax_loss(user, pos, torch.tensor([0, 1]), 0.5, in_batch_log_q=log_q)
    # row 0 logits [2 - log .5, 0 - log .25]; row 1 [0 - log .5, 2 - log .25]
    r0 = torch.tensor([2 - math.log(0.5), -math.log(0.25)])
    r1 = torch.tensor([-math.log(0.5), 2 - math.log(0.25)])
    expect = (-(r0.log_softmax(0)[0]) - r1.log_softmax(0)[1]) / 2
    assert math.isclose(out.loss.item(), expect.item(), rel_tol=1e-6)
    off = sampled_softmax_loss(user, pos, torch.tensor([0, 1]), 0.5, in_batch_log_q=log_q,
                               logq_correction=False)
    assert math.isclose(off.loss.item(), math.log(1 + math.exp(-2)), rel_tol=1e-6)


def test_accidental_hits_are_masked_in_batch() -> None:
    # both examples have the same positive item: the other column is the same item, masked
    user = _unit([1, 0], [1, 0])
    pos = _unit([1, 0], [1, 0])
    out = sampled_softmax_loss(user, pos, torch.tensor([7, 7]), 0.1)
    assert out.loss.item() < 1e-6
    assert out.stats["in_batch/accidental_hits"] == 2


def test_extra_block_shared_and_per_example_agree() -> None:
    torch.manual_seed(0)
    user = F.normalize(torch.randn(3, 4), dim=-1)
    pos = F.normalize(torch.randn(3, 4), dim=-1)
    neg = F.normalize(torch.randn(5, 4), dim=-1)
    ids = torch.arange(10, 15)
    lq = torch.full((5,), math.log(5 / 100))
    shared = NegativeBlock("u", ids, lq, torch.ones(5, dtype=torch.bool))
    per = NegativeBlock("u", ids.expand(3, 5), lq.expand(3, 5), torch.ones(3, 5, dtype=torch.bool))
    a = sampled_softmax_loss(user, pos, torch.arange(3), 0.1, blocks=[shared], block_vectors=[neg])
    b = sampled_softmax_loss(user, pos, torch.arange(3), 0.1, blocks=[per],
                             block_vectors=[neg.expand(3, 5, 4)])
    assert torch.allclose(a.loss, b.loss)


def test_block_negative_equal_to_positive_and_invalid_slots_do_not_count() -> None:
    user = _unit([1, 0])
    pos = _unit([1, 0])
    # the block holds the positive itself (id 3) and an invalid slot: neither may count
    block = NegativeBlock("c", torch.tensor([[3, 4]]), torch.zeros(1, 2),
                          torch.tensor([[True, False]]))
    vecs = _unit([1, 0], [1, 0]).unsqueeze(0)
    out = sampled_softmax_loss(user, pos, torch.tensor([3]), 0.1, in_batch=False,
                               blocks=[block], block_vectors=[vecs])
    assert out.loss.item() < 1e-6
    assert out.stats["c/accidental_hits"] == 1


def test_block_logq_changes_the_loss_exactly() -> None:
    user = _unit([1, 0])
    pos = _unit([1, 0])
    block = NegativeBlock("u", torch.tensor([5]), torch.tensor([math.log(2.0)]),
                          torch.tensor([True]))
    vecs = _unit([0, 1])
    out = sampled_softmax_loss(user, pos, torch.tensor([1]), 1.0, in_batch=False,
                               blocks=[block], block_vectors=[vecs])
    # logits [1, 0 - log 2] -> CE = log(1 + e^{-1} / 2)
    assert math.isclose(out.loss.item(), math.log(1 + math.exp(-1) / 2), rel_tol=1e-6)


def test_in_batch_log_q_is_log_expected_count() -> None:
    log_freq = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    got = in_batch_log_q(log_freq, torch.tensor([0, 2, 2, 1]))
    assert torch.allclose(got, torch.log(torch.tensor([2.0, 1.0, 1.0, 1.0])))


def test_weights_weight_the_mean() -> None:
    user = _unit([1, 0], [0, 1])
    pos = _unit([1, 0], [1, 1])
    ids = torch.tensor([0, 1])
    w = torch.tensor([1.0, 0.0])
    weighted = sampled_softmax_loss(user, pos, ids, 0.5, weights=w)
    logits = torch.tensor([2.0, math.sqrt(0.5) * 2])
    assert math.isclose(weighted.loss.item(), -logits.log_softmax(0)[0].item(), rel_tol=1e-5)
    unweighted = sampled_softmax_loss(user, pos, ids, 0.5)
    assert not torch.allclose(unweighted.loss, weighted.loss)
