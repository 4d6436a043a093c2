"""``embed_and_cluster``: dataset -> content embeddings -> clusters + diagnostics (+ names).

The one call the trainer and the comparison runner make: encode every item (cached), fit
seeded spherical k-means (``n_clusters`` given or ``"auto"``), merge clusters too small to
give distinct negatives, and measure the diagnostics on the training interactions. The
result saves to / loads from a directory that ``clusterneg clusters show DIR`` reads.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (LLM item representations and
    k-means clusters; new items go to the nearest centroid).

Example:
    >>> ds = load_dataset("ml-100k")  # doctest: +SKIP
    >>> emb, result = embed_and_cluster(ds, "minilm", n_clusters=50)  # doctest: +SKIP
    >>> result.item_cluster.shape, result.diagnostics["false_negatives"]["lift"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from clusterneg.cluster.auto import AutoRule, choose_n_clusters
from clusterneg.cluster.diagnostics import diagnose
from clusterneg.cluster.kmeans import Clusterer
from clusterneg.data.dataset import Dataset, Interactions
from clusterneg.data.user_items import UserItems
from clusterneg.encode.embed import embed_catalog
from clusterneg.encode.template import item_titles, template_from_spec
from clusterneg.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass
class ClusterResult:
    """Clusters of a catalog and what is known about them.

    Args:
        item_cluster: int64 [n_items] cluster id of every item.
        centroids: float32 [k, d] (unit rows for spherical k-means).
        diagnostics: JSON-ready output of :func:`~clusterneg.cluster.diagnostics.diagnose`.
        names: one short name per cluster, or None.
        clusterer: the fitted :class:`Clusterer` (``assign`` for new items).
        meta: JSON-ready provenance: dataset, encoder model id, seed, requested k, auto table.
        examples: per cluster, titles of its most central items (for tables and naming).
    """

    item_cluster: np.ndarray
    centroids: np.ndarray
    diagnostics: dict[str, Any] = field(default_factory=dict)
    names: list[str] | None = None
    clusterer: Clusterer | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    examples: list[list[str]] | None = None

    @property
    def n_clusters(self) -> int:
        return int(len(self.centroids))

    def save(self, directory: str | Path) -> Path:
        """Write centroids, item_cluster.npy, diagnostics.json, meta.json (+ names.json,
        examples.json when known)."""
        out = Path(directory)
        clusterer = self.clusterer or _clusterer_from(self.centroids, self.meta)
        clusterer.save(out)
        from clusterneg.outputs import atomic_write, atomic_write_text

        atomic_write(out / "item_cluster.npy",
                     lambda f: np.save(f, self.item_cluster.astype(np.int64)))
        atomic_write_text(out / "diagnostics.json", json.dumps(self.diagnostics, indent=1))
        atomic_write_text(out / "meta.json", json.dumps(self.meta, indent=1))
        for fname, value in (("names.json", self.names), ("examples.json", self.examples)):
            if value is not None:
                atomic_write_text(out / fname, json.dumps(value, indent=1, ensure_ascii=False))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> ClusterResult:
        """Read a directory written by :meth:`save`."""
        d = Path(directory)
        clusterer = Clusterer.load(d)
        try:
            item_cluster = np.load(d / "item_cluster.npy", allow_pickle=False)
            diagnostics = json.loads((d / "diagnostics.json").read_text())
            meta = json.loads((d / "meta.json").read_text())
            names, examples = (json.loads((d / f).read_text()) if (d / f).exists() else None
                               for f in ("names.json", "examples.json"))
        except (OSError, ValueError) as exc:
            raise DataError(d, f"not a saved cluster result: {exc}") from None
        _check_saved(d, clusterer.centroids, item_cluster, names)
        return cls(item_cluster=item_cluster.astype(np.int64), centroids=clusterer.centroids,
                   diagnostics=diagnostics, names=names, clusterer=clusterer, meta=meta,
                   examples=examples)


def _check_saved(d: Path, centroids: Any, item_cluster: np.ndarray, names: Any) -> None:
    """Refuse an edited or damaged cluster folder with one line naming the file."""
    if centroids is None or np.ndim(centroids) != 2 or not np.isfinite(centroids).all():
        raise DataError(d, "centroids are missing, not a 2-D array, or not finite")
    k = len(centroids)
    if item_cluster.ndim != 1 or item_cluster.dtype.kind not in "iu":
        raise DataError(d / "item_cluster.npy", f"expected a 1-D integer array, got "
                        f"{item_cluster.dtype} of shape {item_cluster.shape}")
    if len(item_cluster) and (item_cluster.min() < 0 or item_cluster.max() >= k):
        raise DataError(d / "item_cluster.npy", f"cluster ids must lie in 0..{k - 1}, got "
                                                f"{item_cluster.min()}..{item_cluster.max()}")
    if names is not None and (not isinstance(names, list) or len(names) != k):
        raise DataError(d / "names.json", f"expected a list of {k} names, got "
                                          f"{len(names) if isinstance(names, list) else names!r}")


def _clusterer_from(centroids: np.ndarray, meta: dict[str, Any]) -> Clusterer:
    km = Clusterer(len(centroids), spherical=bool(meta.get("spherical", True)))
    km._set_centroids(centroids)
    return km


def category_level_for(dataset: Dataset, template: Any = None) -> int | str:
    """Which category label NMI uses: level 1 of a product category path (Amazon: "Office
    Electronics > *Telephones & Accessories* > ..."), else the first listed label (genres)."""
    tmpl = template_from_spec(template, dataset.catalog) if dataset.catalog.fields else None
    return 1 if tmpl is not None and tmpl.name == "products" else "first"


def training_matrix(dataset: Dataset, train: Interactions | UserItems | None,
                    seed: int) -> sp.csr_matrix:
    """Training positives as [n_users, n_items] CSR: ``train`` if given (interactions or the
    already built :class:`UserItems`), else the split the trainer uses
    (``make_split(dataset, seed=seed).train``), so diagnostics never see test."""
    from clusterneg.data.splits import make_split

    if isinstance(train, UserItems):
        return train.to_scipy()
    part = train if train is not None else make_split(dataset, seed=seed).train
    return UserItems.from_interactions(part, dataset.n_users, dataset.n_items).to_scipy()


def embed_and_cluster(
    dataset: Dataset,
    encoder_spec: str = "minilm",
    n_clusters: int | str = "auto",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    *,
    train: Interactions | None = None,
    user_items: UserItems | None = None,
    template: Any = None,
    postprocess: str | None = None,
    min_cluster_size: int = 5,
    auto_rule: AutoRule | None = None,
    name: bool = False,
    encoder_opts: dict[str, Any] | None = None,
    clusterer_opts: dict[str, Any] | None = None,
    progress: Any | None = None,
) -> tuple[np.ndarray, ClusterResult]:
    """Embed the catalog and cluster it.

    Args:
        dataset: the loaded data.
        encoder_spec: "minilm", "smollm2", a model directory or "precomputed:PATH".
        n_clusters: k, or "auto" (:mod:`clusterneg.cluster.auto`).
        seed: k-means seed (and the split seed when ``train`` is None).
        cache_dir: cache root (None: ``$CLUSTERNEG_CACHE`` or ``./.cache/clusterneg``).
        train: training interactions for the diagnostics (None: see :func:`training_matrix`).
        user_items: the training item sets already built (takes precedence over ``train``).
        template: text template spec (None: the dataset's default profile).
        postprocess: "none" / "center" / "whiten" (None: the encoder's default).
        min_cluster_size: clusters with fewer items are merged into their nearest neighbours.
        auto_rule: parameters of the auto rule.
        name: write LLM names for the clusters (SmolLM2; cached).
        encoder_opts: options for ``build_encoder`` (batch_size, pooling, dtype, ...).
        clusterer_opts: options for :class:`Clusterer` (spherical, niter, nredo, init).
        progress: a rich Progress for encoding / naming.

    Returns:
        (float32 [n_items, d] unit-norm content embeddings, :class:`ClusterResult`).
    """
    from clusterneg.encode.factory import build_encoder

    opts = dict(encoder_opts or {})
    if cache_dir is not None and encoder_spec == "smollm2":
        opts.setdefault("model_cache", Path(cache_dir) / "models")
    encoder = build_encoder(encoder_spec, **opts)
    embedded = embed_catalog(dataset.catalog, encoder, template=template, cache=cache_dir,
                             postprocess=postprocess, progress=progress)
    emb = embedded.vectors
    user_items = training_matrix(dataset, user_items if user_items is not None else train,
                                 seed)
    copts = dict(clusterer_opts or {})
    meta: dict[str, Any] = {"dataset": dataset.name, "encoder": embedded.model_id,
                            "embedding": embedded.info, "seed": seed,
                            "requested_n_clusters": n_clusters, "clusterer": copts,
                            "min_cluster_size": min_cluster_size}
    k = _resolve_k(n_clusters, emb, user_items, seed, min_cluster_size, auto_rule, copts, meta)
    km = Clusterer(k, seed=seed, **copts)
    item_cluster = km.fit_assign(emb, min_cluster_size)
    meta["objective"] = km.objective_history[-1] if km.objective_history else None
    meta["spherical"] = km.spherical
    level = category_level_for(dataset, template)
    diag = diagnose(item_cluster, km.n_clusters, user_items=user_items, emb=emb,
                    categories=dataset.catalog.categories(), category_level=level)
    assert km.centroids is not None
    result = ClusterResult(item_cluster=item_cluster, centroids=km.centroids, diagnostics=diag,
                           clusterer=km, meta=meta)
    result.examples = example_titles(dataset, emb, result)
    if name:
        result.names = names_for(dataset, emb, result, cache_dir, progress=progress)
    return emb, result


def _resolve_k(n_clusters: int | str, emb: np.ndarray, user_items: sp.csr_matrix, seed: int,
               min_cluster_size: int, rule: AutoRule | None, copts: dict[str, Any],
               meta: dict[str, Any]) -> int:
    if n_clusters == "auto":
        choice = choose_n_clusters(emb, user_items, rule=rule, seed=seed,
                                   min_cluster_size=min_cluster_size, **copts)
        meta["auto"] = {"chosen": choice.n_clusters, "rule": choice.rule, "table": choice.table,
                        "reason": choice.reason}
        return choice.n_clusters
    try:
        k = int(n_clusters)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"n_clusters must be an integer or 'auto', got {n_clusters!r}"
                          ) from exc
    if not 1 <= k <= len(emb):
        raise ConfigError(f"n_clusters must be between 1 and the {len(emb)} items, got {k}")
    return k


def example_titles(dataset: Dataset, emb: np.ndarray, result: ClusterResult, n: int = 8
                   ) -> list[list[str]]:
    """Per cluster, the titles of its ``n`` most central items (nearest the centroid first)."""
    from clusterneg.cluster.kmeans import central_items

    titles = item_titles(dataset.catalog)
    return [[titles[j] for j in idx]
            for idx in central_items(emb, result.item_cluster, result.centroids, n)]


def names_for(dataset: Dataset, emb: np.ndarray, result: ClusterResult,
              cache_dir: str | Path | None = None, generator: Any | None = None,
              progress: Any | None = None) -> list[str]:
    """LLM names for ``result``'s clusters (titles of central items + category tags)."""
    from clusterneg.cluster.naming import SmolLM2Namer, name_clusters

    titles = item_titles(dataset.catalog)
    if generator is None:
        generator = SmolLM2Namer(
            model_cache=None if cache_dir is None else Path(cache_dir) / "models")
    return name_clusters(emb, result.item_cluster, result.centroids, titles,
                         dataset.catalog.categories(), generator=generator, cache=cache_dir,
                         progress=progress)
