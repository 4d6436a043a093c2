"""Headroom: how much any sampler could gain over in-batch, and how much of it each one takes.

When the comparison includes the ``full`` sampler (the exact softmax over the whole catalog),
the *headroom* on a metric is ``full / in-batch - 1`` and each sampler's *share closed* is
its own gain over in-batch divided by the headroom (1 = as good as the exact softmax, > 1 =
better than it, which a hardness-weighted objective can be). Where the headroom is about 0
(its paired interval includes 0, or it is under :data:`FLAT` when no interval is known), the
exact softmax is no better than in-batch + logQ and no negative sampler can help there.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Loss" (sampled softmax as an estimate of the
    softmax over the corpus) and section "Reported results" (gains relative to in-batch).

Example:
    >>> from clusterneg.report.summary import compare_runs
    >>> runs = [{"sampler": s, "metrics": {"hr@50": v}} for s, v in
    ...         (("in-batch", 0.20), ("full", 0.24), ("cluster-goobs", 0.22))]
    >>> h = headroom(compare_runs({"runs": runs}))
    >>> round(h["headroom"], 3), round(h["samplers"]["cluster-goobs"]["share"], 2), h["flat"]
    (0.2, 0.5, False)
"""

from __future__ import annotations

import math
from typing import Any

from clusterneg.report.format import fmt_pct, metric_label
from clusterneg.report.summary import Comparison

REFERENCE = "full"
FLAT = 0.01  # |headroom| below this counts as none when no interval is known


def headroom(comp: Comparison, metric: str = "hr@50",
             reference: str = REFERENCE) -> dict[str, Any] | None:
    """The headroom on ``metric`` and each sampler's gain and share of it (None without a
    ``reference`` run).

    Returns:
        ``{"metric", "reference", "headroom", "ci_low", "ci_high", "flat", "samplers":
        {name: {"gain", "share"}}}``; ``ci_*`` are relative to in-batch (NaN when no
        per-user values were tested); ``share`` is NaN where the headroom is flat.
    """
    h = comp.relative.get(reference, {}).get(metric)
    if h is None or math.isnan(h):
        return None
    test = comp.significance.get(reference, {}).get(metric) or {}
    lo, hi = test.get("rel_ci_low", math.nan), test.get("rel_ci_high", math.nan)
    flat = (lo <= 0 <= hi) if test else abs(h) < FLAT
    rows = {}
    for s in comp.samplers:
        if s in (comp.baseline, reference):
            continue
        gain = comp.relative.get(s, {}).get(metric, math.nan)
        rows[s] = {"gain": gain, "share": math.nan if flat or h == 0 else gain / h}
    return {"metric": metric, "reference": reference, "headroom": h, "ci_low": lo,
            "ci_high": hi, "flat": bool(flat), "samplers": rows}


def headroom_sentence(h: dict[str, Any], baseline: str = "in-batch") -> str:
    """One plain sentence on the headroom (what a reader should conclude).

    Example:
        >>> headroom_sentence({"metric": "hr@50", "headroom": 0.004, "ci_low": -0.01,
        ...                    "ci_high": 0.02, "flat": True, "reference": "full"})[:48]
        'No headroom: the exact softmax (full) is +0.4% ['
    """
    label = metric_label(h["metric"])
    ci = ("" if math.isnan(h["ci_low"]) else
          f" [{fmt_pct(h['ci_low'])}, {fmt_pct(h['ci_high'])}]")
    size = f"{fmt_pct(h['headroom'])}{ci} on {label} over {baseline}"
    if h["flat"]:
        return (f"No headroom: the exact softmax ({h['reference']}) is {size}, so {baseline} + "
                f"logQ is already as good as the exact softmax here and no negative sampler can "
                f"help on this catalog at this batch size.")
    return (f"Headroom: the exact softmax ({h['reference']}) is {size}; the share column says "
            f"how much of it each sampler closes (1.0 = as good as the exact softmax).")


def headroom_lines(comp: Comparison, metric: str = "hr@50") -> list[str]:
    """The ``results.md`` section (empty when the comparison has no ``full`` run)."""
    h = headroom(comp, metric)
    if h is None:
        return []
    lines = [f"## Headroom over {comp.baseline} ({metric_label(metric)})", "",
             headroom_sentence(h, comp.baseline), "",
             f"| sampler | gain over {comp.baseline} | headroom | share closed |",
             "|:---|---:|---:|---:|"]
    for s, row in h["samplers"].items():
        share = "—" if math.isnan(row["share"]) else f"{row['share']:.2f}"
        lines.append(f"| {s} | {fmt_pct(row['gain'])} | {fmt_pct(h['headroom'])} | {share} |")
    return [*lines, ""]
