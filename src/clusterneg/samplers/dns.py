"""Dynamic negative sampling (DNS): the top-scored of M random candidates under the model.

For each example, M items are drawn uniformly from the corpus, scored by the current model
(no gradient), and the K highest-scoring ones (its own positive and, optionally, its user's
training items excluded) become its negatives. Hard, but it costs an extra item-tower pass
over B x M candidates every step: the cost the paper's cluster pool avoids.

logQ: a top-K selection is not a sampling distribution, so there is no exact expected count.
By default (``hard_logq="none"``) the block is not corrected, as in the original paper;
``hard_logq="uniform"`` treats the K kept items as K uniform draws (``log(K / N)``, and that
uniform proposal joins the mixture), which weighs the block like a uniform block of the same
size, the hardness coming only from the selection.

References:
    Zhang et al., "Optimizing Top-N Collaborative Filtering via Dynamic Negative Item
    Sampling", SIGIR 2013, section 3 (sample candidates, keep the highest-scored).

Example:
    >>> from clusterneg.model import ModelConfig, TwoTower
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=50, item_log_freq=torch.full((50,), -3.9))
    >>> model = TwoTower(ModelConfig(dim=8, history_len=0), n_users=4, n_items=50)
    >>> block, = build_sampler("dns", ctx, n_negatives=2, n_candidates=10).negatives(
    ...     Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), model)
    >>> block.item_ids.shape
    torch.Size([2, 2])
"""

from __future__ import annotations

from typing import Any

import torch

from clusterneg.errors import ConfigError
from clusterneg.samplers.base import BlockPart, SamplerBase, check_choice, check_int, user_vectors
from clusterneg.samplers.proposals import Proposal, UniformCorpusProposal
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext

HARD_LOGQ = ("none", "uniform")


class DnsSampler(SamplerBase):
    """In-batch plus, per example, the top ``n_negatives`` of ``n_candidates`` uniform items.

    Args:
        ctx: the :class:`SamplerContext`.
        n_negatives: K kept per example.
        n_candidates: M scored per example (None: 4 K).
        in_batch: also use the batch's other positives.
        logq_mode: ``"mixture"``, ``"block"`` or ``"none"``.
        hard_logq: ``"none"`` (no correction of the DNS block) or ``"uniform"``.
        mask_user_items: also exclude items the example's user interacted with in training.
    """

    name = "dns"
    citation = ("Zhang et al., Optimizing Top-N Collaborative Filtering via Dynamic Negative "
                "Item Sampling, SIGIR 2013")
    tuning_grid = {"n_candidates": (32, 128)}

    def __init__(
        self, ctx: SamplerContext, *, n_negatives: int = 16, n_candidates: int | None = None,
        in_batch: bool = True, logq_mode: str = "mixture", hard_logq: str = "none",
        mask_user_items: bool = False,
    ) -> None:
        super().__init__(ctx, in_batch=in_batch, logq_mode=logq_mode,
                         mask_user_items=mask_user_items)
        self.k = check_int("n_negatives", n_negatives)
        self.m = check_int("n_candidates", 4 * self.k if n_candidates is None else n_candidates)
        if self.m < self.k:
            raise ConfigError(f"dns needs n_candidates >= n_negatives, got {self.m} < {self.k}")
        self.hard_logq = check_choice("hard_logq", hard_logq, HARD_LOGQ)
        self.own: Proposal | None = None
        if hard_logq == "uniform":
            self.own = UniformCorpusProposal(ctx.n_items, self.k)
            self.proposals.append(self.own)
        self.options.update(n_negatives=self.k, n_candidates=self.m, hard_logq=hard_logq)

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        b = batch.items.shape[0]
        cand = torch.randint(0, self.ctx.n_items, (b, self.m), generator=self.generator,
                             device=self.device)
        with torch.no_grad():
            score = torch.einsum("bd,bmd->bm", user_vectors(model, batch),
                                 model.item_vectors(cand))
        scored = [BlockPart("dns_candidates", None, self.m)]
        excluded = self.count_false_negatives(scored, cand, batch,
                                              torch.ones_like(cand, dtype=torch.bool))
        top = score.masked_fill(excluded, float("-inf")).topk(self.k, dim=1)
        ids = cand.gather(1, top.indices)
        return [self.make_block("dns", ids, batch, self.own, valid=torch.isfinite(top.values))]
