"""The two-tower retrieval model: a user tower and an item tower, unchanged by the sampler.

The towers map users and items into one L2-normalised space; the score is the cosine divided
by a temperature. The negative sampler never changes the towers (PAPER.md, "Loss": the towers
and the serving path are unchanged, the method is a drop-in), so the same model serves every
sampler and the serving index (``clusterneg.index``) needs nothing new.

References:
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019 (two towers, L2 normalisation, temperature, logQ).
    Covington et al., "Deep Neural Networks for YouTube Recommendations", RecSys 2016 (user
    tower from the mean of watched-item embeddings).

Row operations
--------------

Row-wise L2 normalisation and per-example dot products with hand-written backward passes.

Every candidate of a step goes through two row-wise operations: the item tower's L2
normalisation (Yi et al. 2019) and the dot product with its example's user vector. With 16-32
negatives per example they run over 17-33x the rows of an in-batch step, so their cost is the
per-example negatives' cost. Composed from autograd primitives, ``F.normalize``'s backward
takes about eight passes over the rows (a division by the broadcast norm, the norm's own
backward, a mask for the clamp), and a batched matrix-vector ``bmm`` is a slow kernel for
K x d matrices; here each is the same function with its gradient written out:

* :func:`unit_rows`: forward exactly ``F.normalize(x, dim=-1)`` (bit-identical),
  backward ``(g - y <y, g>) / n`` in three passes (``g / eps`` for rows clamped at eps);
* :func:`row_dot`: ``s[b, k] = <u[b], v[b, k]>``, backward ``g[b, k] u[b]`` (one broadcast
  product) and ``sum_k g[b, k] v[b, k]``.

The gradients are the same functions; float sums run in a different order, so values can
differ in the last bits (the golden run's losses agree to 1e-6, its metrics exactly).

References:
    Ji et al., arXiv 2607.00448, 2026, section "Reported results" (the method's cost is
    training throughput with per-example negatives) and section "Loss" (cosine logits).
    Yi et al., "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
    Recommendations", RecSys 2019 (L2-normalised towers).

Example:
    >>> x = torch.randn(5, 3, requires_grad=True)
    >>> y = unit_rows(x)
    >>> torch.equal(y, torch.nn.functional.normalize(x, dim=-1))
    True
    >>> u, v = torch.randn(2, 3), torch.randn(2, 4, 3)
    >>> torch.allclose(row_dot(u, v), torch.einsum("bd,bkd->bk", u, v), atol=1e-6)
    True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from clusterneg.errors import ConfigError


@dataclass
class ModelConfig:
    """Shape of the two towers.

    Args:
        dim: output dimension of both towers.
        temperature: logits are cosine / temperature.
        user_id: use a user-id embedding in the user tower.
        history_len: the user tower also averages the user's last ``history_len`` training
            items (0 turns it off). The training positive is masked out of its own history.
        item_id: use an item-id embedding in the item tower.
        content: add a projection of the item's content embedding (when features are given).
        content_hidden: hidden width of the content MLP (0: a single linear map).
    """

    dim: int = 64
    temperature: float = 0.2
    user_id: bool = True
    history_len: int = 50
    item_id: bool = True
    content: bool = True
    content_hidden: int = 0

    def validate(self) -> ModelConfig:
        if self.dim <= 0:
            raise ConfigError(f"model dim must be positive, got {self.dim}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if not (self.user_id or self.history_len > 0):
            raise ConfigError("the user tower needs user_id or history_len > 0")
        if not (self.item_id or self.content):
            raise ConfigError("the item tower needs item_id or content")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def build_history(
    users: np.ndarray, items: np.ndarray, order: np.ndarray, n_users: int, n_items: int,
    length: int,
) -> torch.Tensor:
    """Each user's last ``length`` items by order, padded with ``n_items``: int64 [U, length].

    Args:
        users, items, order: training interactions (parallel arrays [n]).
        n_users, n_items: sizes of the index spaces; ``n_items`` is the padding index.
        length: history length L.
    """
    hist = torch.full((n_users, max(length, 1)), n_items, dtype=torch.long)
    if length <= 0 or len(users) == 0:
        return hist
    key = np.nan_to_num(order, nan=0.0)
    idx = np.lexsort((np.arange(len(users)), key, users))  # by user, then order, stable
    u, it = users[idx], items[idx]
    ends = np.searchsorted(u, np.arange(n_users), side="right")
    # position counted back from each user's last interaction
    pos_from_end = ends[u] - 1 - np.arange(len(u))
    keep = pos_from_end < length
    col = length - 1 - pos_from_end[keep]
    hist[torch.from_numpy(u[keep]), torch.from_numpy(col)] = torch.from_numpy(it[keep])
    return hist


class TwoTower(nn.Module):
    """User tower and item tower over contiguous ids, with optional item content features.

    Args:
        config: :class:`ModelConfig`.
        n_users: number of users U.
        n_items: number of items N known at training time.
        content: float32 [N, d_c] item content embeddings (e.g. MiniLM), or None.
        history: int64 [U, L] each user's recent training items, padded with N, or None.

    Example:
        >>> m = TwoTower(ModelConfig(dim=8, history_len=0), n_users=3, n_items=5)
        >>> m.user_vectors(torch.tensor([0, 2])).shape
        torch.Size([2, 8])
    """

    def __init__(
        self,
        config: ModelConfig,
        n_users: int,
        n_items: int,
        content: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config.validate()
        self.n_users, self.n_items = n_users, n_items
        d = config.dim
        self.user_emb = nn.Embedding(n_users, d) if config.user_id else None
        use_hist = config.history_len > 0 and history is not None
        self.hist_emb = nn.Embedding(n_items + 1, d, padding_idx=n_items) if use_hist else None
        self.register_buffer("history", history if use_hist else torch.empty(0, 0).long())
        self.item_emb = nn.Embedding(n_items, d) if config.item_id else None
        use_content = config.content and content is not None
        self.register_buffer(
            "content", content.float() if use_content else torch.empty(0, 0)
        )
        self.content_proj = self._content_mlp(content.shape[1], d) if use_content else None
        if self.item_emb is None and self.content_proj is None:
            raise ConfigError("item tower has neither item ids nor content features")
        self._init_weights()

    def _content_mlp(self, d_in: int, d: int) -> nn.Module:
        h = self.config.content_hidden
        if h <= 0:
            return nn.Linear(d_in, d)
        return nn.Sequential(nn.Linear(d_in, h), nn.GELU(), nn.Linear(h, d))

    def _init_weights(self) -> None:
        for emb in (self.user_emb, self.item_emb, self.hist_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.1)
        if self.hist_emb is not None:
            with torch.no_grad():
                self.hist_emb.weight[self.n_items].zero_()

    @property
    def temperature(self) -> float:
        return self.config.temperature

    def user_vectors(
        self, users: torch.Tensor, exclude_items: torch.Tensor | None = None
    ) -> torch.Tensor:
        """L2-normalised user vectors [B, d].

        Args:
            users: int64 [B] user indices.
            exclude_items: int64 [B] items to drop from each user's history (the training
                positive, so the tower cannot copy its own label).
        """
        parts = []
        if self.user_emb is not None:
            parts.append(self.user_emb(users))
        if self.hist_emb is not None:
            hist = self.history[users]
            valid = hist != self.n_items
            if exclude_items is not None:
                valid = valid & (hist != exclude_items[:, None])
            parts.append(self._history_mean(hist, valid))
        return unit_rows(parts[0] if len(parts) == 1 else torch.stack(parts).sum(0))

    def _history_mean(self, hist: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Mean history-item embedding [B, d] of the ``valid`` entries of ``hist`` [B, L],
        as one fused gather-and-sum (no [B, L, d] intermediate in forward or backward).

        On the CPU only the valid entries are passed (a flat list with bag offsets): most
        users have far fewer than L items, and the padding would otherwise be gathered,
        weighted by zero and scattered back every step. The sums are the same, term for term.
        """
        counts = valid.sum(1)
        if hist.device.type == "cpu":  # boolean compaction is free of host syncs only here
            flat = hist[valid]
            offsets = counts.cumsum(0) - counts
            weights = (1.0 / counts.clamp(min=1).float()).repeat_interleave(counts)
            return F.embedding_bag(flat, self.hist_emb.weight, offsets, mode="sum",
                                   per_sample_weights=weights, sparse=self.hist_emb.sparse)
        weights = valid.float() / counts.clamp(min=1)[:, None]
        return F.embedding_bag(hist, self.hist_emb.weight, mode="sum",
                               per_sample_weights=weights, sparse=self.hist_emb.sparse)

    def item_vectors(
        self, items: torch.Tensor, content_rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """L2-normalised item vectors [..., d] for item indices of any shape.

        Items with index >= n_items (unknown at training time) use the content path only;
        their features come from ``content_rows`` [..., d_c]. Every lookup is one
        ``index_select`` over the flattened ids (several times faster than advanced
        indexing on the CPU), and the known-id mask is applied only when an id is unknown.
        """
        flat = items.reshape(-1)
        known = flat < self.n_items
        all_known = bool(known.all())
        safe = flat if all_known else torch.where(known, flat, torch.zeros_like(flat))
        parts = []
        if self.item_emb is not None:
            emb = self.item_emb(safe)
            parts.append(emb if all_known else emb * known[:, None])
        if self.content_proj is not None:
            rows = (self.content.index_select(0, safe) if content_rows is None
                    else content_rows.reshape(flat.shape[0], -1))
            parts.append(self.content_proj(rows))
        elif content_rows is not None or not all_known:
            raise ConfigError("unknown item ids need content features and a content model")
        out = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        return unit_rows(out).view(*items.shape, -1)

    def content_rows(self, items: torch.Tensor) -> torch.Tensor:
        """The item tower's content input rows [n, d_c] for item ids of any shape
        (flattened; unknown ids get row 0, as :meth:`item_vectors` does without rows)."""
        if self.content_proj is None:
            raise ConfigError("content rows need a model with content features")
        flat = items.reshape(-1)
        safe = torch.where(flat < self.n_items, flat, torch.zeros_like(flat))
        return self.content.index_select(0, safe)

    @torch.no_grad()
    def all_item_vectors(self, chunk: int = 65536) -> torch.Tensor:
        """Vectors of every known item [N, d], computed in chunks."""
        ids = torch.arange(self.n_items, device=self._device())
        return torch.cat([self.item_vectors(c) for c in ids.split(chunk)])

    def _device(self) -> torch.device:
        return next(self.parameters()).device


# --- Row operations --------------------------------------------------------------------------

EPS = 1e-12  # F.normalize's default


class _UnitRows(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        denom = norm.clamp_min(EPS)
        y = x / denom.expand_as(x)  # F.normalize's exact arithmetic
        ctx.save_for_backward(y, denom, norm > EPS)
        return y

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        y, denom, active = ctx.saved_tensors
        dot = torch.linalg.vecdot(y, grad, dim=-1).unsqueeze(-1) * active
        return torch.addcmul(grad, y, dot, value=-1.0).div_(denom)


class _RowDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, user: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(user, vecs)
        return torch.linalg.vecdot(vecs, user.unsqueeze(-2), dim=-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        user, vecs = ctx.saved_tensors
        g_user = g_vecs = None
        if ctx.needs_input_grad[0]:
            g_user = torch.bmm(grad.unsqueeze(-2), vecs).squeeze(-2)
        if ctx.needs_input_grad[1]:
            g_vecs = grad.unsqueeze(-1) * user.unsqueeze(-2)
        return g_user, g_vecs


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """``F.normalize(x, dim=-1)`` with a three-pass backward; x float [..., d]."""
    return _UnitRows.apply(x)


def row_dot(user: torch.Tensor, vecs: torch.Tensor) -> torch.Tensor:
    """Per-example dot products [B, K] of user vectors [B, d] with their own candidates'
    vectors [B, K, d]."""
    return _RowDot.apply(user, vecs)
