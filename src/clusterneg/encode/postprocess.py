"""Centring / whitening of catalog embeddings, and the anisotropy they fix.

Decoder-LLM hidden states share a large common direction: the cosine of two unrelated items
sits near 1, so after L2 normalisation every item is close to every other and spherical
k-means sees little structure. Subtracting the catalog mean (``center``) removes the common
direction; ``whiten`` also rescales the principal axes to unit variance (BERT-whitening),
optionally keeping only the top ``dim`` components (``"whiten:64"``; full-rank whitening also
amplifies the noise directions: on ml-100k SmolLM2 clusters, genre NMI at k=50 is 0.16
centred, 0.24 whitened to 64 dims, 0.10 whitened full-rank). Both are fitted on the catalog
being clustered (the cache stores raw vectors, so changing this never re-encodes).

References:
    Ethayarajh, "How Contextual are Contextualized Word Representations?", EMNLP 2019.
    Su et al., "Whitening Sentence Representations for Better Semantics and Faster
    Retrieval", arXiv 2103.15316, 2021. Ji et al., arXiv 2607.00448, "Method", step 1.

Example:
    >>> raw = np.random.default_rng(0).standard_normal((50, 8)) + 5.0  # a shared offset
    >>> post = Postprocess.from_spec("center").fit(raw)   # or "whiten", "whiten:64"
    >>> anisotropy(post.transform(raw)) < anisotropy(raw)
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clusterneg.errors import ConfigError

KINDS = ("none", "center", "whiten")


@dataclass
class Postprocess:
    """An affine map fitted on catalog embeddings: ``(x - mean) @ W``.

    Args:
        kind: "none", "center" or "whiten".
        dim: for "whiten", keep the top ``dim`` principal components (None: all).
        eps: variance floor for whitening, relative to the largest eigenvalue.
    """

    kind: str = "none"
    dim: int | None = None
    eps: float = 1e-6
    mean: np.ndarray | None = field(default=None, repr=False)
    matrix: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"postprocess must be one of {KINDS}, got {self.kind!r}")

    @staticmethod
    def from_spec(spec: str) -> Postprocess:
        """"none", "center", "whiten" or "whiten:DIM" (keep the top DIM components)."""
        kind, _, dim = spec.partition(":")
        if dim and kind != "whiten":
            raise ConfigError(f"only whiten takes a dimension, got {spec!r}")
        try:
            return Postprocess(kind, dim=int(dim) if dim else None)
        except ValueError as exc:
            raise ConfigError(f"postprocess dimension must be an integer, got {spec!r}") from exc

    def fit(self, emb: np.ndarray) -> Postprocess:
        """Fit on float [N, d] embeddings; returns self."""
        x = np.asarray(emb, dtype=np.float64)
        if self.kind == "none":
            return self
        self.mean = x.mean(axis=0)
        if self.kind == "whiten":
            xc = x - self.mean
            vals, vecs = np.linalg.eigh(xc.T @ xc / max(len(x) - 1, 1))
            order = np.argsort(vals)[::-1][: self.dim or len(vals)]
            vals = np.maximum(vals[order], self.eps * max(vals.max(), 1e-30))
            self.matrix = vecs[:, order] / np.sqrt(vals)
        return self

    def transform(self, emb: np.ndarray) -> np.ndarray:
        """Apply the fitted map to float [N, d] -> float32 [N, d'] (d' = dim for whiten)."""
        x = np.asarray(emb, dtype=np.float32)
        if self.kind == "none":
            return x
        if self.mean is None:
            raise ConfigError("Postprocess.transform called before fit")
        x = x - self.mean.astype(np.float32)
        return x if self.matrix is None else x @ self.matrix.astype(np.float32)


def l2_normalize(emb: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32."""
    x = np.asarray(emb, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), eps)


def anisotropy(emb: np.ndarray, n_pairs: int = 20000, seed: int = 0) -> float:
    """Mean cosine similarity of random pairs of distinct rows (0 for isotropic vectors).

    Args:
        emb: float [N, d], N >= 2.
        n_pairs: number of random pairs.
        seed: pair sampling seed.
    """
    n = len(emb)
    if n < 2:
        return float("nan")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, n_pairs)
    b = (a + rng.integers(1, n, n_pairs)) % n  # never a == b
    x = l2_normalize(emb)
    return float(np.einsum("ij,ij->i", x[a], x[b]).mean())
