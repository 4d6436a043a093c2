"""``clusterneg embed``, ``clusterneg cluster`` and ``clusterneg clusters show`` through the
real CLI entry point, on a generated dataset with precomputed embeddings (no model loads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer

import clusterneg.cli as cli
from clusterneg.commands import cluster as cluster_command
from clusterneg.commands import embed as embed_command

N_ITEMS, N_USERS = 60, 30


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, cli_run, tmp_path: Path):
    """``clusterneg.cli.main`` with only the embed / cluster commands attached."""
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(cli, "_register", lambda: (embed_command.register(app),
                                                   cluster_command.register(app)))
    monkeypatch.setenv("CLUSTERNEG_CACHE", str(tmp_path / "cache"))

    return cli_run


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path]:
    """A table dataset (3 genres of 20 items) and a Parquet of 3-blob item vectors."""
    rng = np.random.default_rng(0)
    d = tmp_path / "ds"
    d.mkdir()
    genre = np.repeat(np.arange(3), 20)
    names = ["Action", "Comedy", "Horror"]
    items = ["item_id,title,genres"] + [f"it{j},Title {j},{names[g]}" for j, g in
                                       enumerate(genre)]
    (d / "items.csv").write_text("\n".join(items) + "\n")
    rows = ["user_id,item_id,timestamp"]
    for u in range(N_USERS):
        for t, j in enumerate(rng.choice(N_ITEMS, 6, replace=False)):
            rows.append(f"u{u},it{j},{t}")
    (d / "interactions.csv").write_text("\n".join(rows) + "\n")
    vecs = np.eye(3)[genre] * 5 + rng.standard_normal((N_ITEMS, 3)) * 0.3
    emb = tmp_path / "emb.parquet"
    pq.write_table(pa.table({"item_id": [f"it{j}" for j in range(N_ITEMS)],
                             "vector": vecs.tolist()}), emb)
    return d, emb


def test_embed_writes_vectors(run, data: tuple[Path, Path], tmp_path: Path) -> None:
    d, emb = data
    code, out, err = run("embed", "--dataset", str(d), "--encoder", f"precomputed:{emb}",
                         "--out", str(tmp_path / "v.npy"))
    assert code == 0, err
    v = np.load(tmp_path / "v.npy")
    assert v.shape == (N_ITEMS, 3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert "60 x 3" in out
    code, _, err = run("embed", "--dataset", str(d), "--encoder", f"precomputed:{emb}",
                       "--out", str(tmp_path / "v.parquet"))
    assert code == 0, err
    assert pq.read_table(tmp_path / "v.parquet").num_rows == N_ITEMS


def test_cluster_then_show(run, data: tuple[Path, Path], tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    d, emb = data
    out_dir = tmp_path / "clusters"
    code, out, err = run("cluster", "--dataset", str(d), "--encoder", f"precomputed:{emb}",
                         "--n-clusters", "3", "--out", str(out_dir), "--json")
    assert code == 0, err
    diag = json.loads(out)["diagnostics"]
    assert diag["sizes"]["n_clusters"] == 3 and diag["sizes"]["min"] == 20
    assert diag["categories"]["nmi"] == pytest.approx(1.0)
    for f in ("centroids.npy", "clusterer.json", "item_cluster.npy", "meta.json",
              "examples.json", "diagnostics.json"):
        assert (out_dir / f).is_file()

    def fake_names(ds, emb, result, cache_dir=None, generator=None, progress=None):
        return [f"group {c}" for c in range(result.n_clusters)]

    monkeypatch.setattr("clusterneg.cluster.names_for", fake_names)
    code, out, err = run("clusters", "show", str(out_dir))
    assert code == 0, err
    assert "group 0" in out and "Title" in out
    assert json.loads((out_dir / "names.json").read_text()) == ["group 0", "group 1", "group 2"]


def test_cluster_auto_prints_the_scan(run, data: tuple[Path, Path]) -> None:
    d, emb = data
    code, out, err = run("cluster", "--dataset", str(d), "--encoder", f"precomputed:{emb}")
    assert code == 0, err
    assert "n_clusters=auto" in out and "chosen" in out and "false-negative" in out


def test_bad_options_are_one_line_errors(run, data: tuple[Path, Path]) -> None:
    d, emb = data
    code, _, err = run("cluster", "--dataset", str(d), "--encoder", f"precomputed:{emb}",
                       "--n-clusters", "many")
    assert code == 2 and err.strip().count("\n") == 0 and "n-clusters" in err
    code, _, err = run("embed", "--dataset", str(d), "--encoder", "precomputed:/no/such.npy")
    assert code == 2 and "no such file" in err


def test_show_without_a_directory_clusters_now(run, data: tuple[Path, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    d, emb = data

    def fake_names(ds, emb, result, cache_dir=None, generator=None, progress=None):
        return ["pens", "films", "phones"][: result.n_clusters]

    monkeypatch.setattr("clusterneg.cluster.pipeline.names_for", fake_names)
    code, out, err = run("clusters", "show", "--dataset", str(d), "--encoder",
                         f"precomputed:{emb}", "--n-clusters", "3", "--limit", "2")
    assert code == 0, err
    assert "pens" in out and "films" in out and "phones" not in out  # --limit 2
