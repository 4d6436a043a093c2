"""The negative-sampler protocol: what every sampler hands the loss.

A sampler sees each training batch, proposes blocks of negatives for it, and observes the
batch after the optimiser step (to refresh a pool or a FIFO). Every block carries the log of
the expected number of times each of its items is drawn for that example, so the sampled
softmax can subtract it (logQ correction) consistently even when negatives come from several
proposal distributions at once (PAPER.md, "Loss"; "What nobody offers yet").

References:
    Ji et al., "Real-Time Hard Negative Sampling via LLM-based Clustering for Large-Scale
    Two-Tower Retrieval", arXiv 2607.00448, 2026 (section "Method", GOOBS).
    Bengio & Senecal, "Adaptive Importance Sampling to Accelerate Training of a Neural
    Probabilistic Language Model", 2008 (sampled softmax with log q correction).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from clusterneg.data.user_items import UserItems


@dataclass
class Batch:
    """One training batch.

    Args:
        users: int64 [B] user indices.
        items: int64 [B] positive item indices.
        weights: float32 [B] example weights.
        step: global step number (0-based).
    """

    users: torch.Tensor
    items: torch.Tensor
    weights: torch.Tensor | None = None
    step: int = 0

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass
class NegativeBlock:
    """A block of sampled negatives for a batch.

    Shapes are ``[B, K]`` (each example has its own K negatives) or ``[K]`` (one set shared by
    the whole batch). A shared block's ``log_q`` and ``valid`` may still be ``[B, K]`` when the
    correction or the mask differs per example (mixture logQ, the example's own positive or
    its user's training items masked); ``item_ids`` and ``embeddings`` stay ``[K]``.

    Args:
        name: the proposal it came from ("uniform", "cluster", "fifo", ...).
        item_ids: int64 item indices.
        log_q: float32, log of the expected number of times the item is drawn for that example
            under this block's proposal (or under the mixture of all proposals, when the
            sampler corrects for the mixture). The loss subtracts it when logQ correction is on.
        valid: bool, False for padding / empty pool slots / masked false negatives.
        embeddings: float32 [..., d] precomputed item vectors (e.g. a cross-batch FIFO);
            None means the trainer runs the item tower on ``item_ids``.
        rows: item-tower input rows for the ids (e.g. content features from a pool); None
            means the item tower looks the ids up itself.
        catalog: the block is the whole catalog in id order (column j is item j, shared,
            no correction): the loss scores each positive in its own catalog column, one
            fused cross-entropy over the [B, N] logits (the exact softmax, ``full``), with
            no copy. ``log_q`` is then [N] zeros, never read; ``valid`` is [N] trues
            (nothing masked but the positive, which is the target) or bool [B, N] whose
            False columns leave the example's sum (its user's training items), except the
            example's own positive, which stays in as the target.
    """

    name: str
    item_ids: torch.Tensor
    log_q: torch.Tensor
    valid: torch.Tensor
    embeddings: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    catalog: bool = False

    @property
    def shared(self) -> bool:
        return self.item_ids.dim() == 1


@runtime_checkable
class NegativeSampler(Protocol):
    """What the trainer and the loss need from a sampler.

    ``in_batch`` tells whether the other positives of the batch serve as negatives (with the
    in-batch logQ correction of :meth:`in_batch_log_q` and the mask of :meth:`in_batch_valid`);
    ``negatives`` returns any extra blocks; ``observe`` runs after the optimiser step with the
    batch's item vectors (detached). ``tuning_grid`` lists the option values ``compare``
    may try for this sampler (option -> values; the temperature is tuned for every sampler).
    """

    name: str
    citation: str
    in_batch: bool
    tuning_grid: dict[str, tuple[Any, ...]]

    def negatives(self, batch: Batch, model: Any) -> list[NegativeBlock]: ...

    def in_batch_log_q(self, batch: Batch, base: torch.Tensor) -> torch.Tensor: ...

    def in_batch_valid(self, batch: Batch) -> torch.Tensor | None: ...

    def stats(self) -> dict[str, float]: ...

    def observe(self, batch: Batch, model: Any, item_vectors: torch.Tensor) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def config_dict(self) -> dict[str, Any]: ...


@dataclass
class SamplerContext:
    """What a sampler may know about the training data, built once by the trainer.

    Args:
        n_items: N, items in the catalog.
        item_log_freq: float32 [N] log of each item's share of training interactions (items
            never seen get a small floor), used for the in-batch logQ.
        item_cluster: int64 [N] cluster id per item (LLM clusters), or None.
        n_clusters: C, number of clusters (0 when item_cluster is None).
        user_items: each user's training items (for optional masking of the user's own
            items as false negatives, :meth:`UserItems.contains`), or None.
        item_rows: float32 [N, r] item-tower input rows (content features) for pool preload,
            or None when the item tower consumes ids only.
        batch_size: training batch size B.
        seed: seed for the sampler's torch.Generator.
        device: torch device of the model.
    """

    n_items: int
    item_log_freq: torch.Tensor
    item_cluster: torch.Tensor | None = None
    n_clusters: int = 0
    user_items: UserItems | None = None
    item_rows: torch.Tensor | None = None
    batch_size: int = 256
    seed: int = 0
    device: str = "cpu"
