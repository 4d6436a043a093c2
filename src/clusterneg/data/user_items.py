"""Per-user item sets: the one type every stage uses for "which items did user u touch".

A :class:`UserItems` holds, in compressed sparse row form, a sorted duplicate-free item set
per user (row ``u`` is ``indices[indptr[u]:indptr[u + 1]]``). It is built once per split part
in :class:`clusterneg.experiment.Prepared` and passed on:

- training: the samplers' false-negative masking asks :meth:`UserItems.contains` whether
  ``user b`` interacted with ``item k`` for a whole ``[B, K]`` block (a sorted hash index,
  one ``searchsorted``);
- evaluation: targets (valid / test) and the items masked from the ranking (train, + valid
  for test);
- cluster diagnostics: :meth:`UserItems.to_scipy` gives the binary user x item matrix.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method", item 1 (items the user interacted
    with are false negatives); section "Reported results" (full-corpus ranking with seen
    items masked).

Example:
    >>> ui = UserItems.from_pairs(np.array([1, 0, 1]), np.array([5, 2, 3]), n_rows=3)
    >>> ui.indptr.tolist(), ui.indices.tolist()
    ([0, 1, 3, 3], [2, 3, 5])
    >>> ui.contains(torch.tensor([1, 0]), torch.tensor([[5, 2], [5, 2]])).tolist()
    [[True, False], [False, True]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from clusterneg.data.dataset import Interactions


@dataclass(frozen=True, eq=False)
class UserItems:
    """A sorted, duplicate-free item set per row (user).

    Args:
        indptr: int64 [n_rows + 1], non-decreasing, ``indptr[0] == 0``.
        indices: int64 [nnz] item indices; row ``u`` is ``indices[indptr[u]:indptr[u+1]]``.
        n_items: width of the item id space (None: the largest stored item + 1).
    """

    indptr: np.ndarray
    indices: np.ndarray
    n_items: int | None = None
    _keys: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row_lengths(self) -> np.ndarray:
        """Items per row, int64 [n_rows]."""
        return np.diff(self.indptr)

    def row_of_entry(self) -> np.ndarray:
        """Row index of every stored entry, int64 [nnz]."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), self.row_lengths())

    def row(self, u: int) -> np.ndarray:
        """Items of row ``u``."""
        return self.indices[self.indptr[u] : self.indptr[u + 1]]

    def take_rows(self, rows: np.ndarray) -> UserItems:
        """A new set whose row ``i`` is row ``rows[i]`` of this one (vectorised gather).

        Args:
            rows: int64 [m] row indices (repeats allowed).
        """
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.row_lengths()[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        offset = np.repeat(self.indptr[rows] - indptr[:-1], lengths)
        gather = offset + np.arange(indptr[-1], dtype=np.int64)
        return UserItems(indptr, self.indices[gather], self.n_items)

    # ---- views --------------------------------------------------------------------------

    def coords(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """(row, item) of every stored entry as two int64 [nnz] tensors on ``device``:
        the indices to scatter the sets into a dense [n_rows, width] block (the items
        masked from a ranking, the user's items masked from the exact softmax).

        Example:
            >>> ui = UserItems.from_pairs(np.array([1, 0, 1]), np.array([5, 2, 3]), n_rows=2)
            >>> [t.tolist() for t in ui.coords()]
            [[0, 1, 1], [2, 3, 5]]
        """
        return (torch.from_numpy(self.row_of_entry()).to(device),
                torch.from_numpy(self.indices).to(device))

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """bool [B, K]: whether user ``users[b]`` has item ``items[b, k]``.

        ``items`` may be [B, K], or [1, K] / [K] shared by every user. The (user, item) pairs
        are hashed to ``user * W + item`` (``W`` = :attr:`width`) and kept sorted on the
        query's device, so a whole block is one ``searchsorted``.
        """
        items = items.reshape(1, -1) if items.dim() == 1 else items
        keys = self._hash_keys(items.device)
        if keys.numel() == 0:
            return torch.zeros(users.shape[0], items.shape[1], dtype=torch.bool,
                               device=items.device)
        width = self.width
        query = users[:, None].to(items.device) * width + items
        pos = torch.searchsorted(keys, query).clamp(max=keys.numel() - 1)
        return (keys[pos] == query) & (items < width)

    @property
    def width(self) -> int:
        """The item id space used by :meth:`contains` and :meth:`to_scipy`."""
        if self.n_items is not None:
            return int(self.n_items)
        return int(self.indices.max()) + 1 if self.nnz else 1

    def _hash_keys(self, device: torch.device) -> torch.Tensor:
        key = str(device)
        if key not in self._keys:
            users = torch.from_numpy(self.row_of_entry())
            keys = users * self.width + torch.from_numpy(self.indices)
            self._keys[key] = torch.sort(keys).values.to(device)
        return self._keys[key]

    def to_scipy(self) -> sp.csr_matrix:
        """float32 ``scipy.sparse.csr_matrix`` [n_rows, width] of ones, sorted indices.

        Example:
            >>> ui = UserItems.from_interactions(
            ...     Interactions([0, 0, 1], [2, 2, 0], None, None), n_users=2, n_items=3)
            >>> ui.to_scipy().toarray().tolist()
            [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        """
        data = np.ones(self.nnz, dtype=np.float32)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n_rows, self.width))

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def from_pairs(
        cls, users: np.ndarray, items: np.ndarray, n_rows: int, n_items: int | None = None,
    ) -> UserItems:
        """Build from parallel (user, item) arrays; duplicate pairs are kept once.

        Args:
            users: int [n] row indices in ``[0, n_rows)``.
            items: int [n] item indices (>= 0).
            n_rows: number of rows (users), so users with no pair get an empty row.
            n_items: the item id space (None: the largest item + 1).
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.shape != items.shape:
            raise ValueError(f"users and items differ in shape: {users.shape} vs {items.shape}")
        if len(users) and (users.min() < 0 or users.max() >= n_rows):
            raise ValueError(f"user index outside [0, {n_rows}): {users.min()}..{users.max()}")
        if len(items) and items.min() < 0:
            raise ValueError(f"negative item index {items.min()}")
        base = int(items.max()) + 1 if len(items) else 1
        keys = np.unique(users * base + items)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // base, minlength=n_rows), out=indptr[1:])
        return cls(indptr, keys % base, n_items)

    @classmethod
    def from_interactions(
        cls, inter: Interactions | list[Interactions], n_users: int, n_items: int,
    ) -> UserItems:
        """The item set of each user in ``inter`` (several parts are merged)."""
        parts = inter if isinstance(inter, list) else [inter]
        return cls.from_pairs(np.concatenate([p.user for p in parts]),
                              np.concatenate([p.item for p in parts]), n_users, n_items)

    @classmethod
    def coerce(cls, obj: Any) -> UserItems:
        """A :class:`UserItems` from itself, an ``(indptr, indices)`` pair or a scipy CSR
        matrix; rows are sorted and de-duplicated so every later step can rely on sets."""
        if isinstance(obj, UserItems):
            return obj
        if isinstance(obj, tuple) and len(obj) == 2:
            indptr, indices = obj
        elif hasattr(obj, "indptr") and hasattr(obj, "indices"):
            indptr, indices = obj.indptr, obj.indices
        else:
            raise TypeError(f"expected UserItems, (indptr, indices) or a CSR matrix, "
                            f"got {type(obj)}")
        indptr = np.asarray(indptr, dtype=np.int64)
        indices = np.asarray(indices, dtype=np.int64)
        if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(indices):
            raise ValueError("indptr must be 1-D, start at 0 and end at len(indices)")
        if np.any(np.diff(indptr) < 0):
            raise ValueError("indptr must be non-decreasing")
        n_rows = len(indptr) - 1
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
        return cls.from_pairs(rows, indices, n_rows)
