"""What a streamed run must know before its first batch: the id spaces and the item clusters.

A stream never holds the data, so the sizes of the user and item id spaces come from the
Parquet footers (each row group's min/max statistics; a column without statistics is read
once, one column at a time) and, for a ``clusterneg data synth`` directory, from its
``synth.json`` (a catalog may hold items no interaction mentions). Ids must be integers
contiguous from 0, as ``data synth`` writes them (see :mod:`clusterneg.data.stream`).

The clusters of the cluster samplers come from a table of ``item_id, cluster`` (Parquet or
CSV); a synth directory's ``latent_items.parquet`` is such a table (its true latent
clusters, which the item text reflects).

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (each item belongs to one semantic
    cluster; the pool keeps the recent items of every cluster).

Example:
    >>> import tempfile, pyarrow as pa, pyarrow.parquet as pq
    >>> d = Path(tempfile.mkdtemp())
    >>> pq.write_table(pa.table({"user_id": [0, 4], "item_id": [2, 9]}), d / "a.parquet")
    >>> id_space(d)
    (5, 10)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from clusterneg.data.stream import COLUMNS, shard_paths
from clusterneg.errors import DataError

SYNTH_META = "synth.json"
LATENT_CLUSTERS = "latent_items.parquet"


def id_space(source: str | Path) -> tuple[int, int]:
    """(n_users, n_items): one more than the largest user and item id of the shards (or the
    counts of ``synth.json`` when larger). DataError for a missing column, ids that are not
    integers, or negative ids."""
    paths = shard_paths(source)
    top = {col: -1 for col in COLUMNS}
    for path in paths:
        for col in COLUMNS:
            low, high = _column_range(path, col)
            if low < 0:
                raise DataError(path, f"negative {col} {low}: ids must be integers "
                                "contiguous from 0", field=col)
            top[col] = max(top[col], high)
    n_users, n_items = top["user_id"] + 1, top["item_id"] + 1
    meta = Path(source) / SYNTH_META
    if meta.is_file():
        info = _read_json(meta)
        n_users = max(n_users, int(info.get("n_users", 0)))
        n_items = max(n_items, int(info.get("n_items", 0)))
    return n_users, n_items


def _column_range(path: Path, col: str) -> tuple[int, int]:
    """(min, max) of an integer column, from the footer's statistics when every row group
    has them, else by reading that one column."""
    meta = pq.ParquetFile(path).metadata
    names = meta.schema.names
    if col not in names:
        raise DataError(path, f"missing column {col!r} (expected columns "
                        f"{', '.join(COLUMNS)}; found {', '.join(names)})")
    kind = meta.schema.to_arrow_schema().field(col).type
    if not pa.types.is_integer(kind):
        raise DataError(path, f"column {col!r} holds {kind}, expected integer ids "
                        "contiguous from 0 (as 'clusterneg data synth' writes)", field=col)
    k = names.index(col)
    stats = [meta.row_group(g).column(k).statistics for g in range(meta.num_row_groups)]
    if stats and all(s is not None and s.has_min_max for s in stats):
        return min(int(s.min) for s in stats), max(int(s.max) for s in stats)
    values = pq.read_table(path, columns=[col])[col]
    if values.null_count:
        raise DataError(path, f"column {col!r} has {values.null_count} empty value(s)",
                        field=col)
    if len(values) == 0:
        return 0, -1
    bounds = pc.min_max(values)
    return int(bounds["min"].as_py()), int(bounds["max"].as_py())


def read_item_clusters(path: str | Path, n_items: int) -> tuple[np.ndarray, int]:
    """(int64 [n_items] cluster of each item, number of clusters) from a Parquet or CSV table
    with columns ``item_id`` and ``cluster``; every item of the id space needs one."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such cluster table (expected a Parquet or CSV file with "
                        "columns item_id, cluster)")
    try:
        table = (pacsv.read_csv(path) if path.suffix.lower() == ".csv"
                 else pq.read_table(path))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(path, f"unreadable table ({str(exc).splitlines()[0]})") from None
    for col in ("item_id", "cluster"):
        if col not in table.column_names:
            raise DataError(path, f"missing column {col!r} (expected item_id, cluster)")
        if not pa.types.is_integer(table.schema.field(col).type):
            raise DataError(path, f"column {col!r} must hold integers, got "
                            f"{table.schema.field(col).type}", field=col)
    items = table["item_id"].to_numpy(zero_copy_only=False).astype(np.int64)
    cluster = table["cluster"].to_numpy(zero_copy_only=False).astype(np.int64)
    out = np.full(n_items, -1, dtype=np.int64)
    inside = (items >= 0) & (items < n_items)
    if not inside.all():
        bad = int(items[~inside][0])
        raise DataError(path, f"item_id {bad} is outside the stream's id space "
                        f"[0, {n_items})", line=int(np.flatnonzero(~inside)[0]) + 1,
                        field="item_id")
    if (cluster < 0).any():
        raise DataError(path, "negative cluster id", line=int(np.argmax(cluster < 0)) + 1,
                        field="cluster")
    out[items] = cluster
    missing = np.flatnonzero(out < 0)
    if len(missing):
        raise DataError(path, f"{len(missing)} item(s) of the stream have no cluster (first: "
                        f"item_id {int(missing[0])})", field="item_id")
    return out, int(out.max()) + 1


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object")
    return data
