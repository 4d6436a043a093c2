"""On-disk embedding cache keyed by (model id, sha256 of the item text).

One file per model, ``<root>/embeddings/<slug>-<hash>.npz`` holding the sorted 32-byte text
digests, the float32 vectors in the same order, and the model id (checked on load). A lookup
is a vectorised ``searchsorted`` (no Python dict), so a warm ml-100k run costs milliseconds
plus hashing the texts. Writes take an advisory lock, merge with what is on disk (another
process may have added rows), write a temporary file and ``os.replace`` it: a crash never
leaves a half-written cache, and concurrent writers do not lose each other's rows.

The cache root is ``$CLUSTERNEG_CACHE`` when set, else ``./.cache/clusterneg``; embeddings go
under ``embeddings/``, dequantised models under ``models/``, cluster names under ``names/``.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (item embeddings are computed once
    per item and reused; new items are encoded as they arrive).

Example:
    >>> cache = EmbeddingCache(tmp_path)  # doctest: +SKIP
    >>> emb = cache.encode(encoder, ["a", "b"])   # encodes 2 texts  # doctest: +SKIP
    >>> emb = cache.encode(encoder, ["a", "c"])   # encodes only "c"  # doctest: +SKIP
    >>> cache.last_stats  # doctest: +SKIP
    {'texts': 2, 'unique': 2, 'hits': 1, 'encoded': 1}
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.errors import DataError

log = logging.getLogger(__name__)

KEY_DTYPE = np.dtype("S32")


def cache_root(root: str | Path | None = None) -> Path:
    """``root`` if given, else ``$CLUSTERNEG_CACHE``, else ``./.cache/clusterneg``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("CLUSTERNEG_CACHE")
    return Path(env) if env else Path.cwd() / ".cache" / "clusterneg"


def text_keys(texts: list[str]) -> np.ndarray:
    """sha256 digest of each text's UTF-8 bytes, as ``S32`` [N]."""
    return np.array([hashlib.sha256(t.encode("utf-8")).digest() for t in texts],
                    dtype=KEY_DTYPE)


class EmbeddingCache:
    """Per-model store of text-hash -> vector.

    Args:
        root: cache root (see :func:`cache_root`); embeddings live in ``root/embeddings``.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.dir = cache_root(root) / "embeddings"
        self.last_stats: dict[str, int] = {}

    def path(self, model_id: str) -> Path:
        """The file holding ``model_id``'s vectors."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model_id)[:80]
        return self.dir / f"{slug}-{hashlib.sha256(model_id.encode()).hexdigest()[:12]}.npz"

    def load(self, model_id: str) -> tuple[np.ndarray, np.ndarray]:
        """(sorted keys ``S32`` [M], vectors float32 [M, d]); empty when nothing is stored."""
        path = self.path(model_id)
        if not path.exists():
            return np.empty(0, KEY_DTYPE), np.empty((0, 0), np.float32)
        try:
            with np.load(path, allow_pickle=False) as z:
                stored_id, keys, vectors = str(z["model_id"]), z["keys"], z["vectors"]
                digest = str(z["sha256"]) if "sha256" in z.files else None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(path, f"unreadable embedding cache ({exc}); delete it to rebuild"
                            ) from None
        if stored_id != model_id or len(keys) != len(vectors):
            raise DataError(path, f"cache file holds model {stored_id!r} with {len(keys)} keys "
                            f"and {len(vectors)} vectors, expected model {model_id!r}")
        if digest is not None and digest != _digest(vectors):
            raise DataError(path, "embedding cache damaged (checksum differs); delete it to "
                                  "rebuild")
        if vectors.ndim != 2 or not np.isfinite(vectors).all():
            raise DataError(path, "embedding cache holds NaN/inf or is not a 2-d array; "
                                  "delete it to rebuild")
        return keys, vectors

    def lookup(self, model_id: str, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``keys``: (float32 [N, d] with zero rows where missing, bool [N] found)."""
        stored, vectors = self.load(model_id)
        found = np.zeros(len(keys), dtype=bool)
        if len(stored) == 0:
            return np.zeros((len(keys), 0), np.float32), found
        pos = np.minimum(np.searchsorted(stored, keys), len(stored) - 1)
        found = stored[pos] == keys
        out = np.zeros((len(keys), vectors.shape[1]), np.float32)
        out[found] = vectors[pos[found]]
        return out, found

    def store(self, model_id: str, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add rows (merged with what is on disk, under a lock; atomic replace)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.dir.mkdir(parents=True, exist_ok=True)
        with _locked(self.path(model_id).with_suffix(".lock")):
            old_keys, old_vectors = self.load(model_id)
            if len(old_keys) and old_vectors.shape[1] != vectors.shape[1]:
                raise DataError(self.path(model_id), f"cached vectors are "
                                f"{old_vectors.shape[1]}-d, new ones {vectors.shape[1]}-d")
            all_keys = np.concatenate([keys.astype(KEY_DTYPE), old_keys])
            all_vec = np.concatenate([vectors, old_vectors.reshape(-1, vectors.shape[1])])
            uniq, first = np.unique(all_keys, return_index=True)
            kept = np.ascontiguousarray(all_vec[first])
            _atomic_savez(self.path(model_id), model_id=np.array(model_id), keys=uniq,
                          vectors=kept, sha256=np.array(_digest(kept)))

    def encode(self, encoder: Any, texts: list[str], progress: Any | None = None) -> np.ndarray:
        """``encoder.encode`` through the cache: only texts never seen by this model run.

        Args:
            encoder: an :class:`~clusterneg.encode.base.ItemEncoder`.
            texts: N strings (duplicates are encoded once).
            progress: a rich Progress for the encoding of the misses.

        Returns:
            float32 [N, encoder.dim]; ``last_stats`` says how many were hits / encoded.
        """
        keys = text_keys(texts)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        vectors, found = self.lookup(encoder.model_id, uniq)
        dim = getattr(encoder, "dim", None)
        if found.any() and isinstance(dim, int) and vectors.shape[1] != dim:
            raise DataError(self.path(encoder.model_id), f"cached vectors are "
                            f"{vectors.shape[1]}-d but {encoder.model_id} gives {dim}-d; "
                            "delete the cache file to rebuild")
        missing = np.flatnonzero(~found)
        if len(missing):
            new = encoder.encode([texts[first[i]] for i in missing], progress=progress)
            self.store(encoder.model_id, uniq[missing], new)
            vectors = vectors if vectors.shape[1] else np.zeros((len(uniq), new.shape[1]),
                                                                np.float32)
            vectors[missing] = new
        self.last_stats = {"texts": len(texts), "unique": len(uniq),
                           "hits": int(found.sum()), "encoded": len(missing)}
        log.info("embedding cache %s: %s", encoder.model_id, self.last_stats)
        return vectors[inverse.reshape(-1)]


def _digest(vectors: np.ndarray) -> str:
    """SHA-256 of the vectors' bytes: a truncated or edited cache is refused, not used."""
    return hashlib.sha256(np.ascontiguousarray(vectors, dtype=np.float32).tobytes()).hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (created if needed) for the block."""
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` to a temporary file in the same directory, fsync, then rename."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    from clusterneg.outputs import atomic_write_bytes

    atomic_write_bytes(path, buf.getvalue())
