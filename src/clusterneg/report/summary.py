"""What a comparison says, computed from its runs: means, changes, real differences, the
verdict, the headroom, and how the runs were made.

- :func:`summarize`: mean and std over seeds of every number in each run's ``metrics``,
  ``exposure`` and ``train`` blocks, per sampler (the ``summary`` of ``results.json``).
- :func:`relative_change`: ``mean(sampler) / mean(in-batch) - 1`` per metric.
- :func:`significance`: per sampler and ranking metric, a paired bootstrap over users of
  the seed-averaged per-user values against ``in-batch``; "real" when the 95% interval of
  the difference excludes 0.
- :func:`compare_runs`: all of the above in one :class:`Comparison`, plus the paired test of
  ``cluster-goobs`` against its closest competitor on the verdict metric.
- :func:`verdict`: the one plain-language answer the comparison exists for. "Does
  ``cluster-goobs`` beat every other sampler on HR@50, and by how much?" The answer starts
  with "Yes", "No", or "Inconclusive" when the paired bootstrap interval of the change
  against the closest rival spans zero (the data cannot tell the two apart). It gives the
  method's value against the best other sampler and against ``in-batch`` (relative change,
  with the paired bootstrap interval over users when per-user arrays were given), and the
  top-100 exposure share of both.
- :func:`headroom`: how much any sampler could gain over in-batch, and how much of it each
  one takes. When the comparison includes the ``full`` sampler (the exact softmax over the
  whole catalog), the *headroom* on a metric is ``full / in-batch - 1`` and each sampler's
  *share closed* is its own gain over in-batch divided by the headroom (1 = as good as the
  exact softmax, > 1 = better than it, which a hardness-weighted objective can be). Where
  the headroom is about 0 (its paired interval includes 0, or it is under :data:`FLAT` when
  no interval is known), the exact softmax is no better than in-batch + logQ and no
  negative sampler can help there (:func:`headroom_sentence`).
- :func:`training_curves`, :func:`settings`, :func:`provenance_rows`: the facts of the
  "How this was made" section (the command, the settings, the versions and the training
  curves, so a reader can judge and rerun the comparison; issue 9, item 7), read from
  ``results.json``: ``provenance`` (see :mod:`clusterneg.provenance`), ``experiment``, and
  each run's ``config`` and ``train.curve``.

``results.md`` (:mod:`clusterneg.report.markdown`) and ``report.html``
(:mod:`clusterneg.report.html`) both render what this module computes, so they agree.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Loss" (sampled softmax as an estimate of the
    softmax over the corpus) and section "Reported results" (gains relative to in-batch).

Example:
    >>> runs = [{"sampler": s, "metrics": {"hr@50": v}} for s, v in
    ...         (("in-batch", 0.20), ("full", 0.24), ("cluster-goobs", 0.22))]
    >>> h = headroom(compare_runs({"runs": runs}))
    >>> round(h["headroom"], 3), round(h["samplers"]["cluster-goobs"]["share"], 2), h["flat"]
    (0.2, 0.5, False)
    >>> runs = [{"sampler": "in-batch", "seed": 0, "train": {"curve": [
    ...     {"epoch": 0, "loss": 2.0, "valid": 0.1}, {"epoch": 1, "loss": 1.5, "valid": 0.2}]}}]
    >>> training_curves({"runs": runs}, "valid")
    {'in-batch': {1: 0.1, 2: 0.2}}

How numbers are written
-----------------------

How metrics are named, which way is better, and how their numbers are printed.

Shared by ``results.md`` and ``report.html`` so both show the same columns and digits.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterneg.eval.significance import paired_bootstrap
from clusterneg.report.inputs import BASELINE, METHOD, PerUser, order_samplers
from clusterneg.samplers import spec_name

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
        best_vs: the sampler with the best mean on ``verdict_metric`` tested against every
            other sampler (``{"best": name, "metric": m, "tests": {other:
            paired_compare(other -> best)}}``), so "is the winner better than each of the
            others?" has an interval per rival; None without per-user arrays.
        vs_reference: every sampler tested against the exact softmax (``full``) on
            ``verdict_metric``, ``{sampler: paired_compare(full -> sampler)}``: whether a
            sampler goes beyond the ceiling of the corrected sampled softmax; empty without
            a ``full`` run or per-user arrays.
        rival_seeds: the method's change over its closest rival on ``verdict_metric``, seed
            by seed (:func:`per_seed_changes`; empty without runs).
        baseline, method, verdict_metric: the names the verdict is about.
    """

    samplers: list[str]
    summary: Summary
    relative: dict[str, dict[str, float]]
    significance: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    runner_up: dict[str, Any] | None = None
    best_vs: dict[str, Any] | None = None
    vs_reference: dict[str, dict[str, float]] = field(default_factory=dict)
    rival_seeds: list[float] = field(default_factory=list)
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


