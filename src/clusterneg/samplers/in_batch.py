"""In-batch negatives: the other positives of the batch, logQ-corrected (the baseline).

Each example's positive competes with the B - 1 other positives of its mini-batch. Those are
drawn in proportion to item popularity, so each column's logit is corrected by
``log(B * p_j)`` (done by the loss from the trainer's base correction); accidental hits
(another example with the same positive) are masked by the loss. This sampler proposes no
extra block; with ``mask_user_items`` it also masks columns the row's user interacted with in
training (through :meth:`in_batch_valid`).

References:
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019, section 4 (streaming frequency estimation, logQ
    correction of in-batch softmax).
    Ji et al., arXiv 2607.00448, 2026, section "Reported results" (the in-batch baseline).

Example:
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=10, item_log_freq=torch.full((10,), -2.3))
    >>> s = build_sampler("in-batch", ctx)
    >>> s.negatives(Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), model=None)
    []
"""

from __future__ import annotations

import torch  # noqa: F401  (used by the doctest)

from clusterneg.samplers.base import SamplerBase
from clusterneg.samplers.protocol import SamplerContext


class InBatchSampler(SamplerBase):
    """In-batch negatives only, with logQ correction and accidental-hit masking.

    Args:
        ctx: the :class:`SamplerContext`.
        logq_mode: accepted for a uniform interface; with one proposal every mode is ``log(B p_j)``.
        mask_user_items: mask in-batch columns the row's user interacted with in training.
    """

    name = "in-batch"
    citation = ("Yi et al., Sampling-Bias-Corrected Neural Modeling for Large Corpus Item "
                "Recommendations, RecSys 2019")

    def __init__(
        self, ctx: SamplerContext, *, logq_mode: str = "mixture", mask_user_items: bool = False
    ) -> None:
        super().__init__(ctx, in_batch=True, logq_mode=logq_mode, mask_user_items=mask_user_items)
        del self.options["in_batch"]  # always on for this sampler, not an option
