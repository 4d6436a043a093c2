"""Everything the comparison report shows beyond ``results.json``, as plain data.

``clusterneg compare`` fills a :class:`ReportInputs` while it trains and evaluates every
sampler x seed; the report modules only read it. Every field is optional: a section whose
data is missing is rendered as "not available" instead of failing, so a partial comparison
(one sampler, no clusters, no per-user arrays) still gives a readable page.

Sampler names are the registry's (:data:`clusterneg.samplers.SAMPLER_NAMES`), in its order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from clusterneg.encode.template import item_titles
from clusterneg.eval.metrics import exposure_counts
from clusterneg.samplers import SAMPLER_NAMES, spec_name

SAMPLER_ORDER: tuple[str, ...] = SAMPLER_NAMES
BASELINE = "in-batch"
METHOD = "cluster-goobs"

PerUser = dict[str, np.ndarray]
"""One run's per-user metric arrays, float [n_eval_users] each, same user order in every run.

Keys as in :attr:`clusterneg.eval.MetricResult.per_user` (``recall@K``, ``ndcg@K``,
``hits@K``, ``mrr``, ``n_targets``); ``hr@K`` is derived as ``hits@K / n_targets`` weighted
by ``n_targets`` (a per-user ``hr@K`` array may also be given directly)."""


@dataclass
class PopularityBucket:
    """Recall of the test targets whose item falls in one popularity bucket.

    Args:
        label: shown on the x axis, e.g. ``"0-3 (least popular)"``.
        value: recall@K of the bucket's targets (NaN when the bucket has none).
        n_targets: number of test targets in the bucket (for the tooltip / table).
    """

    label: str
    value: float
    n_targets: int | None = None


@dataclass
class ClusterRow:
    """One row of the cluster table: id, LLM-written name, size and a few member titles."""

    cluster_id: int
    name: str
    size: int
    examples: list[str] = field(default_factory=list)


@dataclass
class ClusterDiagnostics:
    """How good the clusters are as a source of hard negatives.

    Args:
        n_clusters: number of clusters used.
        rule: how that number was chosen (e.g. ``"auto: sqrt(n_items / 2)"``).
        sizes: int [n_clusters] items per cluster.
        false_negative_rate: share of same-cluster negatives that are in fact a positive of
            the user (held-out interactions), and the same for uniform random negatives.
        false_negative_rate_random: see above, for uniform negatives.
        nmi: normalised mutual information between clusters and an item attribute (genre,
            category) when the data has one.
        hardness: mean model score margin (or similarity) of same-cluster negatives, and of
            random ones, so the reader sees whether cluster negatives are harder.
        hardness_random: see above, for uniform negatives.
        extra: any other named number worth showing.
    """

    n_clusters: int
    rule: str = ""
    sizes: np.ndarray | Sequence[int] = field(default_factory=list)
    false_negative_rate: float | None = None
    false_negative_rate_random: float | None = None
    nmi: float | None = None
    hardness: float | None = None
    hardness_random: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class ExampleItem:
    """One title in a user's history or in a sampler's top-10, with its cluster name."""

    title: str
    cluster: str | None = None
    hit: bool = False


@dataclass
class ExampleUser:
    """A user's history and, per sampler, the top-10 it retrieves (hits marked).

    Args:
        user: the user's id as shown.
        history: the user's training items, most recent last.
        retrieved: sampler -> ranked top-10 (seed 0 is the natural choice).
        targets: the held-out test items, so the reader sees what a hit would have been.
    """

    user: str
    history: list[ExampleItem]
    retrieved: dict[str, list[ExampleItem]]
    targets: list[ExampleItem] = field(default_factory=list)


@dataclass
class ReportInputs:
    """Optional extras for ``results.md`` / ``report.html``; all default to "absent".

    Args:
        per_user: sampler -> list over seeds of per-user metric arrays (:data:`PerUser`),
            for the paired bootstrap against ``in-batch`` (arrays are averaged over seeds).
        hr_curves: sampler -> {K: HR@K} for K in 10, 20, 50, 100 (seed means). When empty,
            the curve is drawn from whatever ``hr@K`` the results' summary holds.
        recall_curves: sampler -> {K: recall@K}, same fallback.
        exposure_counts: sampler -> int [n_items] times each item is in a user's top 50
            (one seed, or summed over seeds), for the Lorenz curves.
        popularity_recall: sampler -> buckets from least to most popular.
        popularity_k: the K of the bucketed recall (for the axis label).
        cluster_diagnostics: see :class:`ClusterDiagnostics`.
        cluster_rows: the cluster table (id, LLM name, size, example titles).
        examples: a few users' histories and retrieved lists.
        title: page title.
        n_boot: bootstrap resamples for the paired tests.
        boot_seed: seed of the bootstrap.

    Example:
        >>> inputs = ReportInputs(hr_curves={"in-batch": {10: 0.1, 50: 0.3}})
        >>> inputs.cluster_diagnostics is None
        True
    """

    per_user: dict[str, list[PerUser]] = field(default_factory=dict)
    hr_curves: dict[str, dict[int, float]] = field(default_factory=dict)
    recall_curves: dict[str, dict[int, float]] = field(default_factory=dict)
    exposure_counts: dict[str, np.ndarray] = field(default_factory=dict)
    popularity_recall: dict[str, list[PopularityBucket]] = field(default_factory=dict)
    popularity_k: int = 50
    cluster_diagnostics: ClusterDiagnostics | None = None
    cluster_rows: list[ClusterRow] = field(default_factory=list)
    examples: list[ExampleUser] = field(default_factory=list)
    title: str = "clusterneg compare"
    n_boot: int = 1000
    boot_seed: int = 0


def buckets_from_eval(buckets: Mapping[str, np.ndarray]) -> list[PopularityBucket]:
    """Turn :func:`clusterneg.eval.recall_by_popularity_bucket`'s arrays into buckets.

    Labels name the training-popularity range of each bucket, e.g. ``"3-7"``; the first and
    last are marked least / most popular.

    Example:
        >>> b = {"min_pop": np.array([0, 4]), "max_pop": np.array([3, 90]),
        ...      "recall": np.array([0.1, 0.5]), "n_targets": np.array([10, 40])}
        >>> [x.label for x in buckets_from_eval(b)]
        ['0-3 (least popular)', '4-90 (most popular)']
    """
    lo, hi = np.asarray(buckets["min_pop"]), np.asarray(buckets["max_pop"])
    recall, n_t = np.asarray(buckets["recall"]), np.asarray(buckets["n_targets"])
    out = []
    for i in range(len(recall)):
        label = f"{int(lo[i])}-{int(hi[i])}" if lo[i] >= 0 else "empty"
        if i == 0:
            label += " (least popular)"
        elif i == len(recall) - 1:
            label += " (most popular)"
        out.append(PopularityBucket(label, float(recall[i]), int(n_t[i])))
    return out


def order_samplers(names: Sequence[str]) -> list[str]:
    """Unique names, the schema's samplers first in :data:`SAMPLER_ORDER` (a labelled spec
    ``NAME@LABEL`` right after its sampler, in the order given), then the rest.

    Example:
        >>> order_samplers(["cluster-goobs", "custom", "in-batch", "goobs@x", "custom"])
        ['in-batch', 'goobs@x', 'cluster-goobs', 'custom']
    """
    seen = list(dict.fromkeys(names))
    rank = {s: i for i, s in enumerate(SAMPLER_ORDER)}
    known = [s for s in seen if spec_name(s) in rank]
    known.sort(key=lambda s: (rank[spec_name(s)], "@" in s))  # stable: given order
    return known + [s for s in seen if s not in known]


def _named(i: int, titles: Sequence[str], item_cluster: np.ndarray | None,
           cluster_names: Sequence[str] | None, hit: bool = False) -> ExampleItem:
    """Item ``i`` with its title and its cluster's name (or ``cluster N`` without names)."""
    cl = None
    if item_cluster is not None:
        c = int(item_cluster[i])
        cl = cluster_names[c] if cluster_names is not None else f"cluster {c}"
    return ExampleItem(str(titles[i]), cl, hit)


