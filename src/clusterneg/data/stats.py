"""Summary statistics of a :class:`Dataset` (what ``clusterneg data stats`` prints).

The share of interactions on the 100 most popular items is the training-data side of the
paper's popularity-bias measure (top-100 share of impressions fell from 50% to 32%).

References:
    The paper clusterneg implements, arXiv 2607.00448, "Reported results" (popularity bias).

Example:
    >>> from clusterneg.data import load_dataset
    >>> s = dataset_stats(load_dataset("ml-100k"))
    >>> s["n_users"], s["n_items"], s["n_interactions"]
    (943, 1682, 100000)
"""

from __future__ import annotations

import numpy as np

from clusterneg.data.dataset import Dataset

TOP_K = 100


def dataset_stats(dataset: Dataset) -> dict[str, object]:
    """Sizes, density, per-user / per-item counts, popularity concentration, text coverage.

    Args:
        dataset: a loaded dataset.

    Returns:
        A JSON-ready dict: ``name``, ``source``, ``n_users``, ``n_items``, ``n_interactions``,
        ``density``, ``per_user`` / ``per_item`` ({min, median, mean, max}; items counted
        over the whole catalog, so unseen items give 0), ``items_without_interactions``,
        ``top100_share``, ``repeated_pairs`` (rows repeating an earlier (user, item) pair),
        ``has_order``, ``order_min`` / ``order_max``, ``text_fields`` (name -> fraction of
        items whose value is empty), ``category_field``, ``n_categories``, ``presplit``
        (part -> rows, or None).
    """
    inter = dataset.interactions
    n = len(inter)
    per_user = np.bincount(inter.user, minlength=dataset.n_users)
    per_item = dataset.item_popularity()
    out: dict[str, object] = {
        "name": dataset.name,
        "source": dataset.source,
        "n_users": dataset.n_users,
        "n_items": dataset.n_items,
        "n_interactions": n,
        "density": n / max(dataset.n_users * dataset.n_items, 1),
        "per_user": _summary(per_user),
        "per_item": _summary(per_item),
        "items_without_interactions": int((per_item == 0).sum()),
        "top100_share": float(np.sort(per_item)[::-1][:TOP_K].sum() / max(n, 1)),
        "repeated_pairs": _repeated_pairs(dataset),
        "has_order": inter.has_order,
        "order_min": float(np.nanmin(inter.order)) if inter.has_order else None,
        "order_max": float(np.nanmax(inter.order)) if inter.has_order else None,
    }
    out.update(_text_stats(dataset))
    out["presplit"] = (
        None if dataset.presplit is None else {k: len(v) for k, v in dataset.presplit.items()}
    )
    return out


def _summary(counts: np.ndarray) -> dict[str, float]:
    if len(counts) == 0:
        return {"min": 0, "median": 0.0, "mean": 0.0, "max": 0}
    return {
        "min": int(counts.min()),
        "median": float(np.median(counts)),
        "mean": float(counts.mean()),
        "max": int(counts.max()),
    }


def _repeated_pairs(dataset: Dataset) -> int:
    inter = dataset.interactions
    keys = inter.user * max(dataset.n_items, 1) + inter.item
    return int(len(keys) - len(np.unique(keys)))


def _text_stats(dataset: Dataset) -> dict[str, object]:
    cat = dataset.catalog
    n = max(len(cat), 1)
    empty = {name: sum(1 for v in vals if not str(v).strip()) / n
             for name, vals in cat.fields.items()}
    cats = cat.categories()
    labels = {c for item in cats for c in item} if cats is not None else None
    return {
        "text_fields": empty,
        "category_field": cat.category_field,
        "n_categories": None if labels is None else len(labels),
    }
