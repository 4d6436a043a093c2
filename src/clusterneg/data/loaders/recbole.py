"""Loader for RecBole atomic files (``<name>.inter``, optional ``<name>.item``).

Format (RecBole docs, "Atomic Files"): UTF-8, tab-separated, a header line of
``field:type`` columns (``token``, ``token_seq``, ``float``, ``float_seq``); ``token_seq``
values are space-separated tokens. The ``.inter`` file needs ``user_id`` and ``item_id``;
``timestamp`` becomes the interaction order. Explicit ratings are kept as implicit feedback:
every row is a positive interaction with weight 1 (a ``weight`` column is used when present),
unless ``min_rating`` drops rows rated below it. Every non-id column of ``.item`` becomes a
text field; a ``token_seq`` category column (ml-100k's ``class``) is rewritten as
"Action, Comedy" so that it reads well and :meth:`Catalog.categories` splits it.

The built-in ``ml-100k`` is read from the installed ``recbole==1.2.1`` wheel without
importing recbole (``importlib.util.find_spec`` on a top-level package does not run it).

References:
    Zhao et al., "RecBole: Towards a Unified, Comprehensive and Efficient Framework for
    Recommendation Algorithms", CIKM 2021 (atomic files); the paper clusterneg implements,
    arXiv 2607.00448, "Reported results" (MovieLens).

Example:
    >>> ds = load(builtin_path("ml-100k"))
    >>> ds.n_users, ds.n_items, len(ds.interactions)
    (943, 1682, 100000)
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from clusterneg.data.dataset import Catalog, Dataset
from clusterneg.data.loaders import _catalog as c
from clusterneg.data.loaders import _read as r
from clusterneg.errors import ConfigError, DataError

_TYPES = ("token", "token_seq", "float", "float_seq")


def builtin_path(name: str = "ml-100k") -> Path:
    """Directory of a dataset shipped in the recbole wheel (``dataset_example/<name>``)."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise DataError(
            name, "built-in dataset needs the recbole wheel: pip install --no-deps recbole==1.2.1"
        )
    path = Path(spec.origin).parent / "dataset_example" / name
    if not (path / f"{name}.inter").is_file():
        raise DataError(path, f"built-in dataset '{name}' not found in the installed recbole")
    return path



def load(directory: Path, min_rating: float | None = None) -> Dataset:
    """Read ``<name>.inter`` (+ ``<name>.item`` when present) from ``directory``.

    Args:
        directory: folder with the atomic files.
        min_rating: keep only rows with ``rating >= min_rating`` (None: keep all).
    """
    inter_path = _pick_inter(directory)
    cols, at = read_atomic(inter_path, required=("user_id", "item_id"))
    order = _optional_numbers(cols, at, "timestamp")
    weight = _optional_numbers(cols, at, "weight")
    catalog, item_idx = c.items_and_index(cols["item_id"], at, inter_path.with_suffix(".item"),
                                          read_items)
    users = cols["user_id"]
    keep = _rating_mask(cols, at, min_rating)
    if keep is not None:
        users, item_idx = users[keep], item_idx[keep]
        order, weight = _sub(order, keep), _sub(weight, keep)
    return c.assemble(inter_path.stem, directory, users, item_idx, order, weight, catalog)


def read_atomic(
    path: Path, required: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], r.Lines]:
    """Parse one atomic file into name -> str [n] columns and their line locator.

    Args:
        path: the ``.inter`` / ``.item`` file.
        required: columns that must be in the header (ids among them must be non-empty).
    """
    text = r.read_text(path)
    head, _, body = text.partition("\n")
    names = _parse_header(path, head.rstrip("\r"))
    for need in required:
        if need not in names:
            raise DataError(path, f"missing column (header has {names})", line=1, field=need)
    cols, at = r.read_delimited(path, body, "\t", names, first_line=2)
    if len(cols[names[0]]) == 0:
        raise DataError(path, "empty file: a header but no rows", line=1)
    for n in ("user_id", "item_id"):
        if n in cols:
            r.check_ids(cols[n], at, n)
    return cols, at


def read_items(path: Path) -> Catalog:
    """Read a ``.item`` file into a catalog (every non-id column is a text field)."""
    cols, at = read_atomic(path, required=("item_id",))
    fields = {n: v.tolist() for n, v in cols.items() if n != "item_id"}
    cat = next((f for f in c.CATEGORY_FIELDS if f in fields), None)
    if cat is not None:
        fields[cat] = [_tokens_to_list(v) for v in fields[cat]]
    return c.make_catalog(cols["item_id"], fields, at, category_field=cat)


def _parse_header(path: Path, head: str) -> list[str]:
    names = []
    for col in head.split("\t"):
        name, sep, typ = col.partition(":")
        if not sep or typ not in _TYPES or not name:
            raise DataError(path, f"header column {col!r} is not 'name:type' with type in "
                            f"{_TYPES}", line=1)
        names.append(name)
    if len(set(names)) != len(names):
        raise DataError(path, f"header repeats a column name: {names}", line=1)
    return names


def _pick_inter(directory: Path) -> Path:
    found = sorted(p for p in directory.glob("*.inter") if p.is_file())
    if len(found) == 1:
        return found[0]
    preferred = directory / f"{directory.name}.inter"
    if preferred in found:
        return preferred
    raise DataError(directory, f"several .inter files {[p.name for p in found]}; expected one "
                    f"or '{directory.name}.inter'")


def _optional_numbers(
    cols: dict[str, np.ndarray], at: r.Lines, name: str
) -> np.ndarray | None:
    return r.parse_numbers(cols[name], at, name) if name in cols else None


def _rating_mask(
    cols: dict[str, np.ndarray], at: r.Lines, min_rating: float | None
) -> np.ndarray | None:
    if min_rating is None:
        return None
    if "rating" not in cols:
        raise ConfigError(f"min_rating={min_rating} but {at.path} has no 'rating' column")
    keep = r.parse_numbers(cols["rating"], at, "rating") >= min_rating
    if not keep.any():
        raise ConfigError(f"min_rating={min_rating} leaves no interaction in {at.path}")
    return keep


def _sub(a: np.ndarray | None, keep: np.ndarray) -> np.ndarray | None:
    return None if a is None else a[keep]


def _tokens_to_list(value: str) -> str:
    """'Action Comedy' -> 'Action, Comedy'; values already using ',' or '|' are kept."""
    if "," in value or "|" in value:
        return value
    return ", ".join(value.split())