def method_spec(samplers: Sequence[str], method: str = METHOD) -> str:
    """The spec the verdict is about: ``method`` itself when it ran, else its first labelled
    spec in report order (``cluster-goobs@cached``), so a comparison of configurations still
    gets a verdict; never chosen by a test metric. ``method`` when no spec of it ran.

    Example:
        >>> method_spec(["in-batch", "cluster-goobs@cs", "cluster-goobs@r7"])
        'cluster-goobs@cs'
        >>> method_spec(["in-batch", "cluster-goobs", "cluster-goobs@cs"])
        'cluster-goobs'
    """
    if method in samplers:
        return method
    return next((s for s in samplers if spec_name(s) == method), method)


def _n_compared(comp: Comparison) -> int:
    """The method's spec and every sampler that is not a configuration of the method."""
    return 1 + sum(spec_name(s) != spec_name(comp.method) for s in comp.samplers)


def best_other(comp: Comparison, metric: str) -> str | None:
    """The best mean on ``metric`` among the samplers that are not the method (no spec of
    it: another configuration of the method is not its rival), or None."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    mine = spec_name(comp.method)
    cands = [(sign * comp.mean(s, metric), s) for s in comp.samplers if spec_name(s) != mine]
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
    order = order_samplers(list(summary))
    comp = Comparison(order, summary, relative_change(summary), method=method_spec(order),
                      verdict_metric=verdict_metric)
    rival = best_other(comp, verdict_metric)
    if rival and runs:
        comp.rival_seeds = per_seed_changes(runs, comp.method, rival, verdict_metric)
    if not per_user:
        return comp
    tested = tuple(dict.fromkeys((*TESTED_METRICS, verdict_metric)))
    comp.significance = significance(per_user, BASELINE, tested, n_boot, seed)
    if rival and per_user.get(rival) and per_user.get(comp.method):
        try:
            test = paired_compare(per_user[rival], per_user[comp.method], verdict_metric,
                                  n_boot, seed)
            comp.runner_up = {"sampler": rival, **test}
        except KeyError:
            comp.runner_up = None
    comp.best_vs = best_against_each(comp, per_user, verdict_metric, n_boot, seed)
    if comp.best_vs:
        comp.best_vs["per_seed"] = {
            other: per_seed_changes(runs, comp.best_vs["best"], other, verdict_metric)
            for other in comp.best_vs["tests"]}
    if per_user.get(REFERENCE):
        for s in comp.samplers:
            if s not in (REFERENCE, comp.baseline) and per_user.get(s):
                try:
                    comp.vs_reference[s] = paired_compare(
                        per_user[REFERENCE], per_user[s], verdict_metric, n_boot, seed)
                except KeyError:
                    continue
    return comp


def per_seed_changes(runs: Sequence[Mapping[str, Any]], sampler: str, other: str,
                     metric: str) -> list[float]:
    """``sampler``'s relative change over ``other`` on ``metric``, one per seed both ran
    (seed order), each from the two runs' own test values.

    The paired interval over users says how sure the mean change is for these trained
    models; it does not contain what changes from one training to the next (initialisation,
    batch order, and the epoch early stopping keeps: neighbouring epochs move a run's test
    HR@50 by up to 1% on amazon-3cat, ``bench/selection_noise.py``). Seeds that disagree in
    sign say the change is within that run-to-run noise.

    Example:
        >>> runs = [{"sampler": s, "seed": k, "metrics": {"hr@50": v}}
        ...         for s, k, v in (("a", 0, 0.11), ("b", 0, 0.10), ("a", 1, 0.10),
        ...                         ("b", 1, 0.10), ("a", 2, 0.3))]
        >>> [round(x, 6) for x in per_seed_changes(runs, "a", "b", "hr@50")]
        [0.1, 0.0]
    """
    def by_seed(name: str) -> dict[str, float]:
        return {str(r.get("seed")): _numbers(r).get(metric, math.nan)
                for r in runs if r.get("sampler") == name}

    mine, theirs = by_seed(sampler), by_seed(other)
    common = sorted(set(mine) & set(theirs), key=lambda k: (len(k), k))
    return [mine[k] / theirs[k] - 1.0 if theirs[k] else math.nan for k in common]


#: under the best-against-each table, in ``results.md`` and ``report.html`` alike
SEEDS_NOTE = ("Per seed: the change in each seed's own runs (test values). The interval over "
              "users does not contain what changes from one training to the next "
              "(initialisation, batch order, the epoch early stopping keeps); seeds that "
              "disagree in sign put the change within that noise.")


def seeds_cell(changes: Sequence[float]) -> str:
    """``"+1.7%, +2.1%, +0.5% (all 3 ahead)"``: per-seed changes and how many agree; empty
    for fewer than two seeds (one seed's change is the change itself).

    Example:
        >>> seeds_cell([0.017, -0.002, 0.005])
        '+1.7%, -0.2%, +0.5% (2 of 3 ahead)'
        >>> seeds_cell([0.017])
        ''
    """
    vals = [c for c in changes if not math.isnan(c)]
    if len(vals) < 2:
        return ""
    ahead = sum(c > 0 for c in vals)
    agree = f"all {len(vals)} ahead" if ahead == len(vals) else f"{ahead} of {len(vals)} ahead"
    return ", ".join(fmt_pct(c) for c in vals) + f" ({agree})"


def best_vs_rows(comp: Comparison) -> tuple[str, list[list[str]]]:
    """The heading and table rows (against, the best's value, change, interval, word, per
    seed) of :attr:`Comparison.best_vs`, most competitive rival first; ``("", [])`` without
    it. One source for ``results.md`` and ``report.html``."""
    res = comp.best_vs
    if not res:
        return "", []
    metric, best = res["metric"], res["best"]
    per_seed = res.get("per_seed") or {}
    rows = []
    for other, t in sorted(res["tests"].items(), key=lambda kv: -kv[1]["base_mean"]):
        rows.append([other, fmt_value(metric, comp.mean(best, metric)), fmt_pct(t["rel_diff"]),
                     f"{fmt_pct(t['rel_ci_low'])} to {fmt_pct(t['rel_ci_high'])}",
                     "real" if t.get("real") else "within noise",
                     seeds_cell(per_seed.get(other, []))])
    return f"{best} (best {metric_label(metric)}) against each other sampler", rows


def best_against_each(
    comp: Comparison, per_user: Mapping[str, Sequence[PerUser]], metric: str,
    n_boot: int = 1000, seed: int = 0,
) -> dict[str, Any] | None:
    """The best sampler on ``metric`` against every other one, each a paired test over
    users (per-user values averaged over seeds), or None when fewer than two samplers have
    per-user arrays.

    Example:
        >>> import numpy as np
        >>> users = np.arange(400)
        >>> def pu(p):
        ...     return [{"users": users, metric: (np.arange(400) % 100 < p).astype(float)}]
        >>> metric = "hr@50"
        >>> per_user = {"in-batch": pu(20), "goobs": pu(22), "cluster-goobs": pu(30)}
        >>> runs = [{"sampler": s, "metrics": {metric: float(v[0][metric].mean())}}
        ...         for s, v in per_user.items()]
        >>> c = compare_runs({"runs": runs})
        >>> res = best_against_each(c, per_user, metric, n_boot=200)
        >>> res["best"], sorted(res["tests"])
        ('cluster-goobs', ['goobs', 'in-batch'])
        >>> round(res["tests"]["goobs"]["rel_diff"], 4)
        0.3636
    """
    sign = 1.0 if higher_is_better(metric) else -1.0
    have = [s for s in comp.samplers if per_user.get(s) and not math.isnan(comp.mean(s, metric))]
    if len(have) < 2:
        return None
    best = max(have, key=lambda s: sign * comp.mean(s, metric))
    tests = {}
    for other in have:
        if other == best:
            continue
        try:
            tests[other] = paired_compare(per_user[other], per_user[best], metric, n_boot, seed)
        except KeyError:
            continue
    return {"best": best, "metric": metric, "tests": tests} if tests else None


# --- The verdict ---------------------------------------------------------------------------


def _interval(test: dict[str, float] | None) -> str:
    """`` (95% CI +1.1% to +7.2% over users: real)`` or empty without a test."""
    if not test:
        return ""
    word = "real" if test.get("real") else "within noise"
    lo, hi = fmt_pct(test.get("rel_ci_low")), fmt_pct(test.get("rel_ci_high"))
    return f" (95% CI {lo} to {hi} over users: {word})"


def _versus_baseline(comp: Comparison, metric: str) -> str:
    """Clause on the method relative to the baseline, or empty if there is no baseline."""
    if comp.baseline not in comp.summary or is_missing(comp.mean(comp.baseline, metric)):
        return ""
    rel = comp.relative.get(comp.method, {}).get(metric)
    test = comp.significance.get(comp.method, {}).get(metric)
    return f"; {fmt_pct(rel)} relative to {comp.baseline}{_interval(test)}"


def _exposure(comp: Comparison) -> str:
    """Sentence comparing the top-100 exposure share of the method and the baseline."""
    m, b = comp.mean(comp.method, "top100_share"), comp.mean(comp.baseline, "top100_share")
    if is_missing(m) or is_missing(b) or comp.baseline not in comp.summary:
        return ""
    word = "lower than" if m < b else ("higher than" if m > b else "equal to")
    digits = 1 if f"{m:.1%}" != f"{b:.1%}" else 2  # "9.07% ... lower than 9.14%", not 9.1%
    return (
        f" Top-100 exposure share: {m:.{digits}%} for {comp.method}, {word} {b:.{digits}%} for "
        f"{comp.baseline}."
    )


def _spans_zero(test: dict[str, float] | None) -> bool:
    """True when a paired test's 95% interval of the relative change contains 0."""
    if not test:
        return False
    lo, hi = test.get("rel_ci_low"), test.get("rel_ci_high")
    if is_missing(lo) or is_missing(hi):
        return False
    return lo <= 0 <= hi


def verdict(comp: Comparison) -> str:
    """One or two sentences answering whether the method beats every other sampler.

    Args:
        comp: the comparison (see :func:`clusterneg.report.summary.compare_runs`).

    Returns:
        Text starting with ``"Yes:"``, ``"No:"``, ``"Inconclusive:"`` (the interval
        against the closest rival spans zero) or ``"No verdict:"``.

    References:
        Ji et al., arXiv 2607.00448, "Reported results" (+55.6% HR@50 over in-batch; top-100
        exposure share 50% -> 32%).

    Example:
        >>> from clusterneg.report.summary import compare_runs
        >>> runs = [{"sampler": s, "metrics": {"hr@50": v}}
        ...         for s, v in (("in-batch", 0.2), ("cluster-goobs", 0.3))]
        >>> verdict(compare_runs({"runs": runs}))[:4]
        'Yes:'

        With several seeds it says how each seed's own runs compare (an interval over users
        cannot show run-to-run noise):

        >>> runs = [{"sampler": s, "seed": k, "metrics": {"hr@50": v}}
        ...         for s, k, v in (("in-batch", 0, 0.2), ("in-batch", 1, 0.2),
        ...                         ("cluster-goobs", 0, 0.3), ("cluster-goobs", 1, 0.19))]
        >>> verdict(compare_runs({"runs": runs})).split("; ")[1]
        'per seed +50.0%, -5.0% (1 of 2 ahead).'
    """
    metric, method = comp.verdict_metric, comp.method
    label = metric_label(metric)
    if method not in comp.summary:
        return f"No verdict: {method} was not among the samplers run."
    mine = comp.mean(method, metric)
    rival = best_other(comp, metric)
    if is_missing(mine) or rival is None:
        return f"No verdict: no {label} for {method} and at least one other sampler."
    theirs = comp.mean(rival, metric)
    better = mine > theirs if higher_is_better(metric) else mine < theirs
    margin = mine / theirs - 1 if theirs else float("nan")
    n_seeds = comp.n_seeds()
    seeds = f" over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    runner = comp.runner_up if comp.runner_up and comp.runner_up["sampler"] == rival else None
    if _spans_zero(runner):
        head = (
            f"Inconclusive: {method} has {label} {fmt_value(metric, mine)}{seeds} against "
            f"{fmt_value(metric, theirs)} for the closest rival {rival} ({fmt_pct(margin)}), "
            f"but the interval spans zero{_interval(runner)}"
        )
    elif better:
        head = (
            f"Yes: {method} has the best {label} of the {_n_compared(comp)} samplers{seeds}, "
            f"{fmt_value(metric, mine)}, {fmt_pct(margin)} over the runner-up {rival} at "
            f"{fmt_value(metric, theirs)}{_interval(runner)}"
        )
    else:
        head = (
            f"No: {method} has {label} {fmt_value(metric, mine)}{seeds}, {fmt_pct(margin)} "
            f"against the best sampler {rival} at {fmt_value(metric, theirs)}"
            f"{_interval(runner)}"
        )
    if per_seed := seeds_cell(comp.rival_seeds):
        head += f"; per seed {per_seed}"
    versus = _versus_baseline(comp, metric) if rival != comp.baseline else ""
    return head + versus + "." + _exposure(comp)


# --- Headroom ------------------------------------------------------------------------------


REFERENCE = "full"
FLAT = 0.01  # |headroom| below this counts as none when no interval is known


def headroom(comp: Comparison, metric: str = "hr@50",
             reference: str = REFERENCE) -> dict[str, Any] | None:
    """The headroom on ``metric`` and each sampler's gain and share of it (None without a
    ``reference`` run).

    Returns:
        ``{"metric", "reference", "headroom", "ci_low", "ci_high", "flat", "samplers":
        {name: {"gain", "share", "vs_reference"}}}``; ``ci_*`` are relative to in-batch
        (NaN when no per-user values were tested); ``share`` is NaN where the headroom is
        flat; ``vs_reference`` is the sampler's change against the exact softmax, with
        ``ci_low`` / ``ci_high`` (relative to it, NaN without per-user values) and ``real``
        (the interval excludes 0).
    """
    h = comp.relative.get(reference, {}).get(metric)
    if h is None or math.isnan(h):
        return None
    test = comp.significance.get(reference, {}).get(metric) or {}
    lo, hi = test.get("rel_ci_low", math.nan), test.get("rel_ci_high", math.nan)
    flat = (lo <= 0 <= hi) if test else abs(h) < FLAT
    rows = {}
    ref = comp.mean(reference, metric)
    for s in comp.samplers:
        if s in (comp.baseline, reference):
            continue
        gain = comp.relative.get(s, {}).get(metric, math.nan)
        vs = {"change": comp.mean(s, metric) / ref - 1 if ref else math.nan,
              "ci_low": math.nan, "ci_high": math.nan, "real": False}
        t = comp.vs_reference.get(s) if metric == comp.verdict_metric else None
        if t:
            vs.update(ci_low=t["rel_ci_low"], ci_high=t["rel_ci_high"], real=bool(t["real"]))
        gain_test = comp.significance.get(s, {}).get(metric) or {}
        rows[s] = {"gain": gain, "share": math.nan if flat or h == 0 else gain / h,
                   "vs_reference": vs,
                   "gain_real": bool(gain_test.get("real")) and gain > 0}
    return {"metric": metric, "reference": reference, "headroom": h, "ci_low": lo,
            "ci_high": hi, "flat": bool(flat), "samplers": rows}


def headroom_sentence(h: dict[str, Any], baseline: str = "in-batch") -> str:
    """One plain sentence on the headroom (what a reader should conclude).

    Where the headroom is flat but a sampler still beats the baseline with an interval above
    0, the sentence says so instead of "no sampler can help": that sampler optimises
    another objective than the exact softmax.

    Example:
        >>> h = {"metric": "hr@50", "headroom": 0.004, "ci_low": -0.01, "ci_high": 0.02,
        ...      "flat": True, "reference": "full", "samplers": {}}
        >>> headroom_sentence(h)[:48]
        'No headroom: the exact softmax (full) is +0.4% ['
        >>> h["samplers"] = {"goobs": {"gain_real": False},
        ...                  "cluster-goobs": {"gain_real": True}}
        >>> print(headroom_sentence(h).split("; ")[1])  # doctest: +NORMALIZE_WHITESPACE
        yet cluster-goobs beats in-batch with an interval above 0, so it optimises another
        objective than the exact softmax.
    """
    label = metric_label(h["metric"])
    ci = "" if math.isnan(h["ci_low"]) else " " + fmt_ci(h["ci_low"], h["ci_high"])
    size = f"{fmt_pct(h['headroom'])}{ci} on {label} over {baseline}"
    if h["flat"]:
        beaters = [s for s, row in h.get("samplers", {}).items() if row.get("gain_real")]
        if beaters:
            names = ", ".join(beaters)
            verb, it = ("beats", "it optimises") if len(beaters) == 1 else ("beat", "they optimise")
            return (f"No measurable headroom: the exact softmax ({h['reference']}) is {size}, "
                    f"so a sampler that only estimates the exact softmax better cannot help "
                    f"here; yet {names} {verb} {baseline} with an interval above 0, so {it} "
                    f"another objective than the exact softmax.")
        return (f"No headroom: the exact softmax ({h['reference']}) is {size}, so {baseline} + "
                f"logQ is already as good as the exact softmax here and no negative sampler can "
                f"help on this catalog at this batch size.")
    return (f"Headroom: the exact softmax ({h['reference']}) is {size}; the share column says "
            f"how much of it each sampler closes (1.0 = as good as the exact softmax).")


def headroom_rows(h: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The headroom table's cells, one row per sampler: (sampler, gain over in-batch,
    headroom, share closed, change against the exact softmax with its paired interval where
    per-user values were tested); the share is ``—`` where the headroom is flat.

    Example:
        >>> vs = {"change": -0.0833, "ci_low": -0.12, "ci_high": -0.05, "real": True}
        >>> headroom_rows({"headroom": 0.2, "samplers": {"goobs": {
        ...     "gain": 0.1, "share": 0.5, "vs_reference": vs}}})
        [('goobs', '+10.0%', '+20.0%', '0.50', '-8.3% [-12.0%, -5.0%]')]
    """
    return [(s, fmt_pct(row["gain"]), fmt_pct(h["headroom"]),
             "—" if math.isnan(row["share"]) else f"{row['share']:.2f}",
             _vs_reference_cell(row.get("vs_reference")))
            for s, row in h["samplers"].items()]


def _vs_reference_cell(vs: dict[str, Any] | None) -> str:
    if not vs or math.isnan(vs["change"]):
        return "—"
    ci = "" if math.isnan(vs["ci_low"]) else " " + fmt_ci(vs["ci_low"], vs["ci_high"])
    return fmt_pct(vs["change"]) + ci


def beyond_reference_sentence(h: dict[str, Any]) -> str:
    """The samplers whose paired interval against the exact softmax lies above 0 (they go
    past the ceiling of the corrected sampled softmax: the objective they optimise differs
    from it), or those shown not to reach it; "" when no interval excludes 0.

    Example:
        >>> vs = {"change": 0.02, "ci_low": 0.005, "ci_high": 0.035, "real": True}
        >>> beyond_reference_sentence({"metric": "hr@50", "reference": "full",
        ...     "samplers": {"cluster-goobs": {"vs_reference": vs}}})
        'Beyond the exact softmax (full) on HR@50: cluster-goobs +2.0% [+0.5%, +3.5%].'
    """
    above, below = [], []
    for s, row in h["samplers"].items():
        vs = row.get("vs_reference") or {}
        if vs.get("real"):
            (above if vs["ci_low"] > 0 else below).append(f"{s} {_vs_reference_cell(vs)}")
    label, ref = metric_label(h["metric"]), h["reference"]
    out = []
    if above:
        out.append(f"Beyond the exact softmax ({ref}) on {label}: {', '.join(above)}.")
    if below:
        out.append(f"Below the exact softmax ({ref}) on {label}: {', '.join(below)}.")
    return " ".join(out)


# --- How this was made ---------------------------------------------------------------------


def training_curves(results: Mapping[str, Any], key: str) -> dict[str, dict[int, float]]:
    """sampler -> {epoch (1-based): value} for the first seed of each sampler."""
    out: dict[str, dict[int, float]] = {}
    for run in results.get("runs") or []:
        curve = (run.get("train") or {}).get("curve") or []
        if run.get("sampler") in out or not curve:
            continue
        points = {int(p["epoch"]) + 1: float(p[key]) for p in curve
                  if p.get(key) is not None}
        if points:
            out[run["sampler"]] = points
    return out


def settings(results: Mapping[str, Any]) -> dict[str, Any]:
    """The settings shared by the runs: experiment, model, and training (first run); a
    setting tuned per sampler (temperature, learning rate) reads "tuned per sampler"."""
    runs = results.get("runs") or []
    config = (runs[0].get("config") or {}) if runs else {}
    parts = {}
    for part, skip in (("model", ()), ("train", ("sampler", "sampler_options", "seed"))):
        first = {k: v for k, v in (config.get(part) or {}).items() if k not in skip}
        parts[part] = {k: (v if all(((r.get("config") or {}).get(part) or {}).get(k) == v
                                    for r in runs) else "tuned per sampler")
                       for k, v in first.items()}
    return {"experiment": results.get("experiment") or config.get("experiment") or {}, **parts}


def tuning_rows(results: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """Per tuned sampler: (sampler, trials, chosen temperature, learning rate, options,
    validation metric of the chosen trial / of the defaults (trial 0)). Empty when no sampler
    had more than one trial (``compare --budget 1``).

    Example:
        >>> tuning = [{"temperature": 0.2, "lr": 0.002, "options": {}, "valid": 0.14},
        ...           {"temperature": 0.1, "lr": 0.005, "options": {"n": 8}, "valid": 0.15}]
        >>> tuning_rows({"runs": [{"sampler": "x", "config": {"tuning": tuning}}]})
        [('x', '2', '0.1', '0.005', '{"n": 8}', '0.1500 / 0.1400')]
    """
    out, seen = [], set()
    for run in results.get("runs") or []:
        trials = (run.get("config") or {}).get("tuning") or []
        if run.get("sampler") in seen or len(trials) < 2:
            continue
        seen.add(run["sampler"])
        best = max(trials, key=lambda t: np.nan_to_num(t.get("valid", math.nan), nan=-1.0))
        lr = best.get("lr")
        out.append((run["sampler"], str(len(trials)), f"{best['temperature']:g}",
                    "-" if lr is None else f"{lr:g}",
                    json.dumps(best.get("options") or {}, sort_keys=True),
                    f"{best['valid']:.4f} / {trials[0]['valid']:.4f}"))
    return out


def provenance_rows(prov: Mapping[str, Any], results: Mapping[str, Any]) -> list[tuple[str, str]]:
    libs = ", ".join(f"{k} {v}" for k, v in (prov.get("libraries") or {}).items())
    rows = [("command", " ".join(prov.get("argv") or []) or "-"),
            ("clusterneg", f"{prov.get('clusterneg', '-')} (git {prov.get('git_commit') or '-'})"),
            ("libraries", libs or "-"), ("platform", str(prov.get("platform", "-"))),
            ("dataset", f"{results.get('dataset', '-')} (fingerprint "
                        f"{prov.get('dataset_fingerprint', '-')})"),
            ("clusters (resolved k)", str(prov.get("n_clusters", results.get("n_clusters")))),
            ("threads / device", f"{prov.get('threads', '-')} / {prov.get('device', '-')}")]
    for part, values in settings(results).items():
        rows.append((part, json.dumps(values, sort_keys=True, default=str)))
    return rows


# --- How numbers are written -----------------------------------------------------------------

HEADLINE: tuple[str, ...] = (
    "hr@50",
    "hr@100",
    "recall@50",
    "ndcg@10",
    "mrr",
    "top100_share",
    "coverage@50",
    "examples_per_s",
)
"""Columns of the results table, in order."""

_LOWER_IS_BETTER = ("top100_share", "gini@", "seconds")
_NAMES = {
    "hr": "HR",
    "recall": "Recall",
    "ndcg": "NDCG",
    "mrr": "MRR",
    "top100_share": "Top-100 share",
    "coverage": "Coverage",
    "gini": "Gini",
    "tail_share": "Tail share",
    "tail_coverage": "Tail coverage",
    "examples_per_s": "Examples/s",
    "seconds": "Train seconds",
}


def metric_label(name: str) -> str:
    """Human name: ``hr@50`` -> ``HR@50``, ``top100_share`` -> ``Top-100 share``.

    Example:
        >>> metric_label("ndcg@10"), metric_label("examples_per_s"), metric_label("x@3")
        ('NDCG@10', 'Examples/s', 'x@3')
    """
    base, sep, k = name.partition("@")
    return _NAMES.get(base, base) + sep + k


def higher_is_better(name: str) -> bool:
    """False for metrics where smaller is the good direction (top-100 share, Gini, time)."""
    return not any(name.startswith(p) for p in _LOWER_IS_BETTER)


def is_missing(x: float | None) -> bool:
    """True for None and NaN."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_value(name: str, x: float | None) -> str:
    """A metric value: throughput as a grouped integer, time with one decimal, else 4 digits.

    Example:
        >>> fmt_value("examples_per_s", 12345.6), fmt_value("hr@50", 0.29051)
        ('12,346', '0.2905')
        >>> fmt_value("mrr", None)
        '—'
    """
    if is_missing(x):
        return "—"
    if name == "examples_per_s":
        return f"{x:,.0f}"
    if name == "seconds":
        return f"{x:,.1f}"
    return f"{x:.4f}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """A signed relative change in percent: ``0.043`` -> ``+4.3%``, NaN -> ``—``.

    Example:
        >>> fmt_pct(0.043), fmt_pct(-0.0049), fmt_pct(float("nan"))
        ('+4.3%', '-0.5%', '—')
    """
    if is_missing(x):
        return "—"
    return f"{100 * x:+.{digits}f}%"


def fmt_ci(low: float | None, high: float | None) -> str:
    """A relative interval as the tables print it: ``[+1.1%, +7.2%]``.

    Example:
        >>> fmt_ci(0.011, 0.072), fmt_ci(-0.0049, 0.02)
        ('[+1.1%, +7.2%]', '[-0.5%, +2.0%]')
    """
    return f"[{fmt_pct(low)}, {fmt_pct(high)}]"
