"""Full-corpus evaluation: masking, hand-computed toy model, Parquet round trip."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from clusterneg.errors import DataError
from clusterneg.eval import (
    ExposureContext,
    UserItems,
    evaluate_scores,
    metrics_from_topk_parquet,
    read_topk_parquet,
    save_topk_parquet,
)

# Toy model: fixed scores for 2 users x 6 items.
SCORES = torch.tensor(
    [
        [0.9, 0.1, 0.8, 0.3, 0.5, 0.2],  # user 0; item 0 (best) is a train item
        [0.0, 0.6, 0.4, 0.7, 0.1, 0.9],  # user 1; items 5 and 3 (two best) are train items
    ]
)
EXCLUDE = UserItems.from_pairs(np.array([0, 1, 1]), np.array([0, 5, 3]), 2)
TARGETS = UserItems.from_pairs(np.array([0, 0, 1]), np.array([4, 1, 2]), 2)


def toy_score(users: torch.Tensor) -> torch.Tensor:
    assert users.dtype == torch.long
    return SCORES[users]


def test_toy_model_hand_computed() -> None:
    r = evaluate_scores(toy_score, None, TARGETS, EXCLUDE, 6, ks=(1, 2, 5))
    # user 0 ranking without item 0: 2 (.8), 4 (.5), 3 (.3), 5 (.2), 1 (.1)
    # user 1 ranking without 5, 3:   1 (.6), 2 (.4), 4 (.1), 0 (.0), then nothing left
    assert r.topk.tolist() == [[2, 4, 3, 5, 1], [1, 2, 4, 0, -1]]
    assert r.scores[1, 4] == -np.inf
    assert r.users.tolist() == [0, 1]
    m = r.summary
    # targets: user 0 {4 at rank 1, 1 at rank 4}, user 1 {2 at rank 1}; 3 test interactions
    assert m["hr@1"] == 0.0
    assert m["hr@2"] == pytest.approx(2 / 3)
    assert m["hr@5"] == pytest.approx(1.0)
    assert m["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    u0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # one hit at rank 1, two targets
    u1 = 1 / math.log2(3)  # one hit at rank 1, one target
    assert m["ndcg@2"] == pytest.approx((u0 + u1) / 2)
    assert r.exposure == {} and r.buckets == {}
    assert SCORES[0, 0] == pytest.approx(0.9)  # the caller's tensor is left untouched


def random_problem(seed: int, n_users: int = 50, n_items: int = 80):
    rng = np.random.default_rng(seed)
    scores = torch.from_numpy(rng.standard_normal((n_users, n_items)).astype(np.float32))
    ex_u = rng.integers(0, n_users, 600)
    ex_i = rng.integers(0, n_items, 600)
    scores[ex_u, ex_i] += 100.0  # excluded items score highest of all
    exclude = UserItems.from_pairs(ex_u, ex_i, n_users)
    t_u = rng.integers(0, n_users, 150)
    t_i = rng.integers(0, n_items, 150)
    keep = ~np.isin(t_u * n_items + t_i, ex_u * n_items + ex_i)
    targets = UserItems.from_pairs(t_u[keep], t_i[keep], n_users)
    return scores, exclude, targets


@pytest.mark.parametrize("seed", range(3))
def test_excluded_items_never_ranked_and_topk_is_exact(seed: int) -> None:
    scores, exclude, targets = random_problem(seed)
    r = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80, ks=(5, 20), batch_size=7)
    for row, u in enumerate(r.users):
        banned = set(exclude.row(u).tolist())
        assert not banned & set(r.topk[row].tolist())
        s = scores[u].numpy().copy()
        s[list(banned)] = -np.inf
        expected = np.argsort(-s, kind="stable")[:20]
        assert r.topk[row].tolist() == expected.tolist()
        np.testing.assert_allclose(r.scores[row], s[expected])


def test_batch_size_does_not_change_results() -> None:
    scores, exclude, targets = random_problem(5)
    a = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80, batch_size=1)
    b = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80, batch_size=1000)
    assert np.array_equal(a.topk, b.topk)
    assert a.summary == b.summary


def test_default_users_and_explicit_users() -> None:
    scores, exclude, targets = random_problem(6)
    r = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80)
    assert r.users.tolist() == np.flatnonzero(targets.row_lengths() > 0).tolist()
    assert r.topk.shape == (len(r.users), 80)  # K = 100 capped at the catalog size
    everyone = evaluate_scores(lambda u: scores[u], np.arange(50), targets, exclude, 80)
    assert everyone.summary == pytest.approx(r.summary)


def test_exposure_context_adds_exposure_and_buckets() -> None:
    scores, exclude, targets = random_problem(7)
    pop = np.bincount(exclude.indices, minlength=80)
    ctx = ExposureContext(pop, k=50, n_top=10)
    r = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80, ks=(10,), exposure_ctx=ctx)
    assert r.topk.shape[1] == 50  # widened to the exposure cut-off
    assert set(r.exposure) == {
        "top10_share",
        "coverage@50",
        "gini@50",
        "tail_share@50",
        "tail_coverage@50",
    }
    assert 0 <= r.exposure["gini@50"] < 1
    assert r.buckets["n_targets"].sum() == r.ranking.n_targets
    assert r.to_dict()["n_targets"] == r.ranking.n_targets
    # item_popularity= is shorthand for the default context (top 50, top 100)
    short = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80, item_popularity=pop)
    full = evaluate_scores(
        lambda u: scores[u], None, targets, exclude, 80, exposure_ctx=ExposureContext(pop)
    )
    assert short.exposure == full.exposure and "top100_share" in short.exposure


def test_overlap_between_targets_and_exclude_is_reported(caplog) -> None:
    exclude = UserItems.from_pairs(np.array([0]), np.array([4]), 2)
    with caplog.at_level(logging.WARNING):
        r = evaluate_scores(toy_score, None, TARGETS, exclude, 6, ks=(5,))
    assert "1 target pairs are also masked" in caplog.text
    assert 4 not in r.topk[0]


def test_bad_score_fn_output() -> None:
    with pytest.raises(ValueError, match="shape"):
        evaluate_scores(lambda u: SCORES[u][:, :5], None, TARGETS, EXCLUDE, 6)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(lambda u: SCORES[u] * float("nan"), None, TARGETS, EXCLUDE, 6)
    one_nan = SCORES.clone()
    one_nan[1, 2] = float("nan")  # a single NaN on a rankable item is caught too
    with pytest.raises(ValueError, match="NaN"):
        evaluate_scores(lambda u: one_nan[u], None, TARGETS, EXCLUDE, 6)
    with pytest.raises(ValueError, match="n_items"):
        evaluate_scores(toy_score, None, TARGETS, EXCLUDE, 4)


def test_parquet_round_trip_reproduces_metrics(tmp_path: Path) -> None:
    scores, exclude, targets = random_problem(8)
    r = evaluate_scores(lambda u: scores[u], None, targets, exclude, 80, ks=(5, 10, 50))
    user_raw = np.array([f"u{i}" for i in range(50)])
    item_raw = np.array([f"item-{i}" for i in range(80)])
    path = tmp_path / "out" / "topk.parquet"
    save_topk_parquet(path, user_raw[r.users], item_raw, r.topk, r.scores)
    assert [p.name for p in path.parent.iterdir()] == ["topk.parquet"]  # no temp left
    table = pq.read_table(path)
    assert table.column_names == ["user_id", "rank", "item_id", "score"]
    assert table.num_rows == int((r.topk >= 0).sum())
    assert table.schema.metadata[b"clusterneg.kmax"] == b"50"
    rows = table.slice(0, 2).to_pylist()
    assert rows[0]["user_id"] == user_raw[r.users[0]] and rows[0]["rank"] == 1
    assert rows[1]["item_id"] == item_raw[r.topk[0, 1]]

    tu = user_raw[targets.row_of_entry()]
    ti = item_raw[targets.indices]
    back = metrics_from_topk_parquet(path, tu, ti, ks=(5, 10, 50))
    assert back.summary == pytest.approx(r.summary, abs=1e-12)
    for name in ("hits@10", "ndcg@50", "mrr"):
        np.testing.assert_allclose(back.per_user[name], r.per_user[name])

    users, items, topk, sc = read_topk_parquet(path)
    assert users.tolist() == user_raw[r.users].tolist()
    assert items[topk[0, :3]].tolist() == item_raw[r.topk[0, :3]].tolist()
    np.testing.assert_allclose(sc[0], r.scores[0])


def test_parquet_missing_test_user_counts_as_miss(tmp_path: Path) -> None:
    path = save_topk_parquet(
        tmp_path / "t.parquet",
        np.array(["a"]),
        np.array(["x", "y"]),
        np.array([[1, 0]]),
        np.array([[2.0, 1.0]]),
    )
    # user a: target y at rank 1 (hit); user b: not in the file, target x -> miss
    m = metrics_from_topk_parquet(path, np.array(["a", "b"]), np.array(["y", "x"]), ks=(1,))
    assert m.summary["hr@1"] == pytest.approx(0.5)
    # overwriting an existing file works and stays atomic
    save_topk_parquet(
        path, np.array(["b"]), np.array(["x", "y"]), np.array([[0, 1]]), np.array([[2.0, 1.0]])
    )
    m = metrics_from_topk_parquet(path, np.array(["a", "b"]), np.array(["y", "x"]), ks=(1,))
    assert m.summary["hr@1"] == pytest.approx(0.5)
    assert len(list(tmp_path.iterdir())) == 1
    # scores are optional: a null column, read back as NaN
    save_topk_parquet(path, np.array(["a"]), np.array(["x", "y"]), np.array([[1, 0]]), None)
    assert pq.read_table(path).column("score").null_count == 2
    assert np.isnan(read_topk_parquet(path)[3]).all()
    m = metrics_from_topk_parquet(path, np.array(["a"]), np.array(["y"]), ks=(1,))
    assert m.summary["hr@1"] == 1.0


def test_bad_parquet_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match="bad.parquet"):
        read_topk_parquet(bad)
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"user_id": ["a"], "item_id": ["x"]}), wrong)
    with pytest.raises(DataError, match="rank"):
        read_topk_parquet(wrong)


def test_ml100k_sized_evaluation_masks_every_seen_item() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n_users, n_items = 943, 1682
    user_emb, item_emb = torch.randn(n_users, 64), torch.randn(n_items, 64)
    tr_u, tr_i = rng.integers(0, n_users, 80_000), rng.integers(0, n_items, 80_000)
    te_u, te_i = rng.integers(0, n_users, 10_000), rng.integers(0, n_items, 10_000)
    exclude = UserItems.from_pairs(tr_u, tr_i, n_users)
    targets = UserItems.from_pairs(te_u, te_i, n_users)
    ctx = ExposureContext(np.bincount(tr_i, minlength=n_items))
    r = evaluate_scores(
        lambda u: user_emb[u] @ item_emb.T, None, targets, exclude, n_items, exposure_ctx=ctx
    )
    assert r.topk.shape == (n_users, 100)
    # speed lives in bench/eval_speed.py; here: no seen item ever comes back
    for u in range(0, n_users, 97):
        assert not set(r.topk[u].tolist()) & set(exclude.row(u).tolist())
