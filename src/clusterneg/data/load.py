"""``load_dataset(spec)``: a built-in name or a directory whose format is detected.

Formats are tried in a fixed order; the first whose marker file is present reads the
directory (see each loader's module docstring for the exact format):

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
from pathlib import Path

from clusterneg.data.dataset import Dataset
from clusterneg.data.loaders import lcrec, movielens, recbole, table
from clusterneg.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: Names that load without a path: name -> directory inside the recbole wheel.
BUILTIN = ("ml-100k",)

#: (format name, marker description, detector, loader, accepts min_rating), tried in order.
FORMATS: list[tuple[str, str, Callable[[Path], bool], Callable[..., Dataset], bool]] = [
    ("lcrec", "<name>.inter.json (+ <name>.item.json)", lcrec.matches, lcrec.load, False),
    ("recbole", "<name>.inter (+ <name>.item)", recbole.matches, recbole.load, True),
    ("movielens", "ratings.dat (+ movies.dat)", movielens.matches, movielens.load, True),
    ("presplit", "train.{csv,parquet} + test.{csv,parquet} (+ valid, items)",
     table.matches_presplit, table.load_presplit, True),
    ("table", "interactions.{csv,parquet} (+ items.{csv,parquet})", table.matches, table.load,
     True),
]


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
    for name, _, detect, loader, takes_rating in FORMATS:
        if detect(directory):
            return name, loader, takes_rating
    expected = "; ".join(f"{marker} ({name})" for name, marker, *_ in FORMATS)
    raise DataError(directory, f"no known dataset format; expected one of: {expected}")
