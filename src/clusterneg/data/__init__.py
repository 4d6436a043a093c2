"""Data layer: load interactions + item catalog from any supported format, split them.

Example:
    >>> from clusterneg.data import load_dataset, make_split
    >>> split = make_split(load_dataset("ml-100k"), seed=0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clusterneg.data.dataset import Catalog, Dataset, Interactions
from clusterneg.data.load import load_dataset
from clusterneg.data.splits import Split, make_split
from clusterneg.data.stats import dataset_stats

if TYPE_CHECKING:  # imported on first use (__getattr__ below)
    from clusterneg.data.user_items import UserItems

__all__ = [
    "Catalog",
    "Dataset",
    "Interactions",
    "Split",
    "UserItems",
    "dataset_stats",
    "load_dataset",
    "make_split",
]


def __getattr__(name: str) -> object:
    """``UserItems`` on first use: it needs torch, the rest of the data layer does not (so
    ``clusterneg data stats`` and the command line's option checks start without it)."""
    if name == "UserItems":
        from clusterneg.data.user_items import UserItems

        return UserItems
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
