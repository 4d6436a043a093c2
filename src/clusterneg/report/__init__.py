"""Reporting for ``clusterneg compare``: results.json, results.md and a self-contained report.html.

Public API:

- :class:`ReportInputs` (and its parts :class:`PopularityBucket`, :class:`ClusterRow`,
  :class:`ClusterDiagnostics`, :class:`ExampleItem`, :class:`ExampleUser`): what the
  comparison fills in beyond ``results.json``; every field optional. Builders from item
  indices: :func:`example_user`, :func:`cluster_rows`, :func:`buckets_from_eval`.
- :func:`summarize`, :func:`relative_change`, :func:`significance`, :func:`compare_runs`
  -> :class:`Comparison`; :func:`verdict` (the plain-language answer).
- :func:`render_markdown`, :func:`render_report` / :func:`write_report`.
- :func:`write_results`: all three files in one call.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clusterneg.outputs import atomic_write_text
from clusterneg.report.html import render_report, write_report
from clusterneg.report.inputs import (
    BASELINE,
    METHOD,
    SAMPLER_ORDER,
    ClusterDiagnostics,
    ClusterRow,
    ExampleItem,
    ExampleUser,
    PopularityBucket,
    ReportInputs,
    buckets_from_eval,
    cluster_rows,
    example_user,
)
from clusterneg.report.markdown import render_markdown
from clusterneg.report.summary import (
    Comparison,
    compare_runs,
    headroom,
    paired_compare,
    relative_change,
    significance,
    summarize,
    verdict,
)

__all__ = [
    "BASELINE",
    "METHOD",
    "SAMPLER_ORDER",
    "ClusterDiagnostics",
    "ClusterRow",
    "Comparison",
    "ExampleItem",
    "ExampleUser",
    "PopularityBucket",
    "ReportInputs",
    "buckets_from_eval",
    "cluster_rows",
    "compare_runs",
    "example_user",
    "paired_compare",
    "relative_change",
    "render_markdown",
    "render_report",
    "significance",
    "summarize",
    "verdict",
    "write_report",
    "write_results",
]


def _jsonable(obj: Any) -> Any:
    """Plain JSON: numpy scalars / arrays to Python, NaN and inf to null (valid JSON)."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_results(
    out_dir: str | Path, results: Mapping[str, Any], inputs: ReportInputs | None = None
) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and ``report.html`` into ``out_dir`` (atomically).

    ``summary`` is recomputed from ``runs`` (see :func:`summarize`) and the paired tests
    against ``in-batch`` are added as ``significance`` (with ``runner_up``: the test of
    ``cluster-goobs`` against its closest competitor on HR@50), so the three files agree.

    Args:
        out_dir: output directory (created if needed).
        results: ``results.json`` content in the issue's schema.
        inputs: report extras; None for a report from ``results`` alone.

    Returns:
        ``{"json": path, "markdown": path, "html": path}``.

    Example:
        >>> import tempfile
        >>> runs = [{"sampler": "in-batch", "seed": 0, "metrics": {"hr@50": 0.2}}]
        >>> paths = write_results(tempfile.mkdtemp(), {"dataset": "toy", "runs": runs})
        >>> sorted(p.name for p in paths.values())
        ['report.html', 'results.json', 'results.md']
    """
    inputs = inputs or ReportInputs()
    out = Path(out_dir)
    comp = compare_runs(results, inputs.per_user, inputs.n_boot, inputs.boot_seed)
    full = {**results, "summary": comp.summary, "significance": comp.significance,
            "runner_up": comp.runner_up, "best_vs": comp.best_vs, "headroom": headroom(comp)}
    text = json.dumps(_jsonable(full), indent=2, allow_nan=False) + "\n"
    return {
        "json": atomic_write_text(out / "results.json", text),
        "markdown": atomic_write_text(out / "results.md", render_markdown(results, comp)),
        "html": write_report(out / "report.html", inputs, results, comp),
    }
