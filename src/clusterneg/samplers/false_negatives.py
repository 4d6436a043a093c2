"""False negatives: a vectorised test of "did this user interact with this item in training".

A sampled negative that the same user interacted with in training is probably relevant, not
negative; the paper names such false negatives as the cost of too-fine clusters. The pairs
are hashed to ``user * N + item`` and kept sorted, so membership of a whole ``[B, K]`` block
is one ``searchsorted``.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method", item 1 (clusters too fine hold items
    that are actually relevant: false negatives).
"""

from __future__ import annotations

import torch

from clusterneg.errors import ConfigError
from clusterneg.samplers.base import SamplerContext


class UserItemIndex:
    """Sorted hash keys of the training (user, item) pairs.

    Args:
        indptr: int64 [U + 1] CSR row pointers (user -> items).
        indices: int64 [nnz] item indices.
        n_items: N, the item id space.
        device: torch device of the keys.

    Example:
        >>> idx = UserItemIndex(torch.tensor([0, 2, 3]), torch.tensor([1, 4, 0]), n_items=5)
        >>> idx.contains(torch.tensor([0, 1]), torch.tensor([[4, 0], [4, 0]])).tolist()
        [[True, False], [False, True]]
    """

    def __init__(
        self, indptr: torch.Tensor, indices: torch.Tensor, n_items: int,
        device: str | torch.device = "cpu",
    ) -> None:
        indptr = torch.as_tensor(indptr, dtype=torch.long)
        users = torch.repeat_interleave(torch.arange(len(indptr) - 1), indptr.diff())
        keys = users * n_items + torch.as_tensor(indices, dtype=torch.long)
        self.keys = torch.sort(keys).values.to(device)
        self.n_items = n_items

    @classmethod
    def from_context(cls, ctx: SamplerContext) -> UserItemIndex:
        """Build from the context's user CSR; ConfigError when the context has none."""
        if ctx.user_items_indptr is None or ctx.user_items_indices is None:
            raise ConfigError("mask_user_items needs the users' training items (user CSR) in "
                              "the sampler context")
        return cls(ctx.user_items_indptr, ctx.user_items_indices, ctx.n_items, ctx.device)

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """bool [B, K]: whether user ``users[b]`` has item ``items[b, k]`` (``items`` may be
        [1, K] or [K], shared by every user)."""
        items = items.reshape(1, -1) if items.dim() == 1 else items
        if self.keys.numel() == 0:
            return torch.zeros(users.shape[0], items.shape[1], dtype=torch.bool,
                               device=items.device)
        query = users[:, None].to(items.device) * self.n_items + items
        pos = torch.searchsorted(self.keys, query).clamp(max=self.keys.numel() - 1)
        return (self.keys[pos] == query) & (items < self.n_items)
