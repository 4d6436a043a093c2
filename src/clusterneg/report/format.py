"""How metrics are named, which way is better, and how their numbers are printed.

Shared by ``results.md`` and ``report.html`` so both show the same columns and digits.
"""

from __future__ import annotations

import math

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
