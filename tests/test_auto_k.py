"""``n_clusters=auto`` at several catalog sizes (issue 11): generated catalogs of latent
topics whose users each like a few items of one topic, as in the Amazon data."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from clusterneg.cluster import AutoRule, choose_n_clusters


def catalog(n_items: int, n_topics: int, n_users: int, focus: int = 5, seed: int = 0):
    """Items around topic centres (d=8); each user has ``focus`` items of one topic and
    ``5 - focus`` random ones."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_topics, n_items)
    emb = (rng.standard_normal((n_topics, 8)) * 3)[topic] + rng.standard_normal((n_items, 8))
    by_topic = [np.flatnonzero(topic == t) for t in range(n_topics)]
    rows, cols = [], []
    for u in range(n_users):
        pool = by_topic[rng.integers(0, n_topics)]
        items = np.unique(np.r_[rng.choice(pool, focus, replace=False),
                                rng.choice(n_items, 5 - focus, replace=False)])
        rows += [u] * len(items)
        cols += items.tolist()
    ui = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items))
    return emb.astype(np.float32), ui


@functools.lru_cache(maxsize=4)
def auto_choice(n_items: int, n_topics: int, focus: int):
    emb, ui = catalog(n_items, n_topics, n_users=n_items // 2, focus=focus)
    return choose_n_clusters(emb, ui, rule=AutoRule(), seed=0, niter=8)


@pytest.mark.parametrize(("n_items", "n_topics", "focus"),
                         [(600, 4, 2), (3000, 10, 5), (12000, 12, 5)])
def test_auto_finds_an_admissible_k_around_sqrt_n(n_items: int, n_topics: int,
                                                  focus: int) -> None:
    rule, choice = AutoRule(), auto_choice(n_items, n_topics, focus)
    ks = [row["k"] for row in choice.table]
    root = math.sqrt(n_items)
    assert ks == rule.candidates(n_items)
    assert min(ks) >= 0.25 * root - 1 and max(ks) <= max(2 * root + 1, 300)
    chosen = next(r for r in choice.table if r["k"] == choice.n_clusters)
    assert chosen["admissible"], choice.reason  # never the fallback on these catalogs
    assert chosen["content_hardness"] == max(r["content_hardness"] for r in choice.table
                                             if r["admissible"])
    assert choice.reason.startswith(
        f"n_clusters=auto: k={choice.n_clusters}, the hardest admissible")


def test_lift_alone_would_refuse_every_k_on_a_large_sparse_catalog() -> None:
    """The old rule's failure on amazon-3cat, reproduced: users with 5 of 12,000 items make
    every k's lift exceed 3, yet a same-cluster negative is almost never a positive."""
    choice = auto_choice(12000, 12, 5)
    assert all(row["fn_lift"] > 3 for row in choice.table)
    assert any(row["admissible"] for row in choice.table)
    assert all(row["fn_in_cluster"] <= 0.02 for row in choice.table if row["admissible"])
