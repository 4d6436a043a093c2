"""``embed_catalog``: a catalog's item texts -> unit-norm content embeddings, cached.

The pipeline: render each item's text with the dataset's template (cut to the encoder's token
limit), look the texts up in the embedding cache, encode only the misses, then fit the
post-processing (centring / whitening) on the whole catalog and L2-normalise. Precomputed
embeddings skip the text steps.

References:
    Ji et al., arXiv 2607.00448, section "Method", step 1 (LLM item representations).

Example:
    >>> out = embed_catalog(load_dataset("ml-100k").catalog, "minilm")  # doctest: +SKIP
    >>> out.vectors.shape  # doctest: +SKIP
    (1682, 384)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clusterneg.data.dataset import Catalog
from clusterneg.encode.base import ItemEncoder
from clusterneg.encode.cache import EmbeddingCache
from clusterneg.encode.factory import build_encoder
from clusterneg.encode.postprocess import Postprocess, anisotropy, l2_normalize
from clusterneg.encode.template import TextTemplate, template_from_spec

log = logging.getLogger(__name__)


@dataclass
class CatalogEmbeddings:
    """Content embeddings of every catalog item, with how they were made.

    Args:
        vectors: float32 [n_items, d], unit rows when normalised.
        model_id: the encoder's model id.
        info: JSON-ready facts: template, postprocess, cache hits / encoded, anisotropy before
            and after post-processing, seconds.
    """

    vectors: np.ndarray
    model_id: str
    info: dict[str, Any] = field(default_factory=dict)


def embed_catalog(
    catalog: Catalog,
    encoder: str | ItemEncoder = "minilm",
    *,
    template: str | list[str] | TextTemplate | None = None,
    cache: EmbeddingCache | str | Path | bool | None = None,
    postprocess: str | Postprocess | None = None,
    normalize: bool = True,
    progress: Any | None = None,
) -> CatalogEmbeddings:
    """Embed every item of ``catalog``.

    Args:
        catalog: the items (row j of the output is item j).
        encoder: an encoder or a spec for :func:`~clusterneg.encode.factory.build_encoder`.
        template: text template (None: the dataset's default profile).
        cache: an :class:`EmbeddingCache`, a cache root, or None for the default root.
            Pass ``False`` to disable caching.
        postprocess: "none" / "center" / "whiten" / "whiten:DIM" / a :class:`Postprocess`
            (None: the encoder's ``default_postprocess``), fitted on this catalog.
        normalize: L2-normalise the final rows.
        progress: a rich Progress for the encoding.

    Returns:
        :class:`CatalogEmbeddings` with float32 [n_items, d] vectors.
    """
    start = time.perf_counter()
    enc = build_encoder(encoder) if isinstance(encoder, str) else encoder
    info: dict[str, Any] = {"encoder": enc.model_id}
    if hasattr(enc, "for_catalog"):
        raw = enc.for_catalog(catalog)
        info["cache"] = None
    else:
        raw = _encode_texts(catalog, enc, template, cache, progress, info)
    post = postprocess if isinstance(postprocess, Postprocess) else Postprocess.from_spec(
        postprocess or getattr(enc, "default_postprocess", "none"))
    vectors = post.fit(raw).transform(raw) if post.kind != "none" else raw
    vectors = l2_normalize(vectors) if normalize else np.asarray(vectors, np.float32)
    info.update(postprocess=post.kind, normalize=normalize,
                anisotropy_raw=anisotropy(raw), anisotropy=anisotropy(vectors),
                seconds=time.perf_counter() - start)
    log.info("embedded %d items with %s: %s", len(catalog), enc.model_id, info)
    return CatalogEmbeddings(vectors=np.ascontiguousarray(vectors), model_id=enc.model_id,
                             info=info)


def item_texts(catalog: Catalog, encoder: ItemEncoder,
               template: str | list[str] | TextTemplate | None = None) -> list[str]:
    """The strings ``encoder`` would read for each item (template + token cap applied)."""
    tmpl = template_from_spec(template, catalog)
    return tmpl.render(catalog, encoder.tokenizer, encoder.max_length)


def _encode_texts(catalog: Catalog, enc: ItemEncoder, template: Any, cache: Any,
                  progress: Any, info: dict[str, Any]) -> np.ndarray:
    """Render texts, then encode through the cache (or directly when cache is False)."""
    tmpl = template_from_spec(template, catalog)
    texts = tmpl.render(catalog, enc.tokenizer, enc.max_length)
    info["template"] = tmpl.name
    info["empty_texts"] = sum(1 for t in texts if not t)
    if cache is False:
        info["cache"] = None
        return enc.encode(texts, progress=progress)
    store = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
    vectors = store.encode(enc, texts, progress=progress)
    info["cache"] = dict(store.last_stats)
    return vectors
