"""Per-user item sets in compressed sparse row form (``indptr``, ``indices``).

Evaluation needs two of them: the target items of each evaluated user (the test or
validation split) and the items to mask out of the ranking (train, plus validation when
scoring test). Row ``u`` holds ``indices[indptr[u]:indptr[u + 1]]``, sorted and unique.
A ``scipy.sparse.csr_matrix`` or a plain ``(indptr, indices)`` tuple is accepted wherever a
:class:`UserItemCSR` is (see :func:`as_csr`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class UserItemCSR:
    """A sorted, duplicate-free item set per row (user).

    Args:
        indptr: int64 [n_rows + 1], non-decreasing, ``indptr[0] == 0``.
        indices: int64 [nnz] item indices; row ``u`` is ``indices[indptr[u]:indptr[u+1]]``.

    Example:
        >>> csr = UserItemCSR.from_pairs(np.array([1, 0, 1]), np.array([5, 2, 3]), n_rows=3)
        >>> csr.indptr.tolist(), csr.indices.tolist()
        ([0, 1, 3, 3], [2, 3, 5])
    """

    indptr: np.ndarray
    indices: np.ndarray

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

    def take_rows(self, rows: np.ndarray) -> UserItemCSR:
        """A new CSR whose row ``i`` is row ``rows[i]`` of this one (vectorised gather).

        Args:
            rows: int64 [m] row indices (repeats allowed).
        """
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.row_lengths()[rows]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        offset = np.repeat(self.indptr[rows] - indptr[:-1], lengths)
        gather = offset + np.arange(indptr[-1], dtype=np.int64)
        return UserItemCSR(indptr, self.indices[gather])

    @classmethod
    def from_pairs(cls, users: np.ndarray, items: np.ndarray, n_rows: int) -> UserItemCSR:
        """Build from parallel (user, item) arrays; duplicate pairs are kept once.

        Args:
            users: int [n] row indices in ``[0, n_rows)``.
            items: int [n] item indices (>= 0).
            n_rows: number of rows (users), so users with no pair get an empty row.
        """
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.shape != items.shape:
            raise ValueError(f"users and items differ in shape: {users.shape} vs {items.shape}")
        if len(users) and (users.min() < 0 or users.max() >= n_rows):
            raise ValueError(f"user index outside [0, {n_rows}): {users.min()}..{users.max()}")
        if len(items) and items.min() < 0:
            raise ValueError(f"negative item index {items.min()}")
        n_items = int(items.max()) + 1 if len(items) else 1
        keys = np.unique(users * n_items + items)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys // n_items, minlength=n_rows), out=indptr[1:])
        return cls(indptr, keys % n_items)


def as_csr(obj: Any) -> UserItemCSR:
    """Normalise a :class:`UserItemCSR`, an ``(indptr, indices)`` pair or a scipy CSR matrix.

    Rows are sorted and de-duplicated so that every later step can rely on set semantics.
    """
    if isinstance(obj, UserItemCSR):
        return obj
    if isinstance(obj, tuple) and len(obj) == 2:
        indptr, indices = obj
    elif hasattr(obj, "indptr") and hasattr(obj, "indices"):
        indptr, indices = obj.indptr, obj.indices
    else:
        raise TypeError(f"expected UserItemCSR, (indptr, indices) or a CSR matrix, got {type(obj)}")
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or indptr[-1] != len(indices):
        raise ValueError("indptr must be 1-D, start at 0 and end at len(indices)")
    if np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    n_rows = len(indptr) - 1
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    return UserItemCSR.from_pairs(rows, indices, n_rows)
