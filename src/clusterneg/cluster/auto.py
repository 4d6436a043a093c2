"""``n_clusters="auto"``: the finest clustering whose negatives are still safe and varied.

The paper's granularity trade-off: too fine and the clusters hold items the user actually
likes (false negatives); too coarse and in-cluster negatives are no harder than random ones.
On both development datasets the content hardness of in-cluster negatives rises
monotonically with k (bench/results/clusters.md), so hardness alone always asks for finer
clusters; the rule therefore takes the hardest admissible k, where admissible means:

1. **False negatives bounded:** the false-negative lift (chance that an in-cluster negative
   is a training positive of the same user, divided by that chance for a uniform random
   negative, :func:`~clusterneg.cluster.diagnostics.false_negative_rate`) is at most
   ``max_fn_lift`` (default 3). Skipped when no interactions are given.
2. **Enough distinct negatives:** the median cluster size (after merging clusters below
   ``min_cluster_size``) is at least ``min_median_size`` (default 20), so a cluster's pool
   segment is not a handful of near-duplicates sampled over and over.

Candidates are a geometric grid (4, 6, 8, 12, 16, 24, 32, 48, ...) up to
``n_items / min_median_size``. Among admissible candidates the one with the highest content
hardness wins (ties: the larger k). If none is admissible the smallest candidate is used and a
warning logged.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (granularity is a trade-off between
    false negatives and easy negatives; production used ~300 clusters of >= ~10^4 items).

Example:
    >>> choice = choose_n_clusters(emb, user_items, seed=0)  # doctest: +SKIP
    >>> choice.n_clusters, choice.table[0]["fn_lift"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from clusterneg.cluster.diagnostics import cluster_sizes, content_hardness, false_negative_rate
from clusterneg.cluster.kmeans import Clusterer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoRule:
    """Parameters of the ``auto`` rule (module docstring).

    Args:
        max_fn_lift: largest admissible false-negative lift.
        min_median_size: smallest admissible median cluster size.
        grid: candidate k values (None: the geometric grid up to n / min_median_size).
    """

    max_fn_lift: float = 3.0
    min_median_size: int = 20
    grid: tuple[int, ...] | None = None

    def candidates(self, n_items: int) -> list[int]:
        """Candidate k values for a catalog of ``n_items`` (at least one)."""
        if self.grid is not None:
            return sorted({k for k in self.grid if 1 <= k < n_items}) or [1]
        top = max(n_items // max(self.min_median_size, 1), 2)
        out, base = [], 4
        while base <= top:
            out += [k for k in (base, base * 3 // 2) if k <= top]
            base *= 2
        return out or [min(2, n_items)]


@dataclass
class AutoChoice:
    """The chosen k and the table of every candidate's diagnostics.

    Args:
        n_clusters: chosen k (the requested number; merging may leave fewer).
        table: per candidate {"k", "k_final", "median_size", "min_size", "fn_lift",
            "fn_in_cluster", "content_hardness", "admissible"}.
        rule: the rule's parameters.
    """

    n_clusters: int
    table: list[dict[str, Any]] = field(default_factory=list)
    rule: dict[str, Any] = field(default_factory=dict)


def choose_n_clusters(emb: np.ndarray, user_items: sp.spmatrix | None, *,
                      rule: AutoRule | None = None, seed: int = 0, min_cluster_size: int = 5,
                      **clusterer_opts: Any) -> AutoChoice:
    """Scan the candidate k values and apply the rule.

    Args:
        emb: float32 [n_items, d] content embeddings.
        user_items: sparse [n_users, n_items] training positives (None: size rule only).
        rule: the :class:`AutoRule` (default parameters when None).
        seed: k-means seed (the same for every candidate).
        min_cluster_size: clusters below this are merged before measuring (as in the fit).
        **clusterer_opts: more :class:`Clusterer` options (spherical, niter, ...).

    Returns:
        :class:`AutoChoice`.
    """
    rule = rule or AutoRule()
    table = [_measure(emb, user_items, k, seed, min_cluster_size, rule, clusterer_opts)
             for k in rule.candidates(len(emb))]
    ok = [row for row in table if row["admissible"]]
    if not ok:
        log.warning("no candidate k satisfies the auto rule %s; using k=%d", rule,
                    table[0]["k"])
        best = table[0]
    else:
        best = max(ok, key=lambda r: (r["content_hardness"], r["k"]))
    return AutoChoice(n_clusters=int(best["k"]), table=table,
                      rule={"max_fn_lift": rule.max_fn_lift,
                            "min_median_size": rule.min_median_size,
                            "min_cluster_size": min_cluster_size})


def _measure(emb: np.ndarray, user_items: sp.spmatrix | None, k: int, seed: int,
             min_cluster_size: int, rule: AutoRule, opts: dict[str, Any]) -> dict[str, Any]:
    """Fit one candidate and collect the numbers the rule looks at."""
    km = Clusterer(k, seed=seed, **opts)
    item_cluster = km.fit_assign(emb, min_cluster_size)
    sizes = cluster_sizes(item_cluster, km.n_clusters)
    row: dict[str, Any] = {"k": k, "k_final": km.n_clusters, "median_size": sizes["median"],
                           "min_size": sizes["min"], "fn_lift": None, "fn_in_cluster": None,
                           "content_hardness": None}
    admissible = sizes["median"] >= rule.min_median_size
    if user_items is not None:
        fn = false_negative_rate(user_items, item_cluster)
        hard = content_hardness(emb, user_items, item_cluster)
        row.update(fn_lift=fn["lift"], fn_in_cluster=fn["in_cluster"],
                   content_hardness=hard["hardness"])
        admissible = admissible and fn["lift"] <= rule.max_fn_lift
    else:
        row["content_hardness"] = _unweighted_hardness(emb, item_cluster)
    row["admissible"] = bool(admissible)
    return row


def _unweighted_hardness(emb: np.ndarray, item_cluster: np.ndarray) -> float:
    """Content hardness with every item weighted once (when no interactions are known)."""
    n = len(emb)
    eye = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))
    return content_hardness(emb, eye, item_cluster)["hardness"]
