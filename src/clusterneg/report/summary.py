"""Turn a comparison's runs into what the report says: means, changes, real differences.

- :func:`summarize`: mean and std over seeds of every number in each run's ``metrics``,
  ``exposure`` and ``train`` blocks, per sampler (the ``summary`` of ``results.json``).
- :func:`relative_change`: ``mean(sampler) / mean(in-batch) - 1`` per metric.
- :func:`significance`: per sampler and ranking metric, a paired bootstrap over users of
  the seed-averaged per-user values against ``in-batch``; "real" when the 95% interval of
  the difference excludes 0.
- :func:`compare_runs`: all of the above in one :class:`Comparison`, plus the paired test of
  ``cluster-goobs`` against its closest competitor on the verdict metric.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterneg.eval.significance import paired_bootstrap
from clusterneg.report.format import higher_is_better
from clusterneg.report.inputs import BASELINE, METHOD, PerUser, order_samplers

_SECTIONS = ("metrics", "exposure", "train")
TESTED_METRICS: tuple[str, ...] = ("hr@50", "hr@100", "recall@50", "ndcg@10", "mrr")
"""Ranking metrics that get a paired test by default (exposure and speed have no per-user
value, so they get a relative change only)."""

Summary = dict[str, dict[str, dict[str, float]]]


def _numbers(run: Mapping[str, Any]) -> dict[str, float]:
    """The run's numeric values from metrics, exposure and train, flattened."""
    out: dict[str, float] = {}
    for section in _SECTIONS:
        for key, val in (run.get(section) or {}).items():
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                continue
            if key in out:
                raise ValueError(f"metric {key!r} appears in more than one of {_SECTIONS}")
            out[key] = float(val)
    return out


def summarize(runs: Sequence[Mapping[str, Any]]) -> Summary:
    """Mean and sample std (ddof=1; 0 for a single seed) over seeds, per sampler and metric.

    Args:
        runs: ``results.json`` runs: dicts with ``sampler`` and the ``metrics``,
            ``exposure`` and ``train`` blocks (non-numeric values are skipped).

    Returns:
        ``{sampler: {metric: {"mean", "std", "n"}}}``, samplers in the schema's order.
        NaN values are left out of a metric's mean (``n`` counts the rest).

    References:
        Ji et al., arXiv 2607.00448, "Reported results" (HR@50 relative to in-batch).

    Example:
        >>> runs = [{"sampler": "in-batch", "metrics": {"hr@50": v}} for v in (0.2, 0.4)]
        >>> s = summarize(runs)["in-batch"]["hr@50"]
        >>> round(s["mean"], 6), round(s["std"], 6), s["n"]
        (0.3, 0.141421, 2)
    """
    values: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        per = values.setdefault(str(run["sampler"]), {})
        for key, val in _numbers(run).items():
            per.setdefault(key, []).append(val)
    out: Summary = {}
    for sampler in order_samplers(list(values)):
        out[sampler] = {}
        for key, vals in values[sampler].items():
            x = np.asarray([v for v in vals if not math.isnan(v)], dtype=np.float64)
            mean = float(x.mean()) if len(x) else float("nan")
            std = float(x.std(ddof=1)) if len(x) > 1 else 0.0
            out[sampler][key] = {"mean": mean, "std": std, "n": len(x)}
    return out


def relative_change(summary: Summary, baseline: str = BASELINE) -> dict[str, dict[str, float]]:
    """``mean / baseline mean - 1`` per sampler and metric (NaN without a baseline value).

    Example:
        >>> s = {"in-batch": {"hr@50": {"mean": 0.2}}, "goobs": {"hr@50": {"mean": 0.25}}}
        >>> round(relative_change(s)["goobs"]["hr@50"], 6)
        0.25
    """
    base = summary.get(baseline, {})
    out: dict[str, dict[str, float]] = {}
    for sampler, metrics in summary.items():
        out[sampler] = {}
        for key, stats in metrics.items():
            b = base.get(key, {}).get("mean", float("nan"))
            ok = not (math.isnan(b) or b == 0)
            out[sampler][key] = stats["mean"] / b - 1 if ok else float("nan")
    return out


