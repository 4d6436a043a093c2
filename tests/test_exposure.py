"""Exposure / popularity-bias metrics: hand cases and identities."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clusterneg.eval import (
    ExposureContext,
    UserItems,
    exposure_counts,
    exposure_metrics,
    gini,
    lorenz_curve,
    popularity_buckets,
    recall_by_popularity_bucket,
)


def gini_reference(x: np.ndarray) -> float:
    """Mean absolute difference definition: sum_ij |x_i - x_j| / (2 n^2 mean)."""
    x = x.astype(np.float64)
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean()))


def test_gini_hand_cases() -> None:
    assert gini(np.full(7, 3)) == 0.0  # uniform exposure
    assert gini(np.array([0, 0, 0, 0, 10])) == pytest.approx(4 / 5)  # all in one: (n-1)/n
    # [1, 2, 3]: sum (2i - n - 1) x_i = -2*1 + 0*2 + 2*3 = 4; / (n * total) = 4 / 18
    assert gini(np.array([3, 1, 2])) == pytest.approx(4 / 18)
    assert math.isnan(gini(np.zeros(4)))


@pytest.mark.parametrize("seed", range(3))
def test_gini_matches_reference_and_lorenz_area(seed: int) -> None:
    x = np.random.default_rng(seed).integers(0, 50, size=300)
    g = gini(x)
    assert g == pytest.approx(gini_reference(x), abs=1e-12)
    lx, ly = lorenz_curve(x)
    # Gini = 1 - 2 * area under the Lorenz curve (trapezoids are exact for step data)
    area = float(np.sum((lx[1:] - lx[:-1]) * (ly[1:] + ly[:-1]) / 2))
    assert g == pytest.approx(1 - 2 * area, abs=1e-12)


def test_lorenz_curve_shape() -> None:
    x, y = lorenz_curve(np.array([0, 6, 2]))
    assert x.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert y.tolist() == pytest.approx([0, 0, 2 / 8, 1])  # sorted counts 0, 2, 6


def test_exposure_counts_skip_padding_and_cut() -> None:
    topk = np.array([[0, 1, 2], [1, -1, 0]])
    assert exposure_counts(topk, 4, k=2).tolist() == [1, 2, 0, 0]  # slots [0,1], [1,-1]
    assert exposure_counts(topk, 4, k=3).tolist() == [2, 2, 1, 0]


def test_top100_share_hand_case() -> None:
    # 200 items, popularity = item index, so the 100 most popular are items 100..199.
    # 3 users x 4 slots = 12 slots; popular items fill 1 + 2 + 4 = 7 -> share 7/12.
    ctx = ExposureContext(np.arange(200), k=4)
    topk = np.array([[150, 3, 4, 5], [199, 100, 6, 7], [101, 102, 103, 104]])
    m = exposure_metrics(topk, ctx)
    assert m["top100_share"] == pytest.approx(7 / 12)
    assert m["coverage@4"] == pytest.approx(12 / 200)  # 12 distinct items shown
    # head = top 20% = 40 items (160..199): only 199 is head -> tail share 11/12
    assert m["tail_share@4"] == pytest.approx(11 / 12)
    assert m["tail_coverage@4"] == pytest.approx(11 / 160)
    counts = np.zeros(200)
    counts[[150, 3, 4, 5, 199, 100, 6, 7, 101, 102, 103, 104]] = 1
    assert m["gini@4"] == pytest.approx(gini(counts))


def test_head_tail_ties_and_small_catalog() -> None:
    # popularity ties broken by lower index: items 0 and 1 tie at 5, head (ceil(0.2*4)=1) is 0
    ctx = ExposureContext(np.array([5, 5, 1, 0]), k=1, n_top=100)
    assert ctx.tail_mask.tolist() == [False, True, True, True]
    m = exposure_metrics(np.array([[1], [0]]), ctx)
    assert m["top100_share"] == 1.0  # every item is "top 100" in a 4-item catalog
    assert m["tail_share@1"] == pytest.approx(0.5)
    assert m["coverage@1"] == pytest.approx(0.5)


def test_concentrated_vs_spread_lists() -> None:
    pop = np.arange(100)[::-1].copy()  # item 0 most popular
    ctx = ExposureContext(pop, k=5, n_top=5)
    same = np.tile(np.arange(5), (20, 1))  # everyone sees the 5 most popular
    spread = np.arange(100).reshape(20, 5)  # every item once
    a, b = exposure_metrics(same, ctx), exposure_metrics(spread, ctx)
    assert a["top5_share"] == 1.0 and b["top5_share"] == pytest.approx(5 / 100)
    assert a["gini@5"] == pytest.approx(95 / 100) and b["gini@5"] == 0.0
    assert a["coverage@5"] == pytest.approx(0.05) and b["coverage@5"] == 1.0
    assert a["tail_share@5"] == 0.0 and b["tail_share@5"] == pytest.approx(0.8)


def test_popularity_buckets_equal_size() -> None:
    pop = np.array([10, 0, 3, 7, 1, 9, 2, 8, 4, 6])
    b = popularity_buckets(pop, n_buckets=5)
    # least popular pair (0, 1) -> bucket 0 ... most popular pair (9, 10) -> bucket 4
    assert b.tolist() == [4, 0, 1, 3, 0, 4, 1, 3, 2, 2]
    assert np.bincount(b).tolist() == [2, 2, 2, 2, 2]


def test_recall_by_popularity_bucket_hand_case() -> None:
    pop = np.array([10, 0, 3, 7, 1, 9, 2, 8, 4, 6])  # buckets as in the test above
    topk = np.array([[0, 5, 1], [3, 2, 4]])
    # user 0 targets {0 (b4, hit), 1 (b0, hit at rank 2), 9 (b2, miss)}
    # user 1 targets {2 (b1, hit), 7 (b3, miss)}
    t = UserItems.from_pairs(np.array([0, 0, 0, 1, 1]), np.array([0, 1, 9, 2, 7]), 2)
    r = recall_by_popularity_bucket(topk, t.indptr, t.indices, pop, k=3, n_buckets=5)
    assert r["n_targets"].tolist() == [1, 1, 1, 1, 1]
    assert r["hits"].tolist() == [1, 1, 0, 0, 1]
    assert r["recall"].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert r["min_pop"].tolist() == [0, 2, 4, 7, 9]
    assert r["max_pop"].tolist() == [1, 3, 6, 8, 10]
    # with k=2 the rank-2 hit of item 1 drops out
    r2 = recall_by_popularity_bucket(topk, t.indptr, t.indices, pop, k=2, n_buckets=5)
    assert r2["hits"].tolist() == [0, 1, 0, 0, 1]


def test_bucket_hits_sum_to_total_hits() -> None:
    rng = np.random.default_rng(1)
    n_items = 300
    pop = rng.zipf(1.5, n_items).clip(max=10_000)
    topk = np.stack([rng.permutation(n_items)[:50] for _ in range(40)])
    users = rng.integers(0, 40, 400)
    t = UserItems.from_pairs(users, rng.integers(0, n_items, 400), 40)
    r = recall_by_popularity_bucket(topk, t.indptr, t.indices, pop, k=50)
    in_top = sum(len(set(topk[u]) & set(t.row(u).tolist())) for u in range(40))
    assert int(r["hits"].sum()) == in_top
    assert int(r["n_targets"].sum()) == t.nnz


def test_context_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        ExposureContext(np.arange(5), k=0)
    with pytest.raises(ValueError):
        ExposureContext(np.arange(5), head_fraction=1.5)
