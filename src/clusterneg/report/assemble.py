"""Fill :class:`ReportInputs` from a finished comparison: per-user metrics, exposure counts,
popularity buckets, cluster diagnostics with LLM names, and a few example users."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clusterneg.encode.template import item_titles
from clusterneg.eval.exposure import exposure_counts
from clusterneg.report.inputs import (
    ClusterDiagnostics,
    ReportInputs,
    buckets_from_eval,
    cluster_rows,
    example_user,
)


def _diagnostics(info: Any) -> ClusterDiagnostics | None:
    """Map :func:`clusterneg.cluster.diagnostics.diagnose` output onto the report's fields:
    false-negative rate in-cluster vs random, NMI with categories, content hardness."""
    if info is None:
        return None
    d = dict(getattr(info, "diagnostics", {}) or {})
    fn, cats = d.get("false_negatives") or {}, d.get("categories") or {}
    hard = d.get("hardness") or d.get("content_hardness") or {}
    extra = {"false-negative lift": fn.get("lift"), "category purity": cats.get("purity"),
             "hardness (in-cluster - random)": hard.get("hardness")}
    meta = getattr(info, "meta", {}) or {}
    return ClusterDiagnostics(
        n_clusters=int(info.n_clusters),
        rule=str((meta.get("auto") or {}).get("reason")
                 or (meta.get("auto") or {}).get("rule", f"given: {info.n_clusters}")),
        sizes=np.bincount(np.asarray(info.item_cluster), minlength=int(info.n_clusters)),
        false_negative_rate=_num(fn.get("in_cluster")),
        false_negative_rate_random=_num(fn.get("random")),
        nmi=_num(cats.get("nmi")), hardness=_num(hard.get("in_cluster")),
        hardness_random=_num(hard.get("random")),
        extra={k: float(v) for k, v in extra.items() if _num(v) is not None},
    )


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def build_report_inputs(
    prep: Any, raw: dict[str, list[Any]], n_examples: int = 4, title: str = "",
) -> ReportInputs:
    """Everything the HTML report shows beyond ``results.json``.

    Args:
        prep: the :class:`~clusterneg.experiment.Prepared` data of the comparison.
        raw: sampler -> list over seeds of :class:`~clusterneg.experiment.RunResult`.
        n_examples: how many users to show with their history and retrieved lists.
    """
    n_items = prep.dataset.n_items
    first = {s: runs[0] for s, runs in raw.items() if runs}
    inputs = ReportInputs(
        per_user={s: [r.per_user for r in runs] for s, runs in raw.items()},
        exposure_counts={s: exposure_counts(r.topk, n_items, 50) for s, r in first.items()},
        popularity_recall={s: buckets_from_eval(r.buckets) for s, r in first.items()
                           if r.buckets},
        title=title or f"clusterneg compare: {prep.dataset.name}",
    )
    info = prep.cluster_info
    titles = item_titles(prep.dataset.catalog)
    names = list(getattr(info, "names", None) or []) or None
    if info is not None:
        inputs.cluster_diagnostics = _diagnostics(info)
        pop = prep.dataset.item_popularity(prep.split.train)
        shown = names or [f"cluster {c}" for c in range(int(info.n_clusters))]
        inputs.cluster_rows = cluster_rows(np.asarray(info.item_cluster), shown, titles, pop)
    inputs.examples = _examples(prep, first, titles, names, n_examples)
    return inputs


def _examples(prep: Any, first: dict[str, Any], titles: Sequence[str],
              names: Sequence[str] | None, n: int) -> list[Any]:
    if not first:
        return []
    any_run = next(iter(first.values()))
    users = np.asarray(any_run.eval_users)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(users), size=min(n, len(users)), replace=False)
    cluster = None if prep.cluster_info is None else np.asarray(prep.cluster_info.item_cluster)
    out = []
    for row in sorted(picks.tolist()):
        u = int(users[row])
        hist = _recent_history(prep.split.train, u, 15)
        targets = prep.test_items.row(u)
        retrieved = {s: r.topk[row] for s, r in first.items()}
        out.append(example_user(str(prep.dataset.user_ids[u]), hist, targets, retrieved,
                                titles, cluster, names))
    return out


def _recent_history(train: Any, user: int, n: int) -> np.ndarray:
    """The user's last ``n`` training items by order (most recent last)."""
    rows = np.flatnonzero(train.user == user)
    rows = rows[np.argsort(np.nan_to_num(train.order[rows]), kind="stable")]
    return train.item[rows][-n:]
