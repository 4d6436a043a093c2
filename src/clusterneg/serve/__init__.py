"""Serving a trained run: recommendations from an ANN index, new items in real time, and the
HTTP service.

Example:
    >>> from clusterneg.serve import Retriever
    >>> r = Retriever.open("runs/ml-100k")                        # doctest: +SKIP
    >>> [x.title for x in r.recommend(user="196", k=5)]          # doctest: +SKIP
"""

from __future__ import annotations

from clusterneg.serve.item_log import ItemLog
from clusterneg.serve.new_items import NewItem, read_new_items
from clusterneg.serve.retriever import (
    AddedItem,
    DuplicateItemError,
    Recommendation,
    Retriever,
    UnknownIdError,
)
from clusterneg.serve.run_index import IndexReport, build_run_index, save_run_index
from clusterneg.serve.run_state import RunState, load_run_state

__all__ = ["AddedItem", "DuplicateItemError", "IndexReport", "ItemLog", "NewItem",
           "Recommendation", "Retriever", "RunState", "UnknownIdError", "build_run_index",
           "load_run_state", "read_new_items", "save_run_index"]