def example_user(
    user: str,
    history: Sequence[int],
    targets: Sequence[int],
    retrieved: Mapping[str, Sequence[int]],
    titles: Sequence[str],
    item_cluster: np.ndarray | None = None,
    cluster_names: Sequence[str] | None = None,
    k: int = 10,
) -> ExampleUser:
    """Build an :class:`ExampleUser` from item indices.

    Args:
        user: the user's id as shown.
        history: item indices of the user's training interactions (most recent last).
        targets: item indices held out for the user (test); retrieved ones are hits.
        retrieved: sampler -> ranked item indices (``< 0`` = padding, skipped); first ``k``.
        titles: [n_items] item titles.
        item_cluster: int [n_items] cluster id per item, or None.
        cluster_names: [n_clusters] LLM-written names, or None (``cluster N``).
        k: list length shown.

    Example:
        >>> u = example_user("7", [0], [2], {"dns": [2, 1, -1]}, ["a", "b", "c"],
        ...                  np.array([0, 0, 1]), ["Sci-fi", "Drama"])
        >>> [(x.title, x.cluster, x.hit) for x in u.retrieved["dns"]]
        [('c', 'Drama', True), ('b', 'Sci-fi', False)]
    """
    tset = {int(t) for t in targets}
    args = (titles, item_cluster, cluster_names)
    return ExampleUser(
        user=str(user),
        history=[_named(int(i), *args) for i in history],
        retrieved={
            s: [_named(int(i), *args, hit=int(i) in tset) for i in list(ids)[:k] if i >= 0]
            for s, ids in retrieved.items()
        },
        targets=[_named(int(i), *args) for i in targets],
    )


