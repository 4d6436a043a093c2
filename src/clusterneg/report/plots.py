"""The report's figures, drawn with matplotlib and returned as inline ``data:`` URIs.

Each function builds a :class:`matplotlib.figure.Figure` directly (no pyplot, no global
backend switch, safe in a library) and returns ``data:image/svg+xml;base64,...``: vector,
self-contained, and isolated from the page's own ids when put in an ``<img>``. Every sampler
has the same colour in every figure; ``cluster-goobs`` is drawn thicker and ``in-batch``
dashed so the two the verdict is about stand out.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from clusterneg.eval.metrics import gini, lorenz_curve
from clusterneg.report.inputs import BASELINE, METHOD, SAMPLER_ORDER, PopularityBucket

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f", "#d62728")
_MAX_LORENZ_POINTS = 512


def sampler_color(name: str) -> str:
    """Stable colour: the schema's samplers get fixed ones (cluster-goobs red), others cycle.

    Example:
        >>> sampler_color("cluster-goobs")
        '#d62728'
    """
    extra = ("#e377c2", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78")
    i = SAMPLER_ORDER.index(name) if name in SAMPLER_ORDER else -1
    if 0 <= i < len(_PALETTE):
        return _PALETTE[i]
    return extra[(i - len(_PALETTE)) % len(extra) if i >= 0 else sum(map(ord, name)) % len(extra)]


def _style(name: str) -> dict[str, object]:
    """Line style for a sampler's curve."""
    return {
        "color": sampler_color(name),
        "linewidth": 2.6 if name == METHOD else 1.4,
        "linestyle": "--" if name == BASELINE else "-",
        "label": name,
    }


def figure_to_data_uri(fig: Figure) -> str:
    """Serialise a figure as a base64 SVG ``data:`` URI (no date metadata: reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _new(width: float = 6.4, height: float = 4.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    ax = fig.add_subplot()
    ax.grid(True, alpha=0.3)
    return fig, ax


def curves_plot(curves: Mapping[str, Mapping[int, float]], metric: str) -> str:
    """Metric@K against K (log axis), one line per sampler.

    Args:
        curves: sampler -> {K: value}.
        metric: y-axis name, e.g. ``"HR"`` or ``"Recall"``.
    """
    fig, ax = _new()
    ks: set[int] = set()
    for name, points in curves.items():
        pts = sorted((int(k), float(v)) for k, v in points.items() if not math.isnan(v))
        if not pts:
            continue
        ks.update(k for k, _ in pts)
        ax.plot(*zip(*pts, strict=True), marker="o", markersize=4, **_style(name))
    ax.set_xscale("log")
    ax.set_xticks(sorted(ks), [str(k) for k in sorted(ks)])
    ax.minorticks_off()
    ax.set_xlabel("K (items retrieved from the whole catalog)")
    ax.set_ylabel(f"{metric}@K")
    ax.set_title(f"{metric}@K per sampler (mean over seeds)")
    ax.legend(fontsize=8)
    return figure_to_data_uri(fig)


def _thin(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most ``_MAX_LORENZ_POINTS`` points, keeping both ends (a large catalog's curve)."""
    if len(x) <= _MAX_LORENZ_POINTS:
        return x, y
    idx = np.unique(np.linspace(0, len(x) - 1, _MAX_LORENZ_POINTS).round().astype(np.int64))
    return x[idx], y[idx]


def lorenz_plot(counts: Mapping[str, np.ndarray]) -> str:
    """Lorenz curves of top-K exposure per sampler, Gini in the legend, equality diagonal.

    Args:
        counts: sampler -> int [n_items] exposure counts.

    References:
        Ji et al., arXiv 2607.00448, "Reported results" (popularity bias: top-100 share).
    """
    fig, ax = _new(6.4, 4.6)
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":", label="equal exposure")
    for name, c in counts.items():
        x, y = _thin(*lorenz_curve(np.asarray(c)))
        style = _style(name)
        style["label"] = f"{name} (Gini {gini(np.asarray(c)):.3f})"
        ax.plot(x, y, **style)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("share of items, least exposed first")
    ax.set_ylabel("share of top-K slots")
    ax.set_title("Exposure Lorenz curves (far from the diagonal = concentrated)")
    ax.legend(fontsize=8, loc="upper left")
    return figure_to_data_uri(fig)


def popularity_plot(buckets: Mapping[str, Sequence[PopularityBucket]], k: int = 50) -> str:
    """Grouped bars: recall@K per item-popularity bucket (x) and sampler (colour).

    Args:
        buckets: sampler -> buckets, least popular first; the labels of the first sampler
            with the most buckets are used on the x axis.
        k: the K of the recall, for the axis label.
    """
    fig, ax = _new(7.2, 4.2)
    labels = [b.label for b in max(buckets.values(), key=len)] if buckets else []
    width = 0.8 / max(len(buckets), 1)
    for j, (name, bs) in enumerate(buckets.items()):
        xs = np.arange(len(bs)) + (j - (len(buckets) - 1) / 2) * width
        vals = [0.0 if math.isnan(b.value) else b.value for b in bs]
        ax.bar(xs, vals, width=width, color=sampler_color(name), label=name)
    ax.set_xticks(np.arange(len(labels)), labels, fontsize=8)
    ax.set_xlabel("test item's training popularity (interactions)")
    ax.set_ylabel(f"Recall@{k}")
    ax.set_title("Recall by item-popularity bucket")
    ax.legend(fontsize=8)
    return figure_to_data_uri(fig)


def cluster_sizes_plot(sizes: Sequence[int] | np.ndarray) -> str:
    """Histogram of items per cluster, with the smallest, median and largest marked."""
    s = np.asarray(sizes, dtype=np.int64)
    fig, ax = _new(6.4, 3.6)
    ax.hist(s, bins=min(40, max(5, len(s) // 4)), color="#4c72b0", edgecolor="white")
    for q, name in ((s.min(), "min"), (np.median(s), "median"), (s.max(), "max")):
        ax.axvline(q, color="black", linewidth=0.8, linestyle=":")
        ax.annotate(f"{name} {q:g}", (q, 0), xytext=(2, 4), textcoords="offset points",
                    rotation=90, fontsize=7, va="bottom")
    ax.set_xlabel("items in the cluster")
    ax.set_ylabel("clusters")
    ax.set_title(f"Cluster sizes ({len(s)} clusters)")
    return figure_to_data_uri(fig)
