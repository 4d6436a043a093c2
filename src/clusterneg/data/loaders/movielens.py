"""Loader for MovieLens-1M ``.dat`` files (``ratings.dat``, optional ``movies.dat``).

Format (GroupLens ml-1m README): latin-1 text, fields separated by ``::``;
``ratings.dat`` is ``UserID::MovieID::Rating::Timestamp`` and ``movies.dat`` is
``MovieID::Title::Genres`` with genres separated by ``|``. The timestamp is the interaction
order. Ratings are kept as implicit feedback (weight 1) unless ``min_rating`` drops rows
rated below it. The catalog has the fields ``title`` and ``genres`` (written "Action, Comedy");
``genres`` is the category field. ``users.dat`` is not read.

References:
    Harper and Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 2015; the
    paper clusterneg implements, arXiv 2607.00448, "Reported results" (MovieLens).

Example:
    >>> ds = load(Path("ml-1m"))  # doctest: +SKIP
    >>> ds.n_users, len(ds.interactions)  # doctest: +SKIP
    (6040, 1000209)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clusterneg.data.dataset import Catalog, Dataset
from clusterneg.data.loaders import _catalog as c
from clusterneg.data.loaders import _read as r
from clusterneg.errors import ConfigError, DataError

_SEP = "::"
_ENCODING = "latin-1"
RATING_FIELDS = ("user_id", "item_id", "rating", "timestamp")
MOVIE_FIELDS = ("item_id", "title", "genres")



def load(directory: Path, min_rating: float | None = None) -> Dataset:
    """Read ``ratings.dat`` (+ ``movies.dat`` when present) from ``directory``.

    Args:
        directory: folder with the ``.dat`` files.
        min_rating: keep only rows with ``rating >= min_rating`` (None: keep all).
    """
    path = directory / "ratings.dat"
    cols, at = read_dat(path, RATING_FIELDS)
    rating = r.parse_numbers(cols["rating"], at, "rating")
    order = r.parse_numbers(cols["timestamp"], at, "timestamp")
    catalog, item_idx = c.items_and_index(cols["item_id"], at, directory / "movies.dat",
                                          read_movies)
    users = cols["user_id"]
    if min_rating is not None:
        keep = rating >= min_rating
        if not keep.any():
            raise ConfigError(f"min_rating={min_rating} leaves no interaction in {path}")
        users, item_idx, order = users[keep], item_idx[keep], order[keep]
    return c.assemble(directory.name, directory, users, item_idx, order, None, catalog)


def read_dat(path: Path, names: tuple[str, ...]) -> tuple[dict[str, np.ndarray], r.Lines]:
    """Parse a ``::``-separated latin-1 file into name -> str [n] columns + line numbers."""
    text = r.read_text(path, encoding=_ENCODING)
    cols, at = r.read_delimited(path, text, _SEP, names)
    if len(cols[names[0]]) == 0:
        raise DataError(path, "empty file: expected at least one row")
    for n in ("user_id", "item_id"):
        if n in cols:
            r.check_ids(cols[n], at, n)
    return cols, at


def read_movies(path: Path) -> Catalog:
    """``movies.dat`` -> catalog with ``title`` and ``genres`` ("Action, Comedy")."""
    cols, at = read_dat(path, MOVIE_FIELDS)
    genres = [", ".join(g for g in v.split("|") if g) for v in cols["genres"].tolist()]
    fields = {"title": cols["title"].tolist(), "genres": genres}
    return c.make_catalog(cols["item_id"], fields, at, category_field="genres")
