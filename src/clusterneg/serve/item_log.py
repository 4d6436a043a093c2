"""The added-items log: an append-only, fsync'd, checksummed record of items added to a run.

Items added after training (``clusterneg items add``, ``POST /items``) live in
``RUN/serving/added_items.jsonl``. Each add is ONE line holding the whole batch and a CRC32 of
it, written with a single ``write`` and ``fsync``'d before the add is acknowledged, so:

- a restarted service replays the log and has every acknowledged item;
- a process killed in the middle of an add leaves at most a torn last line, which fails its
  checksum and is dropped (that add was never acknowledged) and truncated away on the next
  open, so later appends start on a clean line;
- a damaged line anywhere before the last is corruption, reported, never silently skipped.

The log only grows; nothing is rewritten in place. The first write also fsyncs the directory
so the file's existence survives a crash. Several processes may add to one run (a service and
``clusterneg items add``): every read and append happens under an exclusive ``flock`` of
``added_items.jsonl.lock``, and a writer first reads what others appended since its last
read (:meth:`ItemLog.read_new`), so item numbers never clash.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (new items are encoded, assigned to
    the nearest cluster and enter the pool in real time, without retraining).

Example:
    >>> import tempfile, pathlib
    >>> log = ItemLog(pathlib.Path(tempfile.mkdtemp()) / "added.jsonl")
    >>> with log.exclusive():
    ...     log.append([{"item_id": "x", "cluster": 3}])
    >>> [r["item_id"] for r in log.read()]
    ['x']
"""

from __future__ import annotations

import fcntl
import json
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clusterneg.errors import DataError


def _crc(payload: str) -> str:
    return format(zlib.crc32(payload.encode("utf-8")) & 0xFFFFFFFF, "08x")


def encode_batch(records: list[dict[str, Any]]) -> bytes:
    """One log line: ``{"crc": "........", "items": [...]}`` + newline (UTF-8)."""
    payload = json.dumps(records, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return ('{"crc":"' + _crc(payload) + '","items":' + payload + "}\n").encode("utf-8")


def decode_line(line: bytes) -> list[dict[str, Any]] | None:
    """The batch of one line, or None when the line is torn or fails its checksum."""
    try:
        text = line.decode("utf-8")
        obj = json.loads(text)
        payload = json.dumps(obj["items"], ensure_ascii=False, separators=(",", ":"))
    except (UnicodeDecodeError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(obj, dict) or obj.get("crc") != _crc(payload) or not text.endswith("\n"):
        return None
    return list(obj["items"])


class ItemLog:
    """Append-only JSONL log of added-item batches at ``path``.

    Args:
        path: the log file (created, with its directory, on the first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._offset = 0  # bytes of the log already read by this process

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the log's exclusive lock (across processes) for a read-then-append."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT,
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """Every acknowledged record, in the order added (takes the lock)."""
        with self.exclusive():
            self._offset = 0
            return self.read_new()

    def read_new(self) -> list[dict[str, Any]]:
        """Records appended since this process last read; drops (and truncates) a torn tail.
        Call it holding :meth:`exclusive`.

        Raises:
            DataError: a damaged line that is not the last one.
        """
        records: list[dict[str, Any]] = []
        lines = list(self._lines(self._offset))
        for n, (end, line) in enumerate(lines, start=1):
            batch = decode_line(line)
            if batch is None:
                if n < len(lines):
                    raise DataError(self.path, "damaged record (checksum or JSON) before the "
                                    "end of the log", line=self._line_number(end))
                self._truncate(self._offset)  # a torn, never-acknowledged last append
                break
            records.extend(batch)
            self._offset = end
        return records

    def append(self, records: list[dict[str, Any]]) -> None:
        """Durably append one batch: one write, then fsync, before returning. Call it holding
        :meth:`exclusive`, after :meth:`read_new`."""
        if not records:
            return
        data = encode_batch(records)
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self._offset += len(data)
        if new:
            _fsync_dir(self.path.parent)

    def _line_number(self, end: int) -> int:
        with open(self.path, "rb") as f:
            return f.read(end).count(b"\n")

    def _lines(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(offset after the line, raw line) for every line from byte ``start``, the last
        possibly unterminated."""
        if not self.path.exists():
            return
        offset = start
        with open(self.path, "rb") as f:
            f.seek(start)
            for line in f:
                offset += len(line)
                yield offset, line

    def _truncate(self, size: int) -> None:
        with open(self.path, "r+b") as f:
            f.truncate(size)
            os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
