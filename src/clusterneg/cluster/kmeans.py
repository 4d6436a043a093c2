"""Seeded (spherical) k-means over item embeddings, with faiss doing the arithmetic.

:class:`Clusterer` wraps ``faiss.Kmeans``: ``fit(emb) -> objective``, ``assign(emb)`` (the
nearest centroid, for items that arrive after training, and for the training items
themselves, so online and offline assignment always agree), ``centroids``, ``save`` /
``load``. With ``spherical=True`` (the default, for cosine geometry) inputs are L2-normalised
and centroids are unit vectors, so the nearest centroid by inner product is also the nearest
by L2.

The objective is always reported as the mean squared L2 distance from a training point to its
centroid (lower is better). faiss reports the sum of inner products for spherical k-means;
for unit vectors ``|x - c|^2 = 2 - 2 x.c``, so the two are converted exactly.

As in faiss, training uses at most ``max_points_per_centroid * k`` points (a seeded sample);
assignment always covers every point.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (k-means over LLM item embeddings,
    ~300 clusters; new items assigned online to the nearest centroid).
    Johnson, Douze, Jegou, "Billion-scale similarity search with GPUs" (faiss), 2017.
    Dhillon & Modha, "Concept Decompositions for Large Sparse Text Data using Clustering"
    (spherical k-means), Machine Learning 2001.

Example:
    >>> import tempfile
    >>> emb = np.repeat(np.eye(4, dtype=np.float32), 5, axis=0)   # float32 [n_items, d]
    >>> km = Clusterer(4, seed=0)
    >>> objective = km.fit(emb)
    >>> item_cluster = km.assign(emb)                               # int64 [n_items]
    >>> item_cluster.shape, len(set(item_cluster[:5].tolist()))   # one blob, one cluster
    ((20,), 1)
    >>> _ = km.save(tempfile.mkdtemp())
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.errors import ConfigError, DataError

INITS = ("random", "kmeans++")


class Clusterer:
    """k-means with fitted state in plain attributes.

    Args:
        n_clusters: number of centroids k (>= 1, < number of points).
        spherical: unit-norm inputs and centroids (cosine k-means).
        niter: Lloyd iterations.
        seed: seed of the initialisation and of faiss's training sample.
        nredo: restarts; the best objective is kept.
        max_points_per_centroid: training sample cap per centroid (faiss default 256).
        init: "random" (faiss default) or "kmeans++".

    Attributes:
        centroids: float32 [k, d] after fit / load.
        objective_history: mean squared distance per iteration of the kept run (faiss may
            stop a run before ``niter`` once it has converged).
    """

    def __init__(self, n_clusters: int, *, spherical: bool = True, niter: int = 25,
                 seed: int = 0, nredo: int = 1, max_points_per_centroid: int = 256,
                 init: str = "random") -> None:
        if int(n_clusters) < 1:
            raise ConfigError(f"n_clusters must be >= 1, got {n_clusters}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {INITS}, got {init!r}")
        self.n_clusters, self.spherical, self.niter = int(n_clusters), spherical, niter
        self.seed, self.nredo, self.init = seed, nredo, init
        self.max_points_per_centroid = max_points_per_centroid
        self.centroids: np.ndarray | None = None
        self.objective_history: list[float] = []
        self._index: Any | None = None

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-ready."""
        return {"n_clusters": self.n_clusters, "spherical": self.spherical,
                "niter": self.niter, "seed": self.seed, "nredo": self.nredo,
                "max_points_per_centroid": self.max_points_per_centroid, "init": self.init}

    def fit(self, emb: np.ndarray) -> float:
        """Train on float [n, d] embeddings.

        Returns:
            the final objective: mean squared L2 distance of a training point to its centroid.
        """
        import faiss

        x = self._prepare(emb)
        if len(x) < self.n_clusters:
            raise ConfigError(f"cannot make {self.n_clusters} clusters from {len(x)} points")
        n_train = min(len(x), self.n_clusters * self.max_points_per_centroid)
        best: tuple[list[float], Any] | None = None
        # Restarts one by one (faiss may stop a run early, so its concatenated history
        # cannot be split by run); seeds follow faiss's own nredo sequence.
        for r in range(self.nredo):
            km = faiss.Kmeans(x.shape[1], self.n_clusters,
                              **self._faiss_params(self.seed + 15486557 * r))
            km.train(x)
            hist = [self._mean_sq(float(o), n_train) for o in km.obj]
            if best is None or hist[-1] < best[0][-1]:
                best = (hist, km)
        assert best is not None
        self.objective_history = best[0]
        self.centroids = np.ascontiguousarray(best[1].centroids, dtype=np.float32)
        self._index = best[1].index
        return self.objective_history[-1]

    def _faiss_params(self, seed: int) -> dict[str, Any]:
        import faiss

        params: dict[str, Any] = dict(
            niter=self.niter, seed=seed, spherical=self.spherical, nredo=1,
            max_points_per_centroid=self.max_points_per_centroid, verbose=False,
            # faiss prints a warning to stderr below 39 points per centroid; catalogs of a
            # few thousand items legitimately go there, the diagnostics report sizes.
            min_points_per_centroid=1)
        if self.init == "kmeans++":
            params["init_method"] = faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS
        return params

    def fit_assign(self, emb: np.ndarray, min_size: int = 1) -> np.ndarray:
        """Fit, merge clusters smaller than ``min_size`` into their nearest neighbours, and
        return every row's (final) cluster id, int64 [n]."""
        self.fit(emb)
        if min_size > 1:
            self.merge_small(emb, min_size)
        return self.assign(emb)

    def _mean_sq(self, obj: float, n: int) -> float:
        return (2.0 - 2.0 * obj / n) if self.spherical else obj / n

    def assign(self, emb: np.ndarray) -> np.ndarray:
        """Nearest centroid of each row of float [n, d] -> int64 [n]."""
        return self.search(emb)[1]

    def search(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(squared L2 distance to the nearest centroid float32 [n], its id int64 [n])."""
        index = self._get_index()
        x = self._prepare(emb)
        if x.shape[1] != index.d:
            raise DataError("<embeddings>", f"expected {index.d}-d vectors, got {x.shape[1]}-d")
        score, ids = index.search(x, 1)
        dist = (2.0 - 2.0 * score[:, 0]) if self.spherical else score[:, 0]
        return np.maximum(dist, 0.0).astype(np.float32), ids[:, 0].astype(np.int64)

    def merge_small(self, emb: np.ndarray, min_size: int) -> np.ndarray:
        """Drop centroids that get fewer than ``min_size`` of ``emb``'s rows; their rows move
        to the nearest remaining centroid. Returns the removed cluster ids (old numbering);
        the remaining clusters are renumbered 0..k'-1 in their old order."""
        if self.centroids is None:
            raise ConfigError("Clusterer.merge_small called before fit")
        sizes = np.bincount(self.assign(emb), minlength=len(self.centroids))
        small = np.flatnonzero(sizes < min_size)
        if len(small) == len(sizes):
            small = small[small != int(np.argmax(sizes))]  # always keep one cluster
        if len(small):
            self._set_centroids(np.delete(self.centroids, small, axis=0))
        return small

    def _set_centroids(self, centroids: np.ndarray) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.n_clusters = len(self.centroids)
        self._index = None

    def _get_index(self) -> Any:
        import faiss

        if self.centroids is None:
            raise ConfigError("Clusterer used before fit or load")
        if self._index is None:
            d = self.centroids.shape[1]
            self._index = faiss.IndexFlatIP(d) if self.spherical else faiss.IndexFlatL2(d)
            self._index.add(self.centroids)
        return self._index

    def _prepare(self, emb: np.ndarray) -> np.ndarray:
        """float32 C-contiguous, L2-normalised when spherical (copied only when needed)."""
        x = np.ascontiguousarray(emb, dtype=np.float32)
        if x.ndim != 2:
            raise DataError("<embeddings>", f"expected a 2-d array [n, d], got shape {x.shape}")
        if self.spherical:
            sq = np.einsum("ij,ij->i", x, x)  # one pass, no [n, d] temporary
            if np.abs(sq - 1.0).max(initial=0.0) > 2e-4:
                x = x / np.sqrt(np.maximum(sq, 1e-24))[:, None]
        return x

    def save(self, directory: str | Path) -> Path:
        """Write ``centroids.npy`` and ``clusterer.json`` into ``directory`` (atomically)."""
        if self.centroids is None:
            raise ConfigError("Clusterer.save called before fit")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"config": self.config(), "objective_history": self.objective_history,
                "dim": int(self.centroids.shape[1])}
        _atomic_write(out / "centroids.npy", lambda f: np.save(f, self.centroids))
        _atomic_write(out / "clusterer.json", lambda f: f.write(json.dumps(meta, indent=1)
                                                                .encode()))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Clusterer:
        """A fitted Clusterer from :meth:`save`'s files."""
        d = Path(directory)
        try:
            meta = json.loads((d / "clusterer.json").read_text())
            centroids = np.load(d / "centroids.npy", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(d, f"not a saved Clusterer (centroids.npy + clusterer.json): "
                            f"{exc}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
            raise DataError(d / "clusterer.json", "expected an object with a 'config' object")
        if centroids.ndim != 2 or not np.isfinite(centroids).all():
            raise DataError(d / "centroids.npy", f"expected a finite 2-D array, got shape "
                                                 f"{centroids.shape}")
        cfg = dict(meta["config"], n_clusters=len(centroids))
        try:
            km = cls(**cfg)
        except TypeError as exc:
            raise DataError(d / "clusterer.json", f"unexpected config: {exc}") from None
        km._set_centroids(centroids)
        km.objective_history = list(meta.get("objective_history", []))
        return km


def central_items(emb: np.ndarray, item_cluster: np.ndarray, centroids: np.ndarray,
                  n: int = 8) -> list[np.ndarray]:
    """Per cluster, up to ``n`` of its items closest to the centroid (by cosine), nearest first.

    Args:
        emb: float [n_items, d]; item_cluster: int64 [n_items]; centroids: float [k, d].
    """
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    sim = np.einsum("ij,ij->i", x, c[item_cluster])
    order = np.lexsort((-sim, item_cluster))  # by cluster, then most central first
    bounds = np.searchsorted(item_cluster[order], np.arange(len(centroids) + 1))
    return [order[bounds[k]:bounds[k + 1]][:n] for k in range(len(centroids))]


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(file)`` on a temp file next to ``path``, then rename it into place."""
    from clusterneg.outputs import atomic_write

    atomic_write(path, write)
