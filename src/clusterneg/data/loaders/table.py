"""Loader for generic CSV / Parquet tables, whole or already split.

Layouts (one directory; each table is ``<stem>.csv`` or ``<stem>.parquet``, not both):

- ``interactions`` with columns ``user_id``, ``item_id``, optional ``timestamp`` (number or
  ISO-8601 date; becomes the order), optional ``weight`` (number, default 1) and optional
  ``rating`` (only read for ``min_rating``);
- or the pre-split variant ``train`` + ``test`` (+ optional ``valid``) with the same columns,
  so a fixed split from another library can be reused as is (``Dataset.presplit``);
- ``items`` (optional): ``item_id`` plus any columns, all read as text fields; without it the
  catalog holds the item ids seen, without text. A column named ``categories`` / ``genres`` /
  ``category`` / ``genre`` / ``class`` is the category field.

CSV is read by pyarrow with every column as text (UTF-8, strictly checked), then converted
here so that a bad value is reported with its line. Parquet errors name the row instead.

References:
    The paper clusterneg implements, arXiv 2607.00448, "Reported results" (offline
    evaluation on public data with a fixed split).

Example:
    >>> ds = load(Path("my_data"))  # interactions.parquet, items.csv  # doctest: +SKIP
    >>> ds.presplit is None  # doctest: +SKIP
    True
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clusterneg.data.dataset import Catalog, Dataset, Interactions
from clusterneg.data.loaders import _catalog as c
from clusterneg.data.loaders import _read as r
from clusterneg.errors import ConfigError, DataError

EXTENSIONS = (".csv", ".parquet")
SPLITS = ("train", "valid", "test")


def find_table(directory: Path, stem: str) -> Path | None:
    """``<stem>.csv``, ``<stem>.parquet`` or a folder ``<stem>/`` of Parquet shards (as
    ``clusterneg data synth`` writes) in ``directory``; more than one is an error."""
    found = [directory / f"{stem}{ext}" for ext in EXTENSIONS]
    found = [p for p in found if p.is_file()]
    if (directory / stem).is_dir() and any((directory / stem).glob("*.parquet")):
        found.append(directory / stem)
    if len(found) > 1:
        raise DataError(directory, f"both {found[0].name} and {found[1].name}: keep one")
    return found[0] if found else None




def load(directory: Path, min_rating: float | None = None) -> Dataset:
    """Read ``interactions`` (+ ``items``) from ``directory``.

    Args:
        directory: folder with the tables.
        min_rating: keep only rows with ``rating >= min_rating`` (needs a ``rating`` column).
    """
    path = find_table(directory, "interactions")
    if path is None:
        raise DataError(directory, "no interactions.csv or interactions.parquet")
    return _build(directory, {"all": read_interactions(path)}, min_rating)


def load_presplit(directory: Path, min_rating: float | None = None) -> Dataset:
    """Read ``train``, ``test`` and optional ``valid`` tables (+ ``items``) from ``directory``.

    Users and items are indexed jointly over all parts; ``Dataset.interactions`` is their
    concatenation and ``Dataset.presplit`` holds each part.
    """
    parts = {}
    for name in SPLITS:
        path = find_table(directory, name)
        if path is not None:
            parts[name] = read_interactions(path)
    if "train" not in parts or "test" not in parts:
        raise DataError(directory, "a pre-split dataset needs train and test tables")
    return _build(directory, parts, min_rating)


@dataclass
class Table:
    """Columns of one table as pyarrow arrays, with a locator for messages."""

    path: Path
    columns: dict[str, pa.Array]
    text: str | None = None
    _lines: list[int] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def where(self, row: int) -> str:
        line = self._line(row)
        return f"line {line}" if line is not None else f"row {row + 1}"

    def error(self, row: int, message: str, field: str | None = None) -> DataError:
        line = self._line(row)
        if line is None:
            return DataError(self.path, f"row {row + 1}: {message}", field=field)
        return DataError(self.path, message, line=line, field=field)

    def _line(self, row: int) -> int | None:
        """Exact line of a CSV row (quoted newlines and blank lines respected), lazily."""
        if self.text is None:
            return None
        if self._lines is None:
            self._lines = _csv_row_lines(self.text)
        return self._lines[row] if row < len(self._lines) else None


def read_table(path: Path, required: tuple[str, ...]) -> Table:
    """Read a CSV (all columns as text) or Parquet table and check its columns."""
    table = _read_csv(path) if path.suffix == ".csv" else _read_parquet(path)
    names = list(table.columns)
    for need in required:
        if need not in table.columns:
            line = 1 if table.text is not None else None
            raise DataError(path, f"missing column (columns are {names})", line=line,
                            field=need)
    if len(table) == 0:
        raise DataError(path, "empty file: a header but no rows")
    return table


@dataclass
class Part:
    """One interactions table, parsed: raw ids and numeric columns."""

    table: Table
    user: np.ndarray
    item: np.ndarray
    order: np.ndarray | None
    weight: np.ndarray | None
    rating: np.ndarray | None


def read_interactions(path: Path) -> Part:
    """Parse an interactions table: ids as text, timestamp / weight / rating as numbers."""
    t = read_table(path, ("user_id", "item_id"))
    user = to_text(t, "user_id", required=True)
    item = to_text(t, "item_id", required=True)
    r.check_ids(user, t, "user_id")
    r.check_ids(item, t, "item_id")
    order = to_numbers(t, "timestamp", dates=True) if "timestamp" in t.columns else None
    weight = to_numbers(t, "weight") if "weight" in t.columns else None
    if weight is not None and not (np.isfinite(weight) & (weight >= 0)).all():
        bad = int(np.flatnonzero(~(np.isfinite(weight) & (weight >= 0)))[0])
        raise t.error(bad, f"weight must be a finite number >= 0, got {weight[bad]}", "weight")
    rating = to_numbers(t, "rating") if "rating" in t.columns else None
    return Part(t, user, item, order, weight, rating)


def read_items(path: Path) -> Catalog:
    """An items table -> catalog; every non-id column is a text field ("" when null)."""
    t = read_table(path, ("item_id",))
    ids = to_text(t, "item_id", required=True)
    fields = {n: to_text(t, n).tolist() for n in t.columns if n != "item_id"}
    return c.make_catalog(ids, fields, t)


def to_text(t: Table, name: str, required: bool = False) -> np.ndarray:
    """Column as str [n]; invalid UTF-8 and (when ``required``) nulls are reported."""
    col = t.columns[name]
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        col = _decode_binary(t, name, col)
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        _check_utf8(t, name, col)
    else:
        col = pc.cast(col, pa.string())
    if col.null_count:
        if required:
            raise t.error(_first_null(col), "missing value", name)
        col = pc.fill_null(col, "")
    return np.asarray(col.to_numpy(zero_copy_only=False), dtype=str)


def to_numbers(t: Table, name: str, dates: bool = False) -> np.ndarray:
    """Column as float64 [n]; dates / timestamps become epoch seconds (when ``dates``)."""
    col = t.columns[name]
    if col.null_count:
        raise t.error(_first_null(col), "missing value", name)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return _epoch_seconds(col)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        out = col.to_numpy(zero_copy_only=False).astype(np.float64)
        if not np.isfinite(out).all():
            raise t.error(int(np.flatnonzero(~np.isfinite(out))[0]), "not a finite number", name)
        return out
    values = to_text(t, name, required=True)
    if dates:
        try:
            return r.parse_numbers(values, _Silent(t.path), name)
        except DataError:
            parsed = _parse_dates(values)
            if parsed is not None:
                return parsed
    return r.parse_numbers(values, t, name)


def _build(directory: Path, parts: dict[str, Part], min_rating: float | None) -> Dataset:
    """Index users / items jointly over the parts and assemble the dataset."""
    if min_rating is not None:
        parts = {k: _filter_rating(p, min_rating) for k, p in parts.items()}
    items_path = find_table(directory, "items")
    if items_path is not None:
        catalog = read_items(items_path)
        item_idx = [c.lookup(p.item, p.table, catalog.item_ids, "item_id", items_path.name)
                    for p in parts.values()]
    else:
        ids, flat = c.index_ids(np.concatenate([p.item for p in parts.values()]))
        catalog = c.catalog_from_ids(ids)
        item_idx = np.split(flat, np.cumsum([len(p.item) for p in parts.values()])[:-1])
    user_ids, user_flat = c.index_ids(np.concatenate([p.user for p in parts.values()]))
    user_idx = np.split(user_flat, np.cumsum([len(p.user) for p in parts.values()])[:-1])
    has_order = all(p.order is not None for p in parts.values())
    inter = {
        k: Interactions(u, i, p.order if has_order else None, p.weight)
        for (k, p), u, i in zip(parts.items(), user_idx, item_idx, strict=True)
    }
    ds = Dataset(
        name=directory.name, user_ids=user_ids, catalog=catalog,
        interactions=Interactions.concat(list(inter.values())), source=str(directory),
    )
    if "all" not in inter:
        ds.presplit = inter
    return ds


def _filter_rating(p: Part, min_rating: float) -> Part:
    if p.rating is None:
        raise ConfigError(f"min_rating={min_rating} but {p.table.path} has no 'rating' column")
    keep = p.rating >= min_rating
    if not keep.any():
        raise ConfigError(f"min_rating={min_rating} leaves no interaction in {p.table.path}")

    def sub(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[keep]

    return Part(p.table, p.user[keep], p.item[keep], sub(p.order), sub(p.weight), p.rating[keep])


def _read_csv(path: Path) -> Table:
    text = r.read_text(path)  # refuses empty files and non-UTF-8 bytes, with the line
    header = next(csv.reader(io.StringIO(text)), [])
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        raise DataError(path, f"header has empty or repeated column names: {header}", line=1)
    opts = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header}, strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    parse = pacsv.ParseOptions(newlines_in_values=True)
    try:
        # use_threads=False: pyarrow's CSV thread pool aborts the interpreter at exit (SIGABRT)
        tab = pacsv.read_csv(io.BytesIO(text.encode()), parse_options=parse,
                             convert_options=opts,
                             read_options=pacsv.ReadOptions(use_threads=False))
    except pa.ArrowInvalid as exc:
        raise _locate_csv_error(path, text, len(header), exc) from None
    cols = {n: tab.column(n).combine_chunks() for n in tab.column_names}
    return Table(path, cols, text=text)


def _read_parquet(path: Path) -> Table:
    if path.is_file() and path.stat().st_size == 0:
        raise DataError(path, "empty file: expected a Parquet table")
    try:
        tab = pq.read_table(path, use_threads=False)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(path, f"cannot read Parquet: {exc}") from None
    return Table(path, {n: tab.column(n).combine_chunks() for n in tab.column_names})


def _csv_row_lines(text: str) -> list[int]:
    """1-based start line of each non-blank data row (the header is line 1)."""
    reader = csv.reader(io.StringIO(text))
    out: list[int] = []
    prev, header_seen = 0, False
    for row in reader:
        if row and header_seen:
            out.append(prev + 1)
        header_seen = header_seen or bool(row)
        prev = reader.line_num
    return out


def _locate_csv_error(path: Path, text: str, n_fields: int, exc: Exception) -> DataError:
    """Find the first data row with the wrong number of fields (pyarrow does not say)."""
    reader = csv.reader(io.StringIO(text))
    prev = 0
    for row in reader:
        start = prev + 1
        prev = reader.line_num
        if row and len(row) != n_fields:
            return DataError(path, f"expected {n_fields} comma-separated fields, got {len(row)}",
                             line=start)
    return DataError(path, f"cannot parse CSV: {exc}")


def _check_utf8(t: Table, name: str, col: pa.Array) -> None:
    try:
        col.validate(full=True)
    except pa.ArrowInvalid:
        _decode_binary(t, name, col.view(pa.binary()))


def _decode_binary(t: Table, name: str, col: pa.Array) -> pa.Array:
    out = []
    for i, v in enumerate(col.to_pylist()):
        try:
            out.append(None if v is None else v.decode("utf-8"))
        except UnicodeDecodeError:
            raise t.error(i, f"not valid UTF-8 text: {r.clip(repr(v))}", name) from None
    return pa.array(out, pa.string())


def _first_null(col: pa.Array) -> int:
    return int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])


def _epoch_seconds(col: pa.Array) -> np.ndarray:
    ts = pc.cast(col, pa.timestamp("us")) if pa.types.is_date(col.type) else col
    unit = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[ts.type.unit]
    return pc.cast(ts, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64) / unit


def _parse_dates(values: np.ndarray) -> np.ndarray | None:
    """ISO-8601 strings -> epoch seconds, or None when some value is not a date."""
    try:
        return _epoch_seconds(pc.cast(pa.array(values.tolist()), pa.timestamp("us")))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


@dataclass
class _Silent:
    """A locator whose errors carry no line: used for a first, tentative parse."""

    path: Path

    def where(self, row: int) -> str:
        return f"row {row + 1}"

    def error(self, row: int, message: str, field: str | None = None) -> DataError:
        return DataError(self.path, message, field=field)
