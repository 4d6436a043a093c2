"""Encoders on a few texts (MiniLM and SmolLM2 for real, a local model directory, precomputed
files), text templates, centring / whitening, and spec parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from clusterneg.data.dataset import Catalog
from clusterneg.encode import (
    PROFILES,
    Postprocess,
    TextTemplate,
    anisotropy,
    build_encoder,
    default_template,
    embed_catalog,
    minilm_path,
)
from clusterneg.encode.base import fingerprint, load_fast_tokenizer
from clusterneg.encode.causal_lm import pool
from clusterneg.encode.template import clean_text, front_article, template_from_spec
from clusterneg.errors import ConfigError, DataError

TEXTS = ["BIC ballpoint pens, black, 12 pack", "Pilot G2 gel ink pens, blue",
         "A Nightmare on Elm Street. Genres: Horror"]


def catalog(n: int = 4) -> Catalog:
    ids = np.array([f"i{j}" for j in range(n)])
    return Catalog(ids, {"movie_title": [f"Movie {j}, The" for j in range(n)],
                         "release_year": ["1995", "", "1990", "1991"][:n],
                         "class": ["Action, Comedy", "Drama", "", "Horror"][:n]},
                   category_field="class")


# --- templates -------------------------------------------------------------------------


def test_movie_profile_renders_fields_in_order() -> None:
    cat = catalog()
    tmpl = default_template(cat)
    assert tmpl.name == "movies"
    assert tmpl.render(cat) == ["The Movie 0. Year: 1995. Genres: Action, Comedy",
                                "The Movie 1. Genres: Drama", "The Movie 2. Year: 1990",
                                "The Movie 3. Year: 1991. Genres: Horror"]


def test_product_profile_and_plain_templates() -> None:
    cat = Catalog(np.array(["a"]), {"title": ["AT&amp;T  Phone"], "brand": ["AT&T"],
                                     "categories": ["Office, Phones"], "description": ["Nice."]})
    assert default_template(cat) is PROFILES["products"]
    assert default_template(cat).render(cat) == [
        "AT&T Phone. Brand: AT&T. Category: Office, Phones. Nice."]
    assert template_from_spec("brand,title", cat).render(cat) == ["AT&T. AT&T Phone"]
    with pytest.raises(ConfigError, match="not in the catalog"):
        template_from_spec("title,nope", cat)


def test_text_cleaning() -> None:
    assert clean_text("a&amp;b \n  c|d") == "a&b c, d"
    assert front_article("Usual Suspects, The") == "The Usual Suspects"
    assert front_article("Enfer, L'") == "L'Enfer"
    assert front_article("Good, the Bad and the Ugly, The") == "The Good, the Bad and the Ugly"


def test_truncation_by_tokens_cuts_at_a_token_boundary() -> None:
    tok = load_fast_tokenizer(minilm_path())
    cat = Catalog(np.array(["a", "b"]), {"title": ["short", "one two three four five six"]})
    out = TextTemplate.from_names(["title"]).render(cat, tok, max_length=3)
    assert out == ["short", "one two three"]
    assert all(len(tok.encode(t, add_special_tokens=False).ids) <= 3 for t in out)


# --- post-processing -------------------------------------------------------------------


def test_centring_removes_a_shared_direction() -> None:
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((500, 16)) + 10.0 * np.ones(16)  # anisotropic: cos ~ 0.99
    assert anisotropy(raw) > 0.9
    centred = Postprocess("center").fit(raw).transform(raw)
    assert abs(anisotropy(centred)) < 0.05


def test_whitening_gives_identity_covariance() -> None:
    rng = np.random.default_rng(1)
    raw = rng.standard_normal((2000, 6)) @ rng.standard_normal((6, 6))
    white = Postprocess("whiten").fit(raw).transform(raw)
    np.testing.assert_allclose(np.cov(white.T), np.eye(6), atol=1e-3)
    assert Postprocess("whiten", dim=3).fit(raw).transform(raw).shape == (2000, 3)
    with pytest.raises(ConfigError):
        Postprocess("zca")


def test_mean_pooling_ignores_padding() -> None:
    import torch

    hidden = torch.tensor([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 1.0]]
    assert pool(hidden, mask, "last").tolist() == [[3.0, 2.0]]


# --- spec parsing ----------------------------------------------------------------------


def test_bad_specs_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder("no-such-model")
    with pytest.raises(ConfigError, match="neither modules.json"):
        build_encoder(str(tmp_path))
    with pytest.raises(ConfigError, match="unknown SentenceEncoder option .pooling."):
        build_encoder("minilm", pooling="mean")


def test_fingerprint_is_stable_and_content_based(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "w.bin").write_bytes(b"x" * 100)
    assert fingerprint(a) == fingerprint(b)
    (b / "w.bin").write_bytes(b"y" * 100)
    assert fingerprint(a) != fingerprint(b)


# --- precomputed -----------------------------------------------------------------------


def test_precomputed_npy_aligned_to_item_index(tmp_path: Path) -> None:
    vecs = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    np.save(tmp_path / "e.npy", vecs)
    out = embed_catalog(catalog(), f"precomputed:{tmp_path / 'e.npy'}")
    np.testing.assert_allclose(out.vectors, vecs / np.linalg.norm(vecs, axis=1, keepdims=True),
                               rtol=1e-6)
    np.save(tmp_path / "short.npy", vecs[:3])
    with pytest.raises(DataError, match="expected 4 rows"):
        embed_catalog(catalog(), f"precomputed:{tmp_path / 'short.npy'}")
    enc = build_encoder(f"precomputed:{tmp_path / 'e.npy'}")
    assert enc.dim == 3 and enc.model_id.startswith("precomputed/e@")
    with pytest.raises(ConfigError, match="looked up by item"):
        enc.encode(["x"])


def test_precomputed_parquet_mapped_by_raw_id(tmp_path: Path) -> None:
    ids = ["i3", "zz", "i1", "i0", "i2"]  # shuffled, with an extra row
    vecs = [[float(i), 1.0] for i in range(5)]
    pq.write_table(pa.table({"item_id": ids, "embedding": vecs}), tmp_path / "e.parquet")
    out = embed_catalog(catalog(), f"precomputed:{tmp_path / 'e.parquet'}", normalize=False)
    np.testing.assert_array_equal(out.vectors[:, 0], [3.0, 2.0, 4.0, 0.0])
    pq.write_table(pa.table({"item_id": ids[:3], "vector": vecs[:3]}), tmp_path / "m.parquet")
    with pytest.raises(DataError, match="2 of 4 catalog items have no vector"):
        embed_catalog(catalog(), f"precomputed:{tmp_path / 'm.parquet'}")


@pytest.mark.parametrize(("table", "message"), [
    ({"item_id": ["a", "b"], "vector": [[1.0, 2.0], [1.0]]}, "row 1 has 1"),
    ({"item_id": ["a", "b"], "vector": [[1.0], None]}, "null vector in row 1"),
    ({"item_id": ["a", "a"], "vector": [[1.0], [2.0]]}, "repeat"),
    ({"id": ["a"], "vector": [[1.0]]}, "no item_id column"),
    ({"item_id": ["a"], "v1": [[1.0]], "v2": [[1.0]]}, "cannot tell the vector column"),
    ({"item_id": ["a"], "vector": [[float("nan")]]}, "NaN"),
])
def test_precomputed_parquet_errors(tmp_path: Path, table: dict, message: str) -> None:
    pq.write_table(pa.table(table), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=message):
        build_encoder(f"precomputed:{tmp_path / 'bad.parquet'}")


# --- real models -----------------------------------------------------------------------


def _cos(x: np.ndarray) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


@pytest.mark.slow
def test_minilm_real_and_as_a_local_directory() -> None:
    enc = build_encoder("minilm")
    assert enc.dim == 384 and enc.model_id.startswith("st/all-MiniLM-L6-v2@")
    emb = enc.encode(TEXTS)
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    sim = _cos(emb)
    assert sim[0, 1] > sim[0, 2] + 0.1  # two pens are closer than a pen and a horror film
    local = build_encoder(str(minilm_path()))  # detected as sentence-transformers by modules.json
    assert type(local) is type(enc)
    np.testing.assert_allclose(local.encode(TEXTS[::-1])[::-1], emb, atol=1e-5)


@pytest.mark.slow
def test_smollm2_real_gguf_q4_1() -> None:
    from safetensors.numpy import load_file

    enc = build_encoder("smollm2")  # first run dequantises once into the cache (~30 s)
    assert enc.dim == 576 and "/mean" in enc.model_id
    weights = load_file(str(enc.path / "model.safetensors"))
    down = weights["model.layers.0.mlp.down_proj.weight"]  # Q4_1 in the GGUF
    blocks = down.reshape(down.shape[0], -1, 32)  # Q4_1 blocks: 32 weights, 16 levels
    levels = np.array([len(np.unique(b)) for b in blocks.reshape(-1, 32)[:500]])
    assert levels.max() <= 16 and levels.mean() > 8
    emb = enc.encode(TEXTS)
    assert emb.shape == (3, 576) and np.isfinite(emb).all()
    alone = enc.encode(TEXTS[2:])  # padding in a batch must not change the vector
    np.testing.assert_allclose(alone[0], emb[2], rtol=1e-3, atol=1e-3)
    assert anisotropy(emb) > 0.5  # decoder states share a common direction


def test_postprocess_specs() -> None:
    assert Postprocess.from_spec("whiten:3").dim == 3
    assert Postprocess.from_spec("center").kind == "center"
    for bad in ("center:3", "whiten:x", "pca"):
        with pytest.raises(ConfigError):
            Postprocess.from_spec(bad)
