"""The one plain-language answer the comparison exists for, computed from the numbers.

"Does ``cluster-goobs`` beat every other sampler on HR@50, and by how much?" The answer
starts with "Yes", "No", or "Inconclusive" when the paired bootstrap interval of the change
against the closest rival spans zero (the data cannot tell the two apart). It gives the
method's value against the best other sampler and against ``in-batch`` (relative change,
with the paired bootstrap interval over users when per-user arrays were given), and the
top-100 exposure share of both.
"""

from __future__ import annotations

from clusterneg.report.format import fmt_pct, fmt_value, higher_is_better, is_missing, metric_label
from clusterneg.report.summary import Comparison, best_other


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
    return (
        f" Top-100 exposure share: {m:.1%} for {comp.method}, {word} {b:.1%} for "
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
            f"Yes: {method} has the best {label} of the {len(comp.samplers)} samplers{seeds}, "
            f"{fmt_value(metric, mine)}, {fmt_pct(margin)} over the runner-up {rival} at "
            f"{fmt_value(metric, theirs)}{_interval(runner)}"
        )
    else:
        head = (
            f"No: {method} has {label} {fmt_value(metric, mine)}{seeds}, {fmt_pct(margin)} "
            f"against the best sampler {rival} at {fmt_value(metric, theirs)}"
            f"{_interval(runner)}"
        )
    versus = _versus_baseline(comp, metric) if rival != comp.baseline else ""
    return head + versus + "." + _exposure(comp)
