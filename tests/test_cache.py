"""Embedding cache: a re-run encodes nothing, a changed text re-encodes one row, writes are
atomic and merge, bad files are reported."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from clusterneg.data.dataset import Catalog
from clusterneg.encode.cache import EmbeddingCache, cache_root, text_keys
from clusterneg.encode.embed import embed_catalog
from clusterneg.errors import DataError


class CountingEncoder:
    """Deterministic fake encoder: vector from the text's hash; records every text encoded."""

    default_postprocess = "none"
    max_length = None
    tokenizer = None

    def __init__(self, dim: int = 8, model_id: str = "fake/v1") -> None:
        self.dim, self.model_id = dim, model_id
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], progress: object = None) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([vector(t, self.dim) for t in texts]) if texts else np.zeros(
            (0, self.dim), np.float32)

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


def vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


TEXTS = [f"item number {i}" for i in range(50)]


def test_rerun_encodes_nothing(tmp_path: Path) -> None:
    enc, cache = CountingEncoder(), EmbeddingCache(tmp_path)
    first = cache.encode(enc, TEXTS)
    assert enc.n_encoded == 50
    again = EmbeddingCache(tmp_path).encode(enc, TEXTS)  # a fresh process would do this
    assert enc.n_encoded == 50
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[7], vector(TEXTS[7], 8))


def test_changed_text_reencodes_exactly_one_row(tmp_path: Path) -> None:
    enc, cache = CountingEncoder(), EmbeddingCache(tmp_path)
    before = cache.encode(enc, TEXTS)
    changed = list(TEXTS)
    changed[13] = "item thirteen, edited"
    after = cache.encode(enc, changed)
    assert enc.calls[-1] == ["item thirteen, edited"]
    assert cache.last_stats == {"texts": 50, "unique": 50, "hits": 49, "encoded": 1}
    np.testing.assert_array_equal(np.delete(after, 13, 0), np.delete(before, 13, 0))
    np.testing.assert_array_equal(after[13], vector(changed[13], 8))


def test_duplicates_encoded_once_and_order_kept(tmp_path: Path) -> None:
    enc, cache = CountingEncoder(), EmbeddingCache(tmp_path)
    texts = ["b", "a", "b", "c", "a"]
    out = cache.encode(enc, texts)
    assert sorted(enc.calls[0]) == ["a", "b", "c"]
    for i, t in enumerate(texts):
        np.testing.assert_array_equal(out[i], vector(t, 8))


def test_models_do_not_share_rows(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    a, b = CountingEncoder(model_id="m/a"), CountingEncoder(model_id="m/b")
    cache.encode(a, TEXTS[:5])
    cache.encode(b, TEXTS[:5])
    assert a.n_encoded == b.n_encoded == 5
    assert cache.path("m/a") != cache.path("m/b")


def test_two_writers_merge_and_no_temp_files_left(tmp_path: Path) -> None:
    one, two = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    enc = CountingEncoder()
    one.encode(enc, TEXTS[:10])
    two.encode(enc, TEXTS[10:20])
    keys, vectors = EmbeddingCache(tmp_path).load(enc.model_id)
    assert len(keys) == 20 and vectors.shape == (20, 8)
    assert np.all(keys[:-1] < keys[1:])  # sorted, unique
    assert not list((tmp_path / "embeddings").glob("*.tmp"))


def test_corrupt_or_mismatched_files_are_data_errors(tmp_path: Path) -> None:
    cache, enc = EmbeddingCache(tmp_path), CountingEncoder()
    cache.encode(enc, TEXTS[:3])
    with pytest.raises(DataError, match="dimension|-d"):
        cache.store(enc.model_id, text_keys(["new"]), np.zeros((1, 5), np.float32))
    cache.path(enc.model_id).write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="unreadable embedding cache"):
        cache.encode(enc, TEXTS[:3])


def test_cache_root_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLUSTERNEG_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"
    assert EmbeddingCache().dir == tmp_path / "c" / "embeddings"
    monkeypatch.delenv("CLUSTERNEG_CACHE")
    assert cache_root() == Path.cwd() / ".cache" / "clusterneg"


def test_warm_catalog_run_encodes_nothing(tmp_path: Path) -> None:
    # its speed is measured in bench/bench_encoders.py, never asserted here
    n = 3000
    cat = Catalog(np.array([str(i) for i in range(n)]),
                  {"title": [f"title {i}" for i in range(n)], "genres": ["A|B"] * n})
    enc = CountingEncoder(dim=384)
    embed_catalog(cat, enc, cache=tmp_path)
    warm = embed_catalog(cat, enc, cache=tmp_path)
    assert enc.n_encoded == n and warm.info["cache"]["encoded"] == 0
    np.testing.assert_allclose(np.linalg.norm(warm.vectors, axis=1), 1.0, rtol=1e-5)
