"""Concept clusters with a fake LLM and a fake label encoder: label cleaning, the choice of
concepts, the minimum size, the fallback, the cache, determinism, the ClusterResult contract,
and the CLI's bad values as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp

from clusterneg.cluster.concepts import (
    ConceptOptions,
    build_messages,
    choose_concepts,
    clean_label,
    sample_titles,
    split_into_concepts,
    unique_labels,
)
from clusterneg.cluster.pipeline import ClusterResult
from clusterneg.errors import ConfigError
from clusterneg.validate import parse_concepts

# Label -> direction in 3-d: three kinds of item.
KINDS = {"Pens": [1.0, 0.0, 0.0], "Tape": [0.0, 1.0, 0.0], "Glue": [0.0, 0.0, 1.0],
         "Stapler": [0.7, 0.7, 0.0]}


def make_catalog() -> tuple[np.ndarray, list[str], np.ndarray]:
    """12 items in two coarse clusters: 0 holds 4 pens + 4 tapes, 1 holds 4 glues."""
    rng = np.random.default_rng(0)
    kinds = ["Pens"] * 4 + ["Tape"] * 4 + ["Glue"] * 4
    emb = np.array([KINDS[k] for k in kinds]) + rng.normal(0, 0.05, (12, 3))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    titles = [f"{k} item {j}" for j, k in enumerate(kinds)]
    return emb, titles, np.array([0] * 8 + [1] * 4)


class FakeLLM:
    """Answers with the kind in the title ("Tape item 5" -> "Tape (5)."), or ``reply``."""

    model_id = "fake-concepts"
    batch_size = 4

    def __init__(self, reply: str | None = None) -> None:
        self.calls = 0
        self.reply = reply

    def __call__(self, prompts: list[list[dict[str, str]]]) -> list[str]:
        self.calls += len(prompts)
        if self.reply is not None:
            return [self.reply] * len(prompts)
        return [f"{p[-1]['content'].split()[0]} ({p[-1]['content'].split()[-1]}).\nmore"
                for p in prompts]


def encode_labels(labels: list[str]) -> np.ndarray:
    return np.array([KINDS.get(lab, [0.3, 0.3, 0.3]) for lab in labels], np.float32)


def coarse_result(item_cluster: np.ndarray, emb: np.ndarray) -> ClusterResult:
    k = int(item_cluster.max()) + 1
    cents = np.stack([emb[item_cluster == c].mean(0) for c in range(k)]).astype(np.float32)
    return ClusterResult(item_cluster=item_cluster, centroids=cents, meta={"seed": 0})


def split(generator: FakeLLM, cache: object = False, **opts: int) -> ClusterResult:
    emb, titles, coarse = make_catalog()
    user_items = sp.csr_matrix(np.eye(3, 12))
    options = ConceptOptions(**{"min_concept_size": 2, **opts})
    return split_into_concepts(emb, coarse_result(coarse, emb), titles, generator=generator,
                               label_encoder=encode_labels, options=options,
                               user_items=user_items, cache=cache)


def test_clean_label() -> None:
    assert clean_label("Kind: Cross-cut shredder (46") == "Cross-cut shredder"
    assert clean_label("Swingline 747 Classic Stapler Black Heavy") == (
        "Swingline Classic Stapler Black")
    assert clean_label('"Gel pens."\nsecond line') == "Gel pens"
    assert clean_label("100101") == "" and clean_label("  ") == "" and clean_label("A4") == ""
    assert unique_labels(["Tape", "tape.", "", "Glue", "Tape (3)"]) == ["Tape", "Glue"]


def test_prompt_ends_with_the_title() -> None:
    msgs = build_messages("x" * 200)
    assert msgs[0]["role"] == "system" and msgs[-1] == {"role": "user", "content": "x" * 80}
    assert [m["role"] for m in msgs[1:3]] == ["user", "assistant"]


def test_choose_concepts_keeps_the_labels_that_gather_most_items() -> None:
    emb = np.array([[1, 0], [1, .1], [1, .2], [0, 1], [.1, 1]], np.float32)
    labels = np.array([[0, 1], [-1, 0], [1, 0]], np.float32)  # label 1 gathers nobody
    keep, local = choose_concepts(emb, labels, max_concepts=2, min_size=1)
    assert keep == [0, 2] and local.tolist() == [1, 1, 1, 0, 0]
    # max_concepts=1 keeps only the biggest (label 2: three items)
    assert choose_concepts(emb, labels, 1, 1)[0] == [2]


def test_minimum_size_merges_small_concepts_back() -> None:
    emb = np.array([[1, 0], [1, .1], [1, .2], [0, 1], [.1, 1]], np.float32)
    labels = np.array([[1, 0], [0, 1]], np.float32)
    keep, local = choose_concepts(emb, labels, 2, min_size=3)
    assert keep == [0] and local.tolist() == [0] * 5


def test_split_assigns_items_to_their_concept() -> None:
    res = split(FakeLLM(), titles_per_cluster=8)
    # cluster 0 -> Pens (items 0-3) and Tape (4-7); cluster 1 has one label: kept whole
    assert res.n_clusters == 3 and res.names == ["Pens", "Tape", "Glue"]
    assert res.item_cluster.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    info = res.meta["concepts"]
    assert (info["n_split"], info["n_fallback"], info["n_merged_whole"]) == (1, 1, 0)
    assert info["per_cluster"][1]["status"].startswith("fallback")
    assert info["online_agreement"] == 1.0 and res.meta["method"] == "concept"
    assert np.allclose(np.linalg.norm(res.centroids, axis=1), 1.0)
    emb, _, _ = make_catalog()
    mean = emb[:4].mean(0)
    assert np.allclose(res.centroids[0], mean / np.linalg.norm(mean), atol=1e-6)
    assert res.clusterer is not None and res.clusterer.assign(emb).tolist() == \
        res.item_cluster.tolist()
    assert res.diagnostics["sizes"]["sizes"] == [4, 4, 4]
    assert "false_negatives" in res.diagnostics


def test_junk_replies_keep_every_cluster_whole() -> None:
    res = split(FakeLLM(reply="1234 ???"))
    assert res.item_cluster.tolist() == [0] * 8 + [1] * 4
    assert res.meta["concepts"]["n_fallback"] == 2 and res.names == ["cluster 0", "cluster 1"]


def test_min_concept_size_can_merge_a_cluster_whole() -> None:
    res = split(FakeLLM(), min_concept_size=5)
    assert res.n_clusters == 2 and res.meta["concepts"]["n_merged_whole"] == 1


def test_deterministic_and_cached(tmp_path: Path) -> None:
    first_llm, second_llm = FakeLLM(), FakeLLM()
    a = split(first_llm, cache=tmp_path, titles_per_cluster=5)
    b = split(second_llm, cache=tmp_path, titles_per_cluster=5)
    assert first_llm.calls == 9 and second_llm.calls == 0  # 5 + 4 titles, then all cached
    assert b.meta["concepts"]["cached"] == 9
    assert a.item_cluster.tolist() == b.item_cluster.tolist() and a.names == b.names
    assert np.array_equal(a.centroids, b.centroids)


def test_title_sample_is_seeded_per_cluster() -> None:
    clusters = np.array([0] * 10 + [1] * 10)
    s1 = sample_titles(clusters, 2, 4, seed=0)
    assert [len(s) for s in s1] == [4, 4] and set(s1[1]) <= set(range(10, 20))
    assert [s.tolist() for s in s1] == [s.tolist() for s in sample_titles(clusters, 2, 4, 0)]
    assert sample_titles(clusters, 2, 20, 0)[0].tolist() == list(range(10))


def test_saved_concept_result_loads_back(tmp_path: Path) -> None:
    res = split(FakeLLM())
    back = ClusterResult.load(res.save(tmp_path / "c"))
    assert back.names == res.names and back.item_cluster.tolist() == res.item_cluster.tolist()


def test_options_checked() -> None:
    for bad in ({"max_concepts": 1}, {"titles_per_cluster": 0}, {"min_concept_size": 0},
                {"max_concepts": 2.5}):
        with pytest.raises(ConfigError):
            ConceptOptions(**bad).check()
    assert parse_concepts("0") == 0 and parse_concepts(3) == 3
    for bad in ("1", "13", "-2", "x"):
        with pytest.raises(ConfigError):
            parse_concepts(bad)
    with pytest.raises(ConfigError, match="encoder"):
        parse_concepts(4, "none")


def test_concept_clusters_refuse_post_processed_embeddings() -> None:
    from clusterneg.cluster.concepts import concept_clusters

    coarse = SimpleNamespace(meta={"embedding": {"postprocess": "center"}})
    with pytest.raises(ConfigError, match="post-processing"):
        concept_clusters(None, np.zeros((2, 2)), coarse, encoder_spec="smollm2")


@pytest.mark.parametrize("argv", [
    ["cluster", "--concepts", "1"],
    ["cluster", "--concepts", "40"],
    ["train", "--concepts", "-3", "--encoder", "none"],
    ["compare", "--concepts", "2", "--encoder", "none"],
])
def test_cli_bad_concepts_one_line_exit_2(tmp_path: Path, argv: list[str]) -> None:
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=str(src), CLUSTERNEG_CACHE=str(tmp_path / "cache"),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "clusterneg.cli", *argv,
                           "--out", str(tmp_path / "out")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--concepts" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_cache_is_written_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import clusterneg.cluster.concepts as concepts

    class Dies(FakeLLM):
        def __call__(self, prompts: list[list[dict[str, str]]]) -> list[str]:
            if self.calls >= 4:
                raise KeyboardInterrupt
            return super().__call__(prompts)

    monkeypatch.setattr(concepts, "SAVE_EVERY", 4)
    with pytest.raises(KeyboardInterrupt):
        split(Dies(), cache=tmp_path)
    rerun = FakeLLM()
    split(rerun, cache=tmp_path)
    assert rerun.calls == 12 - 4  # the first chunk of four was kept


@pytest.mark.slow
def test_smollm2_and_minilm_split_a_mixed_cluster() -> None:
    """The real models: one cluster of pens and tapes is split into at least two concepts
    whose labels mention what they hold."""
    from clusterneg.cluster.naming import SmolLM2Namer
    from clusterneg.encode.embed import l2_normalize
    from clusterneg.encode.factory import build_encoder

    titles = ["BIC ballpoint pens, blue, 12 pack", "Pilot G2 gel pens, black",
              "Paper Mate ballpoint pens", "Uni-ball gel pens, assorted",
              "Scotch Magic Tape, 3 rolls", "Duck packaging tape with dispenser",
              "Scotch shipping packaging tape", "3M masking tape, 1 inch"]
    enc = build_encoder("minilm")
    emb = l2_normalize(enc.encode(titles))
    coarse = coarse_result(np.zeros(8, np.int64), emb)
    res = split_into_concepts(emb, coarse, titles, generator=SmolLM2Namer(max_new_tokens=8),
                              label_encoder=lambda labs: l2_normalize(enc.encode(labs)),
                              options=ConceptOptions(min_concept_size=2), cache=False)
    assert res.n_clusters >= 2, res.meta["concepts"]["per_cluster"]
    assert res.item_cluster[0] != res.item_cluster[4]
