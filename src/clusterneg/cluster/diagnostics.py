"""Will these clusters make good negatives? Size, false-negative rate, category agreement,
hardness: pure functions over arrays.

The paper's trade-off: clusters too fine hold items the user actually likes (false
negatives); too coarse and in-cluster negatives are no harder than random ones. Each
diagnostic compares an in-cluster negative with a uniformly random one, the way the sampler
draws them: for a training pair (u, i), the cluster negative j is uniform over i's cluster
minus i, the random negative uniform over all items minus i. Expectations are computed
exactly (no sampling), weighted by training pair (each pair draws one negative).

- :func:`false_negative_rate`: P(j is also a training positive of u), in-cluster vs random,
  and their ratio (lift). Measured on training interactions (the only positives known).
- :func:`category_agreement`: NMI between clusters and one category label per item (the
  first label of a multi-label field such as ml-100k genres, or a level of a hierarchical
  path such as Amazon categories), plus purity.
- :func:`hardness`: mean score s(u, j) of in-cluster negatives minus that of random ones,
  from any user / item vectors (a trained two-tower model, ``score = u . v``); also with the
  user's own positives excluded. :func:`content_hardness` is the same with content cosine
  cos(e_i, e_j) as the score (no model needed).

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (granularity trade-off: false
    negatives vs easy negatives). Strehl & Ghosh, "Cluster Ensembles", JMLR 2002 (NMI);
    Vinh, Epps, Bailey, JMLR 2010 (arithmetic-mean normalisation).

Example:
    >>> user_items = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 0, 1, 0]]))
    >>> fn = false_negative_rate(user_items, item_cluster=np.array([0, 0, 1, 1]))
    >>> round(fn["in_cluster"], 4), round(fn["random"], 4), round(fn["lift"], 4), fn["pairs"]
    (0.6667, 0.2222, 3.0, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from clusterneg.errors import ConfigError


def cluster_sizes(item_cluster: np.ndarray, n_clusters: int | None = None,
                  tiny: int = 5) -> dict[str, Any]:
    """Size distribution of the clusters.

    Args:
        item_cluster: int64 [n_items] cluster id per item.
        n_clusters: number of clusters (default: max id + 1), so empty ones are counted.
        tiny: clusters with fewer items than this (but > 0) are reported as tiny.

    Returns:
        {"n_clusters", "min", "median", "max", "mean", "n_empty", "n_tiny",
         "largest_share" (share of items in the largest cluster), "sizes" (list)}.
    """
    k = int(n_clusters if n_clusters is not None else item_cluster.max(initial=-1) + 1)
    sizes = np.bincount(np.asarray(item_cluster, np.int64), minlength=k)
    return {"n_clusters": k, "min": int(sizes.min()), "median": float(np.median(sizes)),
            "max": int(sizes.max()), "mean": float(sizes.mean()),
            "n_empty": int((sizes == 0).sum()), "n_tiny": int(((sizes > 0) & (sizes < tiny)).sum()),
            "largest_share": float(sizes.max() / max(sizes.sum(), 1)),
            "sizes": sizes.tolist()}


def _pairs(user_items: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) int64 arrays of the distinct nonzeros of a user x item matrix."""
    m = sp.csr_matrix(user_items)
    m.sum_duplicates()
    coo = m.tocoo()
    keep = coo.data != 0
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)


def _user_cluster_counts(users: np.ndarray, clusters: np.ndarray, n_clusters: int,
                         weights: np.ndarray | None = None) -> sp.csr_matrix:
    """Sparse [n_users, n_clusters]: sum of ``weights`` (default 1) per (user, cluster)."""
    w = np.ones(len(users)) if weights is None else weights
    n_users = int(users.max(initial=-1)) + 1
    return sp.csr_matrix((w, (users, clusters)), shape=(n_users, n_clusters))


def false_negative_rate(user_items: sp.spmatrix, item_cluster: np.ndarray) -> dict[str, float]:
    """Chance that a drawn negative is in fact a (training) positive of the same user.

    For each distinct training pair (u, i): in-cluster rate ``(m_uc - 1) / (n_c - 1)`` where
    ``m_uc`` = u's positives in i's cluster c and ``n_c`` = |c| (pairs whose cluster is a
    singleton have no in-cluster negative and are skipped); random rate
    ``(|P_u| - 1) / (n_items - 1)``. Both averaged over pairs.

    Args:
        user_items: [n_users, n_items] sparse matrix, nonzero = training positive.
        item_cluster: int64 [n_items] cluster id per item.

    Returns:
        {"in_cluster", "random", "lift" (in_cluster / random), "pairs" (pairs counted)}.
    """
    item_cluster = np.asarray(item_cluster, np.int64)
    n_items = len(item_cluster)
    if user_items.shape[1] != n_items:
        raise ConfigError(f"user_items has {user_items.shape[1]} item columns, item_cluster "
                          f"{n_items} entries")
    users, items = _pairs(user_items)
    c = item_cluster[items]
    sizes = np.bincount(item_cluster, minlength=int(item_cluster.max(initial=0)) + 1)
    m = _user_cluster_counts(users, c, len(sizes))
    m_uc = np.asarray(m[users, c]).ravel()
    ok = sizes[c] > 1
    in_cluster = ((m_uc[ok] - 1) / (sizes[c][ok] - 1)).mean() if ok.any() else float("nan")
    per_user = np.bincount(users)
    random = ((per_user[users] - 1) / max(n_items - 1, 1)).mean() if len(users) else np.nan
    return {"in_cluster": float(in_cluster), "random": float(random),
            "lift": float(in_cluster / random) if random > 0 else float("nan"),
            "pairs": int(ok.sum())}


