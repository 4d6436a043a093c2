"""Cluster diagnostics on hand-built cases (false-negative rate, NMI, sizes) and against
brute-force enumeration (hardness), plus the auto rule."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from clusterneg.cluster import (
    AutoRule,
    category_agreement,
    category_labels,
    choose_n_clusters,
    cluster_sizes,
    content_hardness,
    diagnose,
    false_negative_rate,
    hardness,
    model_hardness,
    nmi,
)
from clusterneg.errors import ConfigError


def matrix(pairs: list[tuple[int, int]], n_users: int, n_items: int) -> sp.csr_matrix:
    u, i = zip(*pairs, strict=True)
    return sp.csr_matrix((np.ones(len(pairs)), (u, i)), shape=(n_users, n_items))


# Four items in two clusters {0, 1}, {2, 3}; user 0 likes 0 and 1, user 1 likes 0 and 2.
CLUSTERS = np.array([0, 0, 1, 1])
POSITIVES = matrix([(0, 0), (0, 1), (1, 0), (1, 2)], 2, 4)


def test_false_negative_rate_hand_case() -> None:
    # (u0, i0): the other item of {0,1} is item 1, a positive of u0 -> 1. (u0, i1): item 0 -> 1.
    # (u1, i0): item 1, not u1's -> 0. (u1, i2): item 3, not u1's -> 0. Mean 0.5.
    # Random: each user has 1 other positive among the 3 other items -> 1/3.
    fn = false_negative_rate(POSITIVES, CLUSTERS)
    assert fn["in_cluster"] == pytest.approx(0.5)
    assert fn["random"] == pytest.approx(1 / 3)
    assert fn["lift"] == pytest.approx(1.5)
    assert fn["pairs"] == 4


def test_false_negative_rate_skips_singletons_and_duplicates() -> None:
    dup = matrix([(0, 0), (0, 0), (0, 1), (1, 0), (1, 2)], 2, 4)  # a repeated pair
    assert false_negative_rate(dup, CLUSTERS) == false_negative_rate(POSITIVES, CLUSTERS)
    fn = false_negative_rate(POSITIVES, np.array([0, 0, 1, 2]))  # item 2 alone
    assert fn["pairs"] == 3 and fn["in_cluster"] == pytest.approx(2 / 3)
    with pytest.raises(ConfigError, match="item columns"):
        false_negative_rate(POSITIVES, np.array([0, 1]))


def test_one_cluster_has_the_random_rate() -> None:
    rng = np.random.default_rng(0)
    dense = sp.csr_matrix((rng.random((30, 40)) < 0.2).astype(float))
    fn = false_negative_rate(dense, np.zeros(40, np.int64))
    assert fn["in_cluster"] == pytest.approx(fn["random"])


def test_nmi_hand_cases() -> None:
    a = np.array([0, 0, 1, 1])
    assert nmi(a, a) == pytest.approx(1.0)
    assert nmi(a, np.array([5, 5, 2, 2])) == pytest.approx(1.0)  # label names do not matter
    assert nmi(a, np.array([0, 1, 0, 1])) == pytest.approx(0.0)
    # a = {0,0,1,1}, b = {0,0,0,1}: H(a) = ln 2, H(b) = H(3/4, 1/4), H(a,b) = H(1/2, 1/4, 1/4)
    b = np.array([0, 0, 0, 1])
    ha, hb = math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    hab = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert nmi(a, b) == pytest.approx((ha + hb - hab) / ((ha + hb) / 2))


def _nmi_brute(a: np.ndarray, b: np.ndarray) -> float:
    """Independent implementation: explicit sums over label pairs."""
    n = len(a)
    mi = 0.0
    for x in set(a):
        for y in set(b):
            pxy = np.mean((a == x) & (b == y))
            if pxy > 0:
                mi += pxy * math.log(pxy / (np.mean(a == x) * np.mean(b == y)))
    ent = lambda v: -sum(c / n * math.log(c / n) for c in np.unique(v, return_counts=True)[1])  # noqa: E731
    return mi / ((ent(a) + ent(b)) / 2)


def test_nmi_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        a, b = rng.integers(0, 4, 60), rng.integers(0, 6, 60)
        assert nmi(a, b) == pytest.approx(_nmi_brute(a, b), abs=1e-12)


def test_category_labels_and_agreement() -> None:
    cats = [["Office", "Pens", "Ballpoint"], ["Office", "Paper"], [], ["Toys"]]
    assert category_labels(cats, "first")[0].tolist() == [0, 0, -1, 1]
    assert category_labels(cats, "last")[1] == ["Ballpoint", "Paper", "Toys"]
    assert category_labels(cats, 1)[1] == ["Pens", "Paper", "Toys"]
    agree = category_agreement(np.array([0, 1, 1, 1]), cats, 1)
    assert agree["labelled_items"] == 3 and agree["purity"] == pytest.approx(2 / 3)
    assert category_agreement(np.array([0, 1, 2, 3]), cats, 1)["nmi"] == pytest.approx(1.0)
    assert category_agreement(np.zeros(4, int), None) is None
    with pytest.raises(ConfigError):
        category_labels(cats, "middle")


def test_cluster_sizes_counts_empty_and_tiny() -> None:
    s = cluster_sizes(np.array([0, 0, 0, 0, 0, 0, 2, 3, 3]), 5, tiny=3)
    assert s["sizes"] == [6, 0, 1, 2, 0]
    assert (s["min"], s["median"], s["max"], s["n_empty"], s["n_tiny"]) == (0, 1.0, 6, 2, 2)
    assert s["largest_share"] == pytest.approx(6 / 9)


def _hardness_brute(uv: np.ndarray, iv: np.ndarray, pairs: list[tuple[int, int]],
                    clusters: np.ndarray) -> dict[str, float]:
    """Enumerate every candidate negative for every pair (no closed forms)."""
    pos = {u: {i for uu, i in pairs if uu == u} for u, _ in pairs}
    acc: dict[str, list[float]] = {k: [] for k in ("in", "rnd", "in_tn", "rnd_tn")}
    for u, i in pairs:
        same = [j for j in range(len(iv)) if clusters[j] == clusters[i] and j != i]
        if not same:
            continue
        others = [j for j in range(len(iv)) if j != i]
        score = lambda js, u=u: float(np.mean([uv[u] @ iv[j] for j in js]))  # noqa: E731
        acc["in"].append(score(same))
        acc["rnd"].append(score(others))
        tn = [j for j in same if j not in pos[u]]
        if tn:
            acc["in_tn"].append(score(tn))
        rnd_tn = [j for j in others if j not in pos[u]]
        if rnd_tn:
            acc["rnd_tn"].append(score(rnd_tn))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()}


def test_hardness_matches_enumeration() -> None:
    rng = np.random.default_rng(5)
    n_users, n_items, d = 6, 12, 4
    uv, iv = rng.standard_normal((n_users, d)), rng.standard_normal((n_items, d))
    clusters = rng.integers(0, 3, n_items)
    clusters[11] = 3  # a singleton cluster: its pairs have no in-cluster negative
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 30),
                                                     rng.integers(0, n_items, 30),
                                                     strict=True)})
    got = hardness(uv, iv, matrix(pairs, n_users, n_items), clusters)
    want = _hardness_brute(uv, iv, pairs, clusters)
    assert got["in_cluster"] == pytest.approx(want["in"])
    assert got["random"] == pytest.approx(want["rnd"])
    assert got["in_cluster_true_neg"] == pytest.approx(want["in_tn"])
    assert got["random_true_neg"] == pytest.approx(want["rnd_tn"])
    assert got["hardness"] == pytest.approx(want["in"] - want["rnd"])


def test_content_hardness_is_hardness_with_item_vectors_as_users() -> None:
    rng = np.random.default_rng(6)
    emb = rng.standard_normal((10, 3))
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    clusters = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 2])
    pairs = [(j, j) for j in range(10)]  # "user" j = item j: score = cos(e_i, e_j)
    want = _hardness_brute(unit, unit, pairs, clusters)
    got = content_hardness(emb, matrix(pairs, 10, 10), clusters)
    assert got["in_cluster"] == pytest.approx(want["in"])
    assert got["hardness"] == pytest.approx(want["in"] - want["rnd"])


def test_in_cluster_negatives_are_harder_on_clustered_data() -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4, 8)) * 3
    clusters = np.repeat(np.arange(4), 25)
    emb = centres[clusters] + rng.standard_normal((100, 8))
    users = [(u, int(i)) for u in range(20) for i in rng.choice(100, 5, replace=False)]
    ui = matrix(users, 20, 100)
    d = diagnose(clusters, 4, user_items=ui, emb=emb, categories=[["x"]] * 100,
                 user_vecs=rng.standard_normal((20, 8)), item_vecs=emb)
    assert d["content_hardness"]["hardness"] > 0.5
    assert set(d) == {"sizes", "false_negatives", "content_hardness", "hardness", "categories"}


def test_auto_rule_grid_and_choice() -> None:
    # around sqrt(1000) = 31.6, capped at 1000 / 20 = 50 (300 is out of range)
    assert AutoRule(min_median_size=20).candidates(1000) == [8, 11, 16, 22, 32, 44]
    assert AutoRule(grid=(3, 5, 500)).candidates(100) == [3, 5]
    rng = np.random.default_rng(8)
    centres = rng.standard_normal((8, 16)) * 4
    labels = np.repeat(np.arange(8), 60)
    emb = (centres[labels] + rng.standard_normal((480, 16))).astype(np.float32)
    # each user likes 2 items of "their" blob and 8 random ones
    pairs = sorted({(u, int(i)) for u in range(80) for i in np.r_[
        rng.choice(np.flatnonzero(labels == u % 8), 2), rng.choice(480, 8)]})
    ui = matrix(pairs, 80, 480)
    rule = AutoRule(max_fn_lift=2.0, max_fn_in_cluster=0.05, min_median_size=20,
                    grid=(4, 6, 8, 12, 16, 24))
    choice = choose_n_clusters(emb, ui, rule=rule)
    for row in choice.table:
        assert row["admissible"] == (row["median_size"] >= 20 and (
            row["fn_lift"] <= 2.0 or row["fn_in_cluster"] <= 0.05))
    chosen = next(r for r in choice.table if r["k"] == choice.n_clusters)
    assert chosen["admissible"] and chosen["content_hardness"] == max(
        r["content_hardness"] for r in choice.table if r["admissible"])
    assert choice.table[0]["content_hardness"] < chosen["content_hardness"]
    assert f"n_clusters=auto: k={choice.n_clusters}, the hardest admissible" in choice.reason
    strict = choose_n_clusters(emb, ui, rule=AutoRule(max_fn_lift=1.0, max_fn_in_cluster=0.0,
                                                      grid=(2, 4, 8)))
    assert strict.n_clusters == 2  # nothing admissible -> the coarsest candidate
    assert strict.reason.startswith("n_clusters=auto: no candidate k (2, 4, 8) met the rule")
    no_users = choose_n_clusters(emb, None, rule=AutoRule(min_median_size=50, grid=(4, 8, 16)))
    assert no_users.n_clusters == 8  # size rule alone: median 60 at k=8, 30 at k=16


def test_hardness_brute_helper_covers_all_pairs() -> None:
    pairs = list(itertools.product(range(2), range(4)))
    out = _hardness_brute(np.ones((2, 1)), np.arange(4.0)[:, None], pairs, CLUSTERS)
    assert out["in"] == pytest.approx(np.mean([1, 0, 3, 2]))


def test_hardness_accepts_torch_tensors() -> None:
    import torch

    rng = np.random.default_rng(9)
    uv, iv = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))
    want = hardness(uv, iv, POSITIVES, CLUSTERS)
    got = hardness(torch.tensor(uv, requires_grad=True), torch.tensor(iv), POSITIVES, CLUSTERS)
    assert got["hardness"] == pytest.approx(want["hardness"], rel=1e-5)


def test_model_hardness_duck_typed() -> None:
    import torch

    rng = np.random.default_rng(10)
    uv, iv = rng.standard_normal((2, 3)), rng.standard_normal((4, 3))

    class Model:
        def item_embeddings(self) -> torch.Tensor:
            return torch.tensor(iv)

        def user_embeddings(self, idx: torch.Tensor) -> torch.Tensor:
            return torch.tensor(uv)[idx]

    got = model_hardness(Model(), POSITIVES, CLUSTERS, batch=1)
    assert got["hardness"] == pytest.approx(hardness(uv, iv, POSITIVES, CLUSTERS)["hardness"])
