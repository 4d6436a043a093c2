"""A sampler's loss for one batch: the one place the sampler's blocks, its in-batch logQ and
mask, and the sampled softmax meet (used by the trainer, the tests and docs/dropin.md).

References:
    Ji et al., arXiv 2607.00448, 2026, section "Loss" (sampled softmax over in-batch and
    sampled negatives, each corrected by its log expected count).

Example:
    >>> from clusterneg.samplers import Batch, SamplerContext, build_sampler
    >>> ctx = SamplerContext(n_items=6, item_log_freq=torch.full((6,), -1.8))
    >>> sampler = build_sampler("mixed", ctx, n_negatives=3)
    >>> table = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1)
    >>> batch = Batch(torch.tensor([0, 1]), torch.tensor([2, 5]))
    >>> blocks = sampler.negatives(batch, model=None)
    >>> out = sampler_loss(sampler, batch, blocks, table[:2], table[batch.items],
    ...                    lambda b: table[b.item_ids], temperature=0.1,
    ...                    item_log_freq=ctx.item_log_freq)
    >>> out.loss.dim()
    0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from clusterneg.loss import LossOutput, in_batch_log_q, sampled_softmax_loss
from clusterneg.samplers.protocol import Batch, NegativeBlock, NegativeSampler

ItemTower = Callable[[NegativeBlock], torch.Tensor]


def sampler_loss(
    sampler: NegativeSampler, batch: Batch, blocks: list[NegativeBlock], user: torch.Tensor,
    pos: torch.Tensor, item_tower: ItemTower | Sequence[torch.Tensor], temperature: float,
    item_log_freq: torch.Tensor, *, logq_correction: bool = True, diagnostics: bool = True,
) -> LossOutput:
    """Sampled-softmax loss of ``batch`` with the sampler's negatives.

    Args:
        sampler: the sampler that drew ``blocks`` (its in-batch logQ and mask are used).
        batch: the batch (positives, users, example weights).
        blocks: ``sampler.negatives(batch, model)``.
        user: float32 [B, d] user vectors (L2-normalised).
        pos: float32 [B, d] positive item vectors.
        item_tower: block -> its item vectors [..., d]; skipped for blocks that carry
            ``embeddings`` (a cross-batch FIFO). Or the blocks' vectors already computed,
            one per block (the trainer embeds every candidate in one tower call).
        temperature: softmax temperature.
        item_log_freq: float32 [N] log item share of training interactions (in-batch logQ).
        logq_correction: subtract the log expected counts from the logits.
        diagnostics: compute the per-block diagnostics (off in the training loop).
    """
    if callable(item_tower):
        vecs = [b.embeddings if b.embeddings is not None else item_tower(b) for b in blocks]
    else:
        vecs = list(item_tower)
    ib_log_q = sampler.in_batch_log_q(batch, in_batch_log_q(item_log_freq, batch.items))
    return sampled_softmax_loss(
        user, pos, batch.items, temperature, in_batch=sampler.in_batch,
        in_batch_log_q=ib_log_q, blocks=blocks, block_vectors=vecs,
        logq_correction=logq_correction, weights=batch.weights,
        in_batch_valid=sampler.in_batch_valid(batch), diagnostics=diagnostics,
    )
