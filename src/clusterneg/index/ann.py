"""Nearest-neighbour indexes over item-tower vectors: exact, HNSW and IVF, behind one builder.

Both towers output unit vectors, so the inner product is the cosine and the serving score is
the model's own score (the temperature does not change the ranking). ``exact`` is a flat
inner-product scan; ``hnsw`` is a navigable small-world graph (fast queries, no training,
new vectors can be appended); ``ivf`` partitions the vectors into ``nlist`` k-means cells and
scans the ``nprobe`` nearest cells (trained once; appended vectors go to their nearest cell,
with no retraining). Row ``i`` of the index is item index ``i``, so search results are item
indices directly, and items added later extend the numbering.

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method" (the two towers are unchanged, so
    serving is the usual ANN search over item embeddings).
    Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using
    Hierarchical Navigable Small World graphs", TPAMI 2018, arXiv 1603.09320.
    Jegou, Douze, Schmid, "Product Quantization for Nearest Neighbor Search", TPAMI 2011
    (the inverted file).

Example:
    >>> import numpy as np
    >>> x = np.eye(4, dtype=np.float32)
    >>> index = build_index(x, IndexSpec("exact"))
    >>> search(index, x[:1], 2)[1][0].tolist()[0]
    0
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.errors import ConfigError, DataError

KINDS = ("exact", "hnsw", "ivf")


@dataclass
class IndexSpec:
    """Which index to build, and its knobs.

    Args:
        kind: "exact", "hnsw" or "ivf".
        hnsw_m: HNSW graph degree M.
        ef_construction: HNSW build-time candidate list.
        ef_search: HNSW query-time candidate list (>= k is enforced at search time).
        nlist: IVF cells (0: ``sqrt(n)``, at most n / 39 so every cell trains).
        nprobe: IVF cells scanned per query.
        train_size: IVF trains its cells on at most this many vectors (seeded sample).
        seed: seed of that sample and of the cell k-means.
    """

    kind: str = "ivf"
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    nlist: int = 0
    nprobe: int = 128
    train_size: int = 100_000
    seed: int = 0

    def validate(self) -> IndexSpec:
        if self.kind not in KINDS:
            raise ConfigError(f"index kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        for name in ("hnsw_m", "ef_construction", "ef_search", "nprobe", "train_size"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"index option {name} must be positive, "
                                  f"got {getattr(self, name)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ivf_cells(n: int, requested: int = 0) -> int:
    """Number of IVF cells for ``n`` vectors: ``requested`` or ``sqrt(n)`` (the setting
    measured in ``bench/results/ann.md``), kept in ``[1, n // 39]`` (faiss wants about 39
    training points per cell).

    Example:
        >>> ivf_cells(1_000_000), ivf_cells(100), ivf_cells(10_000, 64)
        (1000, 2, 64)
    """
    want = requested if requested > 0 else int(round(np.sqrt(n)))
    return int(max(1, min(want, n // 39)))


def build_index(vectors: np.ndarray, spec: IndexSpec) -> Any:
    """A faiss inner-product index holding ``vectors`` (float [n, d]) as rows 0..n-1."""
    import faiss

    spec.validate()
    x = _as_matrix(vectors)
    n, d = x.shape
    if spec.kind == "exact":
        index = faiss.IndexFlatIP(d)
    elif spec.kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = spec.ef_construction
        index.hnsw.efSearch = spec.ef_search
    else:
        nlist = ivf_cells(n, spec.nlist)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = spec.seed
        index.cp.min_points_per_centroid = 1
        sample = x
        if n > spec.train_size:
            rng = np.random.default_rng(spec.seed)
            sample = x[np.sort(rng.choice(n, spec.train_size, replace=False))]
        if n:
            index.train(sample)
        index.nprobe = min(spec.nprobe, nlist)
    if n:
        index.add(x)
    return index


def search(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (scores float32 [q, k], item indices int64 [q, k]; -1 past the end)."""
    import faiss

    q = _as_matrix(queries)
    if q.shape[1] != index.d:
        raise DataError("<queries>", f"expected {index.d}-d query vectors, got {q.shape[1]}-d")
    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = max(index.hnsw.efSearch, k)
    scores, ids = index.search(q, k)
    return scores, ids.astype(np.int64)


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / |exact top-k| (ids; -1 ignored).

    Example:
        >>> recall_at_k(np.array([[1, 2], [3, 9]]), np.array([[2, 1], [3, 4]]), 2)
        0.75
    """
    hits, total = 0, 0
    for a, e in zip(approx[:, :k], exact[:, :k], strict=True):
        truth = set(e[e >= 0].tolist())
        hits += len(truth & set(a[a >= 0].tolist()))
        total += len(truth)
    return hits / total if total else 1.0


def save_index(index: Any, path: Path) -> Path:
    """Write ``index`` to ``path`` atomically (temp file in the same directory, fsync,
    rename), so a reader never sees half an index."""
    import faiss

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        faiss.write_index(index, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_index(path: Path) -> Any:
    """Read an index written by :func:`save_index` (faiss's own format, no pickle)."""
    import faiss

    try:
        return faiss.read_index(str(path))
    except RuntimeError as exc:
        raise DataError(path, f"not a readable faiss index: {str(exc).splitlines()[0]}"
                        ) from None


def _as_matrix(x: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim != 2:
        raise DataError("<vectors>", f"expected a 2-d array [n, d], got shape {arr.shape}")
    return arr
