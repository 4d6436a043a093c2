"""``n_clusters="auto"``: the finest clustering whose negatives are still safe and varied,
at any catalog size.

The paper's granularity trade-off: too fine and the clusters hold items the user actually
likes (false negatives); too coarse and in-cluster negatives are no harder than random ones.
On every development dataset the content hardness of in-cluster negatives rises
monotonically with k (bench/results/clusters.md), so hardness alone always asks for finer
clusters; the rule therefore takes the hardest admissible k, where admissible means:

1. **False negatives bounded:** an in-cluster negative is rarely a training positive of the
   same user. Either its false-negative *lift* (that chance divided by the chance for a
   uniform random negative, :func:`~clusterneg.cluster.diagnostics.false_negative_rate`) is
   at most ``max_fn_lift`` (default 3), or its absolute in-cluster false-negative rate is at
   most ``max_fn_in_cluster`` (default 2%). The lift alone does not scale: the random rate
   falls as 1/N, so on a 42k-item catalog where users hold ~6 items every k has a lift far
   above 3 while fewer than one same-cluster negative in a thousand is a positive. Skipped
   when no interactions are given.
2. **Enough distinct negatives:** the median cluster size (after merging clusters below
   ``min_cluster_size``) is at least ``min_median_size`` (default 20), so a cluster's pool
   segment is not a handful of near-duplicates sampled over and over.

Candidates scale with the catalog: ``sqrt(N)`` times 0.25, 0.35, 0.5, 0.7, 1, 1.4 and 2, plus
the paper's 300 clusters, all capped at ``N / min_median_size`` (ml-100k: 10..82; a 42k
catalog: 51..412). Among admissible candidates the one with the highest content hardness wins
(ties: the larger k). If none is admissible the coarsest candidate is used (the safest for
false negatives) and a warning logged. :attr:`AutoChoice.reason` says which k and why, in one
sentence the report shows.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (granularity is a trade-off between
    false negatives and easy negatives; production used ~300 clusters of >= ~10^4 items).

Example:
    >>> AutoRule().candidates(42381)
    [51, 72, 103, 144, 206, 288, 300, 412]
    >>> AutoRule().candidates(1682)
    [10, 14, 21, 29, 41, 57, 82]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from clusterneg.cluster.diagnostics import cluster_sizes, content_hardness, false_negative_rate
from clusterneg.cluster.kmeans import Clusterer

log = logging.getLogger(__name__)

SQRT_FACTORS = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0)
PAPER_K = 300  # the paper's production cluster count


@dataclass(frozen=True)
class AutoRule:
    """Parameters of the ``auto`` rule (module docstring).

    Args:
        max_fn_lift: largest admissible false-negative lift.
        max_fn_in_cluster: a k whose lift is larger is still admissible when the absolute
            in-cluster false-negative rate is at most this.
        min_median_size: smallest admissible median cluster size.
        grid: candidate k values (None: around sqrt(n) and the paper's 300, up to
            n / min_median_size).
    """

    max_fn_lift: float = 3.0
    max_fn_in_cluster: float = 0.02
    min_median_size: int = 20
    grid: tuple[int, ...] | None = None

    def candidates(self, n_items: int) -> list[int]:
        """Candidate k values for a catalog of ``n_items`` (at least one)."""
        if self.grid is not None:
            return sorted({k for k in self.grid if 1 <= k < n_items}) or [1]
        top = max(n_items // max(self.min_median_size, 1), 2)
        root = math.sqrt(n_items)
        ks = {int(round(root * f)) for f in SQRT_FACTORS} | {PAPER_K}
        return sorted(k for k in ks if 2 <= k <= top) or [min(2, n_items)]

    def describe(self) -> str:
        """The rule in words."""
        return (f"FN lift <= {self.max_fn_lift:g} or in-cluster FN rate <= "
                f"{self.max_fn_in_cluster:g}, median cluster size >= {self.min_median_size}")

    def admits(self, row: dict[str, Any]) -> bool:
        """Whether a measured candidate (a row of :attr:`AutoChoice.table`) is admissible."""
        if row["median_size"] < self.min_median_size:
            return False
        if row["fn_lift"] is None:  # no interactions: the size rule alone
            return True
        return bool(row["fn_lift"] <= self.max_fn_lift
                    or row["fn_in_cluster"] <= self.max_fn_in_cluster)


@dataclass
class AutoChoice:
    """The chosen k and the table of every candidate's diagnostics.

    Args:
        n_clusters: chosen k (the requested number; merging may leave fewer).
        table: per candidate {"k", "k_final", "median_size", "min_size", "fn_lift",
            "fn_in_cluster", "content_hardness", "admissible"}.
        rule: the rule's parameters.
        reason: one sentence: the chosen k, the candidates, and why.
    """

    n_clusters: int
    table: list[dict[str, Any]] = field(default_factory=list)
    rule: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


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
    ks = ", ".join(str(r["k"]) for r in table)
    if not ok:
        best = table[0]
        reason = (f"n_clusters=auto: no candidate k ({ks}) met the rule ({rule.describe()}); "
                  f"used the coarsest, k={best['k']} (the safest for false negatives)")
        log.warning("%s", reason)
    else:
        best = max(ok, key=lambda r: (r["content_hardness"], r["k"]))
        fn = ("" if best["fn_lift"] is None else
              f"; FN lift {best['fn_lift']:.2f}, in-cluster FN rate {best['fn_in_cluster']:.4f}")
        reason = (f"n_clusters=auto: k={best['k']}, the hardest admissible of {ks} "
                  f"(around sqrt({len(emb)})={math.sqrt(len(emb)):.0f} and the paper's "
                  f"{PAPER_K}) under {rule.describe()}: median size {best['median_size']:g}{fn}")
    return AutoChoice(n_clusters=int(best["k"]), table=table, reason=reason,
                      rule={"max_fn_lift": rule.max_fn_lift,
                            "max_fn_in_cluster": rule.max_fn_in_cluster,
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
    if user_items is not None:
        fn = false_negative_rate(user_items, item_cluster)
        hard = content_hardness(emb, user_items, item_cluster)
        row.update(fn_lift=fn["lift"], fn_in_cluster=fn["in_cluster"],
                   content_hardness=hard["hardness"])
    else:
        row["content_hardness"] = _unweighted_hardness(emb, item_cluster)
    row["admissible"] = rule.admits(row)
    return row


def _unweighted_hardness(emb: np.ndarray, item_cluster: np.ndarray) -> float:
    """Content hardness with every item weighted once (when no interactions are known)."""
    n = len(emb)
    eye = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n))), shape=(n, n))
    return content_hardness(emb, eye, item_cluster)["hardness"]
