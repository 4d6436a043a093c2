"""Items and users for the loaders: raw ids to contiguous indices, the catalog, the Dataset.

Every helper refuses bad input with a :class:`~clusterneg.errors.DataError` that names the
file, the 1-based line and the field (through the reader's :class:`~._read.Locator`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clusterneg.data.dataset import Catalog, Dataset, Interactions
from clusterneg.data.loaders._read import Locator, check_ids

log = logging.getLogger(__name__)

#: Field names recognised as holding an item's categories / genres (first match wins).
CATEGORY_FIELDS = ("categories", "category", "genres", "genre", "class")


def index_ids(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map raw string ids to contiguous indices in natural order.

    Ids that all parse as integers are ordered numerically ("2" before "10"), otherwise
    lexicographically; either way the mapping is deterministic.

    Args:
        raw: str [n] raw ids (repeats allowed).

    Returns:
        ``(unique_ids, index)``: str [n_unique] and int64 [n] with
        ``unique_ids[index] == raw``.
    """
    uniq, inverse = np.unique(raw.astype(str), return_inverse=True)
    perm = natural_order(uniq)
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    return uniq[perm], rank[inverse.reshape(-1)].astype(np.int64)


def natural_order(ids: np.ndarray) -> np.ndarray:
    """Permutation sorting ``ids`` numerically when all are integers, else as strings."""
    try:
        keys = ids.astype(np.int64)
    except (ValueError, OverflowError):
        return np.argsort(ids, kind="stable")
    return np.argsort(keys, kind="stable")


def lookup(
    raw: np.ndarray, at: Locator, known: np.ndarray, field: str, known_from: str
) -> np.ndarray:
    """Indices of ``raw`` ids in ``known`` (vectorised); an unknown id is a DataError.

    Args:
        raw: str [n] ids to look up.
        at: locates row i of ``raw`` for messages.
        known: str [m] distinct known ids; position = index.
        field: column name (for messages).
        known_from: where ``known`` came from, e.g. the items file name.

    Returns:
        int64 [n] indices into ``known``.
    """
    raw = raw.astype(str)
    if len(known) == 0:
        raise at.error(0, f"unknown item id {str(raw[0])!r}: {known_from} is empty", field)
    order = np.argsort(known)
    sorted_known = known[order]
    pos = np.minimum(np.searchsorted(sorted_known, raw), len(known) - 1)
    found = sorted_known[pos] == raw
    if not found.all():
        b = int(np.flatnonzero(~found)[0])
        raise at.error(b, f"unknown item id {str(raw[b])!r}: not in {known_from}", field)
    return order[pos].astype(np.int64)


def make_catalog(
    ids: np.ndarray,
    fields: dict[str, list[str]],
    at: Locator,
    category_field: str | None = None,
) -> Catalog:
    """Catalog in natural id order; refuses duplicate and empty item ids.

    Args:
        ids: str [n] item ids in file order.
        fields: field name -> n strings, in file order.
        at: locates row i of the items file for messages.
        category_field: field holding categories, if any (else detected by name).
    """
    ids = ids.astype(str)
    check_ids(ids, at, "item_id")
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        is_first = np.zeros(len(ids), bool)
        is_first[first] = True
        second = int(np.flatnonzero(~is_first)[0])
        seen = int(first[np.searchsorted(uniq, ids[second])])
        dup = str(ids[second])
        raise at.error(second, f"duplicate item id {dup!r} (first on {at.where(seen)})",
                       "item_id")
    perm = natural_order(ids)
    out = {name: [str(col[i]) for i in perm] for name, col in fields.items()}
    if category_field is None:
        category_field = next((c for c in CATEGORY_FIELDS if c in out), None)
    return Catalog(item_ids=ids[perm], fields=out, category_field=category_field)


def catalog_from_ids(item_ids: np.ndarray) -> Catalog:
    """A catalog with no text fields, for data that came without an items file."""
    return Catalog(item_ids=np.asarray(item_ids, dtype=str), fields={})


def assemble(
    name: str,
    source: Path,
    user_raw: np.ndarray,
    item_idx: np.ndarray,
    order: np.ndarray | None,
    weight: np.ndarray | None,
    catalog: Catalog,
) -> Dataset:
    """Index users and build the :class:`Dataset` (items are already catalog indices)."""
    user_ids, user_idx = index_ids(user_raw)
    inter = Interactions(user_idx, item_idx, order, weight)
    log.info("loaded %s: %d users, %d items, %d interactions", name, len(user_ids),
             len(catalog), len(inter))
    return Dataset(name=name, user_ids=user_ids, catalog=catalog, interactions=inter,
                   source=str(source))


def items_and_index(
    raw: np.ndarray, at: Locator, item_file: Path, read_items: Callable[[Path], Catalog]
) -> tuple[Catalog, np.ndarray]:
    """The catalog and each interaction's item index: from ``item_file`` when it exists (an
    interaction's unknown item is a DataError), else a bare catalog of the ids seen.

    Args:
        raw: str [n] item ids of the interactions.
        at: locates row i of the interactions for messages.
        item_file: the items file that may sit beside the interactions.
        read_items: reads ``item_file`` into a :class:`Catalog`.
    """
    if item_file.is_file():
        catalog = read_items(item_file)
        return catalog, lookup(raw, at, catalog.item_ids, "item_id", item_file.name)
    ids, item_idx = index_ids(raw)
    return catalog_from_ids(ids), item_idx
