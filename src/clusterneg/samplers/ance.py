"""ANCE: negatives from an ANN index of the whole corpus, rebuilt every N steps.

Every ``refresh_every`` steps the item tower embeds the whole corpus into a faiss index
(exact inner product, or HNSW). Each example's user vector retrieves its ``depth`` nearest
items; its own positive (and optionally its user's training items) are dropped, and K of the
rest are taken uniformly at random (ANCE samples its negatives from the top retrieved, not
only the very top, which is full of false negatives). The index is stale between rebuilds
and a rebuild embeds the whole corpus: the global-index cost the paper's pool avoids.

logQ: as for DNS, a nearest-neighbour selection has no exact proposal; ``hard_logq="none"``
(default) leaves the block uncorrected, ``"uniform"`` treats it as K uniform draws.

References:
    Xiong et al., "Approximate Nearest Neighbor Negative Contrastive Learning for Dense Text
    Retrieval", ICLR 2021, section 4 (negatives from an asynchronously refreshed ANN index of
    the corpus).
    Johnson et al., "Billion-scale similarity search with GPUs", IEEE TBD 2019 (faiss).

Example:
    >>> from clusterneg.model import ModelConfig, TwoTower
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=50, item_log_freq=torch.full((50,), -3.9))
    >>> model = TwoTower(ModelConfig(dim=8, history_len=0), n_users=4, n_items=50)
    >>> block, = build_sampler("ance", ctx, n_negatives=3, depth=10).negatives(
    ...     Batch(torch.tensor([0, 1]), torch.tensor([3, 4])), model)
    >>> block.item_ids.shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from clusterneg.errors import ConfigError
from clusterneg.samplers.base import BlockPart, SamplerBase, check_choice, check_int, user_vectors
from clusterneg.samplers.dns import HARD_LOGQ
from clusterneg.samplers.proposals import Proposal, UniformCorpusProposal
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext

INDEX_KINDS = ("flat", "hnsw")


class AnceSampler(SamplerBase):
    """In-batch plus K negatives sampled from each user's ``depth`` nearest items.

    Args:
        ctx: the :class:`SamplerContext`.
        n_negatives: K per example.
        depth: nearest items retrieved per example (K are sampled among them).
        refresh_every: rebuild the index every this many steps.
        index: ``"flat"`` (exact inner product) or ``"hnsw"``.
        in_batch: also use the batch's other positives.
        logq_mode: ``"mixture"``, ``"block"`` or ``"none"``.
        hard_logq: ``"none"`` (no correction of the ANN block) or ``"uniform"``.
        mask_user_items: also exclude items the example's user interacted with in training.
    """

    name = "ance"
    citation = ("Xiong et al., Approximate Nearest Neighbor Negative Contrastive Learning for "
                "Dense Text Retrieval, ICLR 2021")
    tuning_grid = {"n_negatives": (8, 32)}

    def __init__(
        self, ctx: SamplerContext, *, n_negatives: int = 16, depth: int = 100,
        refresh_every: int = 100, index: str = "flat", in_batch: bool = True,
        logq_mode: str = "mixture", hard_logq: str = "none", mask_user_items: bool = False,
    ) -> None:
        super().__init__(ctx, in_batch=in_batch, logq_mode=logq_mode,
                         mask_user_items=mask_user_items)
        self.k = check_int("n_negatives", n_negatives)
        self.depth = min(check_int("depth", depth), ctx.n_items)
        if self.depth < self.k:
            raise ConfigError(f"ance needs depth >= n_negatives, got {depth} < {self.k}")
        self.refresh_every = check_int("refresh_every", refresh_every)
        self.index_kind = check_choice("index", index, INDEX_KINDS)
        self.hard_logq = check_choice("hard_logq", hard_logq, HARD_LOGQ)
        self.own: Proposal | None = None
        if hard_logq == "uniform":
            self.own = UniformCorpusProposal(ctx.n_items, self.k)
            self.proposals.append(self.own)
        self.index: Any = None
        self.calls, self.built_at, self.rebuilds = 0, -1, 0
        self.options.update(n_negatives=self.k, depth=self.depth, refresh_every=refresh_every,
                            index=index, hard_logq=hard_logq)

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        if self.index is None or self.calls - self.built_at >= self.refresh_every:
            self._rebuild(model)
        self.calls += 1
        query = user_vectors(model, batch).float().cpu().numpy()
        _, found = self.index.search(np.ascontiguousarray(query), self.depth)
        cand = torch.from_numpy(found).to(self.device)
        missing = cand < 0
        cand = cand.clamp(min=0)
        found_part = [BlockPart("ance_candidates", None, cand.shape[1])]
        excluded = self.count_false_negatives(found_part, cand, batch, ~missing) | missing
        keys = torch.rand(cand.shape, generator=self.generator, device=self.device)
        pick = keys.masked_fill(excluded, 2.0).topk(self.k, dim=1, largest=False)
        ids = cand.gather(1, pick.indices)
        return [self.make_block("ance", ids, batch, self.own, valid=pick.values < 2.0)]

    def _rebuild(self, model: Any) -> None:
        """Embed the whole corpus with the current item tower and index it."""
        import faiss  # imported here: only this sampler needs it

        vecs = np.ascontiguousarray(model.all_item_vectors().float().cpu().numpy())
        if self.index_kind == "flat":
            index = faiss.IndexFlatIP(vecs.shape[1])
        else:
            index = faiss.IndexHNSWFlat(vecs.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = max(64, 2 * self.depth)
        index.add(vecs)
        self.index, self.built_at = index, self.calls
        self.rebuilds += 1

    def gauges(self) -> dict[str, float]:
        return {"ance/rebuilds": float(self.rebuilds),
                "ance/index_age": float(self.calls - self.built_at)}

    def extra_state(self) -> dict[str, Any]:
        # the index is derived from the model: rebuilt at the first call after a load
        return {"calls": self.calls, "rebuilds": self.rebuilds}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.calls, self.rebuilds = int(state["calls"]), int(state["rebuilds"])
        self.index, self.built_at = None, -1
