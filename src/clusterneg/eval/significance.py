"""Is a difference between two runs real? Paired tests over the same evaluated users.

Two runs (e.g. ``in-batch`` and ``cluster-goobs``, same split, same seed) give per-user
metric arrays over the same users in the same order. Differences are always
``b - a``: ``a`` is the reference (baseline), ``b`` the challenger. Users with NaN in either
array (no target) are dropped pairwise.

- :func:`paired_bootstrap`: resample users with replacement; percentile confidence interval
  of the mean difference and a two-sided bootstrap p-value. With ``weights`` it compares
  weighted means, which is how the pooled ``hr@K`` is compared (per-user hit rate weighted
  by the user's number of targets; see ``MetricResult.paired_values``).
- :func:`paired_test`: paired t-test or Wilcoxon signed-rank test (scipy), unweighted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from clusterneg.eval.metrics import MetricResult

_BOOT_CELLS = 4_000_000  # resampled indices held in memory at once


def _paired(
    a: np.ndarray, b: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must be 1-D of the same length, got {a.shape} and {b.shape}")
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != a.shape:
        raise ValueError(f"weights shape {w.shape} differs from {a.shape}")
    keep = ~(np.isnan(a) | np.isnan(b)) & (w > 0)
    if not keep.any():
        raise ValueError("no user with a value in both runs")
    return a[keep], b[keep], w[keep]


def _boot_stats(d: np.ndarray, w: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Weighted mean of ``d`` over ``n_boot`` resamples of the users, in bounded chunks."""
    rng = np.random.default_rng(seed)
    n = len(d)
    chunk = max(1, _BOOT_CELLS // n)
    out = np.empty(n_boot, dtype=np.float64)
    for s in range(0, n_boot, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_boot - s), n))
        wi = w[idx]
        out[s : s + len(idx)] = (wi * d[idx]).sum(axis=1) / wi.sum(axis=1)
    return out


def paired_bootstrap(
    a_per_user: np.ndarray,
    b_per_user: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    weights: np.ndarray | None = None,
    alpha: float = 0.05,
) -> dict[str, float]:
    """Paired bootstrap over users of the (weighted) mean difference ``b - a``.

    Args:
        a_per_user: float [U] reference run's per-user metric (NaN = no target).
        b_per_user: float [U] challenger's per-user metric, same users, same order.
        n_boot: bootstrap resamples.
        seed: RNG seed.
        weights: optional float [U] user weights (``n_targets`` for pooled ``hr@K``).
        alpha: 1 - confidence level of the interval.

    Returns:
        ``mean_diff`` (b - a), ``rel_diff`` (mean_diff / mean of a; NaN when that is 0),
        ``ci_low``, ``ci_high`` (percentile interval), ``p_value`` (two-sided:
        ``2 * min(P*(diff <= 0), P*(diff >= 0))`` with add-one smoothing, at most 1) and
        ``n`` (users used).

    References:
        Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13 and 16;
        Koehn, "Statistical significance tests for machine translation evaluation",
        EMNLP 2004 (paired bootstrap resampling).

    Example:
        >>> a = np.array([0.1, 0.2, 0.3, 0.4]); b = a + 0.1
        >>> round(paired_bootstrap(a, b, n_boot=200)["mean_diff"], 6)
        0.1
    """
    if n_boot <= 0:
        raise ValueError(f"n_boot must be positive, got {n_boot}")
    a, b, w = _paired(a_per_user, b_per_user, weights)
    d = b - a
    mean_a = float((w * a).sum() / w.sum())
    mean_diff = float((w * d).sum() / w.sum())
    boots = _boot_stats(d, w, n_boot, seed)
    lo, hi = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    below = (np.count_nonzero(boots <= 0) + 1) / (n_boot + 1)
    above = (np.count_nonzero(boots >= 0) + 1) / (n_boot + 1)
    return {
        "mean_diff": mean_diff,
        "rel_diff": mean_diff / mean_a if mean_a != 0 else float("nan"),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p_value": float(min(1.0, 2 * min(below, above))),
        "n": float(len(d)),
    }


def paired_test(
    a_per_user: np.ndarray, b_per_user: np.ndarray, method: str = "t"
) -> dict[str, float]:
    """Paired t-test (``"t"``) or Wilcoxon signed-rank test (``"wilcoxon"``) of ``b - a``.

    Args:
        a_per_user: float [U] reference run's per-user metric (NaN = no target).
        b_per_user: float [U] challenger's per-user metric, same users, same order.
        method: ``"t"`` or ``"wilcoxon"``.

    Returns:
        ``statistic``, ``p_value`` (two-sided), ``mean_diff`` and ``n``. When every
        difference is zero the runs are identical on these users: p = 1.

    References:
        Smucker, Allan & Carterette, "A comparison of statistical significance tests for
        information retrieval evaluation", CIKM 2007.

    Example:
        >>> paired_test(np.zeros(5), np.zeros(5))["p_value"]
        1.0
    """
    if method not in ("t", "wilcoxon"):
        raise ValueError(f"method must be 't' or 'wilcoxon', got {method!r}")
    a, b, _ = _paired(a_per_user, b_per_user, None)
    d = b - a
    out = {"mean_diff": float(d.mean()), "n": float(len(d))}
    if not np.any(d != 0):
        return {**out, "statistic": 0.0, "p_value": 1.0}
    if method == "t":
        res = stats.ttest_rel(b, a)
    else:
        res = stats.wilcoxon(d)
    return {**out, "statistic": float(res.statistic), "p_value": float(res.pvalue)}


def compare_metric(
    base: MetricResult,
    other: MetricResult,
    name: str,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Paired bootstrap of summary metric ``name`` between two runs on the same users.

    ``hr@K`` is compared as a target-weighted mean, the rest as plain user means, so
    ``mean_diff`` equals ``other.summary[name] - base.summary[name]``.

    Args:
        base: reference run (e.g. ``in-batch``).
        other: challenger run, evaluated on the same users in the same order.
        name: summary metric, e.g. ``"hr@50"``, ``"ndcg@10"``, ``"mrr"``.
        n_boot: bootstrap resamples.
        seed: RNG seed.
    """
    a, wa = base.paired_values(name)
    b, wb = other.paired_values(name)
    if wa is not None and wb is not None and not np.array_equal(wa, wb):
        raise ValueError(f"{name}: the two runs have different targets per user")
    return paired_bootstrap(a, b, n_boot=n_boot, seed=seed, weights=wa)
