"""Cross-batch negatives (CBNS): a FIFO of the item embeddings of recent batches.

Item embeddings drift slowly once training has warmed up, so the positives of the last few
batches, with the embeddings computed when they were seen, can serve as extra negatives for
free (no item-tower pass). The FIFO holds the last F positives; they were drawn by item
frequency, so an item's expected count among them is ``F * p_j`` (its logQ), and under
``"mixture"`` every candidate, in-batch columns included, gets ``log((B + F) p_j)``.
The stored embeddings are detached: only the user tower gets their gradient.

References:
    Wang et al., "Cross-Batch Negative Sampling for Training Two-Tower Recommenders",
    SIGIR 2021, section 3 (embedding stability, FIFO memory bank of recent item embeddings).

Example:
    >>> from clusterneg.samplers import build_sampler
    >>> from clusterneg.samplers.protocol import Batch, SamplerContext
    >>> ctx = SamplerContext(n_items=10, item_log_freq=torch.full((10,), -2.3))
    >>> s = build_sampler("cross-batch", ctx, n_negatives=4)
    >>> b = Batch(torch.tensor([0, 1]), torch.tensor([3, 4]))
    >>> s.negatives(b, model=None)  # empty FIFO before the first observed batch
    []
    >>> s.observe(b, None, torch.eye(2, 8))
    >>> s.negatives(b, model=None)[0].valid.tolist()  # FIFO [3, 4, -, -]; own positive masked
    [[False, True, False, False], [True, False, False, False]]
"""

from __future__ import annotations

from typing import Any

import torch

from clusterneg.samplers.base import SamplerBase, check_bool, check_int
from clusterneg.samplers.proposals import FifoProposal
from clusterneg.samplers.protocol import Batch, NegativeBlock, SamplerContext


class CrossBatchSampler(SamplerBase):
    """In-batch plus a FIFO of the last ``n_negatives`` positives' embeddings.

    Args:
        ctx: the :class:`SamplerContext`.
        n_negatives: F, FIFO size = extra negatives per example (None: one batch, B).
        in_batch: also use the current batch's other positives.
        logq_mode: ``"mixture"``, ``"block"`` or ``"none"``.
        mask_user_items: also mask items the example's user interacted with in training.
    """

    name = "cross-batch"
    citation = ("Wang et al., Cross-Batch Negative Sampling for Training Two-Tower "
                "Recommenders, SIGIR 2021")
    # FIFO of 2 or 8 batches at the default batch size 256
    tuning_grid = {"n_negatives": (512, 2048)}

    def __init__(
        self, ctx: SamplerContext, *, n_negatives: int | None = None, in_batch: bool = True,
        logq_mode: str = "mixture", mask_user_items: bool = False,
    ) -> None:
        super().__init__(ctx, in_batch=check_bool("in_batch", in_batch), logq_mode=logq_mode,
                         mask_user_items=mask_user_items)
        self.size = check_int("n_negatives", ctx.batch_size if n_negatives is None
                              else n_negatives)
        self.fifo_ids = torch.zeros(self.size, dtype=torch.long, device=self.device)
        self.fifo_vecs: torch.Tensor | None = None  # [F, d], allocated at the first push
        self.filled, self.ptr = 0, 0
        self.fifo = FifoProposal(self.item_freq, lambda: self.filled)
        self.proposals.append(self.fifo)
        self.options["n_negatives"] = self.size

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]:
        if self.filled == 0 or self.fifo_vecs is None:
            return []
        valid = torch.arange(self.size, device=self.device) < self.filled
        return [self.make_block("fifo", self.fifo_ids.clone(), batch, self.fifo, valid=valid,
                                embeddings=self.fifo_vecs.clone())]

    def observe(self, batch: Batch, model: Any, item_vectors: torch.Tensor) -> None:
        """Push the batch's positives and their (detached) vectors, oldest out first."""
        vecs = item_vectors.detach().to(self.device)
        ids = batch.items.to(self.device)
        n = min(ids.shape[0], self.size)
        ids, vecs = ids[-n:], vecs[-n:]
        if self.fifo_vecs is None:
            self.fifo_vecs = torch.zeros(self.size, vecs.shape[1], dtype=vecs.dtype,
                                         device=self.device)
        where = (self.ptr + torch.arange(n, device=self.device)) % self.size
        self.fifo_ids[where] = ids
        self.fifo_vecs[where] = vecs
        self.ptr = (self.ptr + n) % self.size
        self.filled = min(self.filled + n, self.size)

    def gauges(self) -> dict[str, float]:
        return {"fifo/fill": self.filled / self.size}

    def extra_state(self) -> dict[str, Any]:
        return {"ids": self.fifo_ids.clone(), "ptr": self.ptr, "filled": self.filled,
                "vecs": None if self.fifo_vecs is None else self.fifo_vecs.clone()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.fifo_ids = state["ids"].clone().to(self.device)
        self.ptr, self.filled = int(state["ptr"]), int(state["filled"])
        self.fifo_vecs = None if state["vecs"] is None else state["vecs"].clone().to(self.device)
