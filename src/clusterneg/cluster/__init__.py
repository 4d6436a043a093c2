"""Semantic clusters of items: seeded faiss k-means, the ``auto`` choice of k, diagnostics
(sizes, false-negative rate, category NMI, hardness) and LLM-written cluster names.

Example:
    >>> from clusterneg.cluster import embed_and_cluster  # doctest: +SKIP
    >>> ds = load_dataset("ml-100k")  # doctest: +SKIP
    >>> emb, result = embed_and_cluster(ds, "minilm", n_clusters="auto")  # doctest: +SKIP
"""

from __future__ import annotations

from clusterneg.cluster.auto import AutoChoice, AutoRule, choose_n_clusters
from clusterneg.cluster.diagnostics import (
    category_agreement,
    category_labels,
    cluster_sizes,
    content_hardness,
    diagnose,
    false_negative_rate,
    hardness,
    model_hardness,
    nmi,
)
from clusterneg.cluster.kmeans import Clusterer
from clusterneg.cluster.naming import SmolLM2Namer, name_clusters
from clusterneg.cluster.pipeline import ClusterResult, embed_and_cluster, names_for

__all__ = [
    "AutoChoice",
    "AutoRule",
    "ClusterResult",
    "Clusterer",
    "SmolLM2Namer",
    "category_agreement",
    "category_labels",
    "choose_n_clusters",
    "cluster_sizes",
    "content_hardness",
    "diagnose",
    "embed_and_cluster",
    "false_negative_rate",
    "hardness",
    "model_hardness",
    "name_clusters",
    "names_for",
    "nmi",
]
