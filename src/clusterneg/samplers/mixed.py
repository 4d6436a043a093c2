"""Mixed negative sampling (MNS): in-batch negatives plus uniform negatives from the corpus.

In-batch negatives are all popular-biased; MNS adds K items sampled uniformly from the whole
corpus, shared by every example of the batch, so rarely-seen items also get pushed down.
Each uniform negative is drawn ``K / N`` times in expectation (its logQ); under ``"mixture"``
every candidate, in-batch columns included, is corrected by ``log(B p_j + K / N)``.

References:
    Yang et al., "Mixed Negative Sampling for Learning Two-tower Neural Networks in
    Recommendations", WWW 2020 Companion, section 3 (batch softmax over in-batch plus a
    shared uniformly sampled index batch).

Example:
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=100, item_log_freq=torch.full((100,), -4.6))
    >>> block, = build_sampler("mixed", ctx, n_negatives=8).negatives(
    ...     Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), model=None)
    >>> block.item_ids.shape, block.valid.shape
    (torch.Size([8]), torch.Size([2, 8]))
"""

from __future__ import annotations

from typing import Any

import torch

from clusterneg.samplers.base import SamplerBase, check_int
from clusterneg.samplers.proposals import UniformCorpusProposal
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext


class MixedSampler(SamplerBase):
    """In-batch plus ``n_negatives`` uniform corpus items shared by the batch.

    Args:
        ctx: the :class:`SamplerContext`.
        n_negatives: K, uniform items per batch (every example sees all of them).
        logq_mode: ``"mixture"``, ``"block"`` or ``"none"``.
        mask_user_items: also mask items the example's user interacted with in training.
    """

    name = "mixed"
    citation = ("Yang et al., Mixed Negative Sampling for Learning Two-tower Neural Networks "
                "in Recommendations, WWW 2020")
    tuning_grid = {"n_negatives": (32, 128)}

    def __init__(
        self, ctx: SamplerContext, *, n_negatives: int = 16, logq_mode: str = "mixture",
        mask_user_items: bool = False,
    ) -> None:
        super().__init__(ctx, in_batch=True, logq_mode=logq_mode, mask_user_items=mask_user_items)
        del self.options["in_batch"]  # always on for this sampler, not an option
        self.k = check_int("n_negatives", n_negatives)
        self.uniform = UniformCorpusProposal(ctx.n_items, self.k)
        self.proposals.append(self.uniform)
        self.options["n_negatives"] = self.k

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        ids = torch.randint(0, self.ctx.n_items, (self.k,), generator=self.generator,
                            device=self.device)
        return [self.make_block("uniform", ids, batch, self.uniform)]
