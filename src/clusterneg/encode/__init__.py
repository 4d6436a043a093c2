"""Item text -> content embeddings: encoders behind one protocol, a text template per
dataset, an on-disk cache keyed by (model id, text hash), centring / whitening.

Heavy libraries (torch, transformers, sentence-transformers) load only when a model runs.

Example:
    >>> from clusterneg.encode import embed_catalog  # doctest: +SKIP
    >>> catalog = load_dataset("ml-100k").catalog  # doctest: +SKIP
    >>> emb = embed_catalog(catalog, "minilm").vectors  # [1682, 384]  # doctest: +SKIP
"""

from __future__ import annotations

from clusterneg.encode.base import ItemEncoder, TokenBatchedEncoder
from clusterneg.encode.cache import EmbeddingCache, cache_root, text_keys
from clusterneg.encode.causal_lm import CausalLMEncoder, materialise_gguf
from clusterneg.encode.embed import (
    CatalogEmbeddings,
    Postprocess,
    anisotropy,
    embed_catalog,
    item_texts,
    l2_normalize,
)
from clusterneg.encode.factory import build_encoder, minilm_path, smollm2_gguf
from clusterneg.encode.precomputed import PrecomputedEmbeddings
from clusterneg.encode.sentence import SentenceEncoder
from clusterneg.encode.template import PROFILES, FieldSpec, TextTemplate, default_template

__all__ = [
    "PROFILES",
    "CatalogEmbeddings",
    "CausalLMEncoder",
    "EmbeddingCache",
    "FieldSpec",
    "ItemEncoder",
    "Postprocess",
    "PrecomputedEmbeddings",
    "SentenceEncoder",
    "TextTemplate",
    "TokenBatchedEncoder",
    "anisotropy",
    "build_encoder",
    "cache_root",
    "default_template",
    "embed_catalog",
    "item_texts",
    "l2_normalize",
    "materialise_gguf",
    "minilm_path",
    "smollm2_gguf",
    "text_keys",
]
