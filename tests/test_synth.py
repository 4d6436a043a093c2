"""Synthetic data: deterministic, the intended structure, readable by the table loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from clusterneg.data.load import load_dataset
from clusterneg.data.synth import SynthConfig, synthesize


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = SynthConfig(n_items=400, n_interactions=30_000, n_users=300, n_clusters=8,
                      shard_rows=7_000, seed=5)
    return synthesize(cfg, tmp_path_factory.mktemp("s") / "d")


def test_cli_writes_shards_and_is_deterministic(tmp_path: Path, cli_run) -> None:
    args = ("data", "synth", "--items", "60", "--interactions", "500", "--shard-rows", "200",
            "--seed", "3")
    assert cli_run(*args, "--out", str(tmp_path / "a"))[0] == 0
    assert cli_run(*args, "--out", str(tmp_path / "b"))[0] == 0
    shards = sorted(p.name for p in (tmp_path / "a" / "interactions").iterdir())
    assert shards == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for name in ("interactions", "items.parquet", "latent_items.parquet"):
        assert pq.read_table(tmp_path / "a" / name).equals(pq.read_table(tmp_path / "b" / name))
    other = tmp_path / "c"
    assert cli_run(*args[:-1], "4", "--out", str(other))[0] == 0
    assert not pq.read_table(other / "interactions").equals(
        pq.read_table(tmp_path / "a" / "interactions"))


def test_existing_output_is_refused_and_left_alone(tmp_path: Path, cli_run) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, _, err = cli_run("data", "synth", "--out", str(tmp_path))
    assert code == 2 and "already exists" in err and err.count("\n") == 1
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_table_loader_reads_the_shards(synth_dir: Path) -> None:
    ds = load_dataset(synth_dir)
    assert ds.n_items == 400 and len(ds.interactions) == 30_000
    assert ds.interactions.has_order and ds.catalog.category_field == "category"
    raw = pq.read_table(synth_dir / "interactions")
    assert np.array_equal(ds.catalog.item_ids[ds.interactions.item],
                          raw["item_id"].to_numpy().astype(str))


def test_popularity_is_zipf_and_matches_the_latent_truth(synth_dir: Path) -> None:
    items = pq.read_table(synth_dir / "interactions")["item_id"].to_numpy()
    prob = pq.read_table(synth_dir / "latent_items.parquet")["prob"].to_numpy()
    emp = np.bincount(items, minlength=400) / len(items)
    assert abs(prob.sum() - 1) < 1e-9
    assert np.corrcoef(emp, prob)[0, 1] > 0.98
    top = np.sort(emp)[::-1]
    assert top[:40].sum() > 0.4  # 10% of the items hold far more than 10% of the traffic


def test_users_stick_to_few_clusters_and_titles_name_their_cluster(synth_dir: Path) -> None:
    inter = pq.read_table(synth_dir / "interactions")
    latent = pq.read_table(synth_dir / "latent_items.parquet")["cluster"].to_numpy()
    cl = latent[inter["item_id"].to_numpy()]
    user = inter["user_id"].to_numpy()
    counts = np.zeros((300, 8))
    np.add.at(counts, (user, cl), 1)
    top3 = np.sort(counts, axis=1)[:, -3:].sum() / counts.sum()
    assert top3 > 0.85  # tastes over 3 clusters, 10% exploration
    titles = pq.read_table(synth_dir / "items.parquet")["title"].to_pylist()
    words = [set(t.split()[:2]) for t in titles]  # the first two words are topic words
    vocab = [set().union(*(w for w, c in zip(words, latent, strict=True) if c == k))
             for k in range(8)]
    assert all(not (vocab[a] & vocab[b]) for a in range(8) for b in range(a + 1, 8))


def test_facets_without_focus_leave_the_interactions_unchanged(tmp_path: Path) -> None:
    """The facet draws come after every base draw: with focus 0 the interactions, clusters
    and item shares are the base generator's, bit for bit."""
    base = SynthConfig(n_items=300, n_interactions=4_000, n_users=100, n_clusters=6,
                       shard_rows=1_500, seed=2)
    a = synthesize(base, tmp_path / "a")
    b = synthesize(SynthConfig(**{**base.__dict__, "facets": 4}), tmp_path / "b")
    assert pq.read_table(a / "interactions").equals(pq.read_table(b / "interactions"))
    la, lb = pq.read_table(a / "latent_items.parquet"), pq.read_table(b / "latent_items.parquet")
    assert la.column_names == ["item_id", "cluster", "prob"]
    assert lb.select(la.column_names).equals(la) and "facet" in lb.column_names


def test_focused_users_stay_inside_their_facet() -> None:
    """focus 1, no exploration: every interaction is an item of one of the user's
    (favourite cluster, favourite facet) pairs; the true item shares match the draws."""
    from clusterneg.data.synth import draw_chunk, item_probabilities, make_latent

    cfg = SynthConfig(n_items=2_000, n_interactions=1, n_users=50, n_clusters=5, explore=0.0,
                      facets=4, focus=1.0, seed=1).resolved()
    lat = make_latent(cfg, np.random.default_rng(0))
    users, items = draw_chunk(lat, cfg, 20_000, np.random.default_rng(1))
    fine = lat.item_cluster[items] * 4 + lat.item_facet[items]
    allowed = lat.user_fav[users] * 4 + lat.user_facet[users]  # [rows, tastes]
    assert (fine[:, None] == allowed).any(axis=1).all()
    half = SynthConfig(**{**cfg.__dict__, "focus": 0.5, "explore": 0.1})
    lat = make_latent(half, np.random.default_rng(0))
    _, items = draw_chunk(lat, half, 200_000, np.random.default_rng(2))
    prob = item_probabilities(lat, half)
    emp = np.bincount(items, minlength=2_000) / len(items)
    assert abs(prob.sum() - 1) < 1e-9 and np.corrcoef(emp, prob)[0, 1] > 0.99
    # Pearson's chi-square over the 2,000 items: sampling noise alone gives about 1999
    # (sd 63); a wrong share for the focused draws would be far above
    chi2 = (len(items) * (emp - prob) ** 2 / prob).sum()
    assert chi2 < 1.2 * 1999


def test_titles_name_the_facet_and_a_focus_needs_facets(tmp_path: Path, cli_run) -> None:
    out = synthesize(SynthConfig(n_items=200, n_interactions=500, n_users=20, n_clusters=2,
                                 facets=3, focus=0.5, seed=0), tmp_path / "f")
    titles = pq.read_table(out / "items.parquet")["title"].to_pylist()
    latent = pq.read_table(out / "latent_items.parquet")
    last = {}
    for t, c, f in zip(titles, latent["cluster"].to_pylist(), latent["facet"].to_pylist(),
                       strict=True):
        last.setdefault((c, f), set()).add(t.split()[-1])
    assert all(len(w) == 1 for w in last.values())  # one word per (cluster, facet)
    assert len(set().union(*last.values())) == len(last)
    code, _, err = cli_run("data", "synth", "--focus", "0.5", "--out", str(tmp_path / "x"))
    assert code == 2 and "facets" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
