"""The exact full softmax: every item of the catalog is a negative of every example.

Not a sampler one would deploy: it is the reference that tells how much any sampler could
gain. A sampled softmax with a consistent logQ correction estimates this objective; the
better the sampler, the closer it gets. ``full / in-batch - 1`` on the test metric is the
*headroom* of a catalog: where it is about 0, in-batch + logQ is already as good as the exact
softmax and no negative sampler can help (issue 11, step 1); the share of the headroom a
sampler closes is ``(sampler / in-batch - 1) / headroom``.

Each step scores the B examples against all N items as one shared block (no logQ: every
item appears exactly once, so there is nothing to correct) and takes one cross-entropy over
the [B, N] logits with each example's positive as the target
(:attr:`~clusterneg.samplers.protocol.NegativeBlock.catalog`); with ``mask_user_items`` the
same fused loss with each example's user's other training items left out of its sum (a
[B, N] mask scattered from the user's item set: the masked exact softmax costs about what
the plain one does). The in-batch columns are off (they would count the batch's positives
twice). Memory is ``B x N`` logits plus an item-tower pass over the
catalog; the sampler refuses, with the sizes, when the estimate exceeds ``max_mb``, rather
than letting a large catalog run the machine out of memory.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Loss" (the sampled softmax approximates the
    softmax over the whole corpus) and section "Reported results" (HR@50 over the corpus).
    Bengio & Senecal, "Adaptive Importance Sampling to Accelerate Training of a Neural
    Probabilistic Language Model", 2008 (sampled softmax as an estimate of the full one).

Example:
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=6, item_log_freq=torch.full((6,), -1.8), batch_size=2)
    >>> block, = build_sampler("full", ctx).negatives(
    ...     Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), model=None)
    >>> block.item_ids.tolist(), block.catalog  # the loss takes each positive's own column
    ([0, 1, 2, 3, 4, 5], True)
    >>> float(block.log_q.abs().sum())
    0.0
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from clusterneg.errors import ConfigError
from clusterneg.samplers.base import SamplerBase, check_int
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext

# bytes per (example, item) pair: cosine, logit, softmax, their gradients, masks (measured
# order of magnitude of the loss's [B, N] intermediates, float32)
BYTES_PER_LOGIT = 28
BYTES_PER_ITEM = 4 * 1024  # item-tower activations kept for backward (content MLP, d<=256)


def full_softmax_mb(batch_size: int, n_items: int) -> float:
    """Estimated peak MB one full-softmax step needs for B examples and N items.

    Example:
        >>> round(full_softmax_mb(256, 42381))
        455
    """
    return (batch_size * n_items * BYTES_PER_LOGIT + n_items * BYTES_PER_ITEM) / 2**20


class FullSoftmaxSampler(SamplerBase):
    """The whole catalog as one shared block, uncorrected: the exact softmax (a reference).

    Args:
        ctx: the :class:`SamplerContext` (``n_items`` and ``batch_size`` size the step).
        max_mb: refuse (ConfigError) when :func:`full_softmax_mb` exceeds this.
        mask_user_items: also mask the items the example's user interacted with in training.
    """

    name: ClassVar[str] = "full"
    citation: ClassVar[str] = ("exact softmax over the whole catalog (reference for the "
                               "headroom of sampled softmax; Bengio & Senecal 2008)")
    tuning_grid: ClassVar[dict[str, list[Any]]] = {}  # only the temperature is tuned

    def __init__(
        self, ctx: SamplerContext, *, max_mb: int = 4096, mask_user_items: bool = False
    ) -> None:
        super().__init__(ctx, in_batch=False, logq_mode="none", mask_user_items=mask_user_items)
        for key in ("in_batch", "logq_mode"):
            del self.options[key]  # fixed by what the sampler is
        self.max_mb = check_int("max_mb", max_mb)
        need = full_softmax_mb(ctx.batch_size, ctx.n_items)
        if need > self.max_mb:
            raise ConfigError(
                f"full softmax does not fit: batch {ctx.batch_size} x {ctx.n_items} items "
                f"needs about {need:.0f} MB per step, more than max_mb={self.max_mb}; use a "
                f"smaller --batch-size or raise full:max_mb")
        self.catalog = torch.arange(ctx.n_items, device=self.device)
        self._zeros = torch.zeros(ctx.n_items, device=self.device)
        self._trues = torch.ones(ctx.n_items, dtype=torch.bool, device=self.device)
        self._counts: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.options.update(max_mb=self.max_mb)

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        """The catalog as one
        :attr:`~clusterneg.samplers.protocol.NegativeBlock.catalog` block: the loss's one
        fused cross-entropy over [B, N]. Without user-item masking no per-step mask (the
        counters ``full/pos_hits`` and ``full/draws`` are B and B (N - 1), as a general
        block would count them); with ``mask_user_items`` a bool [B, N] validity, False
        at the example's positive (the loss's target) and at the other items its user has
        in training (counted as ``full/user_hits``, the rest as ``full/draws``)."""
        if self.user_index is not None:
            return [self._masked_block(batch)]
        b = int(batch.items.shape[0])
        if b not in self._counts:  # device scalars made once per batch size: no host copy
            self._counts[b] = (torch.tensor(b, device=self.device),
                               torch.tensor(b * (self.catalog.numel() - 1), device=self.device))
        hits, draws = self._counts[b]
        self.count("full/pos_hits", hits)
        self.count("full/draws", draws)
        return [NegativeBlock("full", self.catalog, self._zeros, self._trues, catalog=True)]

    def _masked_block(self, batch: Batch) -> NegativeBlock:
        assert self.user_index is not None
        users = batch.users.cpu().numpy()
        rows, cols = self.user_index.take_rows(users).coords(self.device)
        items = batch.items.to(self.device)
        valid = torch.ones(items.shape[0], self.catalog.numel(), dtype=torch.bool,
                           device=self.device)
        valid[rows, cols] = False
        b = items.shape[0]
        valid[torch.arange(b, device=self.device), items] = False  # not a negative: the target
        masked = (cols != items[rows]).sum()  # sets are duplicate-free (a bool [B, N] sum
        # would cost a third of the step)
        self.count("full/pos_hits", torch.tensor(b, device=self.device))
        self.count("full/user_hits", masked)
        self.count("full/draws", b * (self.catalog.numel() - 1) - masked)
        return NegativeBlock("full", self.catalog, self._zeros, valid, catalog=True)
