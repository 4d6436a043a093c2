"""Sampled softmax over in-batch and extra negatives, with per-proposal logQ correction.

Each example's positive competes with (a) the other positives of the batch and (b) any blocks
of extra negatives a sampler proposes. Every candidate's logit is ``cos(u, v) / T - log q``
where ``log q`` is the log of the expected number of times that candidate is drawn for that
example under the proposal that produced it (logQ correction). Candidates equal to the
example's positive (accidental hits) and invalid slots are masked out.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Loss" (sampled softmax over the positive,
    in-batch negatives with logQ correction and accidental-hit masking, plus OOB and cluster
    negatives).
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019 (in-batch logQ correction).
    Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural Networks in
    Recommendations", WWW 2020 (in-batch + uniform blocks).

A sampler's loss for one batch
------------------------------

A sampler's loss for one batch: the one place the sampler's blocks, its in-batch logQ and
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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from clusterneg.model import row_dot
from clusterneg.samplers.protocol import Batch, NegativeBlock, NegativeSampler

NEG_INF = -1e9


@dataclass
class LossOutput:
    """The loss and what it saw: per block, mean cosine of valid negatives, masked counts and
    the share of softmax mass the block received (which negatives carry the gradient)."""

    loss: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


def in_batch_log_q(item_log_freq: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Log expected count of each batch positive among the batch's candidates: log(B * p_j).

    Args:
        item_log_freq: float32 [N] log of each item's share of training interactions.
        items: int64 [B] the batch's positives.

    Returns:
        float32 [B], one correction per in-batch column.
    """
    return item_log_freq[items] + math.log(items.shape[0])


