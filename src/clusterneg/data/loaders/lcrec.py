"""Loader for LC-Rec / TIGER style JSON (``<name>.inter.json``, ``<name>.item.json``).

``<name>.inter.json`` maps each user to the chronological list of items they interacted
with; the interaction order is the position in that list (0, 1, ...), so leave-last-out
holds out the last item. ``<name>.item.json`` maps each item to an object of text fields
(``title``, ``description``, ``brand``, ``categories``); every key seen becomes a field,
missing keys are "", list values are joined with ", ". ``categories`` is the category field.
When the item file is absent the catalog holds the ids seen, without text.

References:
    Zheng et al., "Adapting Large Language Models by Integrating Collaborative Semantics
    for Recommendation" (LC-Rec), ICDE 2024; the paper clusterneg implements, arXiv
    2607.00448, "Reported results" (Amazon).

Example (on the development data beside the checkout; skipped in the test suite, which
never depends on files outside the repository):
    >>> ds = load(Path("../shared/data/amazon-office"))  # doctest: +SKIP
    >>> ds.n_users, ds.n_items, len(ds.interactions)  # doctest: +SKIP
    (4905, 2420, 53258)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.data.dataset import Catalog, Dataset
from clusterneg.data.loaders import _catalog as c
from clusterneg.data.loaders import _read as r
from clusterneg.errors import DataError

_SUFFIX_INTER = ".inter.json"
_SUFFIX_ITEM = ".item.json"



def load(directory: Path) -> Dataset:
    """Read ``<name>.inter.json`` and, when present, ``<name>.item.json`` from ``directory``."""
    inter_path = _pick(directory)
    prefix = inter_path.name[: -len(_SUFFIX_INTER)]
    text, data = read_json(inter_path)
    user_raw, item_raw, order, at = _flatten(inter_path, text, data)
    item_path = directory / f"{prefix}{_SUFFIX_ITEM}"
    if item_path.is_file():
        catalog = read_items(item_path)
        item_idx = c.lookup(item_raw, at, catalog.item_ids, "item", item_path.name)
    else:
        ids, item_idx = c.index_ids(item_raw)
        catalog = c.catalog_from_ids(ids)
    return c.assemble(directory.name, directory, user_raw, item_idx, order, None, catalog)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


def read_json(path: Path) -> tuple[str, Any]:
    """Decode a JSON file strictly: syntax errors and repeated keys name the line."""
    text = r.read_text(path)
    try:
        return text, json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"invalid JSON: {exc.msg} (column {exc.colno})",
                        line=exc.lineno) from None
    except _DuplicateKey as exc:
        first = text.find(json.dumps(exc.key))
        line = _key_lines(text[first + 1 :], [exc.key])[0] + text.count("\n", 0, first)
        raise DataError(path, f"duplicate key {exc.key!r}", line=int(line),
                        field=exc.key) from None


def read_items(path: Path) -> Catalog:
    """``{item: {field: text}}`` -> catalog in natural id order."""
    text, data = read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a non-empty JSON object {item_id: {field: text}}")
    names: dict[str, None] = {}
    for key, rec in data.items():
        if not isinstance(rec, dict):
            raise DataError(path, f"expected an object of text fields, got "
                            f"{type(rec).__name__}", line=_line_of_key(text, key), field=key)
        names.update(dict.fromkeys(rec))
    fields = {n: [_as_text(rec.get(n)) for rec in data.values()] for n in names}
    ids = np.array(list(data), dtype=str)
    at = r.Lines(path, _key_lines(text, list(data)))
    cat = "categories" if "categories" in fields else None
    return c.make_catalog(ids, fields, at, category_field=cat)


def _flatten(
    path: Path, text: str, data: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, r.Lines]:
    """{user: [items]} -> user str [n], item str [n], order float64 [n], locator (user's line)."""
    if not isinstance(data, dict) or not data:
        raise DataError(path, "expected a non-empty JSON object {user_id: [item_id, ...]}")
    users, items, lengths = [], [], []
    for user, seq in data.items():
        if not isinstance(seq, list) or not all(
            isinstance(x, (int, str)) and not isinstance(x, bool) for x in seq
        ):
            raise DataError(path, "expected a list of item ids (int or str)",
                            line=_line_of_key(text, user), field=user)
        users.append(user)
        items.extend(str(x) for x in seq)
        lengths.append(len(seq))
    if not items:
        raise DataError(path, "no interactions: every user's list is empty")
    counts = np.asarray(lengths, dtype=np.int64)
    user_raw = np.repeat(np.array(users, dtype=str), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    order = (np.arange(len(items)) - starts).astype(np.float64)
    at = r.Lines(path, np.repeat(_key_lines(text, users), counts))
    return user_raw, np.array(items, dtype=str), order, at


def _pick(directory: Path) -> Path:
    found = sorted(p for p in directory.glob(f"*{_SUFFIX_INTER}") if p.is_file())
    if len(found) != 1:
        raise DataError(directory, f"expected exactly one *{_SUFFIX_INTER} file, found "
                        f"{[p.name for p in found]}")
    return found[0]


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value if v is not None)
    return str(value)


def _line_of_key(text: str, key: str) -> int:
    """1-based line of the first ``"key"`` in ``text`` (best effort, for messages)."""
    return int(_key_lines(text, [key])[0])


def _key_lines(text: str, keys: list[str]) -> np.ndarray:
    """1-based line of each top-level key, searched in file order (one linear pass).

    Keys of a JSON object keep their file order in Python, so each search starts where the
    previous key was found; ``"key":`` cannot occur inside an encoded string (its quotes
    would be escaped). Falls back to line 1 when a key is written unusually.
    """
    out = np.ones(len(keys), dtype=np.int64)
    pos, line = 0, 1
    for i, key in enumerate(keys):
        quoted = json.dumps(key)
        found = text.find(quoted + ":", pos)
        if found < 0:
            found = text.find(quoted, pos)
        if found < 0:
            continue
        line += text.count("\n", pos, found)
        pos = found
        out[i] = line
    return out
