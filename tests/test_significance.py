"""Paired bootstrap and paired tests: constructed effects, nulls, coverage, weights."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from clusterneg.eval import UserItems, compare_metric, paired_bootstrap, paired_test
from clusterneg.eval.metrics import ranking_metrics


def test_constant_shift_is_exact() -> None:
    # b = a + 0.1 for every user: every resample has mean diff 0.1 -> CI is the point 0.1
    a = np.linspace(0.1, 0.5, 50)
    r = paired_bootstrap(a, a + 0.1, n_boot=300)
    assert r["mean_diff"] == pytest.approx(0.1)
    assert r["rel_diff"] == pytest.approx(0.1 / 0.3)  # mean of a = 0.3
    assert r["ci_low"] == pytest.approx(0.1) and r["ci_high"] == pytest.approx(0.1)
    assert r["p_value"] == pytest.approx(2 / 301)  # 2 * (0 + 1) / (300 + 1)
    assert r["n"] == 50


def test_large_effect_ci_contains_true_diff_and_p_small() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(2000)
    b = a + 0.05 + rng.normal(0, 0.1, 2000)  # true mean diff 0.05
    r = paired_bootstrap(a, b, n_boot=1000, seed=1)
    assert r["ci_low"] < 0.05 < r["ci_high"]
    assert r["ci_high"] - r["ci_low"] < 0.02  # ~ 2 * 1.96 * 0.1 / sqrt(2000) = 0.0088
    assert r["p_value"] < 0.01
    t = paired_test(a, b, "t")
    w = paired_test(a, b, "wilcoxon")
    assert t["p_value"] < 1e-10 and w["p_value"] < 1e-10


def test_symmetric_null_has_large_p() -> None:
    # differences +x and -x in equal numbers: observed mean diff is exactly 0
    rng = np.random.default_rng(2)
    x = rng.random(500)
    a = rng.random(1000)
    b = a + np.concatenate([x, -x])
    r = paired_bootstrap(a, b, n_boot=1000)
    assert r["mean_diff"] == pytest.approx(0.0, abs=1e-12)
    assert r["ci_low"] < 0 < r["ci_high"]
    assert r["p_value"] > 0.5
    assert paired_test(a, b, "t")["p_value"] > 0.99


def test_interval_coverage_is_near_nominal() -> None:
    # 150 independent experiments with true diff 0.2: a 90% interval should cover ~90%
    rng = np.random.default_rng(3)
    covered = 0
    for seed in range(150):
        d = rng.exponential(0.2, 300)  # skewed, mean 0.2
        r = paired_bootstrap(np.zeros(300), d, n_boot=400, seed=seed, alpha=0.10)
        covered += r["ci_low"] <= 0.2 <= r["ci_high"]
    assert 0.82 <= covered / 150 <= 0.97


def test_nan_users_dropped_pairwise() -> None:
    a = np.array([0.1, np.nan, 0.3, 0.5])
    b = np.array([0.2, 0.9, np.nan, 0.7])
    r = paired_bootstrap(a, b, n_boot=50)
    assert r["n"] == 2 and r["mean_diff"] == pytest.approx(0.15)
    assert paired_test(a, b)["n"] == 2
    with pytest.raises(ValueError):
        paired_bootstrap(np.array([np.nan]), np.array([1.0]))


def test_paired_test_matches_scipy_and_identical_runs() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(100), rng.random(100)
    assert paired_test(a, b, "t")["p_value"] == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert paired_test(a, b, "wilcoxon")["p_value"] == pytest.approx(stats.wilcoxon(b - a).pvalue)
    assert paired_test(a, a, "wilcoxon")["p_value"] == 1.0
    with pytest.raises(ValueError):
        paired_test(a, b, "anova")


def test_weighted_bootstrap_and_compare_metric_for_pooled_hr() -> None:
    # Two runs over the same users; hr@K is pooled, so compare_metric must weight by targets.
    rng = np.random.default_rng(5)
    n_users, n_items = 60, 100
    users = rng.integers(0, n_users, 300)
    t = UserItems.from_pairs(users, rng.integers(0, n_items, 300), n_users)
    lists = [np.stack([rng.permutation(n_items)[:20] for _ in range(n_users)]) for _ in (0, 1)]
    base, other = (ranking_metrics(x, t.indptr, t.indices, ks=(20,)) for x in lists)
    for name in ("hr@20", "recall@20", "ndcg@20", "mrr"):
        r = compare_metric(base, other, name, n_boot=200)
        assert r["mean_diff"] == pytest.approx(other.summary[name] - base.summary[name])
        assert r["ci_low"] <= r["mean_diff"] <= r["ci_high"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros(3), np.zeros(3), n_boot=0)
