"""Every encoder behind one contract (as the samplers have): a fake token-batched encoder,
precomputed vectors and the real MiniLM. Protocol attributes, catalog embeddings of the right
shape, unit rows and repeatable; text encoders also give the same vector for a text whatever
batch (length order) it lands in, count their tokens, and return [0, d] for no text."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from clusterneg.data.dataset import Catalog
from clusterneg.encode import ItemEncoder, TokenBatchedEncoder, build_encoder, embed_catalog
from clusterneg.encode.factory import minilm_path

TITLES = ["BIC ballpoint pens, black, 12 pack", "Pilot G2 gel ink pens, blue", "Stapler",
          "A Nightmare on Elm Street", "Usual Suspects, The", "Heat"]


class FakeEncoder(TokenBatchedEncoder):
    """A network-free encoder: each text's vector is seeded by its hash (MiniLM's tokenizer
    does the length batching)."""

    default_postprocess = "none"

    def __init__(self, batch_size: int = 2) -> None:
        self.path, self.dim, self.max_length = minilm_path(), 8, 32
        self.batch_size, self.max_batch_tokens = batch_size, None
        self.model_id = "fake/hash"
        self._reset_stats()

    def load(self) -> None:
        return None

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in batch]
        return np.stack([np.random.default_rng(s).standard_normal(self.dim)
                         for s in seeds]).astype(np.float32)


def catalog() -> Catalog:
    return Catalog(np.array([f"i{j}" for j in range(len(TITLES))]), {"title": list(TITLES)})


@pytest.fixture(params=["fake", "precomputed", "minilm"])
def encoder(request: pytest.FixtureRequest, tmp_path: Path) -> ItemEncoder:
    if request.param == "fake":
        return FakeEncoder()
    if request.param == "precomputed":
        path = tmp_path / "vectors.npy"
        np.save(path, np.random.default_rng(0).standard_normal((len(TITLES), 5)))
        return build_encoder(f"precomputed:{path}")
    return build_encoder("minilm")


def test_protocol_attributes(encoder: ItemEncoder) -> None:
    assert isinstance(encoder, ItemEncoder)
    assert isinstance(encoder.model_id, str) and encoder.model_id
    assert isinstance(encoder.dim, int) and encoder.dim > 0
    assert encoder.default_postprocess in ("none", "center", "whiten")
    assert encoder.tokenizer is None or hasattr(encoder.tokenizer, "encode")


def test_catalog_embeddings_are_unit_rows_and_repeatable(encoder: ItemEncoder) -> None:
    first = embed_catalog(catalog(), encoder, cache=False, postprocess="none")
    again = embed_catalog(catalog(), encoder, cache=False, postprocess="none")
    assert first.vectors.shape == (len(TITLES), encoder.dim)
    assert first.vectors.dtype == np.float32 and np.isfinite(first.vectors).all()
    np.testing.assert_allclose(np.linalg.norm(first.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first.vectors, again.vectors, atol=1e-6)
    assert first.model_id == encoder.model_id


def test_text_encoders_batch_by_length_without_changing_vectors(encoder: ItemEncoder) -> None:
    if encoder.tokenizer is None:
        pytest.skip("not a text encoder (vectors are looked up by item)")
    assert encoder.encode([]).shape == (0, encoder.dim)
    texts = list(TITLES)
    whole = encoder.encode(texts)
    reversed_ = encoder.encode(texts[::-1])[::-1]
    one_by_one = np.concatenate([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(whole, reversed_, atol=1e-5)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-4)
    if isinstance(encoder, TokenBatchedEncoder):
        assert encoder.stats["texts"] == 3 * len(texts)
        assert 0 < encoder.stats["tokens"] <= encoder.stats["padded_tokens"]
