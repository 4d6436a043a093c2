"""The small set of exceptions clusterneg raises on bad input.

The CLI turns every :class:`ClusternegError` into one line on stderr and exit code 2,
never a traceback. Messages say where (file, line, field), what was expected and what was
received.
"""

from __future__ import annotations

from pathlib import Path


class ClusternegError(Exception):
    """Base class: a user-facing error with a one-line message."""


class DataError(ClusternegError):
    """Input data that cannot be read: names the file, line and field.

    Args:
        path: the offending file (or directory).
        message: what was expected and what was received.
        line: 1-based line number in the file, when it has lines.
        field: the column / key that is wrong.

    Example:
        >>> str(DataError("a.csv", "expected an integer, got 'x'", line=3, field="user_id"))
        "a.csv:3: field 'user_id': expected an integer, got 'x'"
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


class ConfigError(ClusternegError):
    """An option or configuration value outside what is accepted."""


class OutputError(ClusternegError):
    """An output location that clusterneg will not write to (it would lose the user's data)."""
