"""New items -> content features in the run's own space: the run's encoder, its text
template, its post-processing, L2-normalised, exactly as the catalog was embedded.

The item tower then serves these items through its content path (an item index past the
catalog has no id embedding, :meth:`clusterneg.model.TwoTower.item_vectors`).

References:
    Ji et al., arXiv 2607.00448, 2026, section "Method", step 1 (items encoded by the LLM;
    new items encoded the same way, online).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clusterneg.data.dataset import Catalog
from clusterneg.encode.embed import Postprocess, l2_normalize
from clusterneg.errors import ConfigError, DataError
from clusterneg.serve.new_items import NewItem


class ContentEncoder:
    """Encodes :class:`NewItem` s like the run encoded its catalog.

    Args:
        config: the run's config.json (``experiment.encoder``, cache dir).
        catalog: the run's catalog (template fields, and the post-processing fit).
        dim: the content dimension the item tower expects.
        encoder: an :class:`~clusterneg.encode.base.ItemEncoder` to use instead of the one
            the config names (tests, or an encoder already loaded).
        postprocess: the post-processing spec the catalog went through (None: the
            encoder's default, which is what ``prepare`` applies). Only dimension-keeping
            kinds ("none", "center") fit: the item tower reads ``dim``-wide rows.
    """

    def __init__(self, config: dict[str, Any], catalog: Catalog, dim: int,
                 encoder: Any | None = None, postprocess: str | None = None) -> None:
        self.exp = config.get("experiment", {})
        self.catalog, self.dim = catalog, dim
        self._encoder, self._post_spec = encoder, postprocess
        self._post: Postprocess | None = None

    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from clusterneg.encode.factory import build_encoder

            self._encoder = build_encoder(self.exp.get("encoder", "none"))
        return self._encoder

    def encode(self, items: list[NewItem]) -> np.ndarray:
        """float32 [n, dim] unit-norm content features of ``items``."""
        raw = np.zeros((len(items), self.dim), dtype=np.float32)
        with_vec = [i for i, it in enumerate(items) if it.vector is not None]
        with_text = [i for i, it in enumerate(items) if it.vector is None]
        for i in with_vec:
            raw[i] = self._check_dim(items[i].vector, items[i].item_id)
        if with_text:
            raw[with_text] = self._check_dim_rows(self._encode_texts([items[i] for i in
                                                                      with_text]))
        post = self._postprocess()
        out = post.transform(raw) if post.kind != "none" else raw
        return l2_normalize(out)

    def _encode_texts(self, items: list[NewItem]) -> np.ndarray:
        from clusterneg.encode.precomputed import PrecomputedEmbeddings

        enc = self.encoder
        if isinstance(enc, PrecomputedEmbeddings):
            raise ConfigError("this run's encoder reads precomputed vectors: give each new "
                              f"item a 'vector' ({self.dim} numbers), e.g. "
                              f"{items[0].item_id!r} has none")
        texts = self.texts(items)
        return np.asarray(enc.encode(texts), dtype=np.float32)

    def texts(self, items: list[NewItem]) -> list[str]:
        """The string encoded for each item: its ``text``, else the run's template over its
        fields (with the encoder's token cap)."""
        from clusterneg.encode.template import template_from_spec

        out = [it.text or "" for it in items]
        need = [i for i, it in enumerate(items) if it.text is None]
        if need:
            names = list(self.catalog.fields) or ["title"]
            mini = Catalog(np.array([items[i].item_id for i in need]),
                           {n: [items[i].fields.get(n, "") for i in need] for n in names})
            tmpl = template_from_spec(None, self.catalog)
            enc = self.encoder
            for i, text in zip(need, tmpl.render(mini, enc.tokenizer, enc.max_length),
                               strict=True):
                out[i] = text
        for i, text in enumerate(out):
            if not text.strip():
                raise DataError("<items>", f"item {items[i].item_id!r} has no text in the "
                                f"fields the run encodes ({sorted(self.catalog.fields)})",
                                field="text")
        return out

    def _postprocess(self) -> Postprocess:
        """The catalog's post-processing, refitted on the catalog's raw vectors (cached)."""
        if self._post is None:
            spec = self._post_spec or getattr(self.encoder, "default_postprocess", "none")
            post = Postprocess.from_spec(spec)
            if post.kind != "none":
                post.fit(self._raw_catalog())
            self._post = post
        return self._post

    def _raw_catalog(self) -> np.ndarray:
        enc = self.encoder
        if hasattr(enc, "for_catalog"):
            return enc.for_catalog(self.catalog)
        from clusterneg.encode.cache import EmbeddingCache
        from clusterneg.encode.embed import item_texts

        cache = EmbeddingCache(self.exp.get("cache_dir"))
        return cache.encode(enc, item_texts(self.catalog, enc))

    def _check_dim(self, vector: list[float], item_id: str) -> np.ndarray:
        if len(vector) != self.dim:
            raise DataError("<items>", f"item {item_id!r}: expected a {self.dim}-d "
                            f"vector, got {len(vector)}", field="vector")
        return np.asarray(vector, dtype=np.float32)

    def _check_dim_rows(self, rows: np.ndarray) -> np.ndarray:
        if rows.ndim != 2 or rows.shape[1] != self.dim:
            raise ConfigError(f"the encoder gave {rows.shape[-1]}-d vectors, the run's item "
                              f"tower reads {self.dim}-d content")
        return rows
