"""``load_dataset(spec)``: a built-in name or a directory whose format is detected.

Formats are tried in a fixed order; the first whose marker files are present reads the
directory (see each loader's module docstring for the exact format). Detection looks only
at file names, here, so only the one loader that fits is entered:

============================  ==========================================  ================
marker                        format                                      loader
============================  ==========================================  ================
``*.inter.json``              LC-Rec / TIGER JSON                         ``lcrec``
``*.inter``                   RecBole atomic files                        ``recbole``
``ratings.dat``               MovieLens-1M ``::`` files                   ``movielens``
``train.*`` + ``test.*``      pre-split CSV / Parquet tables              ``table``
``interactions.*``            CSV / Parquet tables                        ``table``
============================  ==========================================  ================

Loaders only read: nothing is written, so a failure never leaves a half-written file.

References:
    The paper clusterneg implements, arXiv 2607.00448, "Reported results" (MovieLens and
    Amazon data, ranked over the whole corpus).

Example:
    >>> ds = load_dataset("ml-100k")
    >>> ds.n_users, ds.n_items
    (943, 1682)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clusterneg.data.dataset import Dataset
from clusterneg.data.loaders import lcrec, movielens, recbole, table
from clusterneg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Names that load without a path: name -> directory inside the recbole wheel.
BUILTIN = ("ml-100k",)



@dataclass(frozen=True)
class Format:
    """One on-disk dataset format: how to recognise it by file names, and its loader.

    Attributes:
        name: the format's name in messages and logs.
        marker: the marker files, as a user reads them in the "no known format" error.
        requires: groups of glob patterns relative to the directory; the format fits when
            every group has a pattern matching at least one file.
        loader: reads the directory into a :class:`Dataset`.
        takes_rating: whether the loader accepts ``min_rating``.
    """

    name: str
    marker: str
    requires: tuple[tuple[str, ...], ...]
    loader: Callable[..., Dataset]
    takes_rating: bool

    def fits(self, directory: Path) -> bool:
        """True when ``directory`` holds this format's marker files.

        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); _ = (d / "ratings.dat").write_text("1::2::5::0")
        >>> [f.name for f in FORMATS if f.fits(d)]
        ['movielens']
        """
        return all(any(_present(directory, p) for p in group) for group in self.requires)


def _present(directory: Path, pattern: str) -> bool:
    return any(p.is_file() for p in directory.glob(pattern))


def _table(stem: str) -> tuple[str, ...]:
    """``<stem>.csv``, ``<stem>.parquet`` or a folder ``<stem>/`` of Parquet shards."""
    return tuple(f"{stem}{ext}" for ext in table.EXTENSIONS) + (f"{stem}/*.parquet",)


#: The formats, tried in this order.
FORMATS: tuple[Format, ...] = (
    Format("lcrec", "<name>.inter.json (+ <name>.item.json)", (("*.inter.json",),),
           lcrec.load, False),
    Format("recbole", "<name>.inter (+ <name>.item)", (("*.inter",),), recbole.load, True),
    Format("movielens", "ratings.dat (+ movies.dat)", (("ratings.dat",),), movielens.load,
           True),
    Format("presplit", "train.{csv,parquet} + test.{csv,parquet} (+ valid, items)",
           (_table("train"), _table("test")), table.load_presplit, True),
    Format("table", "interactions.{csv,parquet} (+ items.{csv,parquet})",
           (_table("interactions"),), table.load, True),
)


def load_dataset(spec: str | Path, min_rating: float | None = None) -> Dataset:
    """Load a built-in dataset by name, or a directory in any supported format.

    Args:
        spec: ``"ml-100k"`` (read from the installed recbole wheel) or a directory path.
        min_rating: keep only interactions rated at least this (formats with ratings only);
            None keeps every interaction as implicit feedback.

    Returns:
        The :class:`Dataset` with contiguous user / item indices.
    """
    if str(spec) in BUILTIN:  # the name wins; write ./ml-100k for a local directory
        ds = recbole.load(recbole.builtin_path(str(spec)), min_rating=min_rating)
        ds.name = str(spec)
        return ds
    directory = Path(spec)
    if not directory.exists():
        raise DataError(directory, f"no such directory, and not a built-in dataset "
                        f"(built-in: {', '.join(BUILTIN)})")
    if not directory.is_dir():
        raise DataError(directory, "expected a directory holding the dataset files, got a file")
    name, loader, takes_rating = detect_format(directory)
    log.info("reading %s as %s", directory, name)
    if min_rating is not None and not takes_rating:
        raise ConfigError(f"min_rating is not supported for the {name} format (no ratings)")
    return loader(directory, min_rating=min_rating) if takes_rating else loader(directory)


def detect_format(directory: Path) -> tuple[str, Callable[..., Dataset], bool]:
    """(format name, loader, accepts min_rating) for ``directory``; DataError if none fits."""
    for fmt in FORMATS:
        if fmt.fits(directory):
            return fmt.name, fmt.loader, fmt.takes_rating
    expected = "; ".join(f"{fmt.marker} ({fmt.name})" for fmt in FORMATS)
    raise DataError(directory, f"no known dataset format; expected one of: {expected}")