def paired_values(per_user: PerUser, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-user values and weights whose weighted mean is metric ``name``.

    ``hr@K`` is pooled over test interactions, so it is ``hits@K / n_targets`` weighted by
    ``n_targets`` (as :meth:`clusterneg.eval.MetricResult.paired_values`); other metrics are
    plain means.

    Example:
        >>> v, w = paired_values({"hits@2": np.array([1., 0.]), "n_targets": np.array([2., 1.])},
        ...                      "hr@2")
        >>> v.tolist(), w.tolist()
        ([0.5, 0.0], [2.0, 1.0])
    """
    weights = per_user.get("n_targets")
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if name in per_user:
        vals = np.asarray(per_user[name], dtype=np.float64)
        return vals, (w if name.startswith("hr@") else None)
    if name.startswith("hr@") and "hits@" + name[3:] in per_user and w is not None:
        hits = np.asarray(per_user["hits@" + name[3:]], dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(w > 0, hits / w, np.nan), w
    raise KeyError(f"no per-user values for {name!r}; have {sorted(per_user)}")


def seed_average(per_seed: Sequence[PerUser], name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Average one metric's per-user values over seeds (NaN-aware); weights must agree.

    Args:
        per_seed: one :data:`PerUser` per seed, same users in the same order.
        name: metric name.

    Returns:
        float64 [U] mean over seeds (NaN where every seed is NaN) and the weights.
    """
    if not per_seed:
        raise ValueError(f"no seeds to average for {name!r}")
    pairs = [paired_values(p, name) for p in per_seed]
    shapes = {v.shape for v, _ in pairs}
    if len(shapes) != 1:
        raise ValueError(f"{name}: seeds have different numbers of users {sorted(shapes)}")
    w0 = pairs[0][1]
    if any(w is not None and w0 is not None and not np.array_equal(w, w0) for _, w in pairs):
        raise ValueError(f"{name}: seeds have different targets per user")
    stack = np.stack([v for v, _ in pairs])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN users stay NaN
        return np.nanmean(stack, axis=0), w0


def paired_compare(
    a: Sequence[PerUser], b: Sequence[PerUser], name: str, n_boot: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Paired bootstrap of ``b - a`` on metric ``name``, per-user values averaged over seeds.

    Returns :func:`clusterneg.eval.paired_bootstrap`'s keys plus ``base_mean`` (mean of
    ``a``), ``rel_ci_low`` / ``rel_ci_high`` (the interval relative to ``base_mean``) and
    ``real`` (1.0 when the interval excludes 0, else 0.0).

    References:
        Koehn, "Statistical significance tests for machine translation evaluation",
        EMNLP 2004 (paired bootstrap resampling).
    """
    va, wa = seed_average(a, name)
    vb, wb = seed_average(b, name)
    if va.shape != vb.shape:
        raise ValueError(f"{name}: runs evaluated {va.shape[0]} and {vb.shape[0]} users")
    if wa is not None and wb is not None and not np.array_equal(wa, wb):
        raise ValueError(f"{name}: the two samplers have different targets per user")
    res = paired_bootstrap(va, vb, n_boot=n_boot, seed=seed, weights=wa)
    keep = ~(np.isnan(va) | np.isnan(vb))
    w = np.ones_like(va) if wa is None else wa
    keep &= w > 0
    base = float((w[keep] * va[keep]).sum() / w[keep].sum())
    rel = (lambda x: x / base) if base != 0 else (lambda x: float("nan"))
    real = res["ci_low"] > 0 or res["ci_high"] < 0
    return {**res, "base_mean": base, "rel_ci_low": rel(res["ci_low"]),
            "rel_ci_high": rel(res["ci_high"]), "real": float(real)}


def significance(
    per_user: Mapping[str, Sequence[PerUser]],
    baseline: str = BASELINE,
    metrics: Sequence[str] = TESTED_METRICS,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Paired bootstrap of every sampler against ``baseline``, per metric.

    Args:
        per_user: sampler -> list over seeds of per-user arrays (same users everywhere).
        baseline: reference sampler.
        metrics: metrics to test; those missing from the arrays are skipped.
        n_boot: bootstrap resamples.
        seed: bootstrap seed (the same for every pair, so pairs are comparable).

    Returns:
        ``{sampler: {metric: paired_compare(...)}}`` for every sampler but the baseline;
        empty when the baseline has no per-user arrays.
    """
    if not per_user.get(baseline):
        return {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for sampler in order_samplers(list(per_user)):
        if sampler == baseline or not per_user[sampler]:
            continue
        out[sampler] = {}
        for name in metrics:
            try:
                out[sampler][name] = paired_compare(
                    per_user[baseline], per_user[sampler], name, n_boot, seed
                )
            except KeyError:
                continue
    return out


@dataclass
class Comparison:
    """What the report states, computed once for ``results.md`` and ``report.html``.

    Args:
        samplers: in display order.
        summary: see :func:`summarize`.
        relative: see :func:`relative_change`.
        significance: see :func:`significance` (empty without per-user arrays).
        runner_up: the method's closest competitor on ``verdict_metric`` with the paired
            test of method vs that sampler (``{"sampler", **paired_compare}``), or None.
        baseline, method, verdict_metric: the names the verdict is about.
    """

    samplers: list[str]
    summary: Summary
    relative: dict[str, dict[str, float]]
    significance: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    runner_up: dict[str, Any] | None = None
    baseline: str = BASELINE
    method: str = METHOD
    verdict_metric: str = "hr@50"

    def mean(self, sampler: str, metric: str) -> float:
        """Mean over seeds, NaN when absent."""
        return self.summary.get(sampler, {}).get(metric, {}).get("mean", float("nan"))

    def n_seeds(self) -> int:
        """Largest number of seeds any sampler ran."""
        ns = [s.get("n", 0) for m in self.summary.values() for s in m.values()]
        return int(max(ns, default=0))


def best_other(comp: Comparison, metric: str) -> str | None:
    """The sampler other than the method with the best mean on ``metric`` (None if none)."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    cands = [(sign * comp.mean(s, metric), s) for s in comp.samplers if s != comp.method]
    cands = [(v, s) for v, s in cands if not math.isnan(v)]
    return max(cands)[1] if cands else None


def compare_runs(
    results: Mapping[str, Any],
    per_user: Mapping[str, Sequence[PerUser]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    verdict_metric: str = "hr@50",
) -> Comparison:
    """Summary (recomputed from the runs when there are any), changes and paired tests.

    Args:
        results: ``results.json`` content (``runs`` and / or ``summary``).
        per_user: sampler -> per-seed per-user arrays, or None for no paired tests.
        n_boot: bootstrap resamples.
        seed: bootstrap seed.
        verdict_metric: the metric the verdict is about (HR@50 in the paper).

    Example:
        >>> runs = [{"sampler": s, "seed": 0, "metrics": {"hr@50": v}}
        ...         for s, v in (("in-batch", 0.2), ("cluster-goobs", 0.3))]
        >>> c = compare_runs({"runs": runs})
        >>> round(c.relative["cluster-goobs"]["hr@50"], 6)
        0.5
    """
    runs = results.get("runs") or []
    summary = summarize(runs) if runs else dict(results.get("summary") or {})
    comp = Comparison(
        order_samplers(list(summary)), summary, relative_change(summary),
        verdict_metric=verdict_metric,
    )
    if not per_user:
        return comp
    tested = tuple(dict.fromkeys((*TESTED_METRICS, verdict_metric)))
    comp.significance = significance(per_user, BASELINE, tested, n_boot, seed)
    rival = best_other(comp, verdict_metric)
    if rival and per_user.get(rival) and per_user.get(METHOD):
        try:
            test = paired_compare(per_user[rival], per_user[METHOD], verdict_metric, n_boot, seed)
            comp.runner_up = {"sampler": rival, **test}
        except KeyError:
            comp.runner_up = None
    return comp