def category_labels(categories: Sequence[Sequence[str]], level: int | str = "first"
                    ) -> tuple[np.ndarray, list[str]]:
    """One label per item from multi-label or hierarchical categories.

    Args:
        categories: per item, its labels in file order (``Catalog.categories()``).
        level: "first" (first listed: right for a genre set), "last" (most specific level of
            a path), or an int depth into a path (an item with a shorter path uses its last).

    Returns:
        (int64 [n_items] label ids, -1 where the item has no label; the label names).
    """
    names: dict[str, int] = {}
    out = np.full(len(categories), -1, np.int64)
    for j, cats in enumerate(categories):
        if not cats:
            continue
        if level == "first":
            lab = cats[0]
        elif level == "last":
            lab = cats[-1]
        elif isinstance(level, int):
            lab = cats[min(level, len(cats) - 1)]
        else:
            raise ConfigError(f"category level must be 'first', 'last' or an int, got {level!r}")
        out[j] = names.setdefault(lab, len(names))
    return out, list(names)


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nmi(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information of two labelings, ``MI / mean(H(a), H(b))``.

    Args:
        a, b: int [n] labels (any non-negative ids).

    Returns:
        NMI in [0, 1]; 1.0 when both labelings are a single identical block.
    """
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    if len(a) != len(b):
        raise ConfigError(f"labelings differ in length: {len(a)} vs {len(b)}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    joint = np.bincount(ai * (bi.max(initial=0) + 1) + bi).astype(np.float64)
    ha, hb = _entropy(np.bincount(ai)), _entropy(np.bincount(bi))
    mi = ha + hb - _entropy(joint)
    denom = (ha + hb) / 2
    return 1.0 if denom == 0 else float(max(mi, 0.0) / denom)


def category_agreement(item_cluster: np.ndarray, categories: Sequence[Sequence[str]] | None,
                       level: int | str = "first") -> dict[str, Any] | None:
    """NMI and purity of clusters against one category label per item (None without labels).

    Purity: share of labelled items whose label is their cluster's most common label.
    """
    if categories is None:
        return None
    labels, names = category_labels(categories, level)
    has = labels >= 0
    if not has.any():
        return None
    c, lab = np.asarray(item_cluster, np.int64)[has], labels[has]
    joint = sp.csr_matrix((np.ones(len(c)), (c, lab))).toarray()
    return {"nmi": nmi(c, lab), "purity": float(joint.max(axis=1).sum() / len(c)),
            "level": level, "n_labels": len(names), "labelled_items": int(has.sum())}


def hardness(user_vecs: np.ndarray, item_vecs: np.ndarray, user_items: sp.spmatrix,
             item_cluster: np.ndarray) -> dict[str, float]:
    """Mean score of in-cluster negatives minus mean score of random negatives.

    Score ``s(u, j) = user_vecs[u] . item_vecs[j]``. For a pair (u, i) in cluster c:
    in-cluster mean ``(u . V_c - s(u, i)) / (n_c - 1)`` with ``V_c`` the sum of c's item
    vectors; random mean ``(u . V - s(u, i)) / (n_items - 1)``. The ``*_true_neg`` variants
    exclude all of u's training positives from the candidates.

    Args:
        user_vecs: float [n_users, d] (e.g. a model's ``user_embeddings``; numpy or torch).
        item_vecs: float [n_items, d] (e.g. ``item_embeddings()``; numpy or torch).
        user_items: [n_users, n_items] sparse training positives.
        item_cluster: int64 [n_items].

    Returns:
        {"in_cluster", "random", "hardness", "in_cluster_true_neg", "random_true_neg",
         "hardness_true_neg", "positive" (mean positive score)}.
    """
    u_all, i_all = _pairs(user_items)
    uv, iv = _numpy(user_vecs), _numpy(item_vecs)
    c_all = np.asarray(item_cluster, np.int64)
    k = int(c_all.max(initial=0)) + 1
    sizes = np.bincount(c_all, minlength=k)
    csum = np.zeros((k, iv.shape[1]))
    np.add.at(csum, c_all, iv)
    pos = np.einsum("ij,ij->i", uv[u_all], iv[i_all])
    m_cnt = _user_cluster_counts(u_all, c_all[i_all], k)
    m_sum = _user_cluster_counts(u_all, c_all[i_all], k, weights=pos)
    ok = sizes[c_all[i_all]] > 1
    u, i, s = u_all[ok], i_all[ok], pos[ok]
    c = c_all[i]
    uc = np.einsum("ij,ij->i", uv[u], csum[c])
    ua = uv[u] @ iv.sum(axis=0)
    n, n_c = len(iv), sizes[c]
    out = {"in_cluster": _mean((uc - s) / (n_c - 1)), "random": _mean((ua - s) / (n - 1)),
           "positive": _mean(pos)}
    cnt_c, sum_c = np.asarray(m_cnt[u, c]).ravel(), np.asarray(m_sum[u, c]).ravel()
    per_user_cnt, per_user_sum = np.bincount(u_all), np.bincount(u_all, weights=pos)
    free_c = n_c - cnt_c
    has = free_c > 0
    out["in_cluster_true_neg"] = _mean((uc - sum_c)[has] / free_c[has])
    free = n - per_user_cnt[u]
    out["random_true_neg"] = _mean((ua - per_user_sum[u])[free > 0] / free[free > 0])
    out["hardness"] = out["in_cluster"] - out["random"]
    out["hardness_true_neg"] = out["in_cluster_true_neg"] - out["random_true_neg"]
    return out


def model_hardness(model: Any, user_items: sp.spmatrix, item_cluster: np.ndarray,
                   batch: int = 4096) -> dict[str, float]:
    """:func:`hardness` for any two-tower model exposing ``item_embeddings() -> [n_items, d]``
    and ``user_embeddings(user_idx) -> [b, d]`` (torch), users embedded in batches."""
    import torch

    with torch.no_grad():
        items = model.item_embeddings()
        users = [model.user_embeddings(torch.arange(s, min(s + batch, user_items.shape[0])))
                 for s in range(0, user_items.shape[0], batch)]
        return hardness(torch.cat(users), items, user_items, item_cluster)


def content_hardness(emb: np.ndarray, user_items: sp.spmatrix,
                     item_cluster: np.ndarray) -> dict[str, float]:
    """:func:`hardness` with the content cosine ``cos(e_i, e_j)`` of positive and negative as
    the score (no model needed): how much closer in content an in-cluster negative is.

    Args:
        emb: float [n_items, d] content embeddings (normalised here).
        user_items: [n_users, n_items] sparse training positives (weights the pairs).
        item_cluster: int64 [n_items].

    Returns:
        {"in_cluster", "random", "hardness"} mean cosines and their difference.
    """
    x = np.asarray(emb, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    _, i = _pairs(user_items)
    c_all = np.asarray(item_cluster, np.int64)
    k = int(c_all.max(initial=0)) + 1
    sizes = np.bincount(c_all, minlength=k)
    csum = np.zeros((k, x.shape[1]))
    np.add.at(csum, c_all, x)
    i = i[sizes[c_all[i]] > 1]
    c = c_all[i]
    self_sim = np.einsum("ij,ij->i", x[i], x[i])
    in_c = (np.einsum("ij,ij->i", x[i], csum[c]) - self_sim) / (sizes[c] - 1)
    rnd = (x[i] @ x.sum(axis=0) - self_sim) / (len(x) - 1)
    return {"in_cluster": _mean(in_c), "random": _mean(rnd),
            "hardness": _mean(in_c) - _mean(rnd)}


def _numpy(x: Any) -> np.ndarray:
    """float64 numpy copy of an array or a (possibly grad-tracking, GPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, np.float64)


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def diagnose(item_cluster: np.ndarray, n_clusters: int, *, user_items: sp.spmatrix | None = None,
             emb: np.ndarray | None = None, categories: Sequence[Sequence[str]] | None = None,
             category_level: int | str = "first", user_vecs: np.ndarray | None = None,
             item_vecs: np.ndarray | None = None, tiny: int = 5) -> dict[str, Any]:
    """Every diagnostic the inputs allow, JSON-ready.

    Args:
        item_cluster: int64 [n_items].
        n_clusters: k.
        user_items: sparse training positives [n_users, n_items] (false negatives, hardness).
        emb: content embeddings [n_items, d] (content hardness).
        categories: per-item labels (NMI).
        category_level: see :func:`category_labels`.
        user_vecs, item_vecs: model vectors (model hardness).
        tiny: threshold for tiny clusters.

    Returns:
        {"sizes", and when possible "false_negatives", "categories", "content_hardness",
         "hardness"}.
    """
    out: dict[str, Any] = {"sizes": cluster_sizes(item_cluster, n_clusters, tiny)}
    if user_items is not None:
        out["false_negatives"] = false_negative_rate(user_items, item_cluster)
        if emb is not None:
            out["content_hardness"] = content_hardness(emb, user_items, item_cluster)
        if user_vecs is not None and item_vecs is not None:
            out["hardness"] = hardness(user_vecs, item_vecs, user_items, item_cluster)
    cats = category_agreement(item_cluster, categories, category_level)
    if cats is not None:
        out["categories"] = cats
    return out
