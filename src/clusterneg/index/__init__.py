"""ANN indexes over item-tower vectors (exact, HNSW, IVF) and their recall against exact.

Example:
    >>> from clusterneg.index import IndexSpec, build_index, search
"""

from __future__ import annotations

from clusterneg.index.ann import (
    KINDS,
    IndexSpec,
    build_index,
    ivf_cells,
    load_index,
    recall_at_k,
    save_index,
    search,
)

__all__ = ["KINDS", "IndexSpec", "build_index", "ivf_cells", "load_index", "recall_at_k",
           "save_index", "search"]
