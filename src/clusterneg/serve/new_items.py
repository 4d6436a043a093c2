"""New items as they arrive: an id, text (or the catalog's text fields) and optionally a
precomputed content vector; read from JSONL, CSV or Parquet with errors that name the line.

Example:
    >>> item = NewItem.from_mapping({"item_id": "n1", "title": "Space Opera 2"}, "<request>", 1)
    >>> item.item_id, item.fields
    ('n1', {'title': 'Space Opera 2'})
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusterneg.errors import DataError

MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 20_000
RESERVED = ("item_id", "text", "vector")


@dataclass
class NewItem:
    """One item added after training.

    Args:
        item_id: its raw id (must not exist in the run yet).
        text: the text to encode as is (None: render the run's template from ``fields``).
        fields: catalog text fields (title, genre, ...), for the template and the title.
        vector: a raw content vector (before post-processing), for runs whose encoder reads
            precomputed vectors; None: encode the text.
    """

    item_id: str
    text: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    vector: list[float] | None = None

    @property
    def title(self) -> str:
        return self.fields.get("title") or self.text or self.item_id

    @classmethod
    def from_mapping(cls, row: dict[str, Any], where: str | Path, line: int) -> NewItem:
        """Validate one record; DataError naming ``where``, ``line`` and the field."""
        raw_id = row.get("item_id")
        if raw_id is None or str(raw_id).strip() == "":
            raise DataError(where, "missing item_id", line=line, field="item_id")
        item_id = str(raw_id).strip()
        if len(item_id) > MAX_ID_CHARS:
            raise DataError(where, f"item_id longer than {MAX_ID_CHARS} characters", line=line,
                            field="item_id")
        text = row.get("text")
        text = None if text is None or str(text) == "" else str(text)
        fields = {str(k): "" if v is None else str(v) for k, v in row.items()
                  if k not in RESERVED and not isinstance(v, (list, dict))}
        for name, value in [("text", text or ""), *fields.items()]:
            if len(value) > MAX_TEXT_CHARS:
                raise DataError(where, f"longer than {MAX_TEXT_CHARS} characters", line=line,
                                field=name)
        vector = _vector(row.get("vector"), where, line)
        if text is None and vector is None and not any(v.strip() for v in fields.values()):
            raise DataError(where, "an item needs 'text', text fields (e.g. 'title') or a "
                            "'vector'", line=line, field="text")
        return cls(item_id, text, fields, vector)


def _vector(value: Any, where: str | Path, line: int) -> list[float] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(where, "expected a JSON list of numbers", line=line,
                            field="vector") from None
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list) or not value:
        raise DataError(where, "expected a non-empty list of numbers", line=line,
                        field="vector")
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise DataError(where, "expected a list of numbers", line=line, field="vector") from None
    if not all(math.isfinite(v) for v in out):
        raise DataError(where, "holds NaN or infinity", line=line, field="vector")
    return out


def read_new_items(path: Path) -> list[NewItem]:
    """Items from a ``.jsonl``, ``.csv`` or ``.parquet`` file (one item per line / row)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix == ".parquet":
        rows = _parquet_rows(path)
    else:
        raise DataError(path, f"expected a .jsonl, .csv or .parquet file, got '{suffix or '-'}'")
    items = [NewItem.from_mapping(row, path, line) for line, row in rows]
    if not items:
        raise DataError(path, "no items in the file")
    seen: dict[str, int] = {}
    for (line, _), item in zip(rows, items, strict=True):
        if item.item_id in seen:
            raise DataError(path, f"item_id {item.item_id!r} repeats line {seen[item.item_id]}",
                            line=line, field="item_id")
        seen[item.item_id] = line
    return items


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"invalid JSON: {exc.msg}", line=n) from None
            if not isinstance(obj, dict):
                raise DataError(path, f"expected a JSON object, got {type(obj).__name__}",
                                line=n)
            rows.append((n, obj))
    return rows


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "item_id" not in reader.fieldnames:
            raise DataError(path, f"no item_id column (columns: {reader.fieldnames})", line=1,
                            field="item_id")
        return [(reader.line_num, dict(row)) for row in reader]


def _parquet_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path, f"not a readable Parquet file: {exc}") from None
    return [(n, row) for n, row in enumerate(table.to_pylist(), start=1)]
