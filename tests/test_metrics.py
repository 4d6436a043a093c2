"""Ranking metrics: hand-computed cases and an independent loop-based reference."""

from __future__ import annotations

import math

import numpy as np
import pytest

from clusterneg.errors import ConfigError
from clusterneg.eval import UserItems, ranking_metrics, target_ranks


def reference_metrics(
    topk: np.ndarray, targets: list[set[int]], ks: tuple[int, ...]
) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Plain per-user loop, written from the textbook definitions."""
    per: dict[str, list[float]] = {f"{m}@{k}": [] for k in ks for m in ("recall", "ndcg")}
    per["mrr"] = []
    hits_total = {k: 0 for k in ks}
    n_total = 0
    for row, tgt in zip(topk.tolist(), targets, strict=True):
        if not tgt:
            continue
        n_total += len(tgt)
        seen: list[int] = []
        for item in row:  # first occurrence only, padding skipped
            seen.append(item if item >= 0 and item not in seen else -1)
        for k in ks:
            top = seen[:k]
            hits = sum(1 for item in top if item in tgt)
            hits_total[k] += hits
            per[f"recall@{k}"].append(hits / len(tgt))
            dcg = sum(1 / math.log2(r + 2) for r, item in enumerate(top) if item in tgt)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(tgt), len(top))))
            per[f"ndcg@{k}"].append(dcg / idcg)
        rr = 0.0
        for r, item in enumerate(seen):
            if item in tgt:
                rr = 1 / (r + 1)
                break
        per["mrr"].append(rr)
    summary = {f"hr@{k}": hits_total[k] / n_total for k in ks}
    summary.update({name: float(np.mean(v)) for name, v in per.items()})
    return summary, per


def csr_of(targets: list[set[int]]) -> UserItems:
    users = np.repeat(np.arange(len(targets)), [len(t) for t in targets])
    items = np.array([i for t in targets for i in sorted(t)], dtype=np.int64)
    return UserItems.from_pairs(users, items, len(targets))


def test_hand_computed_three_users() -> None:
    # user 0: list [3,1,4,0,2], targets {1,2} -> ranks 1 and 4 (0-based)
    # user 1: list [0,2,1,3,4], targets {0}   -> rank 0
    # user 2: list [4,3,2,1,0], targets {5}   -> not retrieved
    topk = np.array([[3, 1, 4, 0, 2], [0, 2, 1, 3, 4], [4, 3, 2, 1, 0]])
    t = csr_of([{1, 2}, {0}, {5}])
    r = ranking_metrics(topk, t.indptr, t.indices, ks=(1, 3, 5))
    s = r.summary
    # hr pools the 4 test interactions: hits@1 = 0+1+0, hits@3 = 1+1+0, hits@5 = 2+1+0
    assert s["hr@1"] == pytest.approx(1 / 4)
    assert s["hr@3"] == pytest.approx(2 / 4)
    assert s["hr@5"] == pytest.approx(3 / 4)
    # recall averages per user: @1 (0 + 1 + 0)/3, @3 (1/2 + 1 + 0)/3, @5 (1 + 1 + 0)/3
    assert s["recall@1"] == pytest.approx(1 / 3)
    assert s["recall@3"] == pytest.approx(0.5)
    assert s["recall@5"] == pytest.approx(2 / 3)
    # ndcg@3 user 0: DCG = 1/log2(3) (rank 1); IDCG = 1 + 1/log2(3) (two targets)
    idcg0 = 1 + 1 / math.log2(3)
    u0_3 = (1 / math.log2(3)) / idcg0
    u0_5 = (1 / math.log2(3) + 1 / math.log2(6)) / idcg0
    assert s["ndcg@1"] == pytest.approx(1 / 3)
    assert s["ndcg@3"] == pytest.approx((u0_3 + 1 + 0) / 3)
    assert s["ndcg@5"] == pytest.approx((u0_5 + 1 + 0) / 3)
    # mrr: first hit at rank 1 -> 1/2; rank 0 -> 1; none -> 0
    assert s["mrr"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert r.per_user["hits@5"].tolist() == [2, 1, 0]
    assert r.per_user["n_targets"].tolist() == [2, 1, 1]
    assert r.n_users == 3 and r.n_targets == 4


def test_leave_one_out_hr_equals_recall() -> None:
    rng = np.random.default_rng(0)
    topk = np.stack([rng.permutation(200)[:50] for _ in range(30)])
    t = csr_of([{int(rng.integers(200))} for _ in range(30)])
    s = ranking_metrics(topk, t.indptr, t.indices, ks=(10, 50)).summary
    assert s["hr@10"] == pytest.approx(s["recall@10"])
    assert s["hr@50"] == pytest.approx(s["recall@50"])


def test_hr_differs_from_recall_with_many_targets() -> None:
    # user 0 has 4 targets, all in the top 4; user 1 has 1 target, missed.
    # hr@4 = 4/5 = 0.8; recall@4 = (1 + 0)/2 = 0.5
    topk = np.array([[0, 1, 2, 3], [0, 1, 2, 3]])
    t = csr_of([{0, 1, 2, 3}, {9}])
    s = ranking_metrics(topk, t.indptr, t.indices, ks=(4,)).summary
    assert s["hr@4"] == pytest.approx(0.8)
    assert s["recall@4"] == pytest.approx(0.5)


def test_users_without_targets_are_nan_and_excluded() -> None:
    topk = np.array([[0, 1], [0, 1]])
    t = csr_of([{0}, set()])
    r = ranking_metrics(topk, t.indptr, t.indices, ks=(1,))
    assert math.isnan(r.per_user["recall@1"][1]) and math.isnan(r.per_user["mrr"][1])
    assert r.summary["recall@1"] == 1.0 and r.summary["hr@1"] == 1.0
    assert r.n_users == 1


def test_padding_k_wider_than_list_and_duplicates() -> None:
    # -1 is padding; K=10 > Kmax=3 is evaluated on the whole list.
    # Target pair (0, 2) given twice counts once. Item 2 listed twice: first rank (1) counts.
    topk = np.array([[5, 2, 2], [-1, -1, -1]])
    t = UserItems.coerce((np.array([0, 2, 3]), np.array([2, 2, 7])))
    r = ranking_metrics(topk, t.indptr, t.indices, ks=(1, 10))
    assert r.per_user["n_targets"].tolist() == [1, 1]
    assert r.per_user["hits@10"].tolist() == [1, 0]
    assert r.summary["hr@10"] == pytest.approx(0.5)
    assert r.per_user["mrr"][0] == pytest.approx(0.5)
    assert r.per_user["ndcg@10"][0] == pytest.approx(1 / math.log2(3))


def test_target_ranks() -> None:
    rows, items, ranks = target_ranks(
        np.array([[4, 2, 7], [1, -1, -1]]), np.array([0, 2, 4]), np.array([9, 7, 1, 5])
    )
    assert list(zip(rows.tolist(), items.tolist(), ranks.tolist(), strict=True)) == [
        (0, 7, 2),
        (0, 9, 3),
        (1, 1, 0),
        (1, 5, 3),
    ]


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_on_random_inputs(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items, kmax = 40, 120, 30
    topk = np.stack([rng.permutation(n_items)[:kmax] for _ in range(n_users)])
    topk[rng.random(topk.shape) < 0.05] = -1  # some padding
    targets = [
        set(rng.choice(n_items, rng.integers(0, 12), replace=False).tolist())
        for _ in range(n_users)
    ]
    for u in range(0, n_users, 3):  # make sure there are hits
        targets[u] |= set(topk[u, : rng.integers(1, 8)].tolist()) - {-1}
    ks = (1, 5, 10, 30, 50)
    t = csr_of(targets)
    r = ranking_metrics(topk, t.indptr, t.indices, ks=ks)
    ref_summary, ref_per = reference_metrics(topk, targets, ks)
    assert set(r.summary) == set(ref_summary)
    for name, value in ref_summary.items():
        assert r.summary[name] == pytest.approx(value, abs=1e-12), name
    has = r.per_user["n_targets"] > 0
    for name, values in ref_per.items():
        np.testing.assert_allclose(r.per_user[name][has], values, atol=1e-12)


def test_paired_values_reproduce_summary() -> None:
    rng = np.random.default_rng(3)
    topk = np.stack([rng.permutation(60)[:20] for _ in range(25)])
    t = csr_of([set(rng.choice(60, rng.integers(1, 6), replace=False).tolist()) for _ in range(25)])
    r = ranking_metrics(topk, t.indptr, t.indices, ks=(10, 20))
    for name in ("hr@10", "recall@20", "ndcg@10", "mrr"):
        v, w = r.paired_values(name)
        w = np.ones_like(v) if w is None else w
        assert np.nansum(v * w) / w[~np.isnan(v)].sum() == pytest.approx(r.summary[name])


def test_csr_helpers() -> None:
    csr = UserItems.from_pairs(np.array([2, 0, 2, 2]), np.array([5, 1, 3, 5]), n_rows=4)
    assert csr.indptr.tolist() == [0, 1, 1, 3, 3]
    assert csr.indices.tolist() == [1, 3, 5]
    sub = csr.take_rows(np.array([2, 1, 0, 2]))
    assert sub.indptr.tolist() == [0, 2, 2, 3, 5]
    assert sub.indices.tolist() == [3, 5, 1, 3, 5]
    with pytest.raises(ValueError):
        UserItems.from_pairs(np.array([4]), np.array([0]), n_rows=4)


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        ranking_metrics(np.zeros((1, 3), np.int64), np.array([0, 0]), np.array([]), ks=(0,))
    with pytest.raises(ValueError):
        ranking_metrics(np.zeros((2, 3), np.int64), np.array([0, 0]), np.array([]))
    with pytest.raises(ValueError):
        ranking_metrics(np.zeros((1, 0), np.int64), np.array([0, 0]), np.array([]))
