"""The small set of exceptions clusterneg raises on bad input.

The CLI turns every :class:`ClusternegError` into one line on stderr and exit code 2,
never a traceback. Messages say where (file, line, field), what was expected and what was
received.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
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


def check_known(what: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise :class:`ConfigError` when an entry of ``given`` is not in ``known``: the one
    message for an unknown sampler, option or encoder setting, with the closest known name.

    Args:
        what: what the names are ("sampler", "goobs option").
        given: the names the user wrote.
        known: the accepted names, in the order to list them.

    Example:
        >>> check_known("sampler", ["in-batch"], ["in-batch", "cluster-goobs"])
        >>> def message(given):
        ...     try:
        ...         check_known("sampler", given, ["in-batch", "goobs", "cluster-goobs"])
        ...     except ConfigError as e:
        ...         print(str(e).replace("; ", ";\\n"))
        >>> message(["cluster-gobs"])
        unknown sampler 'cluster-gobs' (did you mean 'cluster-goobs'?);
        expected one of: in-batch, goobs, cluster-goobs
        >>> message(["x", "gobs", "in-batch"])
        unknown sampler 'gobs' (did you mean 'goobs'?), unknown sampler 'x';
        expected one of: in-batch, goobs, cluster-goobs
    """
    known = list(known)
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parts.append((not close, f"unknown {what} {name!r}{hint}"))
    parts.sort()  # names with a suggestion first
    raise ConfigError(f"{', '.join(p for _, p in parts)}; expected one of: {', '.join(known)}")


class OutputError(ClusternegError):
    """An output location that clusterneg will not write to (it would lose the user's data)."""