def _block_logits(
    user: torch.Tensor, vecs: torch.Tensor, block: NegativeBlock, pos_ids: torch.Tensor,
    temperature: float, logq: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Logits [B, K] of one block, raw cosines, the validity mask and the accidental-hit
    mask (a candidate that is the example's own positive); a column is usable where valid
    and not a hit."""
    if block.shared:
        cos = user @ vecs.T
        ids = block.item_ids.unsqueeze(0).expand(user.shape[0], -1)
        # a shared block's mask / correction may still differ per example: [K] or [B, K]
        valid = block.valid if block.valid.dim() == 2 else block.valid.unsqueeze(0).expand_as(ids)
        log_q = block.log_q if block.log_q.dim() == 2 else block.log_q.unsqueeze(0).expand_as(cos)
    else:
        cos = row_dot(user, vecs)
        ids, valid, log_q = block.item_ids, block.valid, block.log_q
    hits = ids == pos_ids[:, None]
    logits = cos / temperature - (log_q if logq else 0.0)
    return logits, cos, valid, hits


def sampled_softmax_loss(
    user: torch.Tensor,
    pos: torch.Tensor,
    pos_ids: torch.Tensor,
    temperature: float,
    *,
    in_batch: bool = True,
    in_batch_log_q: torch.Tensor | None = None,
    blocks: Sequence[NegativeBlock] = (),
    block_vectors: Sequence[torch.Tensor] = (),
    logq_correction: bool = True,
    weights: torch.Tensor | None = None,
    in_batch_valid: torch.Tensor | None = None,
    diagnostics: bool = True,
) -> LossOutput:
    """Sampled softmax cross-entropy of each positive against in-batch and extra negatives.

    Args:
        user: float32 [B, d] L2-normalised user vectors.
        pos: float32 [B, d] L2-normalised vectors of the positives.
        pos_ids: int64 [B] positive item ids (for accidental-hit masking).
        temperature: logits are cosine / temperature.
        in_batch: use the other positives of the batch as negatives.
        in_batch_log_q: float32 [B] (per column) or [B, B] (per example and column) log
            expected counts of the in-batch candidates; None means no correction.
        blocks: extra negative blocks (see :class:`NegativeBlock`).
        block_vectors: item vectors for each block, [K, d] or [B, K, d].
        logq_correction: subtract log q from every candidate's logit.
        weights: float32 [B] example weights, or None.
        in_batch_valid: bool [B, B], False masks column j for example i (e.g. an item the
            user interacted with in training, a likely false negative); the diagonal is
            always kept. None masks accidental hits only.
        diagnostics: also fill ``stats`` (per-block mean cosines, masked counts, softmax
            mass shares); False computes the loss only (no host reads, less work per step).

    Returns:
        :class:`LossOutput` with the mean (weighted) cross-entropy and diagnostics.

    Example:
        >>> u = F.normalize(torch.randn(4, 8), dim=-1)
        >>> v = F.normalize(torch.randn(4, 8), dim=-1)
        >>> out = sampled_softmax_loss(u, v, torch.arange(4), 0.1)
        >>> out.loss.shape
        torch.Size([])
    """
    b = user.shape[0]
    if not in_batch and len(blocks) == 1 and blocks[0].catalog:
        return _catalog_softmax_loss(user, pos_ids, temperature, blocks[0], block_vectors[0],
                                     weights, diagnostics)
    stats: dict[str, float] = {}
    if in_batch:
        first = _in_batch_logits(user, pos, pos_ids, temperature,
                                 in_batch_log_q if logq_correction else None,
                                 stats if diagnostics else None, in_batch_valid)
        target = torch.arange(b, device=user.device)
    else:
        first = (user * pos).sum(-1, keepdim=True) / temperature
        target = torch.zeros(b, dtype=torch.long, device=user.device)
    columns, names = [first], ["in_batch" if in_batch else "pos"]
    for block, vecs in zip(blocks, block_vectors, strict=True):
        logits_b, cos_b, valid, hits = _block_logits(user, vecs, block, pos_ids, temperature,
                                                     logq_correction)
        columns.append(logits_b.masked_fill_(hits | ~valid, NEG_INF))  # a fresh tensor
        names.append(block.name)
        if not diagnostics:
            continue
        ok, hit = valid & ~hits, hits & valid
        stats[f"{block.name}/accidental_hits"] = float(hit.sum())
        stats[f"{block.name}/valid_share"] = float(ok.float().mean()) if ok.numel() else 0.0
        stats[f"{block.name}/neg_cos"] = _masked_mean(cos_b, ok)
    all_logits = torch.cat(columns, dim=1)
    ce = F.cross_entropy(all_logits, target, reduction="none")
    loss = ce.mean() if weights is None else (ce * weights).sum() / weights.sum().clamp(min=1e-12)
    if not diagnostics:
        return LossOutput(loss=loss, stats=stats)
    stats["pos_cos"] = float((user * pos).sum(-1).mean().detach())
    stats.update(_mass_shares(all_logits.detach(), [c.shape[1] for c in columns], names))
    return LossOutput(loss=loss, stats=stats)


class CatalogCrossEntropy(torch.autograd.Function):
    """``ce_i = logsumexp_j(u_i . v_j) - u_i . v_{t_i}`` over a whole catalog, fused.

    The [B, N] scores are made by one product and turned, in place, into their
    exponentials (one ``exp`` per score, kept for backward, which scales them into the
    softmax minus the one-hot target and multiplies back: two products). The
    general path (``F.cross_entropy`` over scores divided by the temperature) makes and
    reads several more [B, N] tensors: the division, the log-softmax, the zero-filled
    gradient of the target gather, their backward. For the exact softmax over 42k items
    that memory traffic, not the arithmetic, was most of the step (issue 11: the headroom
    reference affordable over three seeds). Pass ``u`` already divided by the temperature.
    ``masked`` (bool [B, N], optional; never an example's own target) drops columns from
    the sum: their exponentials are zeroed in place, so they neither count nor receive a
    gradient (the items the example's user interacted with in training: the masked
    exact softmax at the cost of the plain one, one [B, N] fill).
    Differentiable once; backward runs once (a second one, ``retain_graph``, raises).

    Example:
        >>> u = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        >>> v = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
        >>> t = torch.tensor([5, 0, 5])
        >>> ce = CatalogCrossEntropy.apply(u, v, t)
        >>> torch.allclose(ce, F.cross_entropy(u @ v.T, t, reduction="none"))
        True
        >>> du, dv = torch.autograd.grad(ce.sum(), (u, v))
        >>> ref = torch.autograd.grad(F.cross_entropy(u @ v.T, t, reduction="sum"), (u, v))
        >>> torch.allclose(du, ref[0]) and torch.allclose(dv, ref[1])
        True
        >>> masked = torch.zeros(3, 6, dtype=torch.bool)
        >>> masked[0, 2] = masked[2, 0] = True  # drop item 2 for example 0, item 0 for 2
        >>> ce = CatalogCrossEntropy.apply(u, v, t, masked)
        >>> ref = F.cross_entropy((u @ v.T).masked_fill(masked, -torch.inf), t, reduction="none")
        >>> torch.allclose(ce, ref)
        True
    """

    @staticmethod
    def forward(ctx: Any, u: torch.Tensor, v: torch.Tensor, target: torch.Tensor,
                masked: torch.Tensor | None = None) -> torch.Tensor:
        scores = u @ v.T
        pos = scores.gather(1, target[:, None]).squeeze(1)
        top = scores.amax(dim=1, keepdim=True)
        e = scores.sub_(top).exp_()  # in place: the scores are not needed again
        if masked is not None:  # a masked column adds nothing to the sum, gets no gradient
            e.masked_fill_(masked, 0.0)
        total = e.sum(dim=1)
        ctx.save_for_backward(u, v, target, e, total)
        return top.squeeze(1) + total.log() - pos

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if getattr(ctx, "spent", False):
            raise RuntimeError("CatalogCrossEntropy: backward runs once (it reuses its "
                               "saved [B, N] exponentials in place)")
        ctx.spent = True
        u, v, target, e, total = ctx.saved_tensors
        g = e.mul_((grad / total)[:, None])  # the softmax times the incoming gradient, in place
        g[torch.arange(g.shape[0], device=g.device), target] -= grad
        du = g @ v if ctx.needs_input_grad[0] else None
        dv = g.T @ u if ctx.needs_input_grad[1] else None
        return du, dv, None, None


def _catalog_softmax_loss(
    user: torch.Tensor, pos_ids: torch.Tensor, temperature: float, block: NegativeBlock,
    vecs: torch.Tensor, weights: torch.Tensor | None, diagnostics: bool,
) -> LossOutput:
    """The exact softmax over a catalog block (:attr:`NegativeBlock.catalog`): one
    cross-entropy over the [B, N] logits with the positive's own catalog column as the
    target. The same loss as the general path (positive column + the catalog with the
    positive masked), without its [B, N] hit and validity masks, its masked fill and its
    [B, N + 1] concatenation (issue 11: the headroom reference, 1.7-1.95x cheaper a step,
    docs/cost.md).

    Example:
        >>> from clusterneg.samplers.protocol import NegativeBlock
        >>> u = F.normalize(torch.randn(3, 4), dim=-1)
        >>> v = F.normalize(torch.randn(5, 4), dim=-1)
        >>> block = NegativeBlock("full", torch.arange(5), torch.zeros(5),
        ...                       torch.ones(5, dtype=torch.bool), catalog=True)
        >>> fast = sampled_softmax_loss(u, v[[1, 4, 1]], torch.tensor([1, 4, 1]), 0.1,
        ...                             in_batch=False, blocks=[block], block_vectors=[v])
        >>> general = sampled_softmax_loss(u, v[[1, 4, 1]], torch.tensor([1, 4, 1]), 0.1,
        ...     in_batch=False, blocks=[NegativeBlock("full", torch.arange(5),
        ...     torch.zeros(5), torch.ones(5, dtype=torch.bool))], block_vectors=[v])
        >>> torch.allclose(fast.loss, general.loss, rtol=1e-5)
        True
        >>> fast.stats["full/mass"] == 1 - fast.stats["pos/mass"]
        True
    """
    rows = torch.arange(user.shape[0], device=user.device)
    masked = None
    if block.valid.dim() == 2:  # [B, N]: the user's other items out, the target back in
        masked = ~block.valid
        masked[rows, pos_ids] = False
    ce = CatalogCrossEntropy.apply(user / temperature, vecs, pos_ids, masked)
    loss = ce.mean() if weights is None else (ce * weights).sum() / weights.sum().clamp(min=1e-12)
    if not diagnostics:
        return LossOutput(loss=loss)
    with torch.no_grad():
        cos = user @ vecs.T
        pos_cos = cos[rows, pos_ids]
        ok = torch.ones_like(cos, dtype=torch.bool) if masked is None else ~masked
        ok[rows, pos_ids] = False  # the positive's own column is not a negative
        pos_mass = float((-ce.detach()).exp().mean())
        stats = {f"{block.name}/accidental_hits": 0.0,  # the positive has its own column
                 f"{block.name}/valid_share": float(ok.float().mean()),
                 f"{block.name}/neg_cos": _masked_mean(cos, ok),
                 "pos_cos": float(pos_cos.mean()), "pos/mass": pos_mass,
                 f"{block.name}/mass": 1.0 - pos_mass}
    return LossOutput(loss=loss, stats=stats)


def _in_batch_logits(
    user: torch.Tensor, pos: torch.Tensor, pos_ids: torch.Tensor, temperature: float,
    log_q: torch.Tensor | None, stats: dict[str, float] | None,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, B] logits against the batch's positives (diagonal = own positive), corrected by
    ``log_q`` ([B] per column or [B, B]) and with accidental hits (same item id) masked, as
    well as the columns ``valid`` [B, B] marks False (never the diagonal); ``stats`` None
    skips the diagnostics."""
    cos = user @ pos.T
    logits = cos / temperature
    if log_q is not None:
        logits = logits - (log_q if log_q.dim() == 2 else log_q[None, :])
    eye = torch.eye(user.shape[0], dtype=torch.bool, device=user.device)
    hits = (pos_ids[:, None] == pos_ids[None, :]) & ~eye
    masked = hits if valid is None else hits | (~valid & ~eye)
    if stats is None:
        return logits.masked_fill_(masked, NEG_INF)  # a fresh tensor: no copy
    stats["in_batch/accidental_hits"] = float(hits.sum())
    if valid is not None:
        stats["in_batch/masked_other"] = float((masked & ~hits).sum())
    stats["in_batch/neg_cos"] = _masked_mean(cos, ~masked & ~eye)
    return logits.masked_fill(masked, NEG_INF)


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> float:
    n = mask.sum()
    return float((x.detach() * mask).sum() / n) if n > 0 else float("nan")


def _mass_shares(logits: torch.Tensor, widths: list[int], names: list[str]) -> dict[str, float]:
    """Mean softmax probability each block of columns receives (positive column excluded
    from the in-batch share is not separated: it is part of that block)."""
    probs = logits.softmax(dim=1)
    out, start = {}, 0
    for w, name in zip(widths, names, strict=True):
        out[f"{name}/mass"] = float(probs[:, start : start + w].sum(1).mean())
        start += w
    return out


# --- A sampler's loss for one batch ----------------------------------------------------------

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
