"""Output safety: one atomic file writer, and run directories that never cost a user data.

Two rules (issue 9, "never lose a user's data"):

1. Every file clusterneg writes goes through :func:`atomic_write` (or its text / JSON
   wrappers): the bytes go to a temporary file beside the destination, are flushed to disk,
   get the permissions a plain ``open()`` would give under the user's umask, and are renamed
   into place. A reader sees the old file or the new one, never half of one.
2. A *run directory* (``train --out``, ``compare --out``, ``cluster --out``) carries a marker
   file, :data:`MARKER`. :func:`check_output` is called before any work: it refuses a path
   that is a file, a non-empty directory that is not a clusterneg run (the user's folder, a
   dataset), or a run when ``overwrite`` is off, and it checks that the location is
   writable. :func:`write_run_dir` builds the new run in a hidden sibling and swaps it in
   with one atomic exchange, so the old run stays in place until the new one is complete;
   :func:`recover_output` tidies what a killed process left behind.

Nothing outside a run's own directory and its hidden siblings is ever removed.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = atomic_write_text(root / "a.txt", "hello")
    >>> (root / "a.txt").read_text()
    'hello'
    >>> run = write_run_dir(root / "run", lambda d: atomic_write_text(d / "x", "1"), "train")
    >>> is_run_dir(run), sorted(p.name for p in run.iterdir())
    (True, ['.clusterneg-run', 'x'])
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from clusterneg.errors import OutputError

MARKER = ".clusterneg-run"
_TMP_TAG = ".clusterneg-tmp-"
_OLD_TAG = ".clusterneg-old"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Permissions of a new file under the current umask (what ``open()`` would give)."""
    return 0o666 & ~_umask()


def dir_mode() -> int:
    """Permissions of a new directory under the current umask."""
    return 0o777 & ~_umask()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it is renamed over ``path``.

    On any exception (including Ctrl-C) the temporary file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())  # mkstemp makes 0600; honour the user's umask instead
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(binary_file)`` on a temporary file, then rename it over ``path``."""
    with atomic_open(path, "wb") as f:
        write(f)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (numpy arrays and paths allowed) atomically."""
    text = json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------
# Run directories
# ---------------------------------------------------------------------------------------------


def is_run_dir(path: str | Path) -> bool:
    """True when ``path`` is a directory carrying the clusterneg run marker."""
    return (Path(path) / MARKER).is_file()


def read_marker(path: str | Path) -> dict[str, Any]:
    """The marker's contents (``{}`` when it is unreadable)."""
    try:
        data = json.loads((Path(path) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_marker(path: str | Path, kind: str, complete: bool = True) -> None:
    """Mark ``path`` as a clusterneg run of ``kind`` (``train``, ``compare``, ``cluster``)."""
    from clusterneg import __version__

    atomic_write_json(Path(path) / MARKER, {"clusterneg": __version__, "kind": kind,
                                            "complete": complete})


def check_output(path: str | Path, overwrite: bool = False, resume: bool = False,
                 option: str = "--out") -> Path:
    """Refuse an output location before any work starts; returns the path.

    Accepted: a path that does not exist (its nearest existing ancestor must be a writable
    directory), an empty directory, or an existing run when ``overwrite`` (replace it) or
    ``resume`` (continue it) is set. Anything else raises :class:`OutputError` and nothing is
    touched.
    """
    path = Path(path)
    recover_output(path)
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        raise OutputError(f"{option} {path}: exists and is not a directory; refusing to "
                          "replace it (choose a new path)")
    if path.is_dir():
        if is_run_dir(path):
            if not (overwrite or resume):
                more = (" or --resume to continue it"
                        if read_marker(path).get("kind") == "compare" else "")
                raise OutputError(f"{option} {path}: a clusterneg run is already there; pass "
                                  f"--overwrite to replace it{more}")
        elif any(path.iterdir()):
            raise OutputError(f"{option} {path}: directory is not empty and is not a "
                              "clusterneg run; refusing to write into it (choose a new path)")
        _check_writable(path, option)
    _check_writable(_existing_ancestor(path.parent), option)
    return path


def check_file_output(path: str | Path, overwrite: bool = False,
                      option: str = "--out") -> Path:
    """Refuse a file output before any work: a directory, or an existing file unless
    ``overwrite``; the location must be writable. Returns the path."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a directory; expected a file path")
    if path.exists() and not overwrite:
        raise OutputError(f"{option} {path}: file exists; pass --overwrite to replace it")
    _check_writable(_existing_ancestor(path.parent), option)
    return path


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(directory: Path, option: str) -> None:
    if not directory.is_dir():
        raise OutputError(f"{option}: {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{option}: {directory} is not writable")


def recover_output(path: str | Path) -> None:
    """Tidy what a killed :func:`write_run_dir` left beside ``path``.

    A half-built hidden sibling whose writer is gone is removed; an old run that was moved
    aside but never replaced (a kill between two renames, only on filesystems without an
    atomic exchange) is moved back. Only hidden siblings named after ``path`` that carry the
    run marker are ever touched.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return
    old = parent / f".{path.name}{_OLD_TAG}"
    if is_run_dir(old):
        if not path.exists():
            os.rename(old, path)
        elif is_run_dir(path) and read_marker(path).get("complete", True):
            shutil.rmtree(old)
    for tmp in parent.glob(f".{path.name}{_TMP_TAG}*"):
        if tmp.is_dir() and is_run_dir(tmp) and not _pid_alive(_tmp_pid(tmp)):
            shutil.rmtree(tmp)


def _tmp_pid(tmp: Path) -> int:
    try:
        return int(tmp.name.rsplit(_TMP_TAG, 1)[1].split("-", 1)[0])
    except (IndexError, ValueError):
        return -1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_run_dir(dest: str | Path, fill: Callable[[Path], Any], kind: str,
                  overwrite: bool = False) -> Path:
    """Build a run directory in a hidden sibling with ``fill(tmp)``, then swap it in.

    ``dest`` must pass :func:`check_output` (an existing run is replaced only when
    ``overwrite``). The old run stays in place until the new one is complete: the two are
    exchanged atomically (``renameat2(RENAME_EXCHANGE)``) where the filesystem allows,
    else moved with two renames that :func:`recover_output` can undo.
    """
    dest = Path(dest)
    check_output(dest, overwrite=overwrite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}{_TMP_TAG}{os.getpid()}-",
                                dir=dest.parent))
    try:
        os.chmod(tmp, dir_mode())
        write_marker(tmp, kind, complete=False)
        fill(tmp)
        write_marker(tmp, kind, complete=True)
        _swap_in(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


def _swap_in(tmp: Path, dest: Path) -> None:
    """Put ``tmp`` at ``dest``; afterwards ``tmp`` holds the old run (or nothing)."""
    if not dest.exists():
        os.rename(tmp, dest)
        return
    if dest.is_dir() and not any(dest.iterdir()):
        os.replace(tmp, dest)  # rename over an empty directory is atomic
        return
    if _exchange(tmp, dest):
        return
    old = dest.parent / f".{dest.name}{_OLD_TAG}"
    os.rename(dest, old)
    os.rename(tmp, dest)
    shutil.rmtree(old)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2``; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))
