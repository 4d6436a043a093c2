"""Strict reading for the loaders: text decoding, delimited rows to columns, numbers, ids.

Every helper refuses bad input with a :class:`~clusterneg.errors.DataError` that names the
file, the 1-based line and the field. The fast path is vectorised; the slow path (a Python
scan) only runs after something failed, to find the exact line to report.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from clusterneg.errors import DataError


class Locator(Protocol):
    """Turns a 0-based row index of a parsed file into a located :class:`DataError`."""

    path: Path

    def where(self, row: int) -> str:
        """'line 12' or 'row 12', for messages that point at a second place."""
        ...

    def error(self, row: int, message: str, field: str | None = None) -> DataError:
        """The error for ``row`` (file, line when known, field)."""
        ...


@dataclass
class Lines:
    """Locator for line-based files: row i was read from line ``line_no[i]``."""

    path: Path
    line_no: np.ndarray

    def where(self, row: int) -> str:
        return f"line {int(self.line_no[row])}"

    def error(self, row: int, message: str, field: str | None = None) -> DataError:
        return DataError(self.path, message, line=int(self.line_no[row]), field=field)


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """Whole file as text; refuses an empty file and undecodable bytes with the line.

    Args:
        path: file to read.
        encoding: "utf-8" (strict) or a single-byte encoding such as "latin-1".

    Example:
        >>> read_text(Path("ml-100k.inter"))[:7]  # doctest: +SKIP
        'user_id'
    """
    raw = path.read_bytes()
    if encoding == "utf-8" and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # byte-order mark written by spreadsheet programs
    if not raw.strip():
        raise DataError(path, "empty file: no data")
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        bad = raw[exc.start : exc.start + 1]
        raise DataError(
            path, f"not valid {encoding} text: byte {bad!r} at column {col}", line=line
        ) from None


def split_rows(
    path: Path, text: str, sep: str, n_fields: int, first_line: int = 1
) -> tuple[list[list[str]], Lines]:
    """Split ``text`` into rows of exactly ``n_fields`` fields; blank lines are skipped.

    Args:
        path: file the text came from (for messages).
        text: the decoded file content (without any header already consumed).
        sep: field separator ("\\t", "::").
        n_fields: required number of fields per row.
        first_line: line number of the first line of ``text``.

    Returns:
        ``(rows, at)``: the rows and their locator (the 1-based line of each row).
    """
    lines = text.split("\n")
    keep = [i for i, s in enumerate(lines) if s.strip()]
    rows = [lines[i].rstrip("\r").split(sep) for i in keep]
    line_no = np.asarray(keep, dtype=np.int64) + first_line
    lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    bad = np.flatnonzero(lens != n_fields)
    if bad.size:
        b = int(bad[0])
        raise DataError(
            path,
            f"expected {n_fields} fields separated by {sep!r}, got {lens[b]}: "
            f"{clip(lines[keep[b]])!r}",
            line=int(line_no[b]),
        )
    return rows, Lines(path, line_no)


def read_delimited(
    path: Path, text: str, sep: str, names: Sequence[str], first_line: int = 1
) -> tuple[dict[str, np.ndarray], Lines]:
    """Delimited text (no quoting) -> name -> str [n] columns and their line locator.

    The fast path parses with pyarrow (C++); when it fails, or the text has blank lines,
    :func:`split_rows` re-reads it in Python, which skips blank lines and reports the
    first malformed row with its line. Both paths give the same columns.

    Args:
        path: file the text came from (for messages).
        text: decoded content, header already removed.
        sep: field separator ("\\t", "::").
        names: column names, one per field.
        first_line: line number of the first line of ``text``.
    """
    cols = _arrow_columns(text, sep, names)
    n_lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    if cols is not None and len(cols[names[0]]) == n_lines:
        return cols, Lines(path, np.arange(n_lines, dtype=np.int64) + first_line)
    rows, at = split_rows(path, text, sep, len(names), first_line)
    if not rows:
        return {n: np.zeros(0, dtype=str) for n in names}, at
    return columns(rows, names), at


def _arrow_columns(text: str, sep: str, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    delim = sep
    if len(sep) > 1:  # pyarrow splits on one character: map sep to an unused one
        if "\x1f" in text:
            return None
        text, delim = text.replace(sep, "\x1f"), "\x1f"
    try:
        tab = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            # use_threads=False: pyarrow's CSV thread pool aborts the interpreter at exit
            read_options=pacsv.ReadOptions(column_names=list(names), use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delim, quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    return {n: np.asarray(tab.column(n).to_numpy(zero_copy_only=False), dtype=str)
            for n in names}


def columns(rows: list[list[str]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Rows of equal length -> name -> str [n_rows] column."""
    cols = zip(*rows, strict=True)
    return {n: np.array(col, dtype=str) for n, col in zip(names, cols, strict=True)}


def parse_numbers(values: Sequence[str], at: Locator, field: str) -> np.ndarray:
    """Strings -> float64 [n]; the first unparsable or non-finite value is reported.

    Args:
        values: n strings.
        at: locates row i for messages.
        field: column name (for messages).
    """
    try:
        out = np.asarray(values, dtype=np.float64) if len(values) else np.zeros(0)
    except ValueError:
        out = None
    if out is not None and np.isfinite(out).all():
        return out
    for i, v in enumerate(values):
        if not _is_finite_number(v):
            raise at.error(i, f"expected a finite number, got {clip(str(v))!r}", field)
    raise AssertionError("unreachable: a value failed to parse but none was found")


def check_ids(ids: np.ndarray, at: Locator, field: str) -> None:
    """Refuse empty ids (a blank cell where an id is required)."""
    empty = np.flatnonzero(np.char.str_len(np.char.strip(ids.astype(str))) == 0)
    if empty.size:
        raise at.error(int(empty[0]), "empty id", field)


def clip(s: str, n: int = 60) -> str:
    """Shorten a value quoted in a message."""
    return s if len(s) <= n else s[: n - 3] + "..."


def _is_finite_number(v: object) -> bool:
    try:
        return bool(np.isfinite(float(v)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
