"""The one per-user item-set type: set semantics, the hash index against brute force, scipy."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterneg.data.user_items import UserItems


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 9)), max_size=30),
       st.lists(st.integers(0, 12), min_size=1, max_size=6))
def test_contains_matches_brute_force(pairs: list[tuple[int, int]], query: list[int]) -> None:
    users = np.array([p[0] for p in pairs], dtype=np.int64)
    items = np.array([p[1] for p in pairs], dtype=np.int64)
    ui = UserItems.from_pairs(users, items, n_rows=6, n_items=10)
    q_users = torch.arange(6)
    q_items = torch.tensor(query)[None, :].expand(6, -1)
    got = ui.contains(q_users, q_items)
    expect = [[(u, i) in set(pairs) for i in query] for u in range(6)]
    assert got.tolist() == expect
    assert ui.contains(q_users, torch.tensor(query)).tolist() == expect  # shared [K] block


def test_rows_are_sorted_sets_and_scipy_has_the_item_width() -> None:
    ui = UserItems.from_pairs(np.array([2, 0, 2, 2]), np.array([5, 1, 3, 5]), n_rows=4,
                              n_items=7)
    assert [ui.row(u).tolist() for u in range(4)] == [[1], [], [3, 5], []]
    m = ui.to_scipy()
    assert m.shape == (4, 7) and m.nnz == 3 and m[2, 5] == 1.0


def test_empty_set_contains_nothing() -> None:
    ui = UserItems.from_pairs(np.array([], np.int64), np.array([], np.int64), n_rows=2)
    assert not ui.contains(torch.tensor([0, 1]), torch.tensor([[0], [1]])).any()