def cluster_rows(
    item_cluster: np.ndarray,
    cluster_names: Sequence[str],
    titles: Sequence[str],
    popularity: np.ndarray | None = None,
    n_examples: int = 3,
) -> list[ClusterRow]:
    """One :class:`ClusterRow` per cluster, largest first, with its most popular titles.

    Args:
        item_cluster: int [n_items] cluster id per item.
        cluster_names: [n_clusters] LLM-written names.
        titles: [n_items] item titles.
        popularity: int [n_items] training counts (examples = most popular members); None
            takes the lowest item indices.
        n_examples: titles per cluster.

    Example:
        >>> rows = cluster_rows(np.array([1, 0, 1]), ["A", "B"], ["x", "y", "z"],
        ...                     np.array([1, 5, 9]))
        >>> [(r.cluster_id, r.name, r.size, r.examples) for r in rows]
        [(1, 'B', 2, ['z', 'x']), (0, 'A', 1, ['y'])]
    """
    item_cluster = np.asarray(item_cluster, dtype=np.int64)
    pop = np.zeros(len(item_cluster)) if popularity is None else np.asarray(popularity)
    order = np.lexsort((np.arange(len(pop)), -pop))  # most popular first, ties by index
    sizes = np.bincount(item_cluster, minlength=len(cluster_names))
    members: dict[int, list[str]] = {c: [] for c in range(len(sizes))}
    for i in order:
        got = members[int(item_cluster[i])]
        if len(got) < n_examples:
            got.append(str(titles[i]))
    by_size = sorted(range(len(sizes)), key=lambda c: (-sizes[c], c))
    return [ClusterRow(c, str(cluster_names[c]), int(sizes[c]), members[c]) for c in by_size]

# --- Filled from a finished comparison -----------------------------------------------------


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
