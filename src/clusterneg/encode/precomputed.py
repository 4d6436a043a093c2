"""Precomputed item embeddings (``precomputed:PATH``): bring your own (multimodal) LLM vectors.

Production teams already have item embeddings from a fine-tuned multimodal LLM (the paper's
setting); this reads them instead of encoding text:

- ``.npy``: float array ``[n_items, d]`` whose row j is item j of the loaded dataset (the
  contiguous item index, i.e. ``catalog.item_ids`` order);
- ``.parquet``: a column ``item_id`` (raw ids, compared as strings) and a vector column
  (``vector``, ``embedding``, ``emb`` or the only list column), one row per item; rows are
  mapped to the catalog by raw id, extra rows are ignored, missing items are an error.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (embeddings from a fine-tuned
    multimodal LLM).

Example:
    >>> vectors = PrecomputedEmbeddings("item_vectors.parquet")  # doctest: +SKIP
    >>> emb = vectors.for_catalog(dataset.catalog)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.data.dataset import Catalog
from clusterneg.encode.base import fingerprint
from clusterneg.errors import ConfigError, DataError

VECTOR_COLUMNS = ("vector", "embedding", "emb", "embeddings")


class PrecomputedEmbeddings:
    """Item vectors read from a file, looked up by item (not by text).

    Args:
        path: ``.npy`` or ``.parquet`` file (see the module docstring).
        column: the Parquet vector column (default: detected).
    """

    default_postprocess = "none"
    max_length = None
    tokenizer = None

    def __init__(self, path: str | Path, column: str | None = None) -> None:
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise DataError(self.path, "no such file (expected .npy or .parquet embeddings)")
        if self.path.suffix not in (".npy", ".parquet"):
            raise DataError(self.path, f"expected a .npy or .parquet file, got "
                            f"'{self.path.suffix or 'no extension'}'")
        self.column = column
        self._ids: np.ndarray | None = None
        self._vectors = self._read()
        self.dim = int(self._vectors.shape[1])
        self.model_id = f"precomputed/{self.path.stem}@{fingerprint(self.path)}"

    def encode(self, texts: list[str], progress: Any | None = None) -> np.ndarray:
        """Not available: precomputed vectors are looked up by item id (``for_catalog``)."""
        raise ConfigError("precomputed embeddings are looked up by item, not by text: "
                          "use embed_catalog(catalog, encoder) / for_catalog(catalog)")

    def for_catalog(self, catalog: Catalog) -> np.ndarray:
        """float32 ``[len(catalog), dim]``: row j is the vector of item j."""
        if self._ids is None:
            if len(self._vectors) != len(catalog):
                raise DataError(self.path, f"expected {len(catalog)} rows (one per item, in "
                                f"item-index order), got {len(self._vectors)}")
            return self._vectors
        return self._map(catalog)

    def _map(self, catalog: Catalog) -> np.ndarray:
        assert self._ids is not None
        order = np.argsort(self._ids, kind="stable")
        want = np.asarray(catalog.item_ids).astype(str)
        pos = np.minimum(np.searchsorted(self._ids[order], want), len(order) - 1)
        ok = self._ids[order][pos] == want
        if not ok.all():
            miss = want[~ok]
            raise DataError(self.path, f"{len(miss)} of {len(want)} catalog items have no "
                            f"vector, e.g. {', '.join(map(repr, miss[:5]))}", field="item_id")
        return self._vectors[order[pos]]

    def _read(self) -> np.ndarray:
        arr = self._read_npy() if self.path.suffix == ".npy" else self._read_parquet()
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise DataError(self.path, f"expected a 2-d array [n_items, d], got shape "
                            f"{arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        if len(bad):
            raise DataError(self.path, f"{len(bad)} rows hold NaN/inf, first row {bad[0]}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _read_npy(self) -> np.ndarray:
        try:
            return np.load(self.path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(self.path, f"not a readable .npy array: {exc}") from exc

    def _read_parquet(self) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(self.path, f"not a readable Parquet file: {exc}") from exc
        if "item_id" not in table.column_names:
            raise DataError(self.path, f"no item_id column (columns: {table.column_names})",
                            field="item_id")
        col = self._vector_column(table)
        ids = np.asarray(table["item_id"].to_pylist(), dtype=str)
        if len(np.unique(ids)) != len(ids):
            raise DataError(self.path, "item_id values repeat", field="item_id")
        self._ids = ids
        return _list_column(self.path, col, table[col])

    def _vector_column(self, table: Any) -> str:
        import pyarrow as pa

        if self.column is not None:
            if self.column not in table.column_names:
                raise DataError(self.path, f"no column {self.column!r} "
                                f"(columns: {table.column_names})", field=self.column)
            return self.column
        lists = [f.name for f in table.schema if pa.types.is_list(f.type)
                 or pa.types.is_fixed_size_list(f.type) or pa.types.is_large_list(f.type)]
        named = [c for c in VECTOR_COLUMNS if c in lists]
        if named or len(lists) == 1:
            return (named or lists)[0]
        raise DataError(self.path, f"cannot tell the vector column: expected one of "
                        f"{VECTOR_COLUMNS} or a single list column, got list columns {lists}")


def _list_column(path: Path, name: str, column: Any) -> np.ndarray:
    """A list<float> Parquet column -> float32 [n, d]; DataError on ragged rows or nulls."""
    import pyarrow.compute as pc

    chunked = column.combine_chunks()
    if chunked.null_count:
        row = int(np.flatnonzero(chunked.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(path, f"null vector in row {row}", field=name)
    lengths = pc.list_value_length(chunked).to_numpy(zero_copy_only=False)
    if len(lengths) and (lengths != lengths[0]).any():
        row = int(np.flatnonzero(lengths != lengths[0])[0])
        raise DataError(path, f"vectors must all be {lengths[0]}-d, row {row} has "
                        f"{lengths[row]}", field=name)
    flat = chunked.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
    return flat.reshape(len(lengths), int(lengths[0]) if len(lengths) else 0)
