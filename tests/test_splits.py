"""Splits: partitions, leave-last-out, RecBole-compatible ratios, seeds, temporal cut, CSR."""

from __future__ import annotations

import numpy as np
import pytest

from clusterneg.data import Catalog, Dataset, Interactions, load_dataset, make_split
from clusterneg.data.splits import (
    TEST,
    TRAIN,
    VALID,
    holdout_counts,
    leave_last_out_labels,
)
from clusterneg.data.user_items import UserItems
from clusterneg.errors import ConfigError


def synthetic(n_users: int = 60, n_items: int = 40, seed: int = 0, order: bool = True,
              min_len: int = 1, max_len: int = 30) -> Dataset:
    """Random interactions; ``weight`` holds the row id so rows can be traced."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, n_users)
    user = np.repeat(np.arange(n_users), lengths)
    rng.shuffle(user)
    n = len(user)
    item = rng.integers(0, n_items, n)
    ts = rng.integers(0, 50, n).astype(float) if order else None  # ties on purpose
    inter = Interactions(user, item, ts, np.arange(n, dtype=np.float32))
    cat = Catalog(np.array([str(i) for i in range(n_items)]))
    return Dataset("syn", np.array([str(u) for u in range(n_users)]), cat, inter)


def row_ids(part: Interactions) -> np.ndarray:
    return part.weight.astype(np.int64)


def assert_partition(ds: Dataset, split) -> None:
    ids = np.concatenate([row_ids(split.train), row_ids(split.valid), row_ids(split.test)])
    assert np.array_equal(np.sort(ids), np.arange(len(ds.interactions)))


@pytest.mark.parametrize("method", ["leave-last-out", "random", "temporal"])
@pytest.mark.parametrize("valid", [True, False])
def test_parts_partition_the_rows(method: str, valid: bool) -> None:
    ds = synthetic()
    split = make_split(ds, method=method, valid=valid, seed=3)
    assert_partition(ds, split)
    assert (len(split.valid) > 0) == valid
    assert split.method == method and split.seed == 3


def test_leave_last_out_picks_max_order() -> None:
    ds = synthetic()
    inter = ds.interactions
    split = make_split(ds, method="leave-last-out")
    counts = np.bincount(inter.user, minlength=ds.n_users)
    for u in range(ds.n_users):
        rows = np.flatnonzero(inter.user == u)
        # last by (order, position): stable sort on order, take the end
        by_time = rows[np.argsort(inter.order[rows], kind="stable")]
        test_rows = row_ids(split.test)[split.test.user == u]
        valid_rows = row_ids(split.valid)[split.valid.user == u]
        if counts[u] < 3:
            assert len(test_rows) == 0 and len(valid_rows) == 0
        else:
            assert test_rows.tolist() == [by_time[-1]]
            assert valid_rows.tolist() == [by_time[-2]]
            assert inter.order[by_time[-1]] == inter.order[rows].max()


def test_leave_last_out_hand_case() -> None:
    inter = Interactions([0, 0, 0, 1, 1, 2, 2, 2], [1, 2, 3, 1, 2, 4, 5, 6],
                         [3, 1, 2, 1, 2, 5, 5, 4], None)
    assert leave_last_out_labels(inter).tolist() == [TEST, TRAIN, VALID, TRAIN, TRAIN,
                                                     VALID, TEST, TRAIN]
    # without validation a user needs only 2 interactions to get a test item
    assert leave_last_out_labels(inter, valid=False).tolist() == [TEST, 0, 0, 0, TEST, 0, TEST, 0]


def recbole_counts(tot: int, ratios: list[float]) -> list[int]:
    """RecBole 1.2.1 ``Dataset._calcu_split_ids`` (as counts), copied as the oracle."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.9, 0.0, 0.1)])
def test_holdout_counts_match_recbole(ratios: tuple[float, float, float]) -> None:
    tot = np.arange(1, 200)
    n_valid, n_test = holdout_counts(tot, ratios)
    expect = np.array([recbole_counts(int(t), list(ratios)) for t in tot])
    assert np.array_equal(n_valid, expect[:, 1]) and np.array_equal(n_test, expect[:, 2])


def test_random_ratios_per_user_and_overall() -> None:
    ds = synthetic(n_users=200, min_len=10, max_len=60)
    split = make_split(ds, method="random", seed=1)
    counts = np.bincount(ds.interactions.user, minlength=ds.n_users)
    n_valid, n_test = holdout_counts(counts, (0.8, 0.1, 0.1))
    assert np.array_equal(np.bincount(split.test.user, minlength=ds.n_users), n_test)
    assert np.array_equal(np.bincount(split.valid.user, minlength=ds.n_users), n_valid)
    n = len(ds.interactions)
    assert abs(len(split.test) / n - 0.1) < 0.02 and abs(len(split.valid) / n - 0.1) < 0.02
    assert abs(len(split.train) / n - 0.8) < 0.03


