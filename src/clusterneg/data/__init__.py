"""Data layer: load interactions + item catalog from any supported format, split them.

Example:
    >>> from clusterneg.data import load_dataset, make_split
    >>> split = make_split(load_dataset("ml-100k"), seed=0)
"""

from __future__ import annotations

from clusterneg.data.dataset import Catalog, Dataset, Interactions
from clusterneg.data.load import load_dataset
from clusterneg.data.splits import Split, make_split
from clusterneg.data.stats import dataset_stats
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
