"""Chunked whole-corpus ranking: bounded chunks, same lists as one big call."""

from __future__ import annotations

import numpy as np
import torch

from clusterneg.eval.csr import UserItemCSR
from clusterneg.eval.evaluate import rank_all_items


def test_chunks_respect_the_score_budget_and_give_the_same_top_k() -> None:
    g = torch.Generator().manual_seed(0)
    ue, ie = torch.randn(20, 4, generator=g), torch.randn(50, 4, generator=g)
    exclude = UserItemCSR.from_pairs(np.array([0, 0, 3, 19]), np.array([5, 7, 1, 49]), 20)
    seen: list[int] = []

    def score(u: torch.Tensor) -> torch.Tensor:
        seen.append(len(u))
        return ue[u] @ ie.T

    users = np.arange(20)
    small, small_v = rank_all_items(score, users, exclude, 50, 10, batch_size=8, max_scores=150)
    assert max(seen) == 3 and sum(seen) == 20  # 150 // 50 items = 3 users per call
    seen.clear()
    big, big_v = rank_all_items(score, users, exclude, 50, 10, batch_size=64)
    assert seen == [20]
    assert np.array_equal(small, big) and np.allclose(small_v, big_v)
    full = (ue @ ie.T)
    full[0, [5, 7]] = full[3, 1] = full[19, 49] = float("-inf")
    assert np.array_equal(big, full.topk(10, dim=1).indices.numpy())
    assert 5 not in big[0] and 7 not in big[0] and 49 not in big[19]