def test_random_is_seeded_and_shuffles() -> None:
    ds = synthetic()
    a = make_split(ds, method="random", seed=5)
    b = make_split(ds, method="random", seed=5)
    c = make_split(ds, method="random", seed=6)
    assert np.array_equal(row_ids(a.test), row_ids(b.test))
    assert np.array_equal(row_ids(a.valid), row_ids(b.valid))
    assert not np.array_equal(row_ids(a.test), row_ids(c.test))
    # not simply the last rows: held-out rows are not always the latest of their user
    inter = ds.interactions
    latest = [np.flatnonzero(inter.user == u).max() for u in np.unique(a.test.user)]
    assert set(row_ids(a.test).tolist()) != set(latest)


def test_temporal_cut_respects_time() -> None:
    ds = synthetic(n_users=100)
    split = make_split(ds, method="temporal", cut=(0.7, 0.85))
    assert split.train.order.max() < split.valid.order.min()
    assert split.valid.order.max() < split.test.order.min()
    n = len(ds.interactions)
    assert abs(len(split.train) / n - 0.7) < 0.05
    assert abs(len(split.test) / n - 0.15) < 0.05
    no_valid = make_split(ds, method="temporal", valid=False, cut=(0.7, 0.85))
    assert np.array_equal(row_ids(no_valid.test), row_ids(split.test))


def test_auto_method() -> None:
    assert make_split(synthetic()).method == "leave-last-out"
    assert make_split(synthetic(order=False)).method == "random"


def presplit_dataset(with_valid: bool, order: bool) -> Dataset:
    t = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0] if order else None
    train = Interactions([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 3], t, None)
    test = Interactions([0, 1], [3, 2], [9.0, 9.0] if order else None, None)
    parts = {"train": train, "test": test}
    if with_valid:
        parts["valid"] = Interactions([1], [4], [5.0] if order else None, None)
    return Dataset("p", np.array(["a", "b"]), Catalog(np.array(list("vwxyz"))),
                   Interactions.concat(list(parts.values())), presplit=parts)


def test_presplit_returns_its_split() -> None:
    ds = presplit_dataset(with_valid=True, order=True)
    split = make_split(ds)
    assert split.method == "presplit" and split.valid_from == "file"
    assert split.test.item.tolist() == [3, 2] and split.valid.item.tolist() == [4]
    merged = make_split(ds, valid=False)
    assert len(merged.train) == 7 and len(merged.valid) == 0


def test_presplit_carves_validation_from_train() -> None:
    split = make_split(presplit_dataset(with_valid=False, order=True))
    assert split.valid_from == "leave-last-out"
    got = zip(split.valid.user.tolist(), split.valid.item.tolist(), strict=True)
    assert sorted(got) == [(0, 2), (1, 3)]
    assert len(split.train) == 4 and split.test.item.tolist() == [3, 2]
    rand = make_split(presplit_dataset(with_valid=False, order=False), seed=0)
    assert rand.valid_from == "random"
    assert len(rand.valid) == 2 and len(rand.train) == 4  # one row per user (ratio 1/9 of 3)


def test_describe() -> None:
    inter = Interactions([0, 0, 0, 1, 1, 1], [1, 2, 1, 3, 4, 5], [1, 2, 3, 1, 2, 3], None)
    ds = Dataset("d", np.array(["a", "b"]), Catalog(np.array(list("012345"))), inter)
    split = make_split(ds, method="leave-last-out")
    d = split.describe()
    assert (d["n_train"], d["n_valid"], d["n_test"]) == (2, 2, 2)
    assert d["test_pairs_in_train"] == 1  # user 0 re-consumed item 1
    assert d["test_users_without_train"] == 0


def test_user_items_to_scipy() -> None:
    inter = Interactions([0, 0, 2, 2, 2], [3, 1, 0, 0, 3], None, None)
    m = UserItems.from_interactions(inter, n_users=3, n_items=4).to_scipy()
    assert m.shape == (3, 4)
    assert m.toarray().tolist() == [[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 1]]
    assert m.indptr.tolist() == [0, 2, 2, 4] and m.indices.tolist() == [1, 3, 0, 3]


@pytest.mark.parametrize("kw", [{"method": "nope"}, {"ratios": (0.8, 0.2, 0.0)},
                                {"cut": (0.9, 0.8)}, {"method": "presplit"}])
def test_bad_arguments(kw: dict) -> None:
    with pytest.raises(ConfigError):
        make_split(synthetic(), **kw)


def test_needs_order() -> None:
    with pytest.raises(ConfigError, match="order"):
        make_split(synthetic(order=False), method="leave-last-out")
    with pytest.raises(ConfigError, match="timestamps"):
        make_split(synthetic(order=False), method="temporal")


def test_ml100k_splits() -> None:
    ds = load_dataset("ml-100k")
    loo = make_split(ds)
    assert loo.method == "leave-last-out" and len(loo.test) == 943 and len(loo.valid) == 943
    rnd = make_split(ds, method="random", seed=0)
    assert len(rnd.train) + len(rnd.valid) + len(rnd.test) == 100000
    assert 0.09 < len(rnd.test) / 100000 < 0.11
